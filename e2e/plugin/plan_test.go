//go:build e2e

package plugin_test

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/cmd/kubectl-sluice/cli"
	"github.com/sluicehq/sluice/devenv/manifest"
	"github.com/sluicehq/sluice/e2e/framework"
)

// planUntil runs plan until its output satisfies ok (the simulator's
// traffic needs a few scrapes before a 10s rate has data), and returns
// the last output, which it logs.
func (f *fixture) planUntil(ok func(string) bool, args ...string) string {
	f.t.Helper()
	all := append(append([]string{"plan", name}, args...), "--kubeconfig", env.ControlPlane.KubeconfigPath(), "-n", f.ns)
	var out, errOut bytes.Buffer
	err := framework.Poll(f.ctx, 90*time.Second, func() (bool, error) {
		out.Reset()
		errOut.Reset()
		if code := cli.Run(f.ctx, all, genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}); code != 0 {
			return false, fmt.Errorf("plan: exit %d: %s", code, errOut.String())
		}
		return ok(out.String()), nil
	})
	f.t.Logf("kubectl sluice %s\n%s", strings.Join(all[:len(all)-4], " "), out.String())
	if err != nil {
		f.t.Fatal(err)
	}
	return out.String()
}

func planContains(t *testing.T, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("the plan lacks %q", w)
		}
	}
}

// Before a release, plan shows Example 1's steps, what each does to the
// Services and the Ingress, and both metrics run now against the real
// Prometheus for the stable pods, passing; and it changes nothing.
func TestPlanBeforeARelease(t *testing.T) {
	f := newFixture(t, 4*time.Minute)
	f.startExample1("", "docs/examples/error-rate-template.yaml", "docs/examples/example1-analysis-rollout.yaml")
	stable := f.deploymentHash()
	prom := "--prometheus-address=" + metrics.Prometheus.URL()
	out := f.planUntil(func(out string) bool { return strings.Contains(out, "No warnings") }, prom)
	planContains(t, out,
		"Plan      rollouts-demo (namespace "+f.ns+"): Deployment/echoserver, 5 replicas, canary",
		"Release   "+stable+" (stable) -> the next change of the pod template",
		"Routing   Ingress echoserver (nginx), Service echoserver, canary Service echoserver-canary; 1s grace period",
		// The steps.
		"1     1         header User-Agent=Andriod  0s     error-rate",
		"2     50% (3)   50%",
		"3     100% (5)  100%",
		// The routing, by the traffic package's own calls.
		"  step 1\n    ~ Service echoserver (changed)\n        selector pod-template-hash  = \""+stable+"\"",
		"    + Service echoserver-canary (created as a copy of Service echoserver, with)\n        selector pod-template-hash  = \"<new>\"\n",
		"    + Ingress echoserver-canary (created as a copy of Ingress echoserver, with)",
		"annotation nginx.ingress.kubernetes.io/canary-by-header        = \"User-Agent\"",
		"annotation nginx.ingress.kubernetes.io/canary-weight           = \"50\"",
		"  after step 3\n    - Service echoserver-canary (deleted)\n    - Ingress echoserver-canary (deleted)",
		// The analysis, rendered for the stable revision and measured.
		"after steps 1, 2 and 3: error-rate",
		`sum(rate(http_requests_total{namespace="`+f.ns+`",pod_template_hash="`+stable+`",code=~"5.."}[10s]))`,
		"✔ error-rate  [0]  pass if result[0] < 0.05  [passes]",
		"at "+metrics.Prometheus.URL(),
	)
	if !strings.Contains(out, "✔ p99-latency") {
		t.Errorf("p99-latency does not pass")
	}
	if r := f.sluice("plan", name, "--exit-code", prom); r.code != cli.ExitOK {
		t.Errorf("plan --exit-code without warnings: exit %d", r.code)
	}

	// Nothing was written: no canary objects, the stable Service as it
	// was, no AnalysisRun.
	for _, obj := range []client.Object{&corev1.Service{}, &networkingv1.Ingress{}} {
		if err := f.c.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: "echoserver-canary"}, obj); err == nil {
			t.Errorf("plan created %T echoserver-canary", obj)
		}
	}
	svc := &corev1.Service{}
	if err := f.c.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: "echoserver"}, svc); err != nil {
		t.Fatal(err)
	}
	if _, pinned := svc.Spec.Selector["pod-template-hash"]; pinned {
		t.Errorf("plan pinned the stable Service: %v", svc.Spec.Selector)
	}
	var runs analysisv1alpha1.AnalysisRunList
	if err := f.c.List(f.ctx, &runs, client.InNamespace(f.ns)); err != nil || len(runs.Items) != 0 {
		t.Errorf("plan left %d AnalysisRuns (%v)", len(runs.Items), err)
	}

	// Without --prometheus-address, the manager's: read from its
	// Deployment's arguments, as the Helm chart writes them.
	manager := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "sluice-controller"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(int32(0)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "sluice-controller"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "sluice-controller"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "manager", Image: "sluice-controller:dev",
					Args: []string{"--namespace=" + f.ns, "--leader-elect=true", "--prometheus-address=" + metrics.Prometheus.URL()}}}},
			},
		},
	}
	if err := f.c.Create(f.ctx, manager); err != nil {
		t.Fatal(err)
	}
	out = f.ok("plan", name, "--sluice-namespace="+f.ns)
	planContains(t, out,
		"Queries   "+metrics.Prometheus.URL()+" for metrics that name no address (the manager's --prometheus-address, Deployment "+f.ns+"/sluice-controller)",
		"✔ error-rate  [0]  pass if result[0] < 0.05  [passes]",
		"No warnings",
	)
}

