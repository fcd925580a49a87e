//go:build e2e

// Package chaos_test releases many versions of many workloads at once
// while everything around Sluice fails, and checks every release with the
// invariant checker (e2e/invariants, report-only, so that the run counts
// every violation instead of stopping at the first):
//
//   - lanes (one namespace each) release new versions back to back:
//     Deployments in partition, canary and blue-green style, a native
//     StatefulSet, the OpenKruise CloneSet and Advanced StatefulSet
//     stand-ins; with and without the guide's nginx Ingress routing, with
//     and without analysis; zero-pause plans, short pauses and a manual
//     approval; new versions applied mid-release and unchanged re-applies
//     (a GitOps tool's server-side apply, partition 0 included);
//   - the manager is SIGKILLed every 1–6 s and restarted by a supervisor
//     (solo eras), or runs as two replicas electing a leader whose leader
//     is killed or stopped mid-release (pair eras);
//   - kube-apiserver is restarted;
//   - another client writes the same workloads, Services, Ingresses and
//     Rollout statuses (labels, no-op patches, approvals);
//   - the Prometheus the analyses query (through a fault proxy) goes down,
//     answers too slowly, or answers garbage.
//
// Both replicas serve the webhooks behind one stable address (a TCP proxy
// to whichever is alive, which the API server reaches through an
// ExternalName Service, as in a cluster), so a dead replica never blocks a
// write.
//
// `make test` runs a short version; `make chaos` the long one
// (SLUICE_CHAOS=full), which prints the report and writes it to
// $SLUICE_CHAOS_REPORT.
package chaos_test

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/sluicehq/sluice/devenv/manager"
	"github.com/sluicehq/sluice/devenv/openkruise"
	"github.com/sluicehq/sluice/e2e/framework"
)

// The manager's namespace: its webhook Service, certificate Secret and
// leader-election Lease.
const (
	managerNamespace = "sluice-system"
	webhookService   = "sluice-webhook"
	leaseName        = "sluice-controller.sluice.dev"
)

var (
	env     *framework.Env
	metrics *framework.Metrics
	// webhooks is the stable address of the managers' webhooks.
	webhooks *webhookProxy
)

func TestMain(m *testing.M) {
	framework.MainWithOptions(m, framework.Options{Metrics: true, Install: install}, &env, &metrics)
}

// install prepares what the managers need before the first one starts:
// Sluice's and OpenKruise's CRDs, the OpenKruise stand-in, and the webhook
// proxy with the ExternalName Service that leads the API server to it. The
// managers run as in a cluster: webhooks registered through the Service,
// their certificate shared in a Secret.
func install(ctx context.Context, e *framework.Env, mt *framework.Metrics) (manager.Options, error) {
	var o manager.Options
	if err := manager.InstallCRDs(ctx, e.Client); err != nil {
		return o, err
	}
	cfg := e.ControlPlane.RESTConfig()
	if err := openkruise.Install(ctx, cfg); err != nil {
		return o, err
	}
	s, err := openkruise.Start(ctx, cfg, openkruise.Options{})
	if err != nil {
		return o, err
	}
	e.AddCleanup(s.Stop)

	if webhooks, err = startWebhookProxy(); err != nil {
		return o, err
	}
	e.AddCleanup(webhooks.stop)
	c := e.Client
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: managerNamespace}}); err != nil {
		return o, err
	}
	port := webhooks.port()
	if err := c.Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: managerNamespace, Name: webhookService},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "localhost",
			Ports: []corev1.ServicePort{{Name: "webhook", Port: int32(port), TargetPort: intstr.FromInt(port)}}},
	}); err != nil {
		return o, err
	}
	o.ServiceWebhooks = true
	o.Args = []string{
		"--namespace=" + managerNamespace,
		"--webhook-service-name=" + webhookService,
		fmt.Sprintf("--webhook-service-port=%d", port),
		"--prometheus-address=" + mt.Prometheus.URL(),
	}
	return o, nil
}
