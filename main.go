// Command ecrpush delivers a built container image into Amazon ECR with no stored cloud keys, then gets it
// to every account and region that runs it. See README.md; the commands live in package cli.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/ecrpush/ecrpush/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := realMain(ctx)
	stop()
	if err != nil {
		if !cli.IsQuiet(err) {
			fmt.Fprintln(os.Stderr, cli.Message(err))
		}
		os.Exit(cli.ExitCode(err))
	}
}

func realMain(ctx context.Context) error {
	return cli.Run(ctx, filepath.Base(os.Args[0]), os.Args[1:], cli.Stdio())
}