// A template whose labels select nothing and whose condition fails today
// is named in the warnings, with the label to blame.
func TestPlanWarns(t *testing.T) {
	f := newFixture(t, 4*time.Minute)
	template := `apiVersion: analysis.sluice.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: error-rate}
spec:
  metrics:
  - name: typo
    successCondition: result[0] < 0.05
    provider:
      prometheus:
        query: sum(rate(http_requests_total{namespace="{{ .namespace }}",pod_hash="{{ .canaryRevision }}"}[10s]))
  - name: strict
    successCondition: result[0] > 1000
    provider:
      prometheus:
        query: sum(rate(http_requests_total{namespace="{{ .namespace }}",pod_template_hash="{{ .canaryRevision }}"}[10s]))
`
	if _, err := manifest.Create(f.ctx, f.c, f.ns, []byte(template)); err != nil {
		t.Fatal(err)
	}
	f.startExample1("", "docs/examples/example1-analysis-rollout.yaml")
	address := metrics.Prometheus.URL()
	out := f.planUntil(func(out string) bool { return strings.Contains(out, "would fail today") }, "--prometheus-address="+address)
	planContains(t, out,
		"at "+address,
		`metric typo (after steps 1, 2 and 3): no data for the stable revision; by its noData policy it is Inconclusive: the release would pause`,
		`metric typo (after steps 1, 2 and 3): http_requests_total{namespace="`+f.ns+`",pod_hash="`,
		`selects nothing in the last hour: no series of it has pod_hash="`,
		`metric strict (after steps 1, 2 and 3) would fail today: `,
		`: the release would be rolled back`,
		"✖ strict",
	)
	if strings.Contains(out, `no series of it has namespace=`) {
		t.Errorf("the namespace matcher is blamed too")
	}
	// A pipeline gates on it.
	if r := f.sluice("plan", name, "--exit-code", "--prometheus-address="+address); r.code != cli.ExitPlanWarnings || !strings.Contains(r.errOut, "the plan has ") {
		t.Errorf("plan --exit-code with warnings: exit %d: %s", r.code, r.errOut)
	}
}

