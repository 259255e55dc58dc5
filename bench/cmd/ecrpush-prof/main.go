// Command ecrpush-prof is ecrpush with a CPU profile: the same cli.Run as the real binary, plus
// pprof.StartCPUProfile into $ECRPUSH_CPUPROFILE when it is set. bench/run.sh --profile DIR runs it
// in place of ecrpush, so `go tool pprof DIR/NNN.pprof` shows where a benchmarked push spends its
// CPU (the figures in bench/RESULTS.md's analysis come from it).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/ecrpush/ecrpush/internal/cli"
)

func main() {
	if path := os.Getenv("ECRPUSH_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "ecrpush-prof:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "ecrpush-prof:", err)
			os.Exit(1)
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := cli.Run(ctx, "ecrpush", os.Args[1:], cli.Stdio())
	stop()
	if err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, cli.Message(err))
		os.Exit(cli.ExitCode(err))
	}
}
