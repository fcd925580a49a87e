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
	}}
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
# HELP sluice_rollout_canary_weight The percentage of traffic the current step sends to the new version (0 when it routes none, or by match only).
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
	rec, err := NewRecorder(reg, newClient(t))
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
	for series := range gather(t, reg) {
		if strings.Contains(series, `rollout="web"`) {
			t.Errorf("%s left after the Rollout went", series)
		}
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
