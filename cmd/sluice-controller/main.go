// Command sluice-controller is Sluice's manager: it serves the Rollout
// conversion and the admission webhooks and runs the controllers (package
// app holds all of it).
package main

import (
	"os"

	"github.com/sluicehq/sluice/cmd/sluice-controller/app"
)

func main() { os.Exit(app.Main(os.Args[1:])) }
