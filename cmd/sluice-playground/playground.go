package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/e2e/controlplane"
	"github.com/sluicehq/sluice/e2e/framework"
)

// playground is a running control plane, Prometheus and manager.
type playground struct {
	dir        string
	cp         *controlplane.ControlPlane
	prometheus *controlplane.Prometheus
	manager    *framework.Manager
	client     client.Client
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
	done = step("starting sluice-controller (development mode)")
	if p.manager, err = framework.StartManager(startCtx, p.cp, filepath.Join(dir, "manager")); err != nil {
		return nil, err
	}
	done()
	done = step("starting Prometheus (scraping sluice-controller)")
	target := p.manager.MetricsURL[len("http://") : len(p.manager.MetricsURL)-len("/metrics")]
	if p.prometheus, err = controlplane.StartPrometheus(startCtx, filepath.Join(dir, "prometheus"), controlplane.PrometheusOptions{
		JobName: "sluice-controller", Targets: []string{target},
	}); err != nil {
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
	if p.cp != nil {
		_ = p.cp.Stop()
	}
}

func (p *playground) printHelp() {
	kc := filepath.Join(p.dir, "kubeconfig")
	fmt.Printf(`
Sluice playground is up.
  export KUBECONFIG=%s
  kubectl get rollouts,deployments,pods -A
  kubectl get rollout rollouts-demo -o yaml
  Prometheus:         %s   (try: curl '%s/api/v1/query?query=up')
  Controller metrics: %s
  Logs:               %s
`, kc, p.prometheus.URL(), p.prometheus.URL(), p.manager.MetricsURL, p.dir)
}
