// Package ship holds the contract tests of everything users copy or run instead of the Go API: action.yml
// and the README's workflow example, the Cloud Build pipeline and examples, the Dockerfile, and the GitHub
// workflows. The tests build the binary the way the Dockerfile does and run it the way GitHub Actions and
// Cloud Build would, against the sandbox, so the documentation cannot drift from the program. The package
// has no code of its own.
package ship
