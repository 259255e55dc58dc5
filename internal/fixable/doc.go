// Package fixable marks errors the user must fix — bad input, a missing permission, a trust policy that
// does not admit the token — as opposed to failures in the cloud or network that survived every retry.
// The command line turns the first kind into exit code 2 and the second into 1. It never decides what
// is retryable; that is decided where the error is understood.
package fixable
