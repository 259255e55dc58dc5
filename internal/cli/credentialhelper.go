package cli

import (
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/docker/docker-credential-helpers/credentials"

	"github.com/ecrpush/ecrpush/internal/credhelper"
	"github.com/ecrpush/ecrpush/internal/ecr"
	"github.com/ecrpush/ecrpush/internal/federate"
	"github.com/ecrpush/ecrpush/internal/fixable"
	"github.com/ecrpush/ecrpush/internal/pipeline"
)

// HelperName is the program name docker looks for when a config says "credsStore": "ecrpush" or
// "credHelpers": {"HOST": "ecrpush"}; a link by that name runs `ecrpush credential-helper`.
const HelperName = "docker-credential-ecrpush"

// isHelperName reports whether the program was started under the credential-helper name.
func isHelperName(argv0 string) bool {
	return strings.TrimSuffix(filepath.Base(argv0), ".exe") == HelperName
}

// helperArgs turns a docker-credential-ecrpush command line into ecrpush's.
func helperArgs(args []string) []string {
	if len(args) == 1 && (args[0] == "-v" || args[0] == "--version") {
		args = []string{"version"}
	}
	return append([]string{"credential-helper"}, args...)
}

// registryFlags are what commands that hand out registry tokens share.
type registryFlags struct {
	id    identityFlags
	hosts string
}

func (f *registryFlags) register(fs *flag.FlagSet) {
	f.id.register(fs)
	fs.StringVar(&f.hosts, "registry-hosts", "", "registry hosts that are not ECR's own names, HOST=ACCOUNT:REGION, comma-separated (a proxy, a custom endpoint, the sandbox's 127.0.0.1:PORT)")
}

// ecrAccess federates once, lazily, and fetches registry tokens with the session.
type ecrAccess struct {
	id    identityFlags
	stdio IO
	log   *slog.Logger
	sess  *federate.Session
}

func (a *ecrAccess) session(ctx context.Context, region string) (*federate.Session, error) {
	if a.sess != nil {
		return a.sess, nil
	}
	f := a.id
	f.region = region
	opts, err := f.options(a.stdio)
	if err != nil {
		return nil, err
	}
	opts.Logger = a.log
	// No log group: docker runs the helper and reads its stdout; the masks come with opts.
	s, err := pipeline.Identity(ctx, pipeline.Env{Log: a.log}, opts)
	if err != nil {
		return nil, err
	}
	a.sess = s
	return s, nil
}

// token fetches a new registry token for r with the session's credentials in r's region (STS
// credentials are global; only the ECR call is regional).
func (a *ecrAccess) token(ctx context.Context, r ecr.Registry) (*ecr.Token, error) {
	s, err := a.session(ctx, r.Region)
	if err != nil {
		return nil, err
	}
	// The token is used (cached, handed out, put in a Secret) no longer than the session that fetched it.
	tok, err := credhelper.FetchToken(ctx, s.Config, r)
	if err != nil {
		return nil, err
	}
	// The password and the Basic form clients send (base64 USER:PASSWORD) are both secrets.
	mask := a.stdio.platform().Mask
	mask(tok.Password)
	mask(base64.StdEncoding.EncodeToString([]byte(tok.Username + ":" + tok.Password)))
	return tok, nil
}

// key names the identity behind a token without federating: the role (or the default chain's profile),
// the region, the endpoint variant, and a custom ECR endpoint when one is configured.
func (a *ecrAccess) key(r ecr.Registry) string {
	get := a.stdio.Getenv
	role := a.id.roleARN
	if role == "" {
		role = get("AWS_ROLE_ARN")
	}
	if role == "" {
		role = "default-chain:" + firstNonEmpty(get("AWS_PROFILE"), "default")
	}
	variant := ""
	if r.FIPS {
		variant += "fips"
	}
	if r.DualStack {
		variant += "dualstack"
	}
	return strings.Join([]string{role, r.Region, variant, firstNonEmpty(get("AWS_ENDPOINT_URL_ECR"), get("AWS_ENDPOINT_URL"))}, "|")
}

func credentialHelperCmd() command {
	return command{name: "credential-helper", short: "docker credential helper for ECR: get|store|erase|list (also run as " + HelperName + ")", flags: func(fs *flag.FlagSet, stdio IO) func(context.Context, []string) error {
		var f registryFlags
		f.register(fs)
		cacheDir := fs.String("cache-dir", "", "where tokens are cached, one 0600 file per role and region (default: the user cache directory + /ecrpush)")
		return func(ctx context.Context, args []string) error {
			if len(args) != 1 {
				fmt.Fprintf(stdio.Out, "Usage: %s <get|store|erase|list|version>\n", HelperName)
				return fixable.New("credential-helper takes one action: get, store, erase, list or version")
			}
			action := args[0]
			if action == credentials.ActionVersion {
				_, err := fmt.Fprintf(stdio.Out, "%s (github.com/ecrpush/ecrpush) %s\n", HelperName, version())
				return err
			}
			hosts, err := ecr.ParseHostMap(f.hosts)
			if err != nil {
				return helperFail(stdio, err)
			}
			// docker shows a helper's stdout as the error and ignores its stderr: stay quiet there
			// unless something is wrong.
			log := slog.New(warnOnly{newLogger(stdio.Err).Handler()})
			access := &ecrAccess{id: f.id, stdio: stdio, log: slog.New(slog.DiscardHandler)}
			h := &credhelper.Helper{Ctx: ctx, Hosts: hosts, Key: access.key, Fetch: access.token, Log: log}
			dir := *cacheDir
			if dir == "" {
				if d, err := os.UserCacheDir(); err == nil {
					dir = filepath.Join(d, "ecrpush")
				}
			}
			if dir != "" {
				h.Cache = &credhelper.Cache{Dir: dir}
			} else {
				log.Warn("no cache directory (set --cache-dir or HOME): every get fetches a new token")
			}
			if err := credentials.HandleCommand(h, action, stdio.In, stdio.Out); err != nil {
				return helperFail(stdio, err)
			}
			return nil
		}
	}}
}

// helperFail answers the way docker-credential-helpers' Serve does: the error text on stdout, where
// docker reads it (it recognises "credentials not found in native keychain"), and a failing exit code
// (1 for "not found", which is not fixable; 2 for a configuration to fix).
func helperFail(stdio IO, err error) error {
	fmt.Fprintln(stdio.Out, err)
	if credentials.IsErrCredentialsNotFound(err) {
		return quiet{err} // a host this helper does not serve: the answer above is the whole story
	}
	return err
}

// warnOnly passes warnings and errors through and drops the rest.
type warnOnly struct{ slog.Handler }

func (w warnOnly) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && w.Handler.Enabled(ctx, l)
}
