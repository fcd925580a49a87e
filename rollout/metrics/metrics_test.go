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
	w50, fifty := "50%", int32(50)
	r := &v1beta1.Rollout{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}}
	r.Spec.Strategy.Canary = &v1beta1.CanaryStrategy{Steps: []v1beta1.CanaryStep{
		{Replicas: &one}, {Replicas: &half, TrafficRoutingStrategy: v1beta1.TrafficRoutingStrategy{Traffic: &w50}}, {Replicas: &all},
	}, TrafficRoutings: []v1beta1.TrafficRoutingRef{{Service: "web", Ingress: &v1beta1.IngressTrafficRouting{Name: "web"}}}}
	r.Status = v1beta1.RolloutStatus{
		Phase: v1beta1.RolloutPhaseProgressing, CurrentStepIndex: 2, CurrentStepState: v1beta1.CanaryStepStateMetricsAnalysis,
		CanaryStatus: &v1beta1.CanaryStatus{CanaryReplicas: 5, CanaryReadyReplicas: 4},
		Conditions:   []v1beta1.RolloutCondition{{Type: v1beta1.RolloutConditionProgressing, Status: corev1.ConditionTrue, Reason: "InRolling"}},
		Analysis:     &analysisv1alpha1.RolloutAnalysisStatus{StepRun: &analysisv1alpha1.RunStatus{Name: "web-abc-2", Phase: analysisv1alpha1.AnalysisRunning}},
		Release: &v1beta1.ReleaseStatus{
			Hold:    &v1beta1.Hold{Reason: v1beta1.HoldAnalysisRunning, Step: 2, Run: "web-abc-2"},
			Batch:   &v1beta1.BatchStatus{Step: 2, Replicas: 5},
			Traffic: &v1beta1.TrafficStatus{Step: 2, Weight: &fifty},
		},
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
# HELP sluice_rollout_canary_weight The percentage of traffic the routing sends to the new version, as last applied to the routing objects (status.release.traffic.weight); 0 when none is routed, or by request match only.
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
	r.Status.Release = &v1beta1.ReleaseStatus{Hold: &v1beta1.Hold{Reason: v1beta1.HoldAborted}}
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
	started := metav1.NewTime(time.Unix(1_000_000, 0))
	done.LastRelease = &v1beta1.ReleaseRecord{Outcome: v1beta1.OutcomeCompleted, Revision: "abc", Started: &started, Ended: metav1.NewTime(started.Add(90 * time.Second))}
	atStep3 := before.DeepCopy()
	atStep3.Status = *after
	rec.Decided(atStep3, rollout.Decision{Status: *done, Made: []rollout.Made{{Decision: rollout.DecisionComplete, Cause: rollout.CausePlan}}}, time.Millisecond)

	got := gather(t, reg)
	for series, v := range map[string]float64{
		`sluice_rollout_decisions_total{cause="analysis",decision="advance",namespace="shop",rollout="web"}`: 1,
		`sluice_rollout_decisions_total{cause="plan",decision="complete",namespace="shop",rollout="web"}`:    1,
		`sluice_step_transition_seconds_count{namespace="shop",rollout="web"}`:                               1,
		`sluice_release_duration_seconds_count{namespace="shop",outcome="Completed",rollout="web"}`:          1,
	} {
		if got[series] != v {
			t.Errorf("%s = %v, want %v", series, got[series], v)
		}
	}
	if s := got[`sluice_release_duration_seconds_sum{namespace="shop",outcome="Completed",rollout="web"}`]; s != 90 {
		t.Errorf("release duration %vs, want 90s (status.lastRelease)", s)
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
	aborted.Status.Release.Hold.Reason = v1beta1.HoldAborted
	rec, err := NewRecorder(reg, newClient(t, releasing(), aborted, run()), nil)
	if err != nil {
		t.Fatal(err)
	}
	done := releasing().Status
	done.Phase = v1beta1.RolloutPhaseHealthy
	done.Conditions = append(done.Conditions, v1beta1.RolloutCondition{Type: v1beta1.RolloutConditionSucceeded, Status: corev1.ConditionTrue})
	start := metav1.NewTime(time.Unix(1_000_000, 0))
	done.LastRelease = &v1beta1.ReleaseRecord{Outcome: v1beta1.OutcomeCompleted, Started: &start, Ended: metav1.NewTime(start.Add(time.Minute))}
	rec.Decided(releasing(), rollout.Decision{Status: done, Made: []rollout.Made{{Decision: rollout.DecisionComplete, Cause: rollout.CausePlan}}}, time.Millisecond)

	closed := map[string][]string{
		"phase":     {"Initial", "Healthy", "Progressing", "Terminating", "Disabled", "Running", "Successful", "Failed", "Error", "Inconclusive", "Pending"},
		"state":     {"StepInit", "StepUpgrade", "StepTrafficRouting", "StepMetricsAnalysis", "StepPaused", "StepReady", "Completed", "Aborted"},
		"kind":      {"step", "background"},
		"condition": {"success", "failure"},
		"op":        {"<", "<=", ">", ">="},
		"decision":  {rollout.DecisionAdvance, rollout.DecisionComplete, rollout.DecisionPause, rollout.DecisionRollback, rollout.DecisionPromote, rollout.DecisionRetry},
		"cause":     {rollout.CauseAnalysis, rollout.CauseManual, rollout.CauseDeadline, rollout.CausePlan},
		"outcome":   {"Completed", "Promoted", "RolledBack", "Aborted", "Cancelled"},
		"reason": {"WaitingForPods", "TrafficGracePeriod", "AnalysisRunning", "TimedPause", "WaitingForApproval", "PausedBySpec",
			"AnalysisInconclusive", "AnalysisError", "AnalysisFailedPaused", "AnalysisNotStarted", "Aborted", "ProgressDeadlineExceeded",
			"TrafficError", "WorkloadError", "WorkloadNotFound", "NewRevisionRefused"},
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

// The weight is the one the routing objects were last given
// (status.release.traffic), whatever the plan says.
func TestWeight(t *testing.T) {
	w := func(n int32) *int32 { return &n }
	for _, tc := range []struct {
		name    string
		traffic *v1beta1.TrafficStatus
		phase   v1beta1.RolloutPhase
		want    float64
	}{
		{"nothing routed yet", nil, v1beta1.RolloutPhaseProgressing, 0},
		{"the weight in force", &v1beta1.TrafficStatus{Step: 1, Weight: w(10)}, v1beta1.RolloutPhaseProgressing, 10},
		{"by match only", &v1beta1.TrafficStatus{Step: 3, Matches: []v1beta1.HttpRouteMatch{{}}}, v1beta1.RolloutPhaseProgressing, 0},
		{"blue-green's switch", &v1beta1.TrafficStatus{Weight: w(100)}, v1beta1.RolloutPhaseProgressing, 100},
		{"at rest", &v1beta1.TrafficStatus{Weight: w(50)}, v1beta1.RolloutPhaseHealthy, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := releasing()
			r.Status.Phase = tc.phase
			r.Status.Release = &v1beta1.ReleaseStatus{Traffic: tc.traffic}
			got := gather(t, &Collector{Reader: newClient(t, r)})
			if v := got[`sluice_rollout_canary_weight{namespace="shop",rollout="web"}`]; v != tc.want {
				t.Errorf("weight %v, want %v", v, tc.want)
			}
		})
	}
}

// The hold is exported with its reason (a closed set) and since when.
func TestWaiting(t *testing.T) {
	r := releasing()
	since := metav1.NewTime(time.Unix(1_700_000_000, 0))
	r.Status.Release = &v1beta1.ReleaseStatus{Hold: &v1beta1.Hold{Reason: v1beta1.HoldWaitingForApproval, Since: since, Step: 2}}
	got := gather(t, &Collector{Reader: newClient(t, r)})
	for series, v := range map[string]float64{
		`sluice_rollout_waiting{namespace="shop",reason="WaitingForApproval",rollout="web"}`:               1,
		`sluice_rollout_waiting_since_seconds{namespace="shop",reason="WaitingForApproval",rollout="web"}`: 1_700_000_000,
		`sluice_rollout_paused{namespace="shop",rollout="web"}`:                                            1,
		`sluice_rollout_aborted{namespace="shop",rollout="web"}`:                                           0,
	} {
		if got[series] != v {
			t.Errorf("%s = %v, want %v", series, got[series], v)
		}
	}
	r.Status.Release.Hold.Reason = v1beta1.HoldAnalysisRunning
	if got := gather(t, &Collector{Reader: newClient(t, r)}); got[`sluice_rollout_paused{namespace="shop",rollout="web"}`] != 0 {
		t.Error("a running analysis is not a pause")
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

// Each release's duration is recorded once, when status.lastRelease
// records it: an aborted release cleaned up later is not counted again
// (Decide keeps its record), a retried one counts when it ends.
func TestReleaseDurations(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	rec, err := NewRecorder(reg, newClient(t, releasing()), nil)
	if err != nil {
		t.Fatal(err)
	}
	at := func(s int) metav1.Time {
		return metav1.NewTime(time.Unix(1_000_000, 0).Add(time.Duration(s) * time.Second))
	}
	ended := func(o v1beta1.ReleaseOutcome, rev string, start, end int) *v1beta1.ReleaseRecord {
		s := at(start)
		return &v1beta1.ReleaseRecord{Outcome: o, Revision: rev, Started: &s, Ended: at(end)}
	}
	var last *v1beta1.ReleaseRecord
	decide := func(next *v1beta1.ReleaseRecord) {
		before := releasing()
		before.Status.LastRelease = last
		after := releasing().Status
		after.LastRelease = next
		rec.Decided(before, rollout.Decision{Status: after}, time.Millisecond)
		last = next
	}
	a := ended(v1beta1.OutcomeRolledBack, "a", 100, 110)
	decide(a)
	decide(a) // cancelled later: the record stays
	decide(ended(v1beta1.OutcomeAborted, "b", 200, 205))
	decide(ended(v1beta1.OutcomeCompleted, "c", 250, 280))
	decide(ended(v1beta1.OutcomePromoted, "d", 310, 330))

	got := gather(t, reg)
	for outcome, want := range map[string][2]float64{"RolledBack": {1, 10}, "Aborted": {1, 5}, "Completed": {1, 30}, "Promoted": {1, 20}, "Cancelled": {0, 0}} {
		count := got[`sluice_release_duration_seconds_count{namespace="shop",outcome="`+outcome+`",rollout="web"}`]
		sum := got[`sluice_release_duration_seconds_sum{namespace="shop",outcome="`+outcome+`",rollout="web"}`]
		if count != want[0] || sum != want[1] {
			t.Errorf("%s: %v releases, %vs in all; want %v, %vs", outcome, count, sum, want[0], want[1])
		}
	}
}

// How the last release ended is exported by outcome.
func TestLastReleaseOutcome(t *testing.T) {
	r := releasing()
	r.Status.LastRelease = &v1beta1.ReleaseRecord{Outcome: v1beta1.OutcomeRolledBack}
	got := gather(t, &Collector{Reader: newClient(t, r)})
	if v := got[`sluice_rollout_last_release{namespace="shop",outcome="RolledBack",rollout="web"}`]; v != 1 {
		t.Errorf("last release series = %v, want 1 (%v)", v, got)
	}
}
