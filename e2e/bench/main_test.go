//go:build e2e

// Package bench_test measures Sluice on a real control plane, with a real
// Prometheus scraping the application-metrics simulator: the controller's
// overhead per step transition and its API writes per release (issue 3),
// and the time from a canary going bad to its traffic being back on
// stable (issue 5). Everything is observed through watches, from this
// process, as a user would see it.
//
// These are benchmarks, not timed tests: they report numbers and never
// fail because a machine is slow. `make bench` runs them; `make test`
// compiles this package but starts nothing here (there are no tests).
//
//	go test -tags e2e -run '^$' -bench . -benchtime 5x ./e2e/bench
//
// -benchtime Nx is the number of releases per benchmark.
package bench_test

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/sluicehq/sluice/e2e/framework"
)

var (
	env     *framework.Env
	metrics *framework.Metrics
)

func TestMain(m *testing.M) {
	flag.Parse()
	bench := ""
	if f := flag.Lookup("test.bench"); f != nil {
		bench = f.Value.String()
	}
	if bench == "" || bench == "Plot" {
		// No environment: make test runs nothing here, and BenchmarkPlot
		// alone only draws a file.
		os.Exit(m.Run())
	}
	ctrllog.SetLogger(logr.Discard()) // the clients here log nothing worth reading
	o := framework.Options{Metrics: true}
	if bench == "." || strings.Contains(bench, "Fleet") {
		// Room for the fleet's pods (BenchmarkFleet, fleet_test.go).
		cfg, err := fleetFromEnv()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		o.Nodes = cfg.nodes()
	}
	framework.MainWithOptions(m, o, &env, &metrics)
}
