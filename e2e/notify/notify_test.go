//go:build e2e

package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/devenv/manifest"
	"github.com/sluicehq/sluice/e2e/framework"
	"github.com/sluicehq/sluice/notify"
)

const imageRepo = "openkruise-registry.cn-shanghai.cr.aliyuncs.com/openkruise/demo:"

// receiver is the local HTTP server the notifications go to. It records
// every request by path; a path under /slow/ answers only once release is
// closed.
type receiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	got     map[string][]received
	release chan struct{}
	once    sync.Once
}

type received struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{got: map[string][]received{}, release: make(chan struct{})}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got[req.URL.Path] = append(r.got[req.URL.Path], received{req.Header.Clone(), b})
		r.mu.Unlock()
		if strings.HasPrefix(req.URL.Path, "/slow/") {
			select {
			case <-r.release:
			case <-req.Context().Done():
			}
		}
	}))
	t.Cleanup(func() { r.unblock(); r.srv.Close() })
	return r
}

func (r *receiver) unblock() { r.once.Do(func() { close(r.release) }) }

// messages are the webhook messages received at path.
func (r *receiver) messages(t *testing.T, path string) []notify.Message {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []notify.Message
	for _, g := range r.got[path] {
		var m notify.Message
		if err := json.Unmarshal(g.body, &m); err != nil {
			t.Fatalf("%s: %s is not a message: %v", path, g.body, err)
		}
		out = append(out, m)
	}
	return out
}

func (r *receiver) slack(t *testing.T, path string) []string {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, g := range r.got[path] {
		var m struct{ Text, Channel string }
		if err := json.Unmarshal(g.body, &m); err != nil {
			t.Fatalf("%s: %s: %v", path, g.body, err)
		}
		out = append(out, m.Channel+" "+m.Text)
	}
	return out
}

// triggers lists the triggers of the messages at path, in order.
func (r *receiver) triggers(t *testing.T, path string) []string {
	var out []string
	for _, m := range r.messages(t, path) {
		out = append(out, string(m.Trigger))
	}
	return out
}

// fixture is one test's namespace with the notification configuration
// pointing at the receiver: service "hook" (a webhook whose URL and token
// come from the Secret), "slack" (a Slack webhook), "slow" (a webhook that
// answers only when the test says) and "down" (nothing listens).
type fixture struct {
	t   *testing.T
	ctx context.Context
	ns  string
	c   client.Client
	rcv *receiver
}

func newFixture(t *testing.T, rcv *receiver) *fixture {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	f := &fixture{t: t, ctx: ctx, ns: env.Namespace(t), c: env.Client, rcv: rcv}
	base := rcv.srv.URL + "/" + f.ns
	f.apply(&corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: notify.SecretName},
		StringData: map[string]string{"hook-url": base + "/hook", "token": "Bearer s3cret", "slack-url": base + "/slack"},
	})
	f.apply(&corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: notify.ConfigMapName},
		Data: map[string]string{
			"service.webhook.hook": "url: $hook-url\nheaders:\n- {name: Authorization, value: $token}\n",
			"service.slack":        "webhookURL: $slack-url\nchannel: '#releases'\n",
			"service.webhook.slow": "url: " + rcv.srv.URL + "/slow/" + f.ns + "\ntimeout: 5m\n",
			"service.webhook.down": "url: http://127.0.0.1:9/down\n",
		},
	})
	return f
}

func (f *fixture) apply(o client.Object) {
	f.t.Helper()
	if err := f.c.Create(f.ctx, o); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) create(docs ...string) {
	f.t.Helper()
	for _, d := range docs {
		if _, err := manifest.Create(f.ctx, f.c, f.ns, []byte(d)); err != nil {
			f.t.Fatal(err)
		}
	}
}

const deploymentYAML = `apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s, labels: {app: %[1]s}}
spec:
  replicas: 2
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec:
      containers:
      - {name: app, image: "` + imageRepo + `1.10.2", ports: [{containerPort: 8080}]}
`

// rolloutYAML is Rollout name of Deployment name, subscribed as subs say
// (trigger.service: recipients), with the strategy given.
func rolloutYAML(name string, subs map[string]string, strategy string) string {
	var ann strings.Builder
	for k, v := range subs {
		fmt.Fprintf(&ann, "    %s%s: %q\n", notify.SubscribePrefix, k, v)
	}
	return fmt.Sprintf(`apiVersion: rollouts.kruise.io/v1beta1
kind: Rollout
metadata:
  name: %s
  annotations:
%s
spec:
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: %s}
  strategy:
%s`, name, ann.String(), name, strategy)
}

