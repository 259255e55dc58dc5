package cli

import (
	"flag"
	"time"

	"github.com/ecrpush/ecrpush/internal/fixable"
	"github.com/ecrpush/ecrpush/internal/replicate"
)

// replicationFlags are push's replication flags.
type replicationFlags struct {
	to        listFlag
	mode      string
	configure bool
	prefix    string
	timeout   time.Duration
	roleName  string
}

func (r *replicationFlags) register(fs *flag.FlagSet) {
	fs.Var(&r.to, "replicate-to", "destinations ACCOUNT:REGION or REGION (same account), comma-separated or repeated; copy mode may add =ROLE_ARN")
	fs.StringVar(&r.mode, "replication", replicate.ModeNative, "how images reach the destinations: native (ECR replication), copy, or off")
	fs.BoolVar(&r.configure, "configure-replication", false, "merge the missing replication rule into the ci registry's configuration")
	fs.StringVar(&r.prefix, "replication-prefix", "", "repository prefix of the replication rule (default: the repository)")
	fs.DurationVar(&r.timeout, "replication-timeout", replicate.DefaultTimeout, "how long to wait after the push: for native replication, then for referrers, signatures and scan findings")
	fs.StringVar(&r.roleName, "destination-role-name", "", "role name to use in every destination account for copying (federated with the same identity)")
}

func (r *replicationFlags) validate(otherRegistry bool) error {
	switch r.mode {
	case replicate.ModeNative, replicate.ModeCopy, "off":
	default:
		return fixable.New("--replication %q is not one of native, copy, off", r.mode)
	}
	if len(r.to) > 0 && otherRegistry {
		return fixable.New("--replicate-to needs an ECR destination: drop it, or push with --repository")
	}
	if r.timeout <= 0 {
		return fixable.New("--replication-timeout %s must be positive, e.g. 10m", r.timeout)
	}
	if r.prefix != "" {
		if err := replicate.ValidatePrefix(r.prefix); err != nil {
			return err
		}
	}
	if len(r.to) > 0 {
		// Syntax only: the ci account and region are known after federation.
		if _, err := replicate.ParseDestinations(r.to, "000000000000", "xx-none-0", r.roleName); err != nil {
			return err
		}
	}
	return nil
}
