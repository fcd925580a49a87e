package notify

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

var t0 = time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)

func rolloutWith(rel *v1beta1.ReleaseStatus, last *v1beta1.ReleaseRecord) *v1beta1.Rollout {
	one := intstr.FromInt32(1)
	return &v1beta1.Rollout{
		Spec: v1beta1.RolloutSpec{Strategy: v1beta1.RolloutStrategy{Canary: &v1beta1.CanaryStrategy{
			Steps: []v1beta1.CanaryStep{{Replicas: &one}, {Replicas: &one}, {Replicas: &one}},
		}}},
		Status: v1beta1.RolloutStatus{
			CanaryStatus: &v1beta1.CanaryStatus{CommonStatus: v1beta1.CommonStatus{StableRevision: "old"}, CanaryRevision: "new"},
			Release:      rel, LastRelease: last,
		},
	}
}

func hold(reason v1beta1.HoldReason, step int32, since time.Time) *v1beta1.ReleaseStatus {
	return &v1beta1.ReleaseStatus{Started: metav1.NewTime(t0), Hold: &v1beta1.Hold{Reason: reason, Step: step, Since: metav1.NewTime(since), Message: "why"}}
}

func TestEventsOfHolds(t *testing.T) {
	for reason, want := range map[v1beta1.HoldReason]Trigger{
		v1beta1.HoldWaitingForApproval:       OnWaitingForPerson,
		v1beta1.HoldAnalysisInconclusive:     OnWaitingForPerson,
		v1beta1.HoldAnalysisFailedPaused:     OnWaitingForPerson,
		v1beta1.HoldAnalysisError:            OnAnalysisError,
		v1beta1.HoldProgressDeadlineExceeded: OnProgressDeadlineExceeded,
		v1beta1.HoldWaitingForPods:           "",
		v1beta1.HoldAnalysisRunning:          "",
		v1beta1.HoldPausedBySpec:             "",
		v1beta1.HoldAborted:                  "", // told by the outcome
	} {
		ev := EventsOf(rolloutWith(hold(reason, 2, t0.Add(time.Minute)), nil))
		if want == "" {
			if len(ev) != 0 {
				t.Errorf("%s: got %+v, want no event", reason, ev)
			}
			continue
		}
		if len(ev) != 1 || ev[0].Trigger != want {
			t.Fatalf("%s: got %+v, want one %s", reason, ev, want)
		}
		e := ev[0]
		if e.Step != 2 || e.Steps != 3 || e.Revision != "new" || e.StableRevision != "old" || e.Reason != string(reason) || e.Detail != "why" {
			t.Errorf("%s: event %+v", reason, e)
		}
	}
}

func TestEventKeys(t *testing.T) {
	key := func(rel *v1beta1.ReleaseStatus) string { return EventsOf(rolloutWith(rel, nil))[0].Key }
	a := key(hold(v1beta1.HoldWaitingForApproval, 1, t0.Add(time.Minute)))
	if a != key(hold(v1beta1.HoldWaitingForApproval, 1, t0.Add(time.Minute))) {
		t.Error("the same status gives another key")
	}
	if a == key(hold(v1beta1.HoldWaitingForApproval, 2, t0.Add(time.Minute))) {
		t.Error("another step gives the same key")
	}
	if a == key(hold(v1beta1.HoldWaitingForApproval, 1, t0.Add(2*time.Minute))) {
		t.Error("the same hold begun again gives the same key")
	}
	later := hold(v1beta1.HoldWaitingForApproval, 1, t0.Add(time.Minute))
	later.Started = metav1.NewTime(t0.Add(time.Second))
	if a == key(later) {
		t.Error("another release gives the same key")
	}
}