// plan --dry-run -f of a new image names the revision it will release,
// which the release then has; of a Rollout admission refuses, the reason.
func TestPlanDryRun(t *testing.T) {
	f := newFixture(t, 4*time.Minute)
	f.startExample1("", "docs/examples/error-rate-template.yaml", "docs/examples/example1-analysis-rollout.yaml")
	dir := t.TempDir()
	// The workload as its manifest would be changed: a new image, twice
	// the pods.
	d := f.deployment()
	spec := d.Spec.DeepCopy()
	spec.Template.Spec.Containers[0].Image = imageV2
	spec.Replicas = ptr(int32(10))
	changed := map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "echoserver", "labels": d.Labels},
		"spec":     spec,
	}
	b, err := yaml.Marshal(changed)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "echoserver.yaml")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out := f.ok("plan", name, "--dry-run", "-f", file, "--prometheus-address="+metrics.Prometheus.URL())
	const marker = "changes the pod template: applying it starts a release of revision "
	i := strings.Index(out, marker)
	if i < 0 {
		t.Fatalf("the plan does not name the new revision:\n%s", out)
	}
	revision := strings.Fields(out[i+len(marker):])[0]
	planContains(t, out,
		"Deployment/echoserver, 10 replicas",
		"50% (5)",
		"100% (10)",
		"selector pod-template-hash  = \""+revision+"\"",
	)
	if now := f.deployment(); now.Spec.Template.Spec.Containers[0].Image == imageV2 || *now.Spec.Replicas != 5 {
		t.Fatalf("the dry run changed the Deployment")
	}

	// --image plans the live workload with the new image: the same
	// template, so the same revision, at the live size.
	container := d.Spec.Template.Spec.Containers[0].Name
	out = f.ok("plan", name, "--image", container+"="+imageV2, "--prometheus-address="+metrics.Prometheus.URL())
	planContains(t, out,
		"Dry run   --image "+container+"="+imageV2+" "+marker+revision+" (a server-side dry run: nothing was stored)",
		"Deployment/echoserver, 5 replicas",
		"50% (3)",
		"selector pod-template-hash  = \""+revision+"\"",
	)
	if r := f.sluice("plan", name, "--image", "no-such-container="+imageV2); r.code != cli.ExitUsage ||
		!strings.Contains(r.errOut, `spec.template.spec.containers: no container "no-such-container" (the pod has `+container+")") {
		t.Errorf("an unknown container: exit %d: %s", r.code, r.errOut)
	}
	if now := f.deployment(); now.Spec.Template.Spec.Containers[0].Image == imageV2 {
		t.Fatalf("plan --image changed the Deployment")
	}

	// A Rollout whose first step nginx cannot route (two header matches):
	// admission lets it through, the plan stops at that step.
	raw, err := os.ReadFile(filepath.Join(framework.RepoRoot(), "docs/examples/example1-analysis-rollout.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	twoHeaders := filepath.Join(dir, "two-headers.yaml")
	if err := os.WriteFile(twoHeaders, []byte(strings.Replace(string(raw), "            value: Andriod\n",
		"            value: Andriod\n          - type: Exact\n            name: X-Beta\n            value: \"1\"\n", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	out = f.ok("plan", name, "-f", twoHeaders, "--prometheus-address="+metrics.Prometheus.URL())
	planContains(t, out, "Dry run   the Rollout's new spec is planned",
		"Release   "+f.deploymentHash()+" (stable) -> the next change of the pod template",
		"header User-Agent=Andriod and header X-Beta=1",
		"    ✖ stops here: route the step's traffic: ingress echoserver: route not supported: nginx annotations match one header, the step has 2\n",
		"⚠ step 1: the routing fails: ", "(change the step: retrying will not help)")
	if strings.Contains(out, "\n  step 2\n") {
		t.Errorf("the routing is planned past the step it fails at")
	}

	// A Rollout admission refuses: a template that does not exist.
	missing := filepath.Join(dir, "missing-template.yaml")
	if err := os.WriteFile(missing, []byte(strings.ReplaceAll(string(raw), "templateName: error-rate", "templateName: no-such-template")), 0o644); err != nil {
		t.Fatal(err)
	}
	out = f.ok("plan", name, "-f", missing, "--prometheus-address="+metrics.Prometheus.URL())
	planContains(t, out, "⚠ the API server refuses Rollout rollouts-demo: ",
		`spec.strategy.canary.steps[0].analysis.templates[0].templateName: Not found: "no-such-template`)
	var ro v1beta1.Rollout
	if err := f.c.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: name}, &ro); err != nil {
		t.Fatal(err)
	}
	if got := ro.Spec.Strategy.Canary.Steps[0].Matches[0].Headers; len(got) != 1 {
		t.Errorf("the dry runs changed the Rollout: step 1 matches %v", got)
	}

	// Applied for real, the release is of that revision.
	live := f.deployment()
	live.Spec = *spec
	if err := f.c.Update(f.ctx, live); err != nil {
		t.Fatal(err)
	}
	r := f.waitRollout("the release to start", func(r *v1beta1.Rollout) bool {
		return r.Status.CanaryStatus != nil && r.Status.CanaryStatus.CanaryRevision != "" && r.Status.CanaryStatus.CanaryRevision != r.Status.CanaryStatus.StableRevision
	})
	if got := r.Status.CanaryStatus.CanaryRevision; got != revision {
		t.Errorf("the release is of revision %s, the plan said %s", got, revision)
	}
}

// An address that is a Service in the cluster is reached through the API
// server's service proxy: plan reads the real Prometheus through the real
// kube-apiserver, no port-forward. The Service has no selector; its
// endpoint is this machine's own address, where a reverse proxy counts
// the requests and passes them to Prometheus (which listens on loopback,
// where the API server does not proxy to).
func TestPlanThroughServiceProxy(t *testing.T) {
	f := newFixture(t, 4*time.Minute)
	ip := hostIP(t)
	target, err := url.Parse(metrics.Prometheus.URL())
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	var proxied atomic.Int64
	forward := httputil.NewSingleHostReverseProxy(target)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxied.Add(1)
		forward.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Close() })
	port := int32(lis.Addr().(*net.TCPAddr).Port)

	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "prometheus"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "web", Port: 9090, TargetPort: intstr.FromInt32(port)}}},
	}
	// A Service without a selector, its EndpointSlice written by hand.
	// kube-apiserver's service proxy goes only to an endpoint that is a
	// pod's IP: a pod that is never scheduled (kwok leaves it alone)
	// holds this machine's address as its IP.
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "prometheus-host"},
		Spec: corev1.PodSpec{
			SchedulingGates: []corev1.PodSchedulingGate{{Name: "e2e.sluice.dev/never"}},
			Containers:      []corev1.Container{{Name: "prometheus", Image: "prom/prometheus"}},
		},
	}
	if err := f.c.Create(f.ctx, pod); err != nil {
		t.Fatal(err)
	}
	pod.Status.PodIP, pod.Status.PodIPs = ip, []corev1.PodIP{{IP: ip}}
	if err := f.c.Status().Update(f.ctx, pod); err != nil {
		t.Fatal(err)
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "prometheus-host", Labels: map[string]string{
			discoveryv1.LabelServiceName: "prometheus", discoveryv1.LabelManagedBy: "e2e.sluice.dev",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{ip},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: f.ns, Name: pod.Name},
		}},
		Ports: []discoveryv1.EndpointPort{{Name: ptr("web"), Port: ptr(port)}},
	}
	for _, obj := range []client.Object{svc, slice} {
		if err := f.c.Create(f.ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	f.startExample1("", "docs/examples/error-rate-template.yaml", "docs/examples/example1-analysis-rollout.yaml")

	address := "http://prometheus." + f.ns + ".svc:9090"
	out := f.planUntil(func(out string) bool { return strings.Contains(out, "No warnings") }, "--prometheus-address="+address)
	planContains(t, out, "✔ error-rate  [0]  pass if result[0] < 0.05  [passes]", "✔ p99-latency", "at "+address+"\n")
	if proxied.Load() == 0 {
		t.Errorf("no query went through the API server's service proxy")
	}

	// Without the proxy, the Service's cluster name does not resolve on
	// this machine: each metric says it could not be measured.
	before := proxied.Load()
	out = f.ok("plan", name, "--service-proxy=false", "--prometheus-address="+address)
	planContains(t, out, "⚠ metric error-rate (after steps 1, 2 and 3) could not be measured: ", "prometheus."+f.ns+".svc")
	if proxied.Load() != before {
		t.Errorf("--service-proxy=false went through the proxy")
	}
}

// hostIP is an IPv4 address of this machine other than loopback, which
// kube-apiserver agrees to proxy to.
func hostIP(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
			return n.IP.String()
		}
	}
	t.Skip("this machine has no IPv4 address but loopback, and kube-apiserver proxies to none of those")
	return ""
}

// deploymentHash is the pod-template-hash of the echoserver's pods.
func (f *fixture) deploymentHash() string {
	var pods corev1.PodList
	if err := f.c.List(f.ctx, &pods, client.InNamespace(f.ns), client.MatchingLabels{"app": "echoserver"}); err != nil || len(pods.Items) == 0 {
		f.t.Fatalf("no echoserver pods: %v", err)
	}
	return pods.Items[0].Labels["pod-template-hash"]
}

func ptr[T any](v T) *T { return &v }
