package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/sluicehq/sluice/analysis/measure"
	"github.com/sluicehq/sluice/analysis/prometheus"
	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/traffic/preview"
)

// fakeProber answers plan's queries from tables: values by query, series
// counts by selector.
type fakeProber struct {
	values map[string]measure.Value
	series map[string]int
	asked  []string
	// defaultAddress is the address of metrics that name none.
	defaultAddress string
}

func (f *fakeProber) Query(_ context.Context, r prometheus.Request) (measure.Value, error) {
	v, ok := f.values[r.Query]
	if !ok {
		return measure.Value{}, fmt.Errorf("unexpected query %q", r.Query)
	}
	return v, nil
}

func (f *fakeProber) Address(r prometheus.Request) string {
	if r.Provider.Address != "" {
		return r.Provider.Address
	}
	if f.defaultAddress != "" {
		return f.defaultAddress
	}
	return "http://prometheus:9090"
}

func (f *fakeProber) CountSeries(_ context.Context, _ prometheus.Request, selector string, _ time.Duration) (int, error) {
	f.asked = append(f.asked, selector)
	n, ok := f.series[selector]
	if !ok {
		return 0, errors.New("unexpected selector " + selector)
	}
	return n, nil
}

func promMetric(name, q, success string) analysisv1alpha1.Metric {
	return analysisv1alpha1.Metric{Name: name, SuccessCondition: success,
		Provider: analysisv1alpha1.MetricProvider{Prometheus: &analysisv1alpha1.PrometheusProvider{Query: q}}}
}

// A selector that selects nothing is traced to the label matcher that
// selects nothing even alone; one whose metric is missing is said so.
func TestCheckMetric(t *testing.T) {
	const q = `sum(rate(http_requests_total{namespace="demo",pod_hash="abc"}[10s]))`
	p := &fakeProber{
		values: map[string]measure.Value{q: measure.VectorValue(), "sum(up_xyz)": measure.VectorValue()},
		series: map[string]int{
			`http_requests_total{namespace="demo",pod_hash="abc"}`: 0,
			`http_requests_total`:                   40,
			`http_requests_total{namespace="demo"}`: 10,
			`http_requests_total{pod_hash="abc"}`:   0,
			`up_xyz`:                                0,
		},
	}
	mv := checkMetric(t.Context(), p, nil, "demo", promMetric("typo", q, "result[0] < 0.05"), time.Now())
	if !mv.measured || mv.measurement.Phase != analysisv1alpha1.AnalysisInconclusive || len(mv.selectors) != 1 {
		t.Fatalf("got %+v", mv)
	}
	if s := mv.selectors[0]; s.series != 0 || s.nameSeries != 40 || strings.Join(s.lonely, " ") != `pod_hash="abc"` {
		t.Errorf("the selector's check: %+v, want pod_hash=\"abc\" to blame", s)
	}
	w := strings.Join(metricWarnings(analysisView{steps: []int32{1}}, mv), "\n")
	for _, want := range []string{
		"metric typo (after step 1): no data for the stable revision; by its noData policy it is Inconclusive: the release would pause",
		`metric typo (after step 1): http_requests_total{namespace="demo",pod_hash="abc"} selects nothing in the last hour: no series of it has pod_hash="abc"`,
	} {
		if !strings.Contains(w, want) {
			t.Errorf("the warnings lack %q:\n%s", want, w)
		}
	}

	mv = checkMetric(t.Context(), p, nil, "demo", promMetric("gone", "sum(up_xyz)", "result[0] < 1"), time.Now())
	w = strings.Join(metricWarnings(analysisView{}, mv), "\n")
	if !strings.Contains(w, "metric gone (the whole release (background)): up_xyz selects nothing: Prometheus has no series of that name in the last hour") {
		t.Errorf("a missing metric: %s", w)
	}
	if strings.Join(p.asked[len(p.asked)-1:], "") != "up_xyz" {
		t.Errorf("a selector without matchers is asked once: %v", p.asked)
	}
}

