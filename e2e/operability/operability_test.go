//go:build e2e

package operability_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/devenv/controlplane"
	"github.com/sluicehq/sluice/e2e/framework"
	"github.com/sluicehq/sluice/rollout"
)

const imageRepo = "openkruise-registry.cn-shanghai.cr.aliyuncs.com/openkruise/demo:"

// TestDashboardAndAlerts runs the releases each panel and alert exists
// for, side by side in their own namespaces, then checks the shipped files
// against the Prometheus that watched them. Not parallel: it stops the
// manager to prove the controller-down alert.
//
// Prometheus loads a copy of deploy/prometheus/alerts.yaml whose for:
// durations are cut to a few seconds (the shipped ones are minutes);
// nothing else in it changes.
func TestDashboardAndAlerts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	root := framework.RepoRoot()
	started := time.Now()
	rules := loadRules(t, filepath.Join(root, "deploy", "prometheus", "alerts.yaml"))
	prom := startPrometheus(ctx, t, shortFor(t, filepath.Join(root, "deploy", "prometheus", "alerts.yaml"), shortenedFor))
	api := promv1.NewAPI(mustClient(t, prom.URL()))
	expectData(ctx, t, api, "the manager's scrape", `up{job="sluice-controller"} == 1`, "")
	upAt := time.Now()

	good := startRelease(ctx, t, "", imageRepo+"1.10.3")                            // promoted by its analysis
	bad := startRelease(ctx, t, "", imageRepo+"1.10.3-errors")                      // aborted by its analysis
	held := startRelease(ctx, t, framework.UnreachableTemplate, imageRepo+"1.10.3") // analysis Error: held
	waitRollout(ctx, t, good, "completed", func(r *v1beta1.Rollout) bool {
		return r.Status.Phase == v1beta1.RolloutPhaseHealthy && r.Status.CurrentStepState == v1beta1.CanaryStepStateCompleted
	})
	waitRollout(ctx, t, bad, "aborted", func(r *v1beta1.Rollout) bool { return reason(r) == rollout.ReasonAborted })
	waitRollout(ctx, t, held, "held by an analysis Error", func(r *v1beta1.Rollout) bool {
		h := r.Status.HoldOf()
		return h != nil && h.Reason == v1beta1.HoldAnalysisError
	})

	// Each alert fires in the scenario it exists for, and for no other
	// release of this test: never pending or firing elsewhere since
	// Prometheus started. (Other tests' releases may share the cluster;
	// TestEveryHoldReason proves the alerts on their own releases.)
	mine := fmt.Sprintf(`namespace=~%q`, strings.Join([]string{good, bad, held}, "|"))
	scenario := map[string]string{
		"SluiceReleaseAbortedByAnalysis": bad,
		"SluiceReleasePausedTooLong":     held,
		"SluiceAnalysisErroring":         held,
	}
	for alert, ns := range scenario {
		waitFiring(ctx, t, api, alert, map[string]string{"namespace": ns, "rollout": "rollouts-demo"})
	}
	for alert := range rules {
		if alert == "SluiceControllerDown" {
			continue
		}
		elsewhere := fmt.Sprintf(`ALERTS{alertname=%q,%s}`, alert, mine)
		if ns, ok := scenario[alert]; ok {
			elsewhere = fmt.Sprintf(`ALERTS{alertname=%q,%s,namespace!=%q}`, alert, mine, ns)
		}
		expectNone(ctx, t, api, alert+" elsewhere", elsewhere, started)
	}
	expectNone(ctx, t, api, "SluiceControllerDown while it runs", `ALERTS{alertname="SluiceControllerDown",alertstate="firing"}`, upAt)
	if got := query(ctx, t, api, rules["SluiceReleaseAbortedByAnalysis"]); len(got) != 1 {
		t.Errorf("aborted alert expression: %v, want the one aborted release", got)
	}

	// The dashboard's variables list the releases ...
	d := loadDashboard(t, filepath.Join(root, "deploy", "grafana", "sluice.json"))
	vars := map[string]string{"__rate_interval": "1m", "__interval": "15s", "__range": "10m", "namespace": good, "rollout": "rollouts-demo"}
	for _, v := range d.variables {
		want := map[string][]string{"namespace": {good, bad, held}, "rollout": {"rollouts-demo"}}[v.name]
		if want == nil {
			t.Errorf("variable %s: untested", v.name)
			continue
		}
		values := labelValues(ctx, t, api, substitute(t, v.query, vars))
		for _, w := range want {
			if !slices.Contains(values, w) {
				t.Errorf("variable %s: %s gives %v, without %s", v.name, v.query, values, w)
			}
		}
	}
	// ... and every panel query returns data: those of one release for
	// the promoted and the aborted one.
	for _, p := range d.queries {
		namespaces := []string{good}
		if strings.Contains(p.expr, "$namespace") || strings.Contains(p.expr, "${namespace}") {
			namespaces = []string{good, bad}
		}
		for _, ns := range namespaces {
			vars["namespace"] = ns
			what := "panel " + p.title + " (" + ns + ")"
			if p.instant {
				expectData(ctx, t, api, what, substitute(t, p.expr, vars), "")
			} else {
				// Grafana runs it over the dashboard's time range.
				expectDataOver(ctx, t, api, what, substitute(t, p.expr, vars), started)
			}
		}
	}
	// A few values that must be right, not just present.
	for expr, want := range map[string]float64{
		`sum(sluice_rollout_aborted{` + mine + `})`:                                                          1,
		`sum(sluice_rollout_paused{` + mine + `})`:                                                           1,
		`sluice_rollout_waiting{namespace="` + held + `",reason="AnalysisError"}`:                            1,
		`sluice_rollout_waiting{namespace="` + bad + `",reason="Aborted"}`:                                   1,
		`count(sluice_rollout_waiting{namespace="` + good + `"}) or vector(0)`:                               0,
		`sluice_rollout_paused{namespace="` + held + `"}`:                                                    1,
		`sluice_rollout_canary_weight{namespace="` + bad + `"}`:                                              0,
		`sluice_rollout_step{namespace="` + good + `"}`:                                                      3,
		`sluice_analysis_metric_threshold{namespace="` + good + `",metric="error-rate"}`:                     0.05,
		`sum(sluice_rollout_decisions_total{namespace="` + bad + `",decision="rollback",cause="analysis"})`:  1,
		`sum(sluice_rollout_decisions_total{namespace="` + good + `",decision="complete",cause="analysis"})`: 1,
		`sum(sluice_rollout_decisions_total{namespace="` + good + `",decision="advance",cause="analysis"})`:  2,
		`sum(sluice_rollout_decisions_total{namespace="` + held + `",decision="pause",cause="analysis"})`:    1,
		`sluice_release_duration_seconds_count{namespace="` + good + `",outcome="Completed"}`:                1,
		`sluice_release_duration_seconds_count{namespace="` + bad + `",outcome="RolledBack"}`:                1,
		`sluice_analysis_run_phase{namespace="` + held + `",kind="step",phase="Error"}`:                      1,
		`count(sluice_analysis_metric_value{namespace="` + bad + `",metric="error-rate"} > 0.05)`:            1,
		`sluice_analysis_metric_phase{namespace="` + bad + `",metric="error-rate",phase="Failed"}`:           1,
		`max_over_time(sluice_rollout_canary_weight{namespace="` + good + `"}[10m])`:                         100,
		`max_over_time(sluice_rollout_canary_ready_replicas{namespace="` + good + `"}[10m])`:                 5,
	} {
		got := query(ctx, t, api, expr)
		if len(got) != 1 || float64(got[0].Value) != want {
			t.Errorf("%s = %v, want %v", expr, got, want)
		}
	}

	// A deleted Rollout's series leave the manager's /metrics: the state
	// at once, the decisions once the controller lets the Rollout go.
	if err := env.Client.Delete(ctx, &v1beta1.Rollout{ObjectMeta: metav1.ObjectMeta{Namespace: good, Name: "rollouts-demo"}}); err != nil {
		t.Fatal(err)
	}
	var left []string
	if err := framework.Poll(ctx, time.Minute, func() (bool, error) {
		left = managerSeries(ctx, t, `namespace="`+good+`"`)
		return len(left) == 0, nil
	}); err != nil {
		t.Errorf("series of the deleted Rollout left on the manager's /metrics: %v", left)
	}
	if len(managerSeries(ctx, t, `namespace="`+bad+`"`)) == 0 {
		t.Error("the other Rollouts' series went too")
	}

	// The controller stops: its alert fires once Prometheus misses
	// scrapes for the (shortened) for:.
	env.Manager.Kill()
	defer func() {
		if err := env.Manager.Start(ctx, env.ControlPlane); err != nil {
			t.Error(err)
		}
	}()
	waitFiring(ctx, t, api, "SluiceControllerDown", nil)
}

