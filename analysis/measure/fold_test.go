package measure

import (
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluicehq/sluice/api/analysis/v1alpha1"
)

const (
	S = v1alpha1.AnalysisSuccessful
	F = v1alpha1.AnalysisFailed
	I = v1alpha1.AnalysisInconclusive
	E = v1alpha1.AnalysisError
	R = v1alpha1.AnalysisRunning
)

func i32(i int32) *int32 { return &i }

func measurement(p v1alpha1.AnalysisPhase) v1alpha1.Measurement {
	return v1alpha1.Measurement{Phase: p, Message: "m-" + string(p)}
}

// foldAll folds phases in order and returns the result after each.
func foldAll(l Limits, phases ...v1alpha1.AnalysisPhase) []v1alpha1.MetricResult {
	r := v1alpha1.MetricResult{Name: "m", Phase: v1alpha1.AnalysisPending}
	var out []v1alpha1.MetricResult
	for _, p := range phases {
		r = Fold(r, measurement(p), l)
		out = append(out, r)
	}
	return out
}

func TestFold(t *testing.T) {
	def := LimitsOf(&v1alpha1.Metric{}, false)
	three := def
	three.Count = 3
	tolerant := Limits{Count: 5, FailureLimit: 2, ConsecutiveErrorLimit: 4}
	streak := Limits{Count: 10, FailureLimit: 10, ConsecutiveFailureLimit: 2, ConsecutiveErrorLimit: 4, InconclusiveLimit: 5}
	incl := Limits{Count: 3, InconclusiveLimit: 1, ConsecutiveErrorLimit: 4}
	errs := Limits{Count: 1, ConsecutiveErrorLimit: 2}
	errs0 := Limits{Count: 1, ConsecutiveErrorLimit: 0}
	forever := Limits{Count: 0, FailureLimit: 1, ConsecutiveErrorLimit: 4}

	for _, tc := range []struct {
		name   string
		limits Limits
		in     []v1alpha1.AnalysisPhase
		want   []v1alpha1.AnalysisPhase // phase after each measurement
		msg    string                   // in the final message
	}{
		{"one success", def, []v1alpha1.AnalysisPhase{S}, []v1alpha1.AnalysisPhase{S}, "1 of 1 measurements passed; last: m-Successful"},
		{"one failure", def, []v1alpha1.AnalysisPhase{F}, []v1alpha1.AnalysisPhase{F}, "m-Failed (1 of 1 measurements failed, failureLimit 0)"},
		{"one inconclusive", def, []v1alpha1.AnalysisPhase{I}, []v1alpha1.AnalysisPhase{I}, "inconclusiveLimit 0"},
		{"count 3", three, []v1alpha1.AnalysisPhase{S, S, S}, []v1alpha1.AnalysisPhase{R, R, S}, "3 of 3"},
		{"count 3, fails at once", three, []v1alpha1.AnalysisPhase{S, F}, []v1alpha1.AnalysisPhase{R, F}, "1 of 2 measurements failed"},
		{"errors do not count", three, []v1alpha1.AnalysisPhase{S, E, S, E, S}, []v1alpha1.AnalysisPhase{R, R, R, R, S}, "3 of 3"},
		{"failures tolerated", tolerant, []v1alpha1.AnalysisPhase{F, S, F, S, S}, []v1alpha1.AnalysisPhase{R, R, R, R, S}, "3 of 5"},
		{"failure limit exceeded", tolerant, []v1alpha1.AnalysisPhase{F, F, S, F}, []v1alpha1.AnalysisPhase{R, R, R, F}, "3 of 4 measurements failed, failureLimit 2"},
		{"consecutive failures", streak, []v1alpha1.AnalysisPhase{F, S, F, F}, []v1alpha1.AnalysisPhase{R, R, R, F}, "2 failed in a row, consecutiveFailureLimit 2"},
		{"inconclusive breaks a failure streak", streak, []v1alpha1.AnalysisPhase{F, I, F, S}, []v1alpha1.AnalysisPhase{R, R, R, R}, ""},
		{"inconclusive tolerated", incl, []v1alpha1.AnalysisPhase{I, S, S}, []v1alpha1.AnalysisPhase{R, R, S}, "2 of 3"},
		{"inconclusive limit", incl, []v1alpha1.AnalysisPhase{I, I}, []v1alpha1.AnalysisPhase{R, I}, "2 inconclusive, inconclusiveLimit 1"},
		{"errors up to the limit", errs, []v1alpha1.AnalysisPhase{E, E, E}, []v1alpha1.AnalysisPhase{R, R, E}, "m-Error (3 errors in a row, consecutiveErrorLimit 2)"},
		{"errors reset by a result", errs, []v1alpha1.AnalysisPhase{E, E, S}, []v1alpha1.AnalysisPhase{R, R, S}, "1 of 1"},
		{"error limit 0", errs0, []v1alpha1.AnalysisPhase{E}, []v1alpha1.AnalysisPhase{E}, "1 errors in a row"},
		{"default error limit is 4", def, []v1alpha1.AnalysisPhase{E, E, E, E, E}, []v1alpha1.AnalysisPhase{R, R, R, R, E}, "consecutiveErrorLimit 4"},
		{"tolerated failures alone never pass", Limits{Count: 2, FailureLimit: 5, ConsecutiveErrorLimit: 4}, []v1alpha1.AnalysisPhase{F, F}, []v1alpha1.AnalysisPhase{R, I}, "no measurement passed"},
		{"tolerated inconclusive alone never pass", Limits{Count: 1, InconclusiveLimit: 3, ConsecutiveErrorLimit: 4}, []v1alpha1.AnalysisPhase{I}, []v1alpha1.AnalysisPhase{I}, "no measurement passed"},
		{"until terminated", forever, []v1alpha1.AnalysisPhase{S, S, S, F, S, F}, []v1alpha1.AnalysisPhase{R, R, R, R, R, F}, "2 of 6"},
		{"completed stays", def, []v1alpha1.AnalysisPhase{F, S}, []v1alpha1.AnalysisPhase{F, F}, "1 of 1 measurements failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := foldAll(tc.limits, tc.in...)
			for i, r := range rs {
				if r.Phase != tc.want[i] {
					t.Fatalf("after %v: phase %s, want %s (%s)", tc.in[:i+1], r.Phase, tc.want[i], r.Message)
				}
			}
			last := rs[len(rs)-1]
			if !strings.Contains(last.Message, tc.msg) {
				t.Errorf("message %q, want %q in it", last.Message, tc.msg)
			}
		})
	}
}

