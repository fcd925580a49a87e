//go:build e2e

// Package integrations_test releases with the ready-made
// ClusterAnalysisTemplates (deploy/analysis): the simulator serves the
// metrics of ingress-nginx, Istio, Envoy Gateway, OpenTelemetry and
// kube-state-metrics under their exporters' names and labels, a real
// Prometheus scrapes them, and each template passes a good version and
// rolls a bad one back.
package integrations_test

import (
	"context"
	"time"

	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluicehq/sluice/deploy"
	"github.com/sluicehq/sluice/devenv/manager"
	"github.com/sluicehq/sluice/e2e/framework"
)

var (
	env     *framework.Env
	metrics *framework.Metrics
)

// The templates' timings cut for a test (their queries, conditions and
// args stay as shipped): a measurement every 2s from 3s on, 4 of them.
const (
	interval     = 2 * time.Second
	initialDelay = 3 * time.Second
	count        = 4
)

func TestMain(m *testing.M) {
	framework.MainWithOptions(m, framework.Options{
		Metrics:      true,
		Integrations: true,
		Install: func(ctx context.Context, e *framework.Env, mt *framework.Metrics) (manager.Options, error) {
			if err := manager.InstallCRDs(ctx, e.Client); err != nil {
				return manager.Options{}, err
			}
			if err := framework.InstallGatewayAPI(ctx, e.Client); err != nil {
				return manager.Options{}, err
			}
			files, err := deploy.AnalysisTemplates()
			if err != nil {
				return manager.Options{}, err
			}
			for _, ts := range files {
				for _, t := range ts {
					for i := range t.Spec.Metrics {
						m := &t.Spec.Metrics[i]
						m.Interval, m.InitialDelay = &metav1.Duration{Duration: interval}, &metav1.Duration{Duration: initialDelay}
						m.Count = ptr(int32(count))
					}
					if err := e.Client.Create(ctx, t); err != nil {
						return manager.Options{}, err
					}
				}
			}
			return manager.Options{Args: []string{"--prometheus-address=" + mt.Prometheus.URL()}}, nil
		},
	}, &env, &metrics)
}

func ptr[T any](v T) *T { return &v }
