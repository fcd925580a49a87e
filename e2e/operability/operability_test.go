//go:build e2e

package operability_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/e2e/controlplane"
	"github.com/sluicehq/sluice/e2e/framework"
	"github.com/sluicehq/sluice/rollout"
)

const imageRepo = "openkruise-registry.cn-shanghai.cr.aliyuncs.com/openkruise/demo:"

// TestDashboardAndAlerts runs the releases each panel and alert exists
// for, side by side in their own namespaces, then checks the shipped files
// against the Prometheus that watched them. Not parallel: it stops the
// manager to prove the controller-down alert.
func TestDashboardAndAlerts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	root := framework.RepoRoot()
	prom := startPrometheus(ctx, t, filepath.Join(root, "deploy", "prometheus", "alerts.yaml"))
	api := promv1.NewAPI(mustClient(t, prom.URL()))

	good := startRelease(ctx, t, "", imageRepo+"1.10.3")                            // promoted by its analysis
	bad := startRelease(ctx, t, "", imageRepo+"1.10.3-errors")                      // aborted by its analysis
	held := startRelease(ctx, t, framework.UnreachableTemplate, imageRepo+"1.10.3") // analysis Error: held
	waitRollout(ctx, t, good, "completed", func(r *v1beta1.Rollout) bool {
		return r.Status.Phase == v1beta1.RolloutPhaseHealthy && r.Status.CurrentStepState == v1beta1.CanaryStepStateCompleted
	})
	waitRollout(ctx, t, bad, "aborted", func(r *v1beta1.Rollout) bool { return reason(r) == rollout.ReasonAborted })
	waitRollout(ctx, t, held, "held by an analysis Error", func(r *v1beta1.Rollout) bool { return strings.Contains(r.Status.Message, "is Error") })

	rules := loadRules(t, filepath.Join(root, "deploy", "prometheus", "alerts.yaml"))
	// Each alert in the scenario it exists for: aborted fires (no for:);
	// the others' expressions hold now (their for: is minutes long).
	waitFiring(ctx, t, api, "SluiceReleaseAbortedByAnalysis", map[string]string{"namespace": bad, "rollout": "rollouts-demo"})
	expectData(ctx, t, api, "alert SluiceAnalysisErroring", rules["SluiceAnalysisErroring"], held)
	expectData(ctx, t, api, "alert SluiceReleasePausedTooLong", rules["SluiceReleasePausedTooLong"], held)
	if got := query(ctx, t, api, rules["SluiceReleaseAbortedByAnalysis"]); len(got) != 1 {
		t.Errorf("aborted alert expression: %v, want the one aborted release", got)
	}

	// Every panel of the dashboard, picking the promoted release.
	for _, p := range panelQueries(t, filepath.Join(root, "deploy", "grafana", "sluice.json")) {
		expr := strings.NewReplacer("$namespace", good, "$rollout", "rollouts-demo", "$__rate_interval", "1m").Replace(p.expr)
		expectData(ctx, t, api, "panel "+p.title, expr, "")
	}
	// A few values that must be right, not just present.
	for expr, want := range map[string]float64{
		`sum(sluice_rollout_aborted)`:                                                                        1,
		`sluice_rollout_canary_weight{namespace="` + bad + `"}`:                                              0,
		`sluice_rollout_step{namespace="` + good + `"}`:                                                      3,
		`sluice_analysis_metric_threshold{namespace="` + good + `",metric="error-rate"}`:                     0.05,
		`sum(sluice_rollout_decisions_total{namespace="` + bad + `",decision="rollback",cause="analysis"})`:  1,
		`sum(sluice_rollout_decisions_total{namespace="` + good + `",decision="complete",cause="analysis"})`: 1,
		`sluice_analysis_run_phase{namespace="` + held + `",kind="step",phase="Error"}`:                      1,
	} {
		got := query(ctx, t, api, expr)
		if len(got) != 1 || float64(got[0].Value) != want {
			t.Errorf("%s = %v, want %v", expr, got, want)
		}
	}

	// The controller stops: its alert's expression holds once Prometheus
	// misses a scrape.
	env.Manager.Kill()
	defer func() {
		if err := env.Manager.Start(ctx, env.ControlPlane); err != nil {
			t.Error(err)
		}
	}()
	expectData(ctx, t, api, "alert SluiceControllerDown", rules["SluiceControllerDown"], "")
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
	r := &v1beta1.Rollout{}
	if err := framework.Poll(ctx, 3*time.Minute, func() (bool, error) {
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "rollouts-demo"}, r); err != nil {
			return false, err
		}
		return cond(r), nil
	}); err != nil {
		t.Fatalf("%s: waiting for %s: %v (phase %s, message %q)", ns, what, err, r.Status.Phase, r.Status.Message)
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
	manager := strings.TrimSuffix(strings.TrimPrefix(env.Manager.MetricsURL, "http://"), "/metrics")
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

// loadRules reads the alert rule file: alert name -> expression.
func loadRules(t *testing.T, path string) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []struct{ Alert, Expr string }
		}
	}
	if err := yaml.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			out[r.Alert] = r.Expr
		}
	}
	if len(out) != 4 {
		t.Fatalf("%d alerts in %s, want 4", len(out), path)
	}
	return out
}

type panelQuery struct{ title, expr string }

// panelQueries reads every target of every panel of the dashboard.
func panelQueries(t *testing.T, path string) []panelQuery {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	var out []panelQuery
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			out = append(out, panelQuery{p.Title, tg.Expr})
		}
	}
	if len(out) < 15 {
		t.Fatalf("only %d panel queries in %s", len(out), path)
	}
	return out
}
