package simulator

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func pod(name, image string, labels map[string]string) *corev1.Pod {
	if labels == nil {
		labels = map[string]string{}
	}
	labels["pod-template-hash"] = "abc"
	start := metav1.NewTime(t0)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID("uid-" + name), Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Image: image}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, StartTime: &start},
	}
}

func TestScenarioOf(t *testing.T) {
	for _, tc := range []struct {
		p    *corev1.Pod
		want Scenario
	}{
		{pod("a", "registry:5000/app:v2-errors", nil), Errors},
		{pod("a", "app:slow", nil), Slow},
		{pod("a", "app:1.2", nil), Healthy},
		{pod("a", "app", nil), Healthy},
		{pod("a", "registry:5000/app", nil), Healthy},
		{pod("a", "app:v1-slow", map[string]string{ScenarioLabel: "silent"}), Silent},
		{pod("a", "app:v1-slow", map[string]string{ScenarioLabel: "bogus"}), Slow},
	} {
		if got := ScenarioOf(tc.p); got != tc.want {
			t.Errorf("%s %v: got %s, want %s", tc.p.Spec.Containers[0].Image, tc.p.Labels, got, tc.want)
		}
	}
}

type sample struct {
	ok, errs       float64
	count          uint64
	sum            float64
	under100ms     uint64
	hasHistogram   bool
	hasHashAndCode bool
}

// gather scrapes at now and returns each pod's numbers.
func gather(t *testing.T, s *Simulator, now time.Time) map[string]sample {
	t.Helper()
	s.o.Now = func() time.Time { return now }
	mfs, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]sample{}
	label := func(m *dto.Metric, name string) string {
		for _, l := range m.GetLabel() {
			if l.GetName() == name {
				return l.GetValue()
			}
		}
		return ""
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			p := label(m, "pod")
			s := out[p]
			switch mf.GetName() {
			case "http_requests_total":
				s.hasHashAndCode = label(m, "pod_template_hash") == "abc" && label(m, "namespace") == "ns"
				if label(m, "code") == "500" {
					s.errs = m.GetCounter().GetValue()
				} else {
					s.ok = m.GetCounter().GetValue()
				}
			case "http_request_duration_seconds":
				h := m.GetHistogram()
				s.hasHistogram, s.count, s.sum = true, h.GetSampleCount(), h.GetSampleSum()
				for _, b := range h.GetBucket() {
					if b.GetUpperBound() == 0.1 {
						s.under100ms = b.GetCumulativeCount()
					}
				}
			}
			out[p] = s
		}
	}
	return out
}

