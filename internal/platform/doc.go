// Package platform is where ecrpush meets the system that runs it: GitHub Actions (inputs, outputs written
// to GITHUB_OUTPUT with a fresh random delimiter, step summary, masks, log groups and error annotations,
// through go-githubactions), Cloud Build (the JSON result in $BUILDER_OUTPUT/output, kept under the 50KB
// Cloud Build stores, plain logs) or a terminal (text or JSON). The pipeline hands it one Report and the
// final error; it never decides anything about images or credentials. ExplainSource adds what a workflow
// author needs to know when a source cannot be read from inside the Action's container, which sees only
// what actions/runner's ContainerActionHandler mounts (runner.go says what that is and where it comes from).
package platform