// shortenedFor replaces every for: of the rule file in the test.
const shortenedFor = 3 * time.Second

// shortFor writes a copy of the rule file whose for: durations are d, and
// returns its path.
func shortFor(t *testing.T, path string, d time.Duration) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^(\s+for:\s*)\S+\s*$`)
	n := len(re.FindAllIndex(raw, -1))
	short := re.ReplaceAll(raw, []byte("${1}"+model.Duration(d).String()))
	var f ruleFileT
	if err := yaml.Unmarshal(short, &f); err != nil {
		t.Fatal(err)
	}
	withFor := 0
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.For != "" {
				withFor++
				if r.For != model.Duration(d).String() {
					t.Fatalf("%s: for: %s after shortening", r.Alert, r.For)
				}
			}
		}
	}
	if withFor != n {
		t.Fatalf("shortened %d for: lines, but %d rules have one", n, withFor)
	}
	out := filepath.Join(t.TempDir(), "alerts.yaml")
	if err := os.WriteFile(out, short, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("Prometheus loads %s with every for: cut to %s", out, model.Duration(d))
	return out
}

// managerSeries are the series of the manager's /metrics with a label
// matching (e.g. namespace="x").
func managerSeries(ctx context.Context, t *testing.T, label string) []string {
	t.Helper()
	body, err := env.Manager.Metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, "#") && strings.Contains(line, label) {
			out = append(out, line)
		}
	}
	return out
}

// expectNone checks that expr had no sample at any time since since.
func expectNone(ctx context.Context, t *testing.T, api promv1.API, what, expr string, since time.Time) {
	t.Helper()
	window := model.Duration(time.Since(since).Truncate(time.Second) + time.Second)
	got := query(ctx, t, api, fmt.Sprintf("max_over_time((%s)[%s:1s])", expr, window))
	if len(got) > 0 {
		t.Errorf("%s: %s had samples in the last %s: %v", what, expr, window, got)
	}
}

// labelValues answers a Grafana label_values(selector, label) query.
func labelValues(ctx context.Context, t *testing.T, api promv1.API, q string) []string {
	t.Helper()
	m := regexp.MustCompile(`^label_values\((.+),\s*(\w+)\)$`).FindStringSubmatch(strings.TrimSpace(q))
	if m == nil {
		t.Fatalf("%s: not label_values(selector, label)", q)
	}
	var values []string
	for _, s := range query(ctx, t, api, fmt.Sprintf("count by (%s) (%s)", m[2], m[1])) {
		values = append(values, string(s.Metric[model.LabelName(m[2])]))
	}
	return values
}

// substitute replaces the dashboard's variables; every one must be known.
func substitute(t *testing.T, expr string, vars map[string]string) string {
	t.Helper()
	return regexp.MustCompile(`\$\{?(\w+)\}?`).ReplaceAllStringFunc(expr, func(v string) string {
		name := strings.Trim(v, "${}")
		value, ok := vars[name]
		if !ok {
			t.Errorf("%s: unknown variable %s", expr, v)
		}
		return value
	})
}

// startRelease creates Example 1 with analysis (the given template
// instead of docs/examples', when set) in a namespace of its own and
// releases image.
func startRelease(ctx context.Context, t *testing.T, template, image string) string {
	t.Helper()
	ns := env.Namespace(t)
	if err := framework.CreateExample1(ctx, env.Client, ns, template); err != nil {
		t.Fatal(err)
	}
	waitRollout(ctx, t, ns, "Healthy", func(r *v1beta1.Rollout) bool { return r.Status.Phase == v1beta1.RolloutPhaseHealthy })
	if err := framework.SetImage(ctx, env.Client, ns, "echoserver", image); err != nil {
		t.Fatal(err)
	}
	return ns
}

func waitRollout(ctx context.Context, t *testing.T, ns, what string, cond func(*v1beta1.Rollout) bool) {
	t.Helper()
	if _, err := framework.WaitRollout(ctx, env.Client, client.ObjectKey{Namespace: ns, Name: "rollouts-demo"}, 3*time.Minute, cond); err != nil {
		t.Fatalf("%s: waiting for %s: %v", ns, what, err)
	}
}

func reason(r *v1beta1.Rollout) string {
	for _, c := range r.Status.Conditions {
		if c.Type == v1beta1.RolloutConditionProgressing {
			return c.Reason
		}
	}
	return ""
}

// startPrometheus scrapes the simulator and the manager every second and
// evaluates the rule files.
func startPrometheus(ctx context.Context, t *testing.T, rules ...string) *controlplane.Prometheus {
	t.Helper()
	manager := strings.TrimSuffix(strings.TrimPrefix(env.Manager.MetricsURL(), "http://"), "/metrics")
	p, err := controlplane.StartPrometheus(ctx, t.TempDir(), controlplane.PrometheusOptions{
		ScrapeInterval: time.Second,
		JobName:        "simulator", Targets: []string{metrics.SimulatorAddress},
		ExtraScrapeConfigYAML: fmt.Sprintf("- job_name: sluice-controller\n  static_configs:\n  - targets: [%q]\n", manager),
		RuleFiles:             rules,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop() })
	return p
}

func mustClient(t *testing.T, address string) promapi.Client {
	c, err := promapi.NewClient(promapi.Config{Address: address})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func query(ctx context.Context, t *testing.T, api promv1.API, expr string) model.Vector {
	t.Helper()
	v, _, _, err := api.Query(ctx, expr, time.Now())
	if err != nil {
		t.Fatalf("query %s: %v", expr, err)
	}
	vec, ok := v.(model.Vector)
	if !ok {
		t.Fatalf("query %s: %s, want a vector", expr, v.Type())
	}
	return vec
}

// expectData waits until expr returns data (within a few scrapes), for
// namespace ns when given.
func expectData(ctx context.Context, t *testing.T, api promv1.API, what, expr, ns string) {
	t.Helper()
	var last model.Vector
	err := framework.Poll(ctx, 30*time.Second, func() (bool, error) {
		last = query(ctx, t, api, expr)
		for _, s := range last {
			if ns == "" || string(s.Metric["namespace"]) == ns {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Errorf("%s: %s returned no data (for namespace %q): %v", what, expr, ns, last)
	}
}

// expectDataOver waits until expr returns data over the range from since
// to now, as a Grafana panel asks for it.
func expectDataOver(ctx context.Context, t *testing.T, api promv1.API, what, expr string, since time.Time) {
	t.Helper()
	err := framework.Poll(ctx, 30*time.Second, func() (bool, error) {
		v, _, _, err := api.QueryRange(ctx, expr, promv1.Range{Start: since, End: time.Now(), Step: time.Second})
		if err != nil {
			return false, fmt.Errorf("query %s: %w", expr, err)
		}
		m, ok := v.(model.Matrix)
		return ok && len(m) > 0, nil
	})
	if err != nil {
		t.Errorf("%s: %s returned no data since %s: %v", what, expr, since.Format(time.TimeOnly), err)
	}
}

func waitFiring(ctx context.Context, t *testing.T, api promv1.API, alert string, labels map[string]string) {
	t.Helper()
	err := framework.Poll(ctx, time.Minute, func() (bool, error) {
		res, err := api.Alerts(ctx)
		if err != nil {
			return false, err
		}
	alerts:
		for _, a := range res.Alerts {
			if string(a.Labels["alertname"]) != alert || a.State != promv1.AlertStateFiring {
				continue
			}
			for k, v := range labels {
				if string(a.Labels[model.LabelName(k)]) != v {
					continue alerts
				}
			}
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		t.Errorf("alert %s %v never fired: %v", alert, labels, err)
	}
}

type ruleFileT struct {
	Groups []struct {
		Rules []struct{ Alert, Expr, For string }
	}
}

// loadRules reads the alert rule file: alert name -> expression.
func loadRules(t *testing.T, path string) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f ruleFileT
	if err := yaml.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			out[r.Alert] = r.Expr
		}
	}
	if len(out) != 7 {
		t.Fatalf("%d alerts in %s, want 7", len(out), path)
	}
	return out
}

type panelQuery struct {
	title, expr string
	// instant: Grafana asks for the value now (a table), not over the range.
	instant bool
}

type dashboardVariable struct{ name, query string }

type dashboardQueries struct {
	variables []dashboardVariable
	queries   []panelQuery
}

type dashboardPanel struct {
	Title   string
	Targets []struct {
		Expr    string
		Instant bool
	}
	Panels []dashboardPanel
}

// loadDashboard reads the query variables and every target of every
// panel, rows' nested panels included.
func loadDashboard(t *testing.T, path string) dashboardQueries {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Templating struct {
			List []struct {
				Name, Type string
				Query      json.RawMessage // {"query": "..."}, or a string
			}
		}
		Panels []dashboardPanel
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	var out dashboardQueries
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct{ Query string }
		if err := json.Unmarshal(v.Query, &q); err != nil {
			if err := json.Unmarshal(v.Query, &q.Query); err != nil {
				t.Fatalf("variable %s: query %s", v.Name, v.Query)
			}
		}
		out.variables = append(out.variables, dashboardVariable{v.Name, q.Query})
	}
	var walk func([]dashboardPanel)
	walk = func(ps []dashboardPanel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				out.queries = append(out.queries, panelQuery{p.Title, tg.Expr, tg.Instant})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	if len(out.queries) < 20 || len(out.variables) < 2 {
		t.Fatalf("only %d panel queries and %d variables in %s", len(out.queries), len(out.variables), path)
	}
	return out
}