func TestEventsOfOutcomes(t *testing.T) {
	started := metav1.NewTime(t0)
	for outcome, want := range map[v1beta1.ReleaseOutcome]Trigger{
		v1beta1.OutcomeCompleted:  OnCompleted,
		v1beta1.OutcomePromoted:   OnCompleted,
		v1beta1.OutcomeRolledBack: OnRolledBack,
		v1beta1.OutcomeAborted:    OnAborted,
		v1beta1.OutcomeCancelled:  "",
	} {
		last := &v1beta1.ReleaseRecord{Outcome: outcome, Revision: "r1", StableRevision: "r0", Step: 2, Started: &started,
			Ended: metav1.NewTime(t0.Add(time.Hour)), Run: "run", Metric: "errors", Message: "0.3 > 0.1"}
		// Held after the rollback: the hold brings no event of its own.
		ev := EventsOf(rolloutWith(hold(v1beta1.HoldAborted, 2, t0), last))
		if want == "" {
			if len(ev) != 0 {
				t.Errorf("%s: got %+v", outcome, ev)
			}
			continue
		}
		if len(ev) != 1 || ev[0].Trigger != want || ev[0].Revision != "r1" || ev[0].StableRevision != "r0" || !ev[0].At.Equal(t0.Add(time.Hour)) {
			t.Fatalf("%s: got %+v", outcome, ev)
		}
		m := NewMessage(RolloutRef{Namespace: "shop", Name: "web"}, ev[0])
		if want == OnRolledBack && m.Summary != "Rollout shop/web: revision r1 was rolled back at step 2/3: its analysis failed (analysis run run, metric errors): 0.3 > 0.1" {
			t.Errorf("summary %q", m.Summary)
		}
	}
}

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig("team", map[string]string{
		"service.webhook.ops": "url: $ops-url\nheaders:\n- name: Authorization\n  value: $token\n",
		"service.slack":       "webhookURL: https://hooks.slack.test/T/B/X\nchannel: '#rel'\n",
		"subscriptions":       "- recipients: [slack:#a, ops]\n  triggers: [on-rolled-back]\n",
	})
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Services["ops"]; s.Kind != KindWebhook || s.URL != "$ops-url" || s.Namespace != "team" || len(s.Headers) != 1 {
		t.Errorf("ops: %+v", s)
	}
	if s := c.Services["slack"]; s.Kind != KindSlack || s.Channel != "#rel" {
		t.Errorf("slack: %+v", s)
	}
	ann := map[string]string{
		SubscribePrefix + "on-rolled-back.ops":   "",
		SubscribePrefix + "on-rolled-back.slack": "#b;#c",
		SubscribePrefix + "on-completed.slack":   "",
	}
	got := Subscribed(OnRolledBack, ann, c)
	want := []Destination{{Service: "ops"}, {Service: "slack", Recipient: "#b"}, {Service: "slack", Recipient: "#c"}, {Service: "slack", Recipient: "#a"}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("got %v, want %v", got, want)
		}
	}

	for data, wantErr := range map[string]string{
		"service.webhook.x": "data[service.webhook.x]: url is required",
		"service.pager.x":   `data[service.pager.x]: unknown service kind "pager"`,
		"subscriptions":     `data[subscriptions][0].triggers[0]: unknown trigger "on-everything"`,
	} {
		v := "url: ''"
		if data == "subscriptions" {
			v = "- recipients: [x]\n  triggers: [on-everything]"
		}
		if _, err := ParseConfig("team", map[string]string{data: v}); err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%s: got %v, want %q", data, err, wantErr)
		}
	}
	if _, err := ParseConfig("team", map[string]string{"service.webhook.x": "url: ftp://x"}); err == nil || !strings.Contains(err.Error(), "not an http(s) URL") {
		t.Errorf("ftp URL: %v", err)
	}
}

func TestTargetResolvesSecrets(t *testing.T) {
	svc := Service{Kind: KindWebhook, Name: "ops", URL: "$url", Headers: []Header{{Name: "Authorization", Value: "$token"}, {Name: "X-Team", Value: "shop"}}}
	tg, err := target(svc, Destination{Service: "ops"}, map[string][]byte{"url": []byte("https://x.test/h\n"), "token": []byte("Bearer s3")})
	if err != nil {
		t.Fatal(err)
	}
	if tg.URL != "https://x.test/h" || tg.Headers.Get("Authorization") != "Bearer s3" || tg.Headers.Get("X-Team") != "shop" {
		t.Errorf("target %+v", tg)
	}
	if _, err := target(svc, Destination{Service: "ops"}, map[string][]byte{"url": []byte("https://x.test")}); err == nil || !strings.Contains(err.Error(), `no key "token"`) {
		t.Errorf("missing key: %v", err)
	}
}

func TestNotifiedKeepsNewest(t *testing.T) {
	n := Notified{}
	for i := range maxRecords + 5 {
		n[string(rune('A'+i))] = Record{At: t0.Add(time.Duration(i) * time.Second), Result: ResultSent}
	}
	back := ParseNotified(n.String())
	if len(back) != maxRecords {
		t.Fatalf("%d records kept", len(back))
	}
	if _, ok := back["A"]; ok {
		t.Error("the oldest record was kept")
	}
	if _, ok := back[string(rune('A'+maxRecords+4))]; !ok {
		t.Error("the newest record was dropped")
	}
	if len(ParseNotified("not json")) != 0 {
		t.Error("garbage reads as records")
	}
}