func TestFoldCounters(t *testing.T) {
	l := Limits{Count: 0, FailureLimit: 100, ConsecutiveErrorLimit: 100, InconclusiveLimit: 100}
	rs := foldAll(l, S, F, F, E, E, I, S, E)
	r := rs[len(rs)-1]
	want := v1alpha1.MetricResult{Count: 5, Successful: 2, Failed: 2, Inconclusive: 1, Error: 3, ConsecutiveError: 1, ConsecutiveFailed: 0}
	if r.Count != want.Count || r.Successful != want.Successful || r.Failed != want.Failed || r.Inconclusive != want.Inconclusive ||
		r.Error != want.Error || r.ConsecutiveError != want.ConsecutiveError || r.ConsecutiveFailed != want.ConsecutiveFailed {
		t.Errorf("counters %+v", r)
	}
	if r.LastError != "m-Error" {
		t.Errorf("lastError %q", r.LastError)
	}
	if rs[2].ConsecutiveFailed != 2 || rs[4].ConsecutiveError != 2 || rs[4].ConsecutiveFailed != 2 {
		t.Errorf("consecutive counters: %+v / %+v", rs[2], rs[4])
	}
}

func TestFoldKeepsLastTen(t *testing.T) {
	r := v1alpha1.MetricResult{Phase: R}
	l := Limits{ConsecutiveErrorLimit: 4}
	for i := range 25 {
		m := measurement(S)
		m.Value = fmt.Sprint(i)
		before := append([]v1alpha1.Measurement(nil), r.Measurements...)
		next := Fold(r, m, l)
		if len(r.Measurements) != len(before) {
			t.Fatal("Fold modified its input")
		}
		r = next
	}
	if len(r.Measurements) != HistoryLimit || r.Measurements[0].Value != "15" || r.Measurements[9].Value != "24" {
		t.Errorf("history %d: first %s last %s", len(r.Measurements), r.Measurements[0].Value, r.Measurements[len(r.Measurements)-1].Value)
	}
	if r.Count != 25 {
		t.Errorf("count %d", r.Count)
	}
}

func TestTerminate(t *testing.T) {
	l := Limits{Count: 0, FailureLimit: 3, ConsecutiveErrorLimit: 4}
	for _, tc := range []struct {
		name string
		in   []v1alpha1.AnalysisPhase
		want v1alpha1.AnalysisPhase
		msg  string
	}{
		{"never measured", nil, I, "terminated before any measurement"},
		{"measured fine", []v1alpha1.AnalysisPhase{S, F, S}, S, "2 of 3 measurements passed"},
		{"only errors", []v1alpha1.AnalysisPhase{E}, I, "terminated before any measurement"},
		{"already failed", []v1alpha1.AnalysisPhase{F, F, F, F}, F, "failureLimit 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := v1alpha1.MetricResult{Phase: R}
			if rs := foldAll(l, tc.in...); len(rs) > 0 {
				r = rs[len(rs)-1]
			}
			got := Terminate(r)
			if got.Phase != tc.want || !strings.Contains(got.Message, tc.msg) {
				t.Errorf("got %s %q, want %s %q", got.Phase, got.Message, tc.want, tc.msg)
			}
		})
	}
}