// app creates Deployment and Rollout name and waits until it is Healthy.
func (f *fixture) app(name string, subs map[string]string, strategy string, extra ...string) {
	f.t.Helper()
	f.create(append(extra, fmt.Sprintf(deploymentYAML, name), rolloutYAML(name, subs, strategy))...)
	f.wait(name, "Healthy", func(r *v1beta1.Rollout) bool { return r.Status.Phase == v1beta1.RolloutPhaseHealthy })
}

func (f *fixture) release(name, image string, neverReady bool) {
	f.t.Helper()
	d := &appsv1.Deployment{}
	if err := f.c.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: name}, d); err != nil {
		f.t.Fatal(err)
	}
	patch := client.MergeFrom(d.DeepCopy())
	d.Spec.Template.Spec.Containers[0].Image = imageRepo + image
	if neverReady {
		d.Spec.Template.Labels[framework.NeverReadyLabel] = "true"
	}
	if err := f.c.Patch(f.ctx, d, patch); err != nil {
		f.t.Fatal(err)
	}
}

// approve sends what kubectl-kruise rollout approve sends.
func (f *fixture) approve(name string) {
	f.t.Helper()
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("rollouts.kruise.io/v1alpha1")
	u.SetKind("Rollout")
	u.SetNamespace(f.ns)
	u.SetName(name)
	body := []byte(`{"status":{"canaryStatus":{"currentStepState":"StepReady"}}}`)
	if err := f.c.Status().Patch(f.ctx, u, client.RawPatch(types.MergePatchType, body)); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) wait(name, what string, cond func(*v1beta1.Rollout) bool) *v1beta1.Rollout {
	f.t.Helper()
	r, err := framework.WaitRollout(f.ctx, f.c, client.ObjectKey{Namespace: f.ns, Name: name}, 3*time.Minute, cond)
	if err != nil {
		f.t.Fatalf("%s: waiting for %s: %v\nstatus.release %+v", name, what, err, r.Status.Release)
	}
	return r
}

func (f *fixture) waitHold(name string, reason v1beta1.HoldReason) *v1beta1.Rollout {
	return f.wait(name, "hold "+string(reason), func(r *v1beta1.Rollout) bool {
		h := r.Status.HoldOf()
		return h != nil && h.Reason == reason
	})
}

func (f *fixture) waitCompleted(name string) *v1beta1.Rollout {
	return f.wait(name, "the release completed", func(r *v1beta1.Rollout) bool {
		return r.Status.Phase == v1beta1.RolloutPhaseHealthy && r.Status.LastRelease != nil && r.Status.LastRelease.Outcome == v1beta1.OutcomeCompleted
	})
}

// waitMessages waits until at least n requests reached path.
func (f *fixture) waitMessages(path string, n int) {
	f.t.Helper()
	err := framework.Poll(f.ctx, 2*time.Minute, func() (bool, error) {
		f.rcv.mu.Lock()
		defer f.rcv.mu.Unlock()
		return len(f.rcv.got[path]) >= n, nil
	})
	if err != nil {
		f.rcv.mu.Lock()
		defer f.rcv.mu.Unlock()
		f.t.Fatalf("waiting for %d messages at %s: %v; got %d", n, path, err, len(f.rcv.got[path]))
	}
}

func (f *fixture) path(svc string) string { return "/" + f.ns + "/" + svc }

// waitRecorded waits until the Rollout's NotifiedAnnotation records n messages.
func (f *fixture) waitRecorded(name string, n int) notify.Notified {
	f.t.Helper()
	var got notify.Notified
	f.wait(name, fmt.Sprintf("%d notifications recorded", n), func(r *v1beta1.Rollout) bool {
		got = notify.ParseNotified(r.Annotations[notify.NotifiedAnnotation])
		return len(got) >= n
	})
	return got
}

func (f *fixture) events(name, reason string) []eventsv1.Event {
	f.t.Helper()
	var list eventsv1.EventList
	if err := f.c.List(f.ctx, &list, client.InNamespace(f.ns)); err != nil {
		f.t.Fatal(err)
	}
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.Kind == "Rollout" && e.Regarding.Name == name && e.Reason == reason {
			out = append(out, e)
		}
	}
	return out
}

const approvalSteps = `    canary:
      steps:
      - {replicas: 1, pause: {}}
      - {replicas: 100%}
`

