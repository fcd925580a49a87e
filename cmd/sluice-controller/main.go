// Command sluice-controller is Sluice's manager: it serves the Rollout
// conversion and the admission webhooks and runs the controllers (package
// app holds all of it).
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/sluicehq/sluice/cmd/sluice-controller/app"
)

func main() {
	err := app.Run(ctrl.SetupSignalHandler(), os.Args[1:])
	var usage app.UsageError
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
	case errors.As(err, &usage):
		fmt.Fprintln(os.Stderr, "sluice-controller:", err)
		os.Exit(2)
	default:
		os.Exit(1) // Run has logged it
	}
}
