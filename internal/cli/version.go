package cli

import (
	"context"
	"flag"
	"fmt"
	"runtime/debug"
)

// Version is stamped at build time with -ldflags "-X github.com/ecrpush/ecrpush/internal/cli.Version=v1.2.3".
var Version = ""

func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func versionCmd() command {
	return command{name: "version", short: "print the version", flags: func(fs *flag.FlagSet, stdio IO) func(context.Context, []string) error {
		return func(context.Context, []string) error {
			_, err := fmt.Fprintln(stdio.Out, "ecrpush", version())
			return err
		}
	}}
}