func TestSendWebhookAndSlack(t *testing.T) {
	var mu sync.Mutex
	got := map[string]*http.Request{}
	bodies := map[string][]byte{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got[r.URL.Path], bodies[r.URL.Path] = r, b
		mu.Unlock()
	}))
	defer srv.Close()
	e := EventsOf(rolloutWith(hold(v1beta1.HoldWaitingForApproval, 1, t0), nil))[0]
	m := NewMessage(RolloutRef{Namespace: "shop", Name: "web", UID: "u1"}, e)
	ctx := context.Background()
	if err := Send(ctx, srv.Client(), Target{Kind: KindWebhook, URL: srv.URL + "/hook", Headers: http.Header{"Authorization": {"Bearer x"}}}, m); err != nil {
		t.Fatal(err)
	}
	if err := Send(ctx, srv.Client(), Target{Kind: KindSlack, URL: srv.URL + "/slack", Channel: "#default", Recipient: "#rel"}, m); err != nil {
		t.Fatal(err)
	}
	h := got["/hook"]
	if h.Header.Get("Authorization") != "Bearer x" || h.Header.Get("Ce-Type") != "dev.sluice.rollout.waiting-for-person" ||
		h.Header.Get("Ce-Id") != e.Key || h.Header.Get("Ce-Source") != "/apis/rollouts.kruise.io/v1beta1/namespaces/shop/rollouts/web" {
		t.Errorf("webhook headers %v", h.Header)
	}
	var back Message
	if err := json.Unmarshal(bodies["/hook"], &back); err != nil || back.ID != e.Key || back.Trigger != OnWaitingForPerson || back.Rollout.UID != "u1" || back.Step != 1 {
		t.Errorf("webhook body %s (%v)", bodies["/hook"], err)
	}
	var sl struct{ Text, Channel string }
	if err := json.Unmarshal(bodies["/slack"], &sl); err != nil || sl.Channel != "#rel" || sl.Text != m.Summary {
		t.Errorf("slack body %s (%v)", bodies["/slack"], err)
	}
}

// TestQueueRetries: a failing receiver is retried with backoff up to the
// attempts, a 4xx is not retried, and Done hears of each job once.
func TestQueueRetries(t *testing.T) {
	var calls sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, _ := calls.LoadOrStore(r.URL.Path, new(atomic.Int32))
		n := v.(*atomic.Int32).Add(1)
		switch {
		case r.URL.Path == "/flaky" && n < 3, r.URL.Path == "/down":
			w.WriteHeader(http.StatusServiceUnavailable)
		case r.URL.Path == "/bad":
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	defer srv.Close()
	type end struct {
		r   Result
		err error
	}
	ends := make(chan map[string]end, 10)
	q := &Queue{Attempts: 4, Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, HTTP: srv.Client(),
		Done: func(_ context.Context, j *Job, r Result, err error) { ends <- map[string]end{j.Key: {r, err}} }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = q.Start(ctx) }()
	for _, p := range []string{"/flaky", "/down", "/bad"} {
		u := srv.URL + p
		if !q.Enqueue(&Job{Key: p, Resolve: func(context.Context) (Target, error) { return Target{Kind: KindWebhook, URL: u}, nil }}) {
			t.Fatal("queue full")
		}
	}
	results := map[string]end{}
	for range 3 {
		select {
		case m := <-ends:
			for k, v := range m {
				results[k] = v
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("only %v ended", results)
		}
	}
	count := func(p string) int32 { v, _ := calls.Load(p); return v.(*atomic.Int32).Load() }
	if r := results["/flaky"]; r.r != ResultSent || count("/flaky") != 3 {
		t.Errorf("flaky: %v after %d calls", r, count("/flaky"))
	}
	if r := results["/down"]; r.r != ResultFailed || count("/down") != 4 {
		t.Errorf("down: %v after %d calls, want failed after 4", r, count("/down"))
	}
	if r := results["/bad"]; r.r != ResultFailed || count("/bad") != 1 {
		t.Errorf("bad: %v after %d calls, want failed after 1", r, count("/bad"))
	}
}

func TestQueueCapacity(t *testing.T) {
	q := &Queue{Capacity: 2}
	j := func() *Job { return &Job{} }
	if !q.Enqueue(j()) || !q.Enqueue(j()) {
		t.Fatal("refused below capacity")
	}
	if q.Enqueue(j()) {
		t.Error("took a job over capacity")
	}
}
