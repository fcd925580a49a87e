// Command sluice-controller is Sluice's manager: it serves the Rollout
// conversion and the admission webhooks and runs the controllers (package
// app holds all of it).
package main

import (
	"os"

	// The Mozilla CA roots, used only where the system has none: the
	// image (make image) is built FROM scratch, and an HTTPS Prometheus
	// must still be verified.
	_ "golang.org/x/crypto/x509roots/fallback"

	"github.com/sluicehq/sluice/cmd/sluice-controller/app"
)

func main() { os.Exit(app.Main(os.Args[1:])) }
