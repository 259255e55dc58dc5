package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/ecrpush/ecrpush/internal/fixable"
	"github.com/ecrpush/ecrpush/internal/pipeline"
)

func federateCmd() command {
	return command{name: "federate", short: "exchange the CI identity token for AWS credentials and print them", flags: func(fs *flag.FlagSet, stdio IO) func(context.Context, []string) error {
		var id identityFlags
		id.register(fs)
		format := fs.String("format", "export", "output: export (shell), json, or credential-process (for credential_process in ~/.aws/config)")
		return func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return fixable.New("federate takes no arguments, got %q", args)
			}
			switch *format {
			case "export", "json", "credential-process":
			default:
				return fixable.New("--format %q is not one of export, json, credential-process", *format)
			}
			opts, err := id.options(stdio)
			if err != nil {
				return err
			}
			if *format == "credential-process" {
				// The AWS CLI reads stdout as JSON and shows stderr to the user: keep stderr quiet on success.
				opts.Logger = newLogger(io.Discard)
			}
			s, err := pipeline.Identity(ctx, pipeline.Env{Log: opts.Logger}, opts)
			if err != nil {
				return err
			}
			c, err := s.Config.Credentials.Retrieve(ctx)
			if err != nil {
				return err
			}
			switch *format {
			case "export":
				fmt.Fprintf(stdio.Out, "export AWS_ACCESS_KEY_ID=%s\nexport AWS_SECRET_ACCESS_KEY=%s\n", c.AccessKeyID, c.SecretAccessKey)
				if c.SessionToken != "" {
					fmt.Fprintf(stdio.Out, "export AWS_SESSION_TOKEN=%s\n", c.SessionToken)
				}
				fmt.Fprintf(stdio.Out, "export AWS_REGION=%s\n", opts.Region)
				if c.CanExpire {
					fmt.Fprintf(stdio.Out, "# expires %s\n", c.Expires.UTC().Format(time.RFC3339))
				}
				return nil
			case "json":
				out := map[string]any{"AccessKeyId": c.AccessKeyID, "SecretAccessKey": c.SecretAccessKey, "SessionToken": c.SessionToken,
					"Region": opts.Region, "Account": s.Account, "RoleArn": s.RoleARN, "Identity": s.Detection.Identity}
				if c.CanExpire {
					out["Expiration"] = c.Expires.UTC().Format(time.RFC3339)
				}
				return writeJSON(stdio.Out, out)
			default:
				out := map[string]any{"Version": 1, "AccessKeyId": c.AccessKeyID, "SecretAccessKey": c.SecretAccessKey}
				if c.SessionToken != "" {
					out["SessionToken"] = c.SessionToken
				}
				if c.CanExpire {
					out["Expiration"] = c.Expires.UTC().Format(time.RFC3339)
				}
				return writeJSON(stdio.Out, out)
			}
		}
	}}
}

func writeJSON(w interface{ Write([]byte) (int, error) }, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
