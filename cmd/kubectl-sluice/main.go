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

	"github.com/go-logr/logr"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/sluicehq/sluice/cmd/kubectl-sluice/cli"
)

func main() {
	// The API client logs nothing worth showing here but would print a
	// stack trace on its first log line without a logger.
	ctrllog.SetLogger(logr.Discard())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
	stop()
	os.Exit(code)
}