func TestLimitsOf(t *testing.T) {
	iv := &metav1.Duration{Duration: time.Minute}
	for _, tc := range []struct {
		name       string
		m          v1alpha1.Metric
		background bool
		want       Limits
	}{
		{"defaults", v1alpha1.Metric{}, false, Limits{Count: 1, ConsecutiveErrorLimit: 4}},
		{"background without interval measures once", v1alpha1.Metric{}, true, Limits{Count: 1, ConsecutiveErrorLimit: 4}},
		{"background with interval runs until terminated", v1alpha1.Metric{Interval: iv}, true, Limits{Count: 0, ConsecutiveErrorLimit: 4}},
		{"step with interval", v1alpha1.Metric{Interval: iv}, false, Limits{Count: 1, ConsecutiveErrorLimit: 4}},
		{"explicit", v1alpha1.Metric{Interval: iv, Count: i32(5), FailureLimit: i32(2), ConsecutiveFailureLimit: i32(3), ConsecutiveErrorLimit: i32(0), InconclusiveLimit: i32(1)}, true,
			Limits{Count: 5, FailureLimit: 2, ConsecutiveFailureLimit: 3, ConsecutiveErrorLimit: 0, InconclusiveLimit: 1}},
	} {
		if got := LimitsOf(&tc.m, tc.background); got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestNextAt(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *metav1.Time { t := metav1.NewTime(t0.Add(d)); return &t }
	dur := func(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }
	done := func(p v1alpha1.AnalysisPhase, end time.Duration) v1alpha1.Measurement {
		return v1alpha1.Measurement{Phase: p, StartedAt: at(end - time.Second), FinishedAt: at(end)}
	}
	for _, tc := range []struct {
		name   string
		m      v1alpha1.Metric
		r      v1alpha1.MetricResult
		want   time.Duration
		wantOK bool
	}{
		{"first, no delay", v1alpha1.Metric{}, v1alpha1.MetricResult{}, 0, true},
		{"first, initial delay", v1alpha1.Metric{InitialDelay: dur(30 * time.Second)}, v1alpha1.MetricResult{}, 30 * time.Second, true},
		{"interval from the end of the last", v1alpha1.Metric{Interval: dur(time.Minute)},
			v1alpha1.MetricResult{Phase: R, Measurements: []v1alpha1.Measurement{done(S, 5*time.Second)}}, 65 * time.Second, true},
		{"error retried within 10s", v1alpha1.Metric{Interval: dur(5 * time.Minute)},
			v1alpha1.MetricResult{Phase: R, Measurements: []v1alpha1.Measurement{done(E, 5*time.Second)}}, 15 * time.Second, true},
		{"error retried at a short interval", v1alpha1.Metric{Interval: dur(2 * time.Second)},
			v1alpha1.MetricResult{Phase: R, Measurements: []v1alpha1.Measurement{done(E, 5*time.Second)}}, 7 * time.Second, true},
		{"error without interval", v1alpha1.Metric{},
			v1alpha1.MetricResult{Phase: R, Measurements: []v1alpha1.Measurement{done(E, 5*time.Second)}}, 15 * time.Second, true},
		{"no finish time uses the start", v1alpha1.Metric{Interval: dur(time.Minute)},
			v1alpha1.MetricResult{Phase: R, Measurements: []v1alpha1.Measurement{{Phase: S, StartedAt: at(time.Second)}}}, 61 * time.Second, true},
		{"completed", v1alpha1.Metric{Interval: dur(time.Minute)}, v1alpha1.MetricResult{Phase: S}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := NextAt(tc.r, &tc.m, t0)
			if ok != tc.wantOK || (ok && !got.Equal(t0.Add(tc.want))) {
				t.Errorf("got %v %v, want +%v %v", got.Sub(t0), ok, tc.want, tc.wantOK)
			}
		})
	}
}

// BenchmarkFold is the cost of folding one measurement into a full
// history: it runs once per measurement per metric.
func BenchmarkFold(b *testing.B) {
	r := foldAll(Limits{Count: 0, FailureLimit: 1 << 30, ConsecutiveErrorLimit: 4}, S, S, S, S, S, S, S, S, S, S)[9]
	m := measurement(S)
	l := Limits{Count: 0, FailureLimit: 1 << 30, ConsecutiveErrorLimit: 4}
	b.ReportAllocs()
	for b.Loop() {
		_ = Fold(r, m, l)
	}
}
