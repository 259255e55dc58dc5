package cli

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/ecrpush/ecrpush/internal/fixable"
	"github.com/ecrpush/ecrpush/sandbox"
)

func sandboxCmd() command {
	return command{name: "sandbox", short: "run a local stand-in of STS, ECR and the CI token issuers", flags: func(fs *flag.FlagSet, stdio IO) func(context.Context, []string) error {
		cfgFile := fs.String("config", "", "sandbox config file (YAML or JSON); default: ci, prod and staging accounts in us-east-1 and eu-west-1")
		host := fs.String("host", "", "IP address to listen on and advertise instead of 127.0.0.1 (e.g. the docker bridge address, for container actions)")
		return func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return fixable.New("sandbox takes no arguments, got %q", strings.Join(args, " "))
			}
			cfg := sandbox.DefaultConfig()
			if *cfgFile != "" {
				c, err := sandbox.Load(*cfgFile)
				if err != nil {
					return fixable.Wrap(err, err.Error())
				}
				cfg = c
			}
			if *host != "" {
				cfg.Host = *host
			}
			sb, err := sandbox.Start(ctx, cfg)
			if err != nil {
				return err
			}
			defer sb.Close()
			fmt.Fprintln(stdio.Out, "# ecrpush sandbox: eval these lines in a shell, then run ecrpush or the aws CLI against it")
			for _, kv := range sb.Environ() {
				k, v, _ := strings.Cut(kv, "=")
				fmt.Fprintf(stdio.Out, "export %s=%s\n", k, shellQuote(v))
			}
			for _, id := range sb.RegistryIDs() {
				fmt.Fprintf(stdio.Out, "# registry %s (%s) in %s: %s\n", id.Account, sb.AccountName(id.Account), id.Region, sb.Endpoints.Registries[id])
			}
			fmt.Fprintln(stdio.Out, "# serving until interrupted (Ctrl-C)")
			<-ctx.Done()
			return nil
		}
	}}
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@,+%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
