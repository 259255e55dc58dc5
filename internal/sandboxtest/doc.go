// Package sandboxtest starts the sandbox for tests: one place that knows how to run it for the length of
// a test and how to point the process at it the way a CI job's environment would. It is test support
// only; the product never imports it.
package sandboxtest