func newSim(t *testing.T, pods ...*corev1.Pod) *Simulator {
	var objs []runtime.Object
	for _, p := range pods {
		objs = append(objs, p)
	}
	s := New(fake.NewClientset(objs...), Options{})
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestScenarios(t *testing.T) {
	s := newSim(t,
		pod("healthy", "app:v1", nil), pod("errors", "app:v2-errors", nil), pod("slow", "app:v2-slow", nil),
		pod("silent", "app:v2-silent", nil), pod("idle", "app:v2-idle", nil), pod("flapping", "app:v2-flapping", nil))
	got := gather(t, s, t0.Add(100*time.Second))

	h := got["healthy"]
	if want := 100.0 * defaultRPS; h.ok < 0.8*want || h.ok > 1.2*want || h.errs != 0 || !h.hasHistogram || !h.hasHashAndCode || h.count != uint64(h.ok) {
		t.Errorf("healthy: %+v", h)
	}
	if e := got["errors"]; e.errs/(e.ok+e.errs) < 0.15 || e.errs/(e.ok+e.errs) > 0.25 {
		t.Errorf("errors: ratio %.3f (%+v)", e.errs/(e.ok+e.errs), e)
	}
	hm, sm := h.sum/float64(h.count), got["slow"].sum/float64(got["slow"].count)
	if hm < 0.04 || hm > 0.065 || sm < 2.5*hm || sm > 3.5*hm {
		t.Errorf("mean latency healthy %.3f slow %.3f", hm, sm)
	}
	if float64(h.under100ms)/float64(h.count) < 0.95 || float64(got["slow"].under100ms)/float64(got["slow"].count) > 0.2 {
		t.Errorf("under 100ms: healthy %d/%d slow %d/%d", h.under100ms, h.count, got["slow"].under100ms, got["slow"].count)
	}
	if _, ok := got["silent"]; ok {
		t.Error("silent pod has series")
	}
	if i, ok := got["idle"]; !ok || i.ok != 0 || i.count != 0 || !i.hasHistogram {
		t.Errorf("idle: %v %+v", ok, i)
	}
	// Flapping: healthy 0-20s, errors 20-40s, ...: errors in between.
	if f := got["flapping"]; f.errs == 0 || f.errs/(f.ok+f.errs) > 0.15 {
		t.Errorf("flapping: %+v", f)
	}
	if f := gather(t, newSim(t, pod("flapping", "app:v2-flapping", nil)), t0.Add(20*time.Second)); f["flapping"].errs != 0 {
		t.Errorf("flapping is healthy for its first period: %+v", f["flapping"])
	}
}

func TestDeterministic(t *testing.T) {
	a := gather(t, newSim(t, pod("p", "app:v2-errors", nil)), t0.Add(30*time.Second))
	s := newSim(t, pod("p", "app:v2-errors", nil))
	for i := 1; i <= 30; i += 7 { // scraped often or once, the same numbers
		gather(t, s, t0.Add(time.Duration(i)*time.Second))
	}
	b := gather(t, s, t0.Add(30*time.Second))
	if a["p"] != b["p"] {
		t.Errorf("%+v != %+v", a["p"], b["p"])
	}
	if later := gather(t, s, t0.Add(31*time.Second)); later["p"].count <= b["p"].count {
		t.Error("counters do not grow")
	}
	// Seen late, a pod's history is cut to the last 10 minutes.
	late := gather(t, newSim(t, pod("p", "app:v1", nil)), t0.Add(24*time.Hour))["p"]
	if want := uint64(600 * defaultRPS); late.count < want*4/5 || late.count > want*6/5 {
		t.Errorf("late pod: %d requests, want about %d", late.count, want)
	}
}

func TestServe(t *testing.T) {
	s := newSim(t, pod("p", "app:v1", nil))
	addr, err := s.Serve(t.Context(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), `http_requests_total{code="200",namespace="ns",pod="p",pod_template_hash="abc"}`) {
		t.Errorf("body:\n%s", body)
	}
}

// A pod labelled with a scenario from a given time plays its image's
// scenario until then, and the label's from the first whole second of its
// life that begins at or after it.
func TestScenarioFrom(t *testing.T) {
	p := pod("switch", "app:v2", map[string]string{ScenarioLabel: "errors"})
	p.Annotations = map[string]string{ScenarioFromAnnotation: t0.Add(49500 * time.Millisecond).Format(time.RFC3339Nano)}
	s := newSim(t, p)
	before := gather(t, s, t0.Add(50*time.Second))["switch"]
	if before.errs != 0 || before.ok == 0 {
		t.Errorf("before the switch: %+v", before)
	}
	after := gather(t, s, t0.Add(100*time.Second))["switch"]
	errs, all := after.errs-before.errs, after.errs+after.ok-before.errs-before.ok
	if errs/all < 0.15 || errs/all > 0.25 {
		t.Errorf("after the switch: error ratio %.3f (%+v)", errs/all, after)
	}
	// Scraped once or often, the same numbers.
	once := gather(t, newSim(t, p), t0.Add(100*time.Second))["switch"]
	if once != after {
		t.Errorf("%+v != %+v", once, after)
	}

	// Silent from a time: series until then, none after.
	q := pod("quiet", "app:v2", map[string]string{ScenarioLabel: "silent"})
	q.Annotations = map[string]string{ScenarioFromAnnotation: t0.Add(50 * time.Second).Format(time.RFC3339)}
	s = newSim(t, q)
	if _, ok := gather(t, s, t0.Add(40*time.Second))["quiet"]; !ok {
		t.Error("silent too early")
	}
	if _, ok := gather(t, s, t0.Add(60*time.Second))["quiet"]; ok {
		t.Error("not silent after the switch")
	}

	// Without the label, or with a time that does not parse, nothing switches.
	for _, tc := range []struct {
		labels map[string]string
		at     string
		want   Scenario
	}{
		{nil, t0.Format(time.RFC3339), Healthy},
		{map[string]string{ScenarioLabel: "errors"}, "soon", Errors},
	} {
		r := pod("r", "app:v2", tc.labels)
		r.Annotations = map[string]string{ScenarioFromAnnotation: tc.at}
		if got := scheduleOf(r); got.at(t0.Add(-time.Hour)) != tc.want || got.at(t0.Add(time.Hour)) != tc.want {
			t.Errorf("%v %q: %+v, want %s throughout", tc.labels, tc.at, got, tc.want)
		}
	}
}
