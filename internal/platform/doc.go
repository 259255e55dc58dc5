// Package platform is where ecrpush meets the system that runs it: GitHub Actions (inputs, outputs,
// step summary, masks, log groups and error annotations, through go-githubactions), Cloud Build
// (the JSON result in $BUILDER_OUTPUT/output, plain logs) or a terminal (text or JSON). The pipeline
// hands it one Report and the final error; it never decides anything about images or credentials.
package platform
