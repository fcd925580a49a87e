package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/cmd/sluice-controller/app"
	"github.com/sluicehq/sluice/deploy"
	"github.com/sluicehq/sluice/devenv/controlplane"
	"github.com/sluicehq/sluice/devenv/manager"
	"github.com/sluicehq/sluice/devenv/simulator"
)

// managerCommand is the hidden subcommand that runs sluice-controller
// (app.Run) in a child process of this binary: the playground carries
// the manager inside it and needs no Go toolchain or source tree.
const managerCommand = "sluice-controller"

// playground is a running control plane, the application-metrics
// simulator, Prometheus and the manager.
type playground struct {
	dir        string
	cp         *controlplane.ControlPlane
	prometheus *controlplane.Prometheus
	manager    *manager.Manager
	client     client.Client
	stopSim    context.CancelFunc
}

func start(ctx context.Context, dir string) (_ *playground, err error) {
	p := &playground{dir: dir}
	defer func() {
		if err != nil {
			p.stop()
		}
	}()
	step := func(what string) func() {
		fmt.Printf("• %s… ", what)
		t := time.Now()
		return func() { fmt.Printf("done (%s)\n", time.Since(t).Round(100*time.Millisecond)) }
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find this program to run sluice-controller from it: %w", err)
	}

	done := step("starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok")
	startCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if p.cp, err = controlplane.Start(startCtx, controlplane.Options{Dir: filepath.Join(dir, "cluster")}); err != nil {
		return nil, err
	}
	done()
	if p.client, err = client.New(p.cp.RESTConfig(), client.Options{Scheme: app.Scheme()}); err != nil {
		return nil, err
	}
	done = step("installing Sluice's CRDs")
	if err := manager.InstallCRDs(startCtx, p.client); err != nil {
		return nil, err
	}
	done()

	// kwok's pods serve nothing: the simulator plays their traffic and
	// exports request counters and latencies per pod, chosen by image tag
	// (a tag ending in -errors serves 20% errors).
	done = step("starting the application-metrics simulator")
	kc, err := kubernetes.NewForConfig(p.cp.RESTConfig())
	if err != nil {
		return nil, err
	}
	life, stopSim := context.WithCancel(context.Background())
	p.stopSim = stopSim
	sim := simulator.New(kc, simulator.Options{})
	if err := sim.Start(life); err != nil {
		return nil, err
	}
	simAddr, err := sim.Serve(life, "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	done()

	// Prometheus first, so the manager starts with its address; the
	// manager's own metrics join its targets once the manager runs.
	done = step("starting Prometheus (scraping the simulator)")
	rules := filepath.Join(dir, "alerts.yaml")
	if err := os.WriteFile(rules, deploy.AlertRules(), 0o644); err != nil {
		return nil, err
	}
	promOpts := controlplane.PrometheusOptions{
		ScrapeInterval: time.Second,
		JobName:        "simulator", Targets: []string{simAddr},
		// The shipped alert rules: the demo's aborted release fires one.
		RuleFiles: []string{rules},
	}
	if p.prometheus, err = controlplane.StartPrometheus(startCtx, filepath.Join(dir, "prometheus"), promOpts); err != nil {
		return nil, err
	}
	done()

	done = step("starting sluice-controller (development mode)")
	if p.manager, err = manager.Start(startCtx, p.cp, filepath.Join(dir, "manager"), manager.Options{
		Command: []string{self, managerCommand},
		Args:    []string{"--prometheus-address=" + p.prometheus.URL()},
	}); err != nil {
		return nil, err
	}
	done()
	done = step("adding sluice-controller's metrics to Prometheus")
	promOpts.ExtraScrapeConfigYAML = fmt.Sprintf("- job_name: sluice-controller\n  static_configs:\n  - targets: [%q]\n", p.manager.MetricsAddress())
	if err := p.prometheus.Reconfigure(startCtx, promOpts); err != nil {
		return nil, err
	}
	done()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	raw, err := os.ReadFile(p.cp.KubeconfigPath())
	if err != nil {
		return nil, err
	}
	return p, os.WriteFile(kubeconfig, raw, 0o600)
}

func (p *playground) stop() {
	if p.manager != nil {
		p.manager.Stop()
	}
	if p.prometheus != nil {
		_ = p.prometheus.Stop()
	}
	if p.stopSim != nil {
		p.stopSim()
	}
	if p.cp != nil {
		_ = p.cp.Stop()
	}
}

func (p *playground) printHelp() {
	kc := filepath.Join(p.dir, "kubeconfig")
	fmt.Printf(`
Sluice playground is up.
  export KUBECONFIG=%s
  kubectl get rollouts,analysisruns,deployments,pods -A
  kubectl get rollout rollouts-demo -o yaml
  kubectl-sluice status rollouts-demo   (the kubectl plugin, bin/kubectl-sluice after make build: kubectl sluice with it on the PATH)
  Prometheus:         %s   (try: curl '%s/api/v1/query?query=sum(rate(http_requests_total[1m]))')
  Alerts:             %s/api/v1/alerts   (the rules: %s, as deploy/prometheus/alerts.yaml ships them)
  Controller metrics: %s   (docs/observability.md)
  Logs:               %s
`, kc, p.prometheus.URL(), p.prometheus.URL(), p.prometheus.URL(), filepath.Join(p.dir, "alerts.yaml"), p.manager.MetricsURL(), p.dir)
}
