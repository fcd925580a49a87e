//go:build e2e

package framework

import (
	"context"
	"time"

	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/devenv/controlplane"
	"github.com/sluicehq/sluice/devenv/simulator"
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

func (mt *Metrics) start(ctx context.Context, cp *controlplane.ControlPlane, dir string, integrations bool, routes client.Reader) error {
	kc, err := kubernetes.NewForConfig(cp.RESTConfig())
	if err != nil {
		return err
	}
	// The simulator outlives ctx (a start-up timeout): Stop ends it.
	life, stop := context.WithCancel(context.Background())
	mt.stop = stop
	mt.Simulator = simulator.New(kc, simulator.Options{Integrations: integrations, Routes: routes})
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
