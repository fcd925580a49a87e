package metrics

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/rollout"
)

// releasing is a Rollout at step 2 of 3 (50% of traffic), analysing.
func releasing() *v1beta1.Rollout {
	one, half, all := intstr.FromInt32(1), intstr.FromString("50%"), intstr.FromString("100%")
	w50 := "50%"
	r := &v1beta1.Rollout{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}}
	r.Spec.Strategy.Canary = &v1beta1.CanaryStrategy{Steps: []v1beta1.CanaryStep{
		{Replicas: &one}, {Replicas: &half, TrafficRoutingStrategy: v1beta1.TrafficRoutingStrategy{Traffic: &w50}}, {Replicas: &all},
	}, TrafficRoutings: []v1beta1.TrafficRoutingRef{{Service: "web", Ingress: &v1beta1.IngressTrafficRouting{Name: "web"}}}}
	r.Status = v1beta1.RolloutStatus{
		Phase: v1beta1.RolloutPhaseProgressing, CurrentStepIndex: 2, CurrentStepState: v1beta1.CanaryStepStateMetricsAnalysis,
		CanaryStatus: &v1beta1.CanaryStatus{CanaryReplicas: 5, CanaryReadyReplicas: 4},
		Conditions:   []v1beta1.RolloutCondition{{Type: v1beta1.RolloutConditionProgressing, Status: corev1.ConditionTrue, Reason: "InRolling"}},
		Analysis:     &analysisv1alpha1.RolloutAnalysisStatus{StepRun: &analysisv1alpha1.RunStatus{Name: "web-abc-2", Phase: analysisv1alpha1.AnalysisRunning}},
	}
	return r
}

func run() *analysisv1alpha1.AnalysisRun {
	return &analysisv1alpha1.AnalysisRun{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-abc-2"},
		Spec: analysisv1alpha1.AnalysisRunSpec{Metrics: []analysisv1alpha1.Metric{
			{Name: "error-rate", SuccessCondition: "result[0] < 0.05"},
			{Name: "idle", SuccessCondition: "len(result) > 0 && result[0] > 1"},
		}},
		Status: analysisv1alpha1.AnalysisRunStatus{Phase: analysisv1alpha1.AnalysisRunning, MetricResults: []analysisv1alpha1.MetricResult{
			{Name: "error-rate", Phase: analysisv1alpha1.AnalysisRunning, Measurements: []analysisv1alpha1.Measurement{{Value: "[0.5]"}, {Value: "[0.012]"}}},
			{Name: "idle", Phase: analysisv1alpha1.AnalysisInconclusive, Measurements: []analysisv1alpha1.Measurement{{Value: "[NaN]"}}},
		}},
	}
}

func newClient(t *testing.T, objs ...client.Object) client.Client {
	s := runtime.NewScheme()
	if err := v1beta1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := analysisv1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).Build()
}

