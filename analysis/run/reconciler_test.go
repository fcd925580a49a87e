package run

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/sluicehq/sluice/analysis/measure"
	"github.com/sluicehq/sluice/analysis/prometheus"
	"github.com/sluicehq/sluice/api/analysis/v1alpha1"
)

// fakeQuerier answers the reconciler's queries as Prometheus would, from
// a table keyed by the query's text, and records the requests. The real
// Prometheus provider is tested on its own (analysis/prometheus) and
// against a real Prometheus in e2e/prometheus.
type fakeQuerier struct {
	answers map[string]answer
	got     []prometheus.Request
}

type answer struct {
	v   measure.Value
	err error
}

func (f *fakeQuerier) Query(_ context.Context, r prometheus.Request) (measure.Value, error) {
	f.got = append(f.got, r)
	a, ok := f.answers[r.Query]
	if !ok {
		return measure.Value{}, fmt.Errorf("fake Prometheus: unexpected query %q", r.Query)
	}
	return a.v, a.err
}

// promAnswers are what Prometheus answers to the tests' constant queries.
func promAnswers() map[string]answer {
	return map[string]answer{
		"vector(0.01)":        {v: measure.VectorValue(0.01)},
		"vector(0.2)":         {v: measure.VectorValue(0.2)},
		"vector(1)":           {v: measure.VectorValue(1)},
		"vector(2)":           {v: measure.VectorValue(2)},
		"absent_metric_xyz":   {v: measure.VectorValue()},
		"vector(0)/vector(0)": {v: measure.VectorValue(math.NaN())},
	}
}

type harness struct {
	t      *testing.T
	c      client.Client
	prom   *fakeQuerier
	r      *Reconciler
	clock  time.Time
	events *events.FakeRecorder
	key    types.NamespacedName
}

func newHarness(t *testing.T, metrics ...v1alpha1.Metric) *harness {
	s := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	run := &v1alpha1.AnalysisRun{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "r"},
		Spec: v1alpha1.AnalysisRunSpec{Rollout: "web", StepIndex: 1, Metrics: metrics}}
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(run).WithStatusSubresource(run).Build()
	h := &harness{t: t, c: c, prom: &fakeQuerier{answers: promAnswers()}, clock: time.Now().Truncate(time.Second),
		events: events.NewFakeRecorder(100), key: client.ObjectKeyFromObject(run)}
	h.r = &Reconciler{Client: c, Querier: h.prom, Recorder: h.events, Now: func() time.Time { return h.clock }}
	return h
}

// reconcile runs one reconcile and returns the run and the requeue delay.
func (h *harness) reconcile() (*v1alpha1.AnalysisRun, time.Duration) {
	h.t.Helper()
	res, err := h.r.Reconcile(h.t.Context(), ctrl.Request{NamespacedName: h.key})
	if err != nil {
		h.t.Fatal(err)
	}
	run := &v1alpha1.AnalysisRun{}
	if err := h.c.Get(h.t.Context(), h.key, run); err != nil {
		h.t.Fatal(err)
	}
	return run, res.RequeueAfter
}

