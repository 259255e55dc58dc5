// Package testenv holds the few helpers tests share: finding the external tools a test needs
// (failing, not skipping, under CI) and scanning captured output for secrets.
package testenv
