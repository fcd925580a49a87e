// Command kubectl-sluice is the kubectl plugin for Sluice: put it on the
// PATH and run `kubectl sluice`. It lists and shows releases and overrides
// them (approve, pause, resume, abort, retry, promote --full, undo); see
// `kubectl sluice --help` and package cli.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/sluicehq/sluice/cmd/kubectl-sluice/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
	stop()
	os.Exit(code)
}