// A metric without any address is not run, and says how to give one.
func TestCheckMetricWithoutAddress(t *testing.T) {
	p := noAddress{&fakeProber{}}
	mv := checkMetric(t.Context(), p, nil, "demo", promMetric("m", "up", "true"), time.Now())
	if mv.measured {
		t.Fatalf("measured without an address: %+v", mv)
	}
	if w := metricWarnings(analysisView{steps: []int32{2}}, mv); len(w) != 1 || !strings.Contains(w[0], "not run: no Prometheus address") {
		t.Errorf("got %q", w)
	}
}

type noAddress struct{ *fakeProber }

func (noAddress) Address(prometheus.Request) string { return "" }

func TestClusterService(t *testing.T) {
	cases := map[string]string{
		"http://prometheus-operated.monitoring:9090":           "monitoring prometheus-operated:9090",
		"http://prometheus.monitoring.svc:9090/prom":           "monitoring prometheus:9090",
		"https://prometheus.monitoring.svc.cluster.local":      "monitoring https:prometheus:443",
		"http://prometheus.monitoring.svc.example.internal:80": "monitoring prometheus:80",
		"http://127.0.0.1:9090":                                "",
		"http://localhost:9090":                                "",
		"https://prometheus.example.com":                       "",
		"http://prometheus.example.com:9090":                   "",
	}
	for address, want := range cases {
		ns, _, port, ok := clusterService(address)
		got := ""
		if ok {
			got = ns + " " + port
		}
		if got != want {
			t.Errorf("%s: got %q, want %q", address, got, want)
		}
	}
}

// The service proxy URL keeps the path of the address.
func TestServiceProxyURL(t *testing.T) {
	via := serviceProxy(&rest.Config{Host: "https://10.0.0.1:6443"})
	u, rt, ok := via("http://prometheus.monitoring.svc:9090/prom/")
	if !ok || rt == nil || u != "https://10.0.0.1:6443/api/v1/namespaces/monitoring/services/prometheus:9090/proxy/prom" {
		t.Errorf("got %q %v", u, ok)
	}
	if _, _, ok := via("http://127.0.0.1:9090"); ok {
		t.Error("a local address goes through the proxy")
	}
}

func TestStepsText(t *testing.T) {
	if got := stepsText([]int32{2}); got != "step 2" {
		t.Error(got)
	}
	if got := stepsText([]int32{1, 2, 3}); got != "steps 1, 2 and 3" {
		t.Error(got)
	}
}

