package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/e2e/controlplane"
	"github.com/sluicehq/sluice/e2e/framework"
	"github.com/sluicehq/sluice/e2e/simulator"
)

// playground is a running control plane, the application-metrics
// simulator, Prometheus and the manager.
type playground struct {
	dir        string
	cp         *controlplane.ControlPlane
	prometheus *controlplane.Prometheus
	manager    *framework.Manager
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

	done := step("starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok")
	startCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if p.cp, err = controlplane.Start(startCtx, controlplane.Options{Dir: filepath.Join(dir, "cluster")}); err != nil {
		return nil, err
	}
	done()
	if p.client, err = client.New(p.cp.RESTConfig(), client.Options{Scheme: framework.Scheme()}); err != nil {
		return nil, err
	}
	done = step("installing Sluice's CRDs")
	if err := framework.InstallCRDs(startCtx, p.client); err != nil {
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

	done = step("starting sluice-controller (development mode)")
	if p.manager, err = framework.StartManager(startCtx, p.cp, filepath.Join(dir, "manager")); err != nil {
		return nil, err
	}
	done()
	done = step("starting Prometheus (scraping the simulator and sluice-controller)")
	managerAddr := strings.TrimSuffix(strings.TrimPrefix(p.manager.MetricsURL, "http://"), "/metrics")
	if p.prometheus, err = controlplane.StartPrometheus(startCtx, filepath.Join(dir, "prometheus"), controlplane.PrometheusOptions{
		ScrapeInterval: time.Second,
		JobName:        "simulator", Targets: []string{simAddr},
		ExtraScrapeConfigYAML: fmt.Sprintf("- job_name: sluice-controller\n  static_configs:\n  - targets: [%q]\n", managerAddr),
		// The shipped alert rules: the demo's aborted release fires one.
		RuleFiles: []string{filepath.Join(framework.RepoRoot(), "deploy", "prometheus", "alerts.yaml")},
	}); err != nil {
		return nil, err
	}
	done()
	done = step("pointing sluice-controller at Prometheus")
	if err := p.manager.Restart(startCtx, p.cp, "--prometheus-address="+p.prometheus.URL()); err != nil {
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
  bin/kubectl-sluice status rollouts-demo   (the kubectl plugin: kubectl sluice, with bin/ on the PATH)
  Prometheus:         %s   (try: curl '%s/api/v1/query?query=sum(rate(http_requests_total[1m]))')
  Alerts:             %s/alerts   (deploy/prometheus/alerts.yaml)
  Controller metrics: %s   (docs/observability.md)
  Logs:               %s
`, kc, p.prometheus.URL(), p.prometheus.URL(), p.prometheus.URL(), p.manager.MetricsURL, p.dir)
}
