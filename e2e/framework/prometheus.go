//go:build e2e

package framework

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/sluicehq/sluice/e2e/controlplane"
	"github.com/sluicehq/sluice/e2e/simulator"
)

// Metrics is the application-metrics side of an environment: the
// simulator serving every pod's metrics and a Prometheus scraping it every
// second, which the manager uses as --prometheus-address.
type Metrics struct {
	Simulator *simulator.Simulator
	// SimulatorAddress is host:port of the simulator's /metrics.
	SimulatorAddress string
	Prometheus       *controlplane.Prometheus
	stop             context.CancelFunc
}

// MainWithMetrics is Main for packages that measure applications: the
// environment also runs the simulator and Prometheus, and the manager
// points at that Prometheus.
func MainWithMetrics(m *testing.M, env **Env, metrics **Metrics) {
	os.Exit(func() int {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		e, mt, err := StartWithMetrics(ctx)
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e environment:", err)
			return 1
		}
		defer e.Stop()
		defer mt.Stop()
		*env, *metrics = e, mt
		return m.Run()
	}())
}

// StartWithMetrics is Start, then the simulator and Prometheus, then the
// manager restarted with --prometheus-address (reusing Start keeps this
// environment the same as every other package's).
func StartWithMetrics(ctx context.Context) (_ *Env, _ *Metrics, err error) {
	start := time.Now()
	e, err := Start(ctx)
	if err != nil {
		return nil, nil, err
	}
	mt := &Metrics{}
	defer func() {
		if err != nil {
			mt.Stop()
			e.Stop()
		}
	}()
	if err := mt.start(ctx, e.ControlPlane, filepath.Join(e.dir, "prometheus")); err != nil {
		return nil, nil, err
	}
	if err := e.Manager.Restart(ctx, e.ControlPlane, "--prometheus-address="+mt.Prometheus.URL()); err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(os.Stderr, "e2e environment with Prometheus %s ready in %s (logs in %s)\n",
		mt.Prometheus.URL(), time.Since(start).Round(time.Millisecond), e.dir)
	return e, mt, nil
}

func (mt *Metrics) start(ctx context.Context, cp *controlplane.ControlPlane, dir string) error {
	kc, err := kubernetes.NewForConfig(cp.RESTConfig())
	if err != nil {
		return err
	}
	// The simulator outlives ctx (a start-up timeout): Stop ends it.
	life, stop := context.WithCancel(context.Background())
	mt.stop = stop
	mt.Simulator = simulator.New(kc, simulator.Options{})
	if err := mt.Simulator.Start(life); err != nil {
		return err
	}
	if mt.SimulatorAddress, err = mt.Simulator.Serve(life, "127.0.0.1:0"); err != nil {
		return err
	}
	mt.Prometheus, err = StartPrometheusFor(ctx, dir, mt.SimulatorAddress)
	return err
}

// StartPrometheusFor starts a Prometheus in dir that scrapes the simulator
// at address every second. Tests that stop Prometheus start their own
// with it, so the shared one stays up for the others.
func StartPrometheusFor(ctx context.Context, dir, address string) (*controlplane.Prometheus, error) {
	return controlplane.StartPrometheus(ctx, dir, controlplane.PrometheusOptions{
		ScrapeInterval: time.Second,
		JobName:        "simulator",
		Targets:        []string{address},
	})
}

// Stop stops Prometheus and the simulator.
func (mt *Metrics) Stop() {
	if mt.Prometheus != nil {
		_ = mt.Prometheus.Stop()
	}
	if mt.stop != nil {
		mt.stop()
	}
}