// The routing of a phase is written object by object, a field per line,
// and the phase whose call fails says the release stops there.
func TestWriteRouting(t *testing.T) {
	s := func(v string) *string { return &v }
	v := planView{rollout: example1(), routing: &preview.Plan{Phases: []preview.Phase{
		{Step: 0},
		{Step: 1, Changes: []preview.Change{
			{Kind: "Service", Name: "echoserver", Action: preview.Changed, Fields: []preview.Field{{Path: `spec.selector["pod-template-hash"]`, After: s(`"abc"`)}}},
			{Kind: "Ingress", Name: "echoserver-canary", Action: preview.Created, CopyOf: "echoserver", Fields: []preview.Field{
				{Path: `metadata.annotations["nginx.ingress.kubernetes.io/canary"]`, After: s(`"true"`)},
				{Path: `spec.rules[0].http.paths[0].backend.service.name`, Before: s(`"echoserver"`), After: s(`"echoserver-canary"`)},
			}},
		}},
		{Step: 2, Err: fmt.Errorf("route the step's traffic: %w: nginx cannot match two headers", preview.ErrUnsupported)},
	}}}
	var b strings.Builder
	writeRouting(&b, v)
	want := `  step 1
    ~ Service echoserver (changed)
        selector pod-template-hash  = "abc"
    + Ingress echoserver-canary (created as a copy of Ingress echoserver, with)
        annotation nginx.ingress.kubernetes.io/canary     = "true"
        spec.rules[0].http.paths[0].backend.service.name  "echoserver" -> "echoserver-canary"
  step 2
    ✖ stops here: route the step's traffic: route not supported: nginx cannot match two headers
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	w := planWarnings(v)
	if len(w) == 0 || !strings.Contains(w[len(w)-1], "step 2: the routing fails: ") || !strings.Contains(w[len(w)-1], "retrying will not help") {
		t.Errorf("warnings %q", w)
	}
}

// The whole view: a plan without trouble says so; the analysis shows
// each metric's rendered query, value and verdict.
func TestRenderPlan(t *testing.T) {
	ro := example1()
	m := promMetric("error-rate", "sum(rate(x{namespace=\"demo\"}[1m]))\n  / 2", "result[0] < 0.05")
	v := planView{rollout: ro, replicas: 5, stable: "abc",
		prometheus: "http://prometheus:9090", prometheusFrom: "--prometheus-address",
		analyses: []analysisView{{steps: []int32{1, 2, 3}, templates: []string{"error-rate"}, metrics: []metricView{{
			metric: m, address: "http://prometheus:9090", measured: true,
			measurement: analysisv1alpha1.Measurement{Phase: analysisv1alpha1.AnalysisSuccessful, Value: "[0.01]"},
		}}}},
	}
	out := renderPlan(v)
	for _, want := range []string{
		"Plan      rollouts-demo (namespace shop): Deployment/echoserver, 5 replicas, canary\n",
		"Release   abc (stable) -> the next change of the pod template\n",
		"Queries   http://prometheus:9090 for metrics that name no address (--prometheus-address)\n",
		"2     50% (3)   50%",
		"Analysis, run once now for the stable revision abc, as its AnalysisRun would query it\n  after steps 1, 2 and 3: error-rate\n",
		"    ✔ error-rate  [0.01]  pass if result[0] < 0.05  [passes]\n        sum(rate(x{namespace=\"demo\"}[1m]))\n          / 2\n        at http://prometheus:9090\n",
		"No warnings: nothing found that would stop this release.\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the plan lacks %q:\n%s", want, out)
		}
	}
}

// What a verdict does follows the analysis' policies.
func TestConsequence(t *testing.T) {
	def := analysisView{}
	paused := analysisView{policy: &analysisv1alpha1.RolloutAnalysis{OnFailed: analysisv1alpha1.PolicyPause, OnInconclusive: analysisv1alpha1.PolicyContinue}}
	for _, c := range []struct {
		a     analysisView
		phase analysisv1alpha1.AnalysisPhase
		want  string
	}{
		{def, analysisv1alpha1.AnalysisFailed, "the release would be rolled back"},
		{def, analysisv1alpha1.AnalysisInconclusive, "the release would pause"},
		{def, analysisv1alpha1.AnalysisError, "the release would pause"},
		{paused, analysisv1alpha1.AnalysisFailed, "the release would pause"},
		{paused, analysisv1alpha1.AnalysisInconclusive, "the release would go on (Continue)"},
	} {
		if got := c.a.consequence(c.phase); got != c.want {
			t.Errorf("%s with %+v: got %q, want %q", c.phase, c.a.policy, got, c.want)
		}
	}
}

// A plan of a change says what applying it does and what admission
// refuses; a plan mid-release marks the steps done and the one in force.
func TestRenderPlanOfAChange(t *testing.T) {
	v := planView{rollout: example1(), replicas: 10, stable: "abc", next: "def",
		dryRun: &dryRunView{source: "--image echoserver=demo:2", workload: true, templateChanged: true, revision: "def", replicas: 10,
			refused: []string{`Rollout rollouts-demo: spec.strategy.canary.steps[0].analysis.templates[0].templateName: Not found`}},
	}
	out := renderPlan(v)
	for _, want := range []string{
		"Plan      rollouts-demo (namespace shop): Deployment/echoserver, 10 replicas, canary\n",
		"Release   abc (stable) -> def (new)\n",
		"Dry run   --image echoserver=demo:2 changes the pod template: applying it starts a release of revision def (a server-side dry run: nothing was stored)\n",
		"2     50% (5)    50%",
		"3     100% (10)  100%",
		"Warnings (1)\n  ⚠ the API server refuses Rollout rollouts-demo: spec.strategy.canary.steps[0].analysis.templates[0].templateName: Not found\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the plan lacks %q:\n%s", want, out)
		}
	}

	v = planView{rollout: example1(), replicas: 5, stable: "abc", next: "def", inProgress: true, currentStep: 2,
		dryRun: &dryRunView{source: "same.yaml", workload: true, replicas: 5}}
	out = renderPlan(v)
	for _, want := range []string{
		"Release   abc (stable) -> def (new), in progress at step 2/3: the plan of this release\n",
		"same.yaml leaves the pod template as it is: applying it starts no release",
		"  ✔  1     1 ", "  ▶  2     50% (3)", "     3     100% (5)",
		"No warnings",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the plan lacks %q:\n%s", want, out)
		}
	}
}

// A workload that cannot be read leaves the pod counts out, and says so.
func TestRenderPlanWithoutWorkload(t *testing.T) {
	out := renderPlan(planView{rollout: example1(), replicas: -1})
	for _, want := range []string{
		"Deployment/echoserver, size unknown, canary",
		"Release   unknown (stable) -> the next change of the pod template",
		"     2     50%       50%",
		"⚠ workload Deployment echoserver could not be read: the steps' pod counts and the routing are not shown",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the plan lacks %q:\n%s", want, out)
		}
	}
}

// A metric with Prometheus credentials whose address goes through the
// service proxy is warned about (the API server keeps the credentials);
// the same metric reached directly, or one without credentials, is not.
func TestCredentialsThroughTheServiceProxy(t *testing.T) {
	p := &fakeProber{values: map[string]measure.Value{"sum(up)": measure.VectorValue(1)}, series: map[string]int{"up": 3}}
	m := promMetric("up", "sum(up)", "result[0] > 0")
	m.Provider.Prometheus.Address = "http://prometheus.monitoring.svc:9090"
	m.Provider.Prometheus.Authentication = &analysisv1alpha1.PrometheusAuthentication{}
	warned := func(proxied func(*analysisv1alpha1.PrometheusProvider, string) bool, m analysisv1alpha1.Metric) bool {
		mv := checkMetric(t.Context(), p, proxied, "demo", m, time.Now())
		return strings.Contains(strings.Join(metricWarnings(analysisView{}, mv), "\n"), "credentials do not pass the API server's service proxy")
	}
	if !warned(proxiesCredentials(true, false), m) {
		t.Error("credentials through the proxy: no warning")
	}
	if warned(proxiesCredentials(false, false), m) {
		t.Error("--service-proxy=false: warned")
	}
	direct := m
	direct.Provider.Prometheus = m.Provider.Prometheus.DeepCopy()
	direct.Provider.Prometheus.Address = "https://prometheus.example.com"
	if warned(proxiesCredentials(true, false), direct) {
		t.Error("an address outside the cluster: warned")
	}
	plain := m
	plain.Provider.Prometheus = m.Provider.Prometheus.DeepCopy()
	plain.Provider.Prometheus.Authentication = nil
	if warned(proxiesCredentials(true, false), plain) {
		t.Error("no credentials: warned")
	}
	// The manager's credentials go with metrics that name no address.
	p.defaultAddress = "http://prometheus-operated.monitoring:9090"
	byDefault := plain
	byDefault.Provider.Prometheus = plain.Provider.Prometheus.DeepCopy()
	byDefault.Provider.Prometheus.Address = ""
	if !warned(proxiesCredentials(true, true), byDefault) {
		t.Error("the manager's credentials through the proxy: no warning")
	}
	if warned(proxiesCredentials(true, false), byDefault) {
		t.Error("no manager's credentials: warned")
	}
	if warned(proxiesCredentials(true, true), plain) {
		t.Error("a metric with its own address and no credentials: warned for the manager's")
	}
}
