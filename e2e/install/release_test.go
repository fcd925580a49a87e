//go:build e2e

package install_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/devenv/manifest"
	"github.com/sluicehq/sluice/e2e/framework"
)

const (
	imageV1 = "openkruise-registry.cn-shanghai.cr.aliyuncs.com/openkruise/demo:1.10.2"
	imageV2 = "openkruise-registry.cn-shanghai.cr.aliyuncs.com/openkruise/demo:1.10.3"
)

// The guide's Example 1 with docs/examples' error-rate analysis after every
// step, released by the manager running with the chart's ServiceAccount:
// traffic through the Ingress, three AnalysisRuns against the Prometheus
// the chart's values name, with the credentials they name (error-rate)
// and those a template names (p99-latency, from a Secret in the
// Rollout's namespace). Along the way no request of the manager is
// forbidden.
func TestReleaseAsTheChartsServiceAccount(t *testing.T) {
	ctx := withTimeout(t, 4*time.Minute)
	c := env.Client
	ns := env.Namespace(t)
	before, _ := inst.proxy.counts()

	if err := c.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: templateSecret},
		StringData: map[string]string{"token": templateToken},
	}); err != nil {
		t.Fatal(err)
	}
	root := framework.RepoRoot()
	for _, f := range []string{"docs/examples/guide/echoserver.yaml", "docs/examples/guide/example1-ingress.yaml"} {
		if _, err := manifest.CreateFile(ctx, c, ns, root+"/"+f); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Create(ctx, templateWithOwnCredentials(t, root+"/docs/examples/error-rate-template.yaml", ns)); err != nil {
		t.Fatal(err)
	}
	if _, err := manifest.CreateFile(ctx, c, ns, root+"/docs/examples/example1-analysis-rollout.yaml"); err != nil {
		t.Fatal(err)
	}
	waitRollout(ctx, t, ns, "Healthy", func(r *v1beta1.Rollout) bool { return r.Status.Phase == v1beta1.RolloutPhaseHealthy })

	d := &appsv1.Deployment{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "echoserver"}, d); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(d.DeepCopy())
	d.Spec.Template.Spec.Containers[0].Image = imageV2
	if err := c.Patch(ctx, d, patch); err != nil {
		t.Fatal(err)
	}
	sawTraffic := false
	r := waitRollout(ctx, t, ns, "the release to complete", func(r *v1beta1.Rollout) bool {
		if cs := r.Status.CanaryStatus; cs != nil && cs.CurrentStepIndex >= 2 {
			ing := &unstructured.Unstructured{}
			ing.SetAPIVersion("networking.k8s.io/v1")
			ing.SetKind("Ingress")
			if c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "echoserver-canary"}, ing) == nil &&
				ing.GetAnnotations()["nginx.ingress.kubernetes.io/canary-weight"] != "" {
				sawTraffic = true
			}
		}
		return r.Status.Phase == v1beta1.RolloutPhaseHealthy && r.Status.CurrentStepState == v1beta1.CanaryStepStateCompleted
	})
	if c := r.Status.CanaryStatus; c == nil || c.StableRevision != c.CanaryRevision {
		t.Errorf("not promoted: %+v", c)
	}
	if !sawTraffic {
		t.Error("the canary Ingress never carried a weight")
	}
	runs := &v1alpha1.AnalysisRunList{}
	if err := c.List(ctx, runs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if len(runs.Items) != 3 {
		t.Errorf("%d AnalysisRuns, want one per step", len(runs.Items))
	}
	for _, ar := range runs.Items {
		if ar.Status.Phase != v1alpha1.AnalysisSuccessful {
			t.Errorf("run %s is %s: %s", ar.Name, ar.Status.Phase, ar.Status.Message)
		}
	}

	after, refused := inst.proxy.counts()
	if after[managerToken] <= before[managerToken] {
		t.Error("no query reached Prometheus with the credentials of the chart's prometheus.authentication")
	}
	if after[templateToken] <= before[templateToken] {
		t.Error("no query reached Prometheus with the credentials the template names")
	}
	if len(refused) > 0 {
		t.Errorf("Prometheus saw %d requests without credentials, e.g. %s", len(refused), refused[0])
	}

	assertNothingForbidden(t)
}

// templateWithOwnCredentials is docs/examples' template whose p99-latency
// metric names the address and a Secret of its own.
func templateWithOwnCredentials(t *testing.T, path, ns string) *unstructured.Unstructured {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(b, &u.Object); err != nil {
		t.Fatal(err)
	}
	u.SetNamespace(ns)
	metrics, _, _ := unstructured.NestedSlice(u.Object, "spec", "metrics")
	found := false
	for _, m := range metrics {
		m := m.(map[string]any)
		if m["name"] != "p99-latency" {
			continue
		}
		prom := m["provider"].(map[string]any)["prometheus"].(map[string]any)
		prom["address"] = inst.proxy.URL
		prom["authentication"] = map[string]any{"secretName": templateSecret, "bearerTokenKey": "token"}
		found = true
	}
	if !found {
		t.Fatalf("%s has no p99-latency metric", path)
	}
	if err := unstructured.SetNestedSlice(u.Object, metrics, "spec", "metrics"); err != nil {
		t.Fatal(err)
	}
	return u
}

func waitRollout(ctx context.Context, t *testing.T, ns, what string, cond func(*v1beta1.Rollout) bool) *v1beta1.Rollout {
	t.Helper()
	r, err := framework.WaitRollout(ctx, env.Client, client.ObjectKey{Namespace: ns, Name: "rollouts-demo"}, 3*time.Minute, cond)
	if err != nil {
		t.Fatalf("waiting for %s: %v\nmanager log:\n%s", what, err, env.Manager.LogTail())
	}
	return r
}

// rbacDenied are what client-go, controller-runtime and the manager log
// when the API server refuses a request for want of permission.
var rbacDenied = regexp.MustCompile(`(?i)\bforbidden\b|\bcannot (get|list|watch|create|update|patch|delete|deletecollection) resource|\bRBAC\b|\bunauthorized\b`)

// assertNothingForbidden reads the manager's whole log and its client
// metrics: the API server refused none of its requests (403 or 401).
func assertNothingForbidden(t *testing.T) {
	t.Helper()
	f, err := os.Open(env.Manager.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	lines, bad := 0, 0
	for sc.Scan() {
		lines++
		if line := sc.Text(); !strings.HasPrefix(line, "==> ") && rbacDenied.MatchString(line) {
			bad++
			if bad <= 5 {
				t.Errorf("manager log: %s", line)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d lines of the manager log report refused requests", bad)
	}
	if lines < 10 {
		t.Errorf("the manager log has %d lines: is it the right file?", lines)
	}

	metrics, err := env.Manager.Metrics(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	answered := 0
	for _, line := range strings.Split(metrics, "\n") {
		if !strings.HasPrefix(line, "rest_client_requests_total{") {
			continue
		}
		if strings.Contains(line, `code="403"`) || strings.Contains(line, `code="401"`) {
			t.Errorf("the API server refused requests of the manager: %s", line)
		}
		if strings.Contains(line, `code="200"`) || strings.Contains(line, `code="201"`) {
			answered++
		}
	}
	if answered == 0 {
		t.Error("no rest_client_requests_total with code 200 or 201 in the manager's metrics: the check sees nothing")
	}
	if t.Failed() {
		fmt.Fprintf(os.Stderr, "manager log: %s\n", env.Manager.LogPath())
	}
}