func (h *harness) drainEvents() []string {
	var out []string
	for {
		select {
		case e := <-h.events.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func metric(name, query, success string) v1alpha1.Metric {
	return v1alpha1.Metric{Name: name, SuccessCondition: success,
		Provider: v1alpha1.MetricProvider{Prometheus: &v1alpha1.PrometheusProvider{Query: query}}}
}

func dur(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }
func i32(i int32) *int32                   { return &i }

func TestReconcileOnce(t *testing.T) {
	for _, tc := range []struct {
		name   string
		m      v1alpha1.Metric
		phase  v1alpha1.AnalysisPhase
		msg    string
		events string
	}{
		{"healthy", metric("error-rate", "vector(0.01)", "result[0] < 0.05"), v1alpha1.AnalysisSuccessful,
			`metric "error-rate" Successful: 1 of 1 measurements passed; last: value [0.01]: successCondition "result[0] < 0.05" is true`, "Normal MetricSuccessful"},
		{"errors", metric("error-rate", "vector(0.2)", "result[0] < 0.05"), v1alpha1.AnalysisFailed,
			`metric "error-rate" Failed: value [0.2]: successCondition "result[0] < 0.05" is false (1 of 1 measurements failed, failureLimit 0)`, "Warning MetricFailed"},
		{"empty", metric("m", "absent_metric_xyz", "result[0] < 0.05"), v1alpha1.AnalysisInconclusive,
			"no data (empty result): noData policy Inconclusive", "Warning MetricInconclusive"},
		{"NaN", metric("m", "vector(0)/vector(0)", "result[0] < 0.05"), v1alpha1.AnalysisInconclusive,
			"value [NaN] is NaN", "Warning MetricInconclusive"},
		{"bad condition", metric("m", "vector(1)", "result[0] <"), v1alpha1.AnalysisRunning, `successCondition "result[0] <" does not compile`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.m)
			run, after := h.reconcile()
			if run.Status.Phase != tc.phase || !strings.Contains(run.Status.Message+run.Status.MetricResults[0].LastError, tc.msg) {
				t.Fatalf("got %s %q (%+v), want %s %q", run.Status.Phase, run.Status.Message, run.Status.MetricResults[0], tc.phase, tc.msg)
			}
			if tc.phase.Completed() && (after != 0 || run.Status.CompletedAt == nil) {
				t.Errorf("completed run: requeue %v, completedAt %v", after, run.Status.CompletedAt)
			}
			if ev := strings.Join(h.drainEvents(), "\n"); !strings.Contains(ev, tc.events) {
				t.Errorf("events %q, want %q", ev, tc.events)
			}
			if got := run.Status.MetricResults[0].Query; got != tc.m.Provider.Prometheus.Query {
				t.Errorf("query in status %q", got)
			}
		})
	}
}

func TestReconcileTiming(t *testing.T) {
	m := metric("m", "vector(1)", "result[0] == 1")
	m.InitialDelay, m.Interval, m.Count = dur(30*time.Second), dur(time.Minute), i32(3)
	h := newHarness(t, m)

	run, after := h.reconcile()
	if run.Status.Phase != v1alpha1.AnalysisRunning || len(run.Status.MetricResults[0].Measurements) != 0 || after != 30*time.Second {
		t.Fatalf("initial delay: %s, %d measurements, requeue %v", run.Status.Phase, len(run.Status.MetricResults[0].Measurements), after)
	}
	for i := 1; i <= 3; i++ {
		h.clock = h.clock.Add(after)
		run, after = h.reconcile()
		if got := run.Status.MetricResults[0].Count; got != int32(i) {
			t.Fatalf("measurement %d: count %d", i, got)
		}
		if i < 3 && (run.Status.Phase != v1alpha1.AnalysisRunning || after != time.Minute || run.Status.Summary != "1 Running") {
			t.Fatalf("measurement %d: %s %q requeue %v", i, run.Status.Phase, run.Status.Summary, after)
		}
	}
	if run.Status.Phase != v1alpha1.AnalysisSuccessful || after != 0 || run.Status.Summary != "1 Successful" {
		t.Fatalf("end: %s %q requeue %v", run.Status.Phase, run.Status.Summary, after)
	}
	// Early reconciles measure nothing.
	h2 := newHarness(t, m)
	h2.reconcile()
	h2.clock = h2.clock.Add(10 * time.Second)
	if run, after := h2.reconcile(); len(run.Status.MetricResults[0].Measurements) != 0 || after != 20*time.Second {
		t.Errorf("early: %d measurements, requeue %v", len(run.Status.MetricResults[0].Measurements), after)
	}
}

func TestReconcileErrors(t *testing.T) {
	const down = "http://127.0.0.1:9"
	m := metric("m", "up", "result[0] == 1")
	m.Interval, m.ConsecutiveErrorLimit = dur(5*time.Minute), i32(2)
	h := newHarness(t, m)
	h.prom.answers["up"] = answer{err: errors.New("Prometheus at " + down + " could not be reached: connection refused")}
	var after time.Duration
	for i := range 3 {
		var run *v1alpha1.AnalysisRun
		h.clock = h.clock.Add(after)
		run, after = h.reconcile()
		r := run.Status.MetricResults[0]
		if r.Error != int32(i+1) || r.Count != 0 {
			t.Fatalf("error %d: %+v", i, r)
		}
		if i < 2 {
			if run.Status.Phase != v1alpha1.AnalysisRunning || after != 10*time.Second ||
				!strings.Contains(run.Status.Message, fmt.Sprintf("%d errors in a row, retrying: Prometheus at %s could not be reached", i+1, down)) {
				t.Fatalf("error %d: %s %q requeue %v", i, run.Status.Phase, run.Status.Message, after)
			}
			continue
		}
		if run.Status.Phase != v1alpha1.AnalysisError || !strings.Contains(run.Status.Message, "Prometheus at "+down+" could not be reached") ||
			!strings.Contains(run.Status.Message, "3 errors in a row, consecutiveErrorLimit 2") {
			t.Fatalf("end: %s %q", run.Status.Phase, run.Status.Message)
		}
	}
}

func TestReconcileDryRunAndTerminate(t *testing.T) {
	good := metric("good", "vector(1)", "result[0] == 1")
	good.Interval, good.Count = dur(time.Minute), i32(5)
	bad := metric("bad", "vector(2)", "result[0] == 1")
	bad.DryRun = true
	h := newHarness(t, good, bad)
	run, _ := h.reconcile()
	if run.Status.Phase != v1alpha1.AnalysisRunning || run.Status.Summary != "1 Running; dry run: 1 Failed" {
		t.Fatalf("dry run: %s %q", run.Status.Phase, run.Status.Summary)
	}
	run.Spec.Terminate = true
	if err := h.c.Update(t.Context(), run); err != nil {
		t.Fatal(err)
	}
	run, after := h.reconcile()
	if run.Status.Phase != v1alpha1.AnalysisSuccessful || after != 0 || !strings.Contains(run.Status.Message, `dry-run metric "bad" Failed (ignored)`) {
		t.Fatalf("terminated: %s %q", run.Status.Phase, run.Status.Message)
	}
	// A completed run is left alone.
	h.clock = h.clock.Add(time.Hour)
	if again, _ := h.reconcile(); again.Status.MetricResults[0].Count != 1 {
		t.Errorf("completed run measured again")
	}
}

func TestReconcileBaseline(t *testing.T) {
	cmp := func(canary, baseline string) v1alpha1.Metric {
		return v1alpha1.Metric{Name: "latency",
			Provider: v1alpha1.MetricProvider{Prometheus: &v1alpha1.PrometheusProvider{Query: canary}},
			Baseline: &v1alpha1.BaselineComparison{Query: baseline, Window: dur(time.Minute), Step: dur(5 * time.Second)}}
	}
	// A range query over a minute at 5s has 13 samples per side (both
	// ends included): what Prometheus answers to vector(time() % 100) at
	// t = 0, 5, …, 60 is 0, 5, …, 60; the slower canary adds 1000.
	window := func(offset float64) measure.Value {
		v := measure.Value{Kind: measure.Matrix}
		for i := range 13 {
			v.Samples = append(v.Samples, offset+float64(5*i))
		}
		return v
	}
	for _, tc := range []struct {
		name, canary, baseline string
		phase                  v1alpha1.AnalysisPhase
		msg                    string
	}{
		{"slower", "vector(time() % 100 + 1000)", "vector(time() % 100)", v1alpha1.AnalysisFailed, "significantly higher"},
		{"same", "vector(time() % 100)", "vector(time() % 100)", v1alpha1.AnalysisSuccessful, "no significant increase"},
		{"no canary data", "absent_metric_xyz", "vector(1)", v1alpha1.AnalysisInconclusive, "no data for the canary"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, cmp(tc.canary, tc.baseline))
			h.prom.answers["vector(time() % 100)"] = answer{v: window(0)}
			h.prom.answers["vector(time() % 100 + 1000)"] = answer{v: window(1000)}
			run, _ := h.reconcile()
			if run.Status.Phase != tc.phase || !strings.Contains(run.Status.Message, tc.msg) {
				t.Fatalf("got %s %q, want %s %q", run.Status.Phase, run.Status.Message, tc.phase, tc.msg)
			}
			if v := run.Status.MetricResults[0].Measurements[0].Value; tc.phase != v1alpha1.AnalysisInconclusive && !strings.Contains(v, "n=13/13") {
				t.Errorf("value %q", v)
			}
			// Both queries are range queries over the comparison's window,
			// ending at the measurement's time.
			if len(h.prom.got) != 2 {
				t.Fatalf("%d queries, want canary and baseline", len(h.prom.got))
			}
			for i, want := range []string{tc.canary, tc.baseline} {
				r := h.prom.got[i]
				if r.Query != want || r.Range == nil || *r.Range != (prometheus.Window{Lookback: time.Minute, Step: 5 * time.Second}) ||
					!r.Time.Equal(h.clock) || r.Namespace != "ns" {
					t.Errorf("query %d: %+v, want %q over 1m at 5s, at %s in ns", i, r, want, h.clock)
				}
			}
		})
	}
}