// TestOnceAcrossRestart: a release that waits for approval is announced
// once to the webhook; the manager restarts while it waits and does not
// announce it again; after the approval the completion reaches the
// webhook and Slack, once each. The webhook message carries the
// documented body and CloudEvents headers, the token from the Secret.
// Not parallel: it restarts the manager every other test uses.
func TestOnceAcrossRestart(t *testing.T) {
	rcv := newReceiver(t)
	f := newFixture(t, rcv)
	subs := map[string]string{
		"on-waiting-for-person.hook": "",
		"on-completed.hook":          "",
		"on-completed.slack":         "#deploys",
	}
	f.app("web", subs, approvalSteps)
	f.app("marker", map[string]string{"on-waiting-for-person.hook": ""}, approvalSteps)

	f.release("web", "1.10.3", false)
	r := f.waitHold("web", v1beta1.HoldWaitingForApproval)
	f.waitMessages(f.path("hook"), 1)
	f.waitRecorded("web", 1)

	msgs := f.rcv.messages(t, f.path("hook"))
	m := msgs[0]
	hold := r.Status.HoldOf()
	if m.Trigger != notify.OnWaitingForPerson || m.Reason != "WaitingForApproval" || m.Rollout.Namespace != f.ns || m.Rollout.Name != "web" ||
		m.Rollout.UID != string(r.UID) || m.Step != 1 || m.Steps != 2 || m.Revision != r.Status.NewRevision() || !m.Time.Equal(hold.Since.Time) {
		t.Errorf("message %+v does not match the hold %+v", m, hold)
	}
	rcv.mu.Lock()
	h := rcv.got[f.path("hook")][0].header
	rcv.mu.Unlock()
	if h.Get("Authorization") != "Bearer s3cret" || h.Get("Ce-Specversion") != "1.0" || h.Get("Ce-Id") != m.ID ||
		h.Get("Ce-Type") != "dev.sluice.rollout.waiting-for-person" {
		t.Errorf("headers %v", h)
	}

	if err := env.Manager.Restart(f.ctx, env.ControlPlane); err != nil {
		t.Fatal(err)
	}
	// The restarted notifier reads every Rollout once at start (web, still
	// waiting, among them); marker's release comes after, to the same
	// single worker, so once its message arrived web has been looked at.
	f.release("marker", "1.10.3", false)
	f.waitHold("marker", v1beta1.HoldWaitingForApproval)
	f.waitMessages(f.path("hook"), 2)
	if got := f.rcv.triggers(t, f.path("hook")); len(got) != 2 {
		t.Fatalf("after the restart the webhook got %v, want web's and marker's waiting once each", got)
	}
	if ms := f.rcv.messages(t, f.path("hook")); ms[1].Rollout.Name != "marker" {
		t.Errorf("the second message is about %s, want marker: web's wait was sent again", ms[1].Rollout.Name)
	}

	f.approve("web")
	f.waitCompleted("web")
	f.waitMessages(f.path("hook"), 3)
	f.waitMessages(f.path("slack"), 1)
	f.waitRecorded("web", 3)
	var webTriggers []string
	for _, m := range f.rcv.messages(t, f.path("hook")) {
		if m.Rollout.Name == "web" {
			webTriggers = append(webTriggers, string(m.Trigger))
		}
	}
	if strings.Join(webTriggers, ",") != "on-waiting-for-person,on-completed" {
		t.Errorf("web's webhook messages %v, want each once", webTriggers)
	}
	sl := f.rcv.slack(t, f.path("slack"))
	if len(sl) != 1 || !strings.HasPrefix(sl[0], "#deploys Rollout "+f.ns+"/web: revision ") || !strings.Contains(sl[0], "completed and is now stable") {
		t.Errorf("slack got %q", sl)
	}
}

