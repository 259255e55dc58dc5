package cli

import "errors"

// quiet is an error already answered where its reader looks, so main prints nothing more: the credential
// helper's "credentials not found in native keychain" goes to stdout, where docker, crane, skopeo and a
// registry's proxy.exec read it and fall back to anonymous access. A line on stderr for every host the
// helper does not serve would only fill their logs (crane printed it twice per pull).
type quiet struct{ error }

func (q quiet) Unwrap() error { return q.error }

// IsQuiet reports whether err was already reported and must not be printed again.
func IsQuiet(err error) bool {
	var q quiet
	return errors.As(err, &q)
}
