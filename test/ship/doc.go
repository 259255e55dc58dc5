// Package ship holds the contract tests of everything users copy or run instead of the Go API: action.yml
// and the README's snippets (the workflow, the docker:// step, the Cloud Build example, the kube-secret
// CronJob and the pull-through proxy recipe), the Cloud Build pipeline and examples, the Dockerfile, the
// GitHub workflows and Dependabot. The tests build the binary the way the Dockerfile does and run it the way
// the platforms do, from their public documentation and source rather than our own contract: GitHub's
// runner (actions/runner's container step: inputs, translated paths, RUNNER_WORKSPACE, docker:// steps),
// Cloud Build as a trigger and under `gcloud builds submit` substitution rules, a kubelet running the
// recipe's init container, distribution's proxy.exec at scaled time; the Dockerfile is read as the legacy
// builder and as BuildKit read it, and its build command run for each. The package has no code of its own.
package ship