// TestEachTrigger brings real releases into each event people act on and
// checks the one message each sends.
func TestEachTrigger(t *testing.T) {
	rcv := newReceiver(t)
	cases := []struct {
		name, trigger string
		strategy      string
		extra         []string
		neverReady    bool
		check         func(t *testing.T, m notify.Message, r *v1beta1.Rollout)
	}{
		{name: "rolled-back", trigger: "on-rolled-back", strategy: analysed, extra: []string{checkTemplate("result[0] < 0", "vector(1)")},
			check: func(t *testing.T, m notify.Message, r *v1beta1.Rollout) {
				if m.Reason != "RolledBack" || m.Metric != "check" || m.Run == "" || m.Run != r.Status.LastRelease.Run || m.Revision != r.Status.LastRelease.Revision {
					t.Errorf("message %+v, last release %+v", m, r.Status.LastRelease)
				}
			}},
		{name: "analysis-error", trigger: "on-analysis-error", strategy: analysed, extra: []string{strings.Replace(framework.UnreachableTemplate, "name: error-rate}", "name: check}", 1)},
			check: func(t *testing.T, m notify.Message, r *v1beta1.Rollout) {
				if m.Reason != "AnalysisError" || m.Run == "" || m.Detail == "" {
					t.Errorf("message %+v", m)
				}
			}},
		{name: "deadline", trigger: "on-progress-deadline-exceeded", neverReady: true, strategy: `    progressDeadlineSeconds: 3
    canary:
      steps:
      - {replicas: 1, pause: {duration: 600}}
      - {replicas: 100%}
`, check: func(t *testing.T, m notify.Message, r *v1beta1.Rollout) {
			if m.Reason != "ProgressDeadlineExceeded" || m.Step != 1 || !strings.Contains(m.Summary, "progress deadline exceeded") {
				t.Errorf("message %+v", m)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, rcv)
			// Subscribed to every trigger: only the one the release meets fires.
			subs := map[string]string{}
			for _, tr := range notify.Triggers {
				subs[string(tr)+".hook"] = ""
			}
			f.app("app", subs, c.strategy, c.extra...)
			f.release("app", "1.10.3", c.neverReady)
			f.waitMessages(f.path("hook"), 1)
			f.waitRecorded("app", 1)
			r := f.wait("app", "status", func(*v1beta1.Rollout) bool { return true })
			got := f.rcv.messages(t, f.path("hook"))
			if len(got) != 1 || string(got[0].Trigger) != c.trigger {
				t.Fatalf("got %v, want one %s", f.rcv.triggers(t, f.path("hook")), c.trigger)
			}
			c.check(t, got[0], r)
		})
	}
}

const analysed = `    canary:
      steps:
      - {replicas: 1, pause: {duration: 600}, analysis: {templates: [{templateName: check}]}}
      - {replicas: 100%}
`

func checkTemplate(condition, query string) string {
	return fmt.Sprintf(`apiVersion: analysis.sluice.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: check}
spec:
  metrics:
  - name: check
    interval: 1s
    count: 1
    successCondition: %s
    provider: {prometheus: {query: %q}}
`, condition, query)
}

// TestReceiverSlowOrDown: a receiver that does not answer and one that is
// not there hold up nothing: the release waits for its approval, is
// approved and completes while the slow receiver still holds the request;
// the absent one is given up on after its attempts, which an Event on the
// Rollout and the manager's metric show.
func TestReceiverSlowOrDown(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t)
	f := newFixture(t, rcv)
	f.app("app", map[string]string{
		"on-waiting-for-person.slow": "",
		"on-waiting-for-person.down": "",
		"on-completed.hook":          "",
	}, approvalSteps)
	f.release("app", "1.10.3", false)
	f.waitHold("app", v1beta1.HoldWaitingForApproval)
	slow := "/slow/" + f.ns
	f.waitMessages(slow, 1) // the request is open, unanswered
	f.approve("app")
	f.waitCompleted("app")
	f.waitMessages(f.path("hook"), 1)
	rcv.mu.Lock()
	pending := len(rcv.got[slow])
	rcv.mu.Unlock()
	select {
	case <-rcv.release:
		t.Fatal("the slow receiver answered before the release completed")
	default:
	}
	if pending != 1 {
		t.Errorf("the slow receiver got %d requests, want the one it still holds", pending)
	}

	err := framework.Poll(f.ctx, time.Minute, func() (bool, error) { return len(f.events("app", "NotificationFailed")) > 0, nil })
	if err != nil {
		t.Fatalf("no NotificationFailed Event for the receiver that is down: %v", err)
	}
	if e := f.events("app", "NotificationFailed")[0]; !strings.Contains(e.Note, "on-waiting-for-person to down failed") {
		t.Errorf("event note %q", e.Note)
	}
	if v := managerMetric(t, `sluice_notifications_total{result="failed",service="down",trigger="on-waiting-for-person"}`); v < 1 {
		t.Errorf("sluice_notifications_total for the failure = %v", v)
	}
	rcv.unblock()
	got := f.waitRecorded("app", 3)
	results := map[notify.Result]int{}
	for _, rec := range got {
		results[rec.Result]++
	}
	if results[notify.ResultSent] != 2 || results[notify.ResultFailed] != 1 {
		t.Errorf("recorded %v", got)
	}
}

// managerMetric reads one sample from the manager's /metrics.
func managerMetric(t *testing.T, series string) float64 {
	t.Helper()
	text, err := env.Manager.Metrics(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			var v float64
			fmt.Sscan(rest, &v)
			return v
		}
	}
	return 0
}
