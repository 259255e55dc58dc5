package supplychain

import (
	"time"

	"github.com/ecrpush/ecrpush/internal/fixable"
)

// Options are the supply-chain flags of push (and the matching Action inputs):
// --referrers, --require-referrers, --require-signature, --fail-on-severity.
type Options struct {
	Referrers        Selection     // --referrers none|all|TYPE,… (default all)
	RequireReferrers bool          // --require-referrers: a destination lacking one is exit 2
	RequireSignature bool          // --require-signature: a signature in the ci registry and at every destination
	FailOnSeverity   string        // --fail-on-severity CRITICAL|HIGH|MEDIUM|LOW|INFORMATIONAL ("": no gate)
	Timeout          time.Duration // bound on each wait (signature, scan, referrers at destinations); 0: each one's default
}

// ParseOptions reads the four flags' values.
func ParseOptions(referrers string, requireReferrers, requireSignature bool, failOnSeverity string) (Options, error) {
	sel, err := ParseSelection(referrers)
	if err != nil {
		return Options{}, err
	}
	o := Options{Referrers: sel, RequireReferrers: requireReferrers, RequireSignature: requireSignature}
	if failOnSeverity != "" {
		if o.FailOnSeverity, err = ParseSeverity(failOnSeverity); err != nil {
			return Options{}, err
		}
	}
	return o, nil
}

// Plan is what the command knows before anything is written.
type Plan struct {
	ECR        bool // the ci destination is an ECR repository (not --destination REF elsewhere)
	ScanOnPush bool // the repository will be created with scan on push (when push creates it)
	Creates    bool // push creates the repository
	Platform   string
}

// Check refuses combinations that cannot work, before anything is written (exit 2, one line).
func (o Options) Check(p Plan) error {
	switch {
	case o.RequireReferrers && o.Referrers.None():
		return fixable.New("--require-referrers with --referrers none requires nothing: drop one of them")
	case o.FailOnSeverity != "" && !p.ECR:
		return fixable.New("--fail-on-severity reads ECR's scan findings: it needs an ECR repository (--repository), not another registry")
	case o.FailOnSeverity != "" && p.Creates && !p.ScanOnPush:
		return fixable.New("--fail-on-severity needs the pushed image scanned, but the repository would be created without scan on push: drop --scan-on-push=false")
	}
	return nil
}