func TestCollector(t *testing.T) {
	c := newClient(t, releasing(), run())
	want := `
# HELP sluice_analysis_metric_value The last measured value of an analysis metric of the Rollout's current runs (the first number of the result).
# TYPE sluice_analysis_metric_value gauge
sluice_analysis_metric_value{metric="error-rate",namespace="shop",rollout="web",run="web-abc-2"} 0.012
# HELP sluice_rollout_canary_ready_replicas Ready pods of the new version.
# TYPE sluice_rollout_canary_ready_replicas gauge
sluice_rollout_canary_ready_replicas{namespace="shop",rollout="web"} 4
# HELP sluice_rollout_canary_weight The percentage of traffic routed to the new version: the current step's, the previous step's while this one's pods come up; 0 when none is routed, or by request match only.
# TYPE sluice_rollout_canary_weight gauge
sluice_rollout_canary_weight{namespace="shop",rollout="web"} 50
# HELP sluice_rollout_phase 1 for the Rollout's current phase (Healthy, Progressing, ...).
# TYPE sluice_rollout_phase gauge
sluice_rollout_phase{namespace="shop",phase="Progressing",rollout="web"} 1
# HELP sluice_rollout_step The current step, 1-based (0 before the first release).
# TYPE sluice_rollout_step gauge
sluice_rollout_step{namespace="shop",rollout="web"} 2
# HELP sluice_rollout_step_state 1 for the current step's state (StepUpgrade, StepPaused, ...), and for Aborted when the release is aborted.
# TYPE sluice_rollout_step_state gauge
sluice_rollout_step_state{namespace="shop",rollout="web",state="StepMetricsAnalysis"} 1
`
	names := []string{"sluice_analysis_metric_value", "sluice_rollout_canary_ready_replicas", "sluice_rollout_canary_weight", "sluice_rollout_phase", "sluice_rollout_step", "sluice_rollout_step_state"}
	if err := testutil.CollectAndCompare(&Collector{Reader: c}, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	// A plain comparison's bound is exported; an expression is not.
	if got := gather(t, &Collector{Reader: c}); got[`sluice_analysis_metric_threshold{condition="success",metric="error-rate",namespace="shop",op="<",rollout="web",run="web-abc-2"}`] != 0.05 ||
		testutil.CollectAndCount(&Collector{Reader: c}, "sluice_analysis_metric_threshold") != 1 {
		t.Errorf("thresholds: %v", got)
	}
	// NaN is no value; its phase is still shown.
	if n := testutil.CollectAndCount(&Collector{Reader: c}, "sluice_analysis_metric_phase"); n != 2 {
		t.Errorf("%d metric phase series, want 2", n)
	}

	// An aborted release: weight 0, aborted 1, the Aborted state.
	r := releasing()
	r.Status.Conditions[0].Reason = rollout.ReasonAborted
	got := gather(t, &Collector{Reader: newClient(t, r)})
	for series, v := range map[string]float64{
		`sluice_rollout_aborted{namespace="shop",rollout="web"}`:                    1,
		`sluice_rollout_paused{namespace="shop",rollout="web"}`:                     0,
		`sluice_rollout_canary_weight{namespace="shop",rollout="web"}`:              0,
		`sluice_rollout_step_state{namespace="shop",rollout="web",state="Aborted"}`: 1,
	} {
		if got[series] != v {
			t.Errorf("%s = %v, want %v", series, got[series], v)
		}
	}
	if _, ok := got[`sluice_rollout_step_state{namespace="shop",rollout="web",state="StepMetricsAnalysis"}`]; ok {
		t.Error("an aborted release shows its step state too")
	}
}

// The Collector's series go with the Rollout.
func TestCollectorForgetsDeletedRollouts(t *testing.T) {
	ctx := context.Background()
	r := releasing()
	c := newClient(t, r, run())
	col := &Collector{Reader: c}
	if n := testutil.CollectAndCount(col); n == 0 {
		t.Fatal("no series")
	}
	if err := c.Delete(ctx, r); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(col); n != 0 {
		t.Errorf("%d series left after the Rollout was deleted", n)
	}
}

func TestRecorder(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	c := newClient(t, releasing())
	rec, err := NewRecorder(reg, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	before := releasing()
	before.Status.Conditions[0].LastTransitionTime = metav1.NewTime(time.Now().Add(-90 * time.Second))
	after := before.Status.DeepCopy()
	after.CurrentStepIndex = 3
	rec.Decided(before, rollout.Decision{Status: *after, Made: []rollout.Made{{Decision: rollout.DecisionAdvance, Cause: rollout.CauseAnalysis}}}, 20*time.Millisecond)
	done := after.DeepCopy()
	done.Phase = v1beta1.RolloutPhaseHealthy
	done.Conditions = append(done.Conditions, v1beta1.RolloutCondition{Type: v1beta1.RolloutConditionSucceeded, Status: corev1.ConditionTrue})
	atStep3 := before.DeepCopy()
	atStep3.Status = *after
	rec.Decided(atStep3, rollout.Decision{Status: *done, Made: []rollout.Made{{Decision: rollout.DecisionComplete, Cause: rollout.CausePlan}}}, time.Millisecond)

	got := gather(t, reg)
	for series, v := range map[string]float64{
		`sluice_rollout_decisions_total{cause="analysis",decision="advance",namespace="shop",rollout="web"}`: 1,
		`sluice_rollout_decisions_total{cause="plan",decision="complete",namespace="shop",rollout="web"}`:    1,
		`sluice_step_transition_seconds_count{namespace="shop",rollout="web"}`:                               1,
		`sluice_release_duration_seconds_count{namespace="shop",outcome="completed",rollout="web"}`:          1,
	} {
		if got[series] != v {
			t.Errorf("%s = %v, want %v", series, got[series], v)
		}
	}
	if s := got[`sluice_release_duration_seconds_sum{namespace="shop",outcome="completed",rollout="web"}`]; s < 89 || s > 120 {
		t.Errorf("release duration %vs, want about 90s", s)
	}

	// Let go: the Rollout's series go.
	rec.Decided(before, rollout.Decision{Action: rollout.RemoveFinalizer}, 0)
	if err := c.Delete(context.Background(), releasing()); err != nil {
		t.Fatal(err)
	}
	for series := range gather(t, reg) {
		if strings.Contains(series, `rollout="web"`) {
			t.Errorf("%s left after the Rollout went", series)
		}
	}
}

// A Rollout deleted without the controller letting it go (its finalizer
// removed by hand) loses its series at the next scrape; one recorded while
// that scrape was listing keeps them.
func TestRecorderForgetsRolloutsGoneFromTheCache(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewPedanticRegistry()
	other := releasing()
	other.Name = "api"
	c := newClient(t, releasing(), other)
	rec, err := NewRecorder(reg, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	advance := rollout.Decision{Status: releasing().Status, Made: []rollout.Made{{Decision: rollout.DecisionAdvance, Cause: rollout.CausePlan}}}
	rec.Decided(releasing(), advance, 0)
	rec.Decided(other, advance, 0)
	if got := gather(t, reg); got[`sluice_rollout_decisions_total{cause="plan",decision="advance",namespace="shop",rollout="web"}`] != 1 {
		t.Fatalf("decision not counted: %v", got)
	}
	if err := c.Delete(ctx, releasing()); err != nil {
		t.Fatal(err)
	}
	got := gather(t, reg)
	for series := range got {
		if strings.Contains(series, `rollout="web"`) {
			t.Errorf("%s left after the Rollout went", series)
		}
	}
	if got[`sluice_rollout_decisions_total{cause="plan",decision="advance",namespace="shop",rollout="api"}`] != 1 {
		t.Errorf("the other Rollout's decisions went too: %v", got)
	}

	// Recorded after the scrape began listing: kept (the cache may not
	// have it yet).
	rec.Decided(releasing(), advance, 0)
	rec.forgetAbsent(time.Now().Add(-time.Minute), map[types.NamespacedName]bool{})
	if n := testutil.CollectAndCount(rec.decisions); n != 2 {
		t.Errorf("%d decision series, want 2 (recorded after the list began)", n)
	}
}

// A replica that does not lead exports no release series: every replica
// has the same cache, and dashboards sum over replicas.
func TestCollectorOnlyOnTheLeader(t *testing.T) {
	elected := make(chan struct{})
	col := &Collector{Reader: newClient(t, releasing(), run()), Elected: elected}
	if n := testutil.CollectAndCount(col); n != 0 {
		t.Errorf("%d series before this replica leads", n)
	}
	close(elected)
	if n := testutil.CollectAndCount(col); n == 0 {
		t.Error("no series once this replica leads")
	}
}

// Label names are the documented bounded set, and the label values that
// name a kind of thing come from closed sets: no pod names, no values.
func TestLabelsBounded(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	aborted := releasing()
	aborted.Name = "aborted"
	aborted.Status.Conditions[0].Reason = rollout.ReasonAborted
	rec, err := NewRecorder(reg, newClient(t, releasing(), aborted, run()), nil)
	if err != nil {
		t.Fatal(err)
	}
	done := releasing().Status
	done.Phase = v1beta1.RolloutPhaseHealthy
	done.Conditions = append(done.Conditions, v1beta1.RolloutCondition{Type: v1beta1.RolloutConditionSucceeded, Status: corev1.ConditionTrue})
	rec.Decided(releasing(), rollout.Decision{Status: done, Made: []rollout.Made{{Decision: rollout.DecisionComplete, Cause: rollout.CausePlan}}}, time.Millisecond)

	closed := map[string][]string{
		"phase":     {"Initial", "Healthy", "Progressing", "Terminating", "Disabled", "Running", "Successful", "Failed", "Error", "Inconclusive", "Pending"},
		"state":     {"StepInit", "StepUpgrade", "StepTrafficRouting", "StepMetricsAnalysis", "StepPaused", "StepReady", "Completed", "Aborted"},
		"kind":      {"step", "background"},
		"condition": {"success", "failure"},
		"op":        {"<", "<=", ">", ">="},
		"decision":  {rollout.DecisionAdvance, rollout.DecisionComplete, rollout.DecisionPause, rollout.DecisionRollback, rollout.DecisionPromote, rollout.DecisionRetry},
		"cause":     {rollout.CauseAnalysis, rollout.CauseManual, rollout.CauseDeadline, rollout.CausePlan},
		"outcome":   {"completed", "cancelled", "aborted"},
	}
	// Names of objects: the Rollout's, its namespace, its runs and their
	// metrics (as the AnalysisTemplate names them).
	named := map[string]bool{"namespace": true, "rollout": true, "run": true, "metric": true}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(families) < 10 {
		t.Fatalf("only %d families", len(families))
	}
	for _, f := range families {
		if !strings.HasPrefix(f.GetName(), "sluice_") || f.GetHelp() == "" {
			t.Errorf("%s: not under sluice_ or no HELP", f.GetName())
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				switch name, value := l.GetName(), l.GetValue(); {
				case name == "le":
				case named[name]:
					if name == "run" && value != "web-abc-2" || name == "metric" && value != "error-rate" && value != "idle" {
						t.Errorf("%s: %s=%q is not the name of an object", f.GetName(), name, value)
					}
				case closed[name] != nil:
					if !contains(closed[name], value) {
						t.Errorf("%s: %s=%q is outside its closed set", f.GetName(), name, value)
					}
				default:
					t.Errorf("%s: label %q is not one of the bounded labels", f.GetName(), name)
				}
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// The weight is what the routing sends to the new version now.
func TestWeight(t *testing.T) {
	w10, w50 := "10%", "50%"
	steps := []v1beta1.CanaryStep{
		{TrafficRoutingStrategy: v1beta1.TrafficRoutingStrategy{Traffic: &w10}},
		{TrafficRoutingStrategy: v1beta1.TrafficRoutingStrategy{Traffic: &w50}},
		{TrafficRoutingStrategy: v1beta1.TrafficRoutingStrategy{Matches: []v1beta1.HttpRouteMatch{{}}}},
		{}, // routes nothing
	}
	for _, tc := range []struct {
		step   int32
		state  v1beta1.CanaryStepState
		routed bool
		want   int32
	}{
		{1, v1beta1.CanaryStepStateUpgrade, true, 0},          // nothing routed yet
		{1, v1beta1.CanaryStepStateTrafficRouting, true, 10},  // being routed: the step's
		{1, v1beta1.CanaryStepStatePaused, true, 10},          //
		{2, v1beta1.CanaryStepStateInit, true, 10},            // step 1's holds while step 2's pods come up
		{2, v1beta1.CanaryStepStateUpgrade, true, 10},         //
		{2, v1beta1.CanaryStepStateMetricsAnalysis, true, 50}, //
		{3, v1beta1.CanaryStepStateReady, true, 0},            // by match only
		{4, v1beta1.CanaryStepStateUpgrade, true, 0},          // a step routing nothing sent all to stable first
		{2, v1beta1.CanaryStepStateMetricsAnalysis, false, 0}, // not progressing, or aborted
		{0, v1beta1.CanaryStepStateMetricsAnalysis, true, 0},  // no step
		{5, v1beta1.CanaryStepStateMetricsAnalysis, true, 0},  // out of range
	} {
		r := releasing()
		r.Spec.Strategy.Canary.Steps = steps
		r.Status.CurrentStepIndex, r.Status.CurrentStepState = tc.step, tc.state
		if got := weight(r, steps, tc.routed); got != tc.want {
			t.Errorf("step %d %s routed %v: weight %d, want %d", tc.step, tc.state, tc.routed, got, tc.want)
		}
	}
	// Without trafficRoutings a step's traffic is ignored (the guide's
	// Example 4): nothing is routed.
	r := releasing()
	r.Spec.Strategy.Canary.TrafficRoutings = nil
	if got := weight(r, rollout.StepsOf(r), true); got != 0 {
		t.Errorf("weight %d without trafficRoutings, want 0", got)
	}
}

// gather flattens a registry into "name{labels}" -> value.
func gather(t *testing.T, g prometheus.Collector) map[string]float64 {
	t.Helper()
	reg, ok := g.(prometheus.Gatherer)
	if !ok {
		r := prometheus.NewPedanticRegistry()
		r.MustRegister(g)
		reg = r
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+`"`+l.GetValue()+`"`)
			}
			key := "{" + strings.Join(labels, ",") + "}"
			switch {
			case m.GetGauge() != nil:
				out[f.GetName()+key] = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				out[f.GetName()+key] = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				out[f.GetName()+"_count"+key] = float64(m.GetHistogram().GetSampleCount())
				out[f.GetName()+"_sum"+key] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	return out
}

// Each release's duration is recorded once, from its own start: an aborted
// release cancelled afterwards counts as aborted only, a version pushed over
// an aborted one is timed from the push, a retried release counts again.
func TestReleaseDurations(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	rec, err := NewRecorder(reg, newClient(t, releasing()), nil)
	if err != nil {
		t.Fatal(err)
	}
	var now time.Time
	rec.now = func() time.Time { return now }
	at := func(s int) { now = time.Unix(1_000_000, 0).Add(time.Duration(s) * time.Second) }
	status := func(phase v1beta1.RolloutPhase, rev, reason, message string, succeeded corev1.ConditionStatus) *v1beta1.Rollout {
		r := releasing()
		r.Status.Phase, r.Status.Message = phase, message
		r.Status.CanaryStatus.CanaryRevision = rev
		r.Status.Conditions = []v1beta1.RolloutCondition{{Type: v1beta1.RolloutConditionProgressing, Status: corev1.ConditionTrue, Reason: reason,
			LastTransitionTime: metav1.NewTime(time.Unix(1_000_000, 0))}} // the status's idea of the start: not used while the Recorder knows better
		if succeeded != "" {
			r.Status.Conditions = append(r.Status.Conditions, v1beta1.RolloutCondition{Type: v1beta1.RolloutConditionSucceeded, Status: succeeded})
		}
		return r
	}
	healthy := func(rev string, succeeded corev1.ConditionStatus) *v1beta1.Rollout {
		return status(v1beta1.RolloutPhaseHealthy, rev, "Completed", "", succeeded)
	}
	progressing := func(rev string) *v1beta1.Rollout {
		return status(v1beta1.RolloutPhaseProgressing, rev, "InRolling", "", "")
	}
	aborted := func(rev string) *v1beta1.Rollout {
		return status(v1beta1.RolloutPhaseProgressing, rev, rollout.ReasonAborted, "Rollout is aborted: analysis ...", "")
	}
	decide := func(before, after *v1beta1.Rollout, made ...rollout.Made) {
		rec.Decided(before, rollout.Decision{Status: after.Status, Made: made}, time.Millisecond)
	}
	rollback := rollout.Made{Decision: rollout.DecisionRollback, Cause: rollout.CauseAnalysis}

	at(100) // A: aborted after 10s, then cancelled
	decide(healthy("s", ""), progressing("a"))
	at(110)
	decide(progressing("a"), aborted("a"), rollback)
	at(120)
	decide(status(v1beta1.RolloutPhaseProgressing, "a", "Cancelling", "", ""), healthy("a", corev1.ConditionFalse), rollout.Made{Decision: rollout.DecisionRollback, Cause: rollout.CauseManual})

	at(200) // B: aborted after 5s; C pushed over it at 250, completed at 280
	decide(healthy("s", ""), progressing("b"))
	at(205)
	decide(progressing("b"), aborted("b"), rollback)
	at(250)
	decide(aborted("b"), progressing("c"))
	at(280)
	decide(progressing("c"), healthy("c", corev1.ConditionTrue))

	at(300) // D: aborted after 2s, retried, completed at 330
	decide(healthy("s", ""), progressing("d"))
	at(302)
	decide(progressing("d"), aborted("d"), rollback)
	at(310)
	decide(aborted("d"), progressing("d"), rollout.Made{Decision: rollout.DecisionRetry, Cause: rollout.CauseManual})
	at(330)
	decide(progressing("d"), healthy("d", corev1.ConditionTrue))

	got := gather(t, reg)
	for outcome, want := range map[string][2]float64{"aborted": {3, 10 + 5 + 2}, "completed": {2, 30 + 30}, "cancelled": {0, 0}} {
		count := got[`sluice_release_duration_seconds_count{namespace="shop",outcome="`+outcome+`",rollout="web"}`]
		sum := got[`sluice_release_duration_seconds_sum{namespace="shop",outcome="`+outcome+`",rollout="web"}`]
		if count != want[0] || sum != want[1] {
			t.Errorf("%s: %v releases, %vs in all; want %v, %vs", outcome, count, sum, want[0], want[1])
		}
	}
}
