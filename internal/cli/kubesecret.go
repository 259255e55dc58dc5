package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/ecrpush/ecrpush/internal/credhelper"
	"github.com/ecrpush/ecrpush/internal/ecr"
	"github.com/ecrpush/ecrpush/internal/fixable"
	"github.com/ecrpush/ecrpush/internal/kubesecret"
)

// kubeRefresh is the CronJob period the README recipe uses; tokens should outlive it with an hour to spare.
const kubeRefresh = 6 * time.Hour

func kubeSecretCmd() command {
	return command{name: "kube-secret", short: "print a kubernetes.io/dockerconfigjson Secret for pulling from ECR outside AWS", flags: func(fs *flag.FlagSet, stdio IO) func(context.Context, []string) error {
		var f registryFlags
		f.register(fs)
		namespace := fs.String("namespace", "", "namespace of the Secret")
		secretName := fs.String("name", "", "name of the Secret (what imagePullSecrets names)")
		var registries listFlag
		fs.Var(&registries, "registry", "ECR registry host to include (ACCOUNT.dkr.ecr.REGION.amazonaws.com, or a host --registry-hosts maps); repeatable or comma-separated")
		output := fs.String("output", "yaml", "yaml or json")
		outFile := fs.String("out", "", "write the manifest to this file (mode 0600) instead of stdout, e.g. for a kubectl container in the same pod")
		return func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return fixable.New("kube-secret takes flags only, got %q", strings.Join(args, " "))
			}
			if err := kubesecret.Validate(*namespace, *secretName); err != nil {
				return err
			}
			if *output != "yaml" && *output != "json" {
				return fixable.New("--output %q is not yaml or json", *output)
			}
			if len(registries) == 0 {
				return fixable.New("--registry is required: the ECR registry host(s) the cluster pulls from, e.g. 111122223333.dkr.ecr.us-east-1.amazonaws.com")
			}
			hosts, err := ecr.ParseHostMap(f.hosts)
			if err != nil {
				return err
			}
			resolver := &credhelper.Helper{Hosts: hosts}
			var regs []ecr.Registry
			for _, r := range registries {
				reg, ok := resolver.Resolve(r)
				if !ok {
					return fixable.New("--registry %q is not an ECR registry host (ACCOUNT.dkr.ecr.REGION.amazonaws.com); map other hosts with --registry-hosts HOST=ACCOUNT:REGION", r)
				}
				regs = append(regs, reg)
			}
			log := newLogger(stdio.Err)
			access := &ecrAccess{id: f.id, stdio: stdio, log: log}
			auths := map[string]kubesecret.Auth{}
			var expires time.Time
			for _, reg := range regs {
				// Always a new token: the Secret should live as long as ECR allows, not what is left of a cached one.
				tok, err := access.token(ctx, reg)
				if err != nil {
					return err
				}
				auths[reg.Host] = kubesecret.Auth{Username: tok.Username, Password: tok.Password}
				if expires.IsZero() || tok.ExpiresAt.Before(expires) {
					expires = tok.ExpiresAt
				}
			}
			if left := time.Until(expires); left < kubeRefresh+time.Hour {
				log.Warn("the registry token expires before a 6-hourly refresh replaces it: ECR tokens last at most 12h and no longer than the role session; pass --role-duration 12h (and raise the role's maximum session duration) or refresh more often",
					"expires", expires.UTC().Format(time.RFC3339), "in", left.Round(time.Minute).String())
			}
			// Every form of the secret is masked before the manifest could print it.
			payload, err := kubesecret.Payload(auths)
			if err != nil {
				return err
			}
			stdio.platform().Mask(payload)
			b, err := kubesecret.Manifest(*namespace, *secretName, auths, expires, *output == "json")
			if err != nil {
				return err
			}
			if *outFile != "" {
				// Replace, never append: a Secret manifest holds one generation of tokens.
				if err := os.WriteFile(*outFile, b, 0o600); err != nil {
					return fixable.Wrap(err, fmt.Sprintf("cannot write --out %s: %v", *outFile, err))
				}
				return os.Chmod(*outFile, 0o600)
			}
			_, err = stdio.Out.Write(b)
			return err
		}
	}}
}
