//go:build e2e

package analysis_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/devenv/manifest"
	"github.com/sluicehq/sluice/e2e/framework"
	"github.com/sluicehq/sluice/rollout"
)

// The guide's Example 1 with an error-rate analysis after every step and
// no manual pause, as docs/examples has it (and the demo runs it): the
// simulator serves 20% errors for images tagged -errors, none otherwise.
const (
	imageV1  = "openkruise-registry.cn-shanghai.cr.aliyuncs.com/openkruise/demo:1.10.2"
	imageV2  = "openkruise-registry.cn-shanghai.cr.aliyuncs.com/openkruise/demo:1.10.3"
	imageBad = "openkruise-registry.cn-shanghai.cr.aliyuncs.com/openkruise/demo:1.10.3-errors"
)

// startRelease creates the guide's Example 1 with analysis (the given
// template instead of docs/examples', when set), then releases image.
func (f *fixture) startRelease(template, image string) {
	f.t.Helper()
	if err := framework.CreateExample1(f.ctx, f.c, f.ns, template); err != nil {
		f.t.Fatal(err)
	}
	f.waitRollout("Healthy", func(r *v1beta1.Rollout) bool { return r.Status.Phase == v1beta1.RolloutPhaseHealthy })
	f.setImage(image)
}

func (f *fixture) setImage(image string) {
	f.t.Helper()
	if err := framework.SetImage(f.ctx, f.c, f.ns, "echoserver", image); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) waitRollout(what string, cond func(*v1beta1.Rollout) bool) *v1beta1.Rollout {
	f.t.Helper()
	r, err := framework.WaitRollout(f.ctx, f.c, client.ObjectKey{Namespace: f.ns, Name: "rollouts-demo"}, 3*time.Minute, cond)
	if err != nil {
		f.t.Fatalf("waiting for %s: %v\nmanager log:\n%s", what, err, env.Manager.LogTail())
	}
	return r
}

func completed(r *v1beta1.Rollout) bool {
	return r.Status.Phase == v1beta1.RolloutPhaseHealthy && r.Status.CurrentStepState == v1beta1.CanaryStepStateCompleted
}

// newPods counts the running pods of image.
func (f *fixture) newPods(image string) int {
	var pods corev1.PodList
	if err := f.c.List(f.ctx, &pods, client.InNamespace(f.ns), client.MatchingLabels{"app": "echoserver"}); err != nil {
		f.t.Fatal(err)
	}
	n := 0
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && p.Spec.Containers[0].Image == image {
			n++
		}
	}
	return n
}

func (f *fixture) rolloutEvent(reason string) *eventsv1.Event {
	f.t.Helper()
	var events eventsv1.EventList
	if err := f.c.List(f.ctx, &events, client.InNamespace(f.ns)); err != nil {
		f.t.Fatal(err)
	}
	for i := range events.Items {
		if e := &events.Items[i]; e.Regarding.Kind == "Rollout" && e.Reason == reason {
			return e
		}
	}
	f.t.Fatalf("no %s event on the Rollout", reason)
	return nil
}

// A healthy version is promoted with nobody approving: every step's run
// passes.
func TestReleasePromotedByAnalysis(t *testing.T) {
	f := newFixture(t)
	f.ctx = withTimeout(t, 4*time.Minute)
	f.startRelease("", imageV2)
	r := f.waitRollout("the release to complete", completed)
	if c := r.Status.CanaryStatus; c.StableRevision != c.CanaryRevision {
		t.Errorf("not promoted: stable %s canary %s", c.StableRevision, c.CanaryRevision)
	}
	var runs v1alpha1.AnalysisRunList
	if err := f.c.List(f.ctx, &runs, client.InNamespace(f.ns)); err != nil {
		t.Fatal(err)
	}
	if len(runs.Items) != 3 {
		t.Fatalf("%d runs, want one per step", len(runs.Items))
	}
	for _, ar := range runs.Items {
		if ar.Status.Phase != v1alpha1.AnalysisSuccessful || ar.OwnerReferences[0].Name != "rollouts-demo" {
			t.Errorf("run %s: %s, owners %v", ar.Name, ar.Status.Phase, ar.OwnerReferences)
		}
	}
	if f.newPods(imageV2) != 5 {
		t.Errorf("%d pods run the new version, want 5", f.newPods(imageV2))
	}
}

// A version serving 20% errors is rolled back by the first step's
// analysis: traffic back to stable, its pods gone, and the Rollout says
// which metric failed, with what value, against which condition.
func TestReleaseRolledBackByAnalysis(t *testing.T) {
	f := newFixture(t)
	f.ctx = withTimeout(t, 4*time.Minute)
	f.startRelease("", imageBad)
	order := f.watchRollbackOrder()
	r := f.waitRollout("the release to abort", isAborted)
	for _, want := range []string{"Rollout is aborted: analysis of step 1", `metric "error-rate" Failed: value [0.`, `successCondition "result[0] < 0.05" is false`, "held at its stable revision"} {
		if !strings.Contains(r.Status.Message, want) {
			t.Errorf("message %q lacks %q", r.Status.Message, want)
		}
	}
	if e := f.rolloutEvent(rollout.ReasonAborted); e.Type != corev1.EventTypeWarning {
		t.Errorf("event %s", e.Type)
	}
	if err := framework.Poll(f.ctx, time.Minute, func() (bool, error) { return f.newPods(imageBad) == 0, nil }); err != nil {
		t.Errorf("the bad version's pods stay: %d", f.newPods(imageBad))
	}
	if err := f.c.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: "echoserver-canary"}, &networkingv1.Ingress{}); !apierrors.IsNotFound(err) {
		t.Errorf("the canary Ingress still routes: %v", err)
	}
	if f.newPods(imageV1) != 5 {
		t.Errorf("%d stable pods, want 5", f.newPods(imageV1))
	}
	if routed, removed := order(); routed.IsZero() || removed.IsZero() || removed.Before(routed) {
		t.Errorf("traffic left the new pods at %s, the new pods started going at %s: traffic must leave first", routed, removed)
	}

	// The team re-applies the stable manifest: the release ends, not promoted.
	f.setImage(imageV1)
	r = f.waitRollout("the release to end", completed)
	if c := meta(r, v1beta1.RolloutConditionSucceeded); c == nil || c.Status != corev1.ConditionFalse {
		t.Errorf("Succeeded %+v", c)
	}
	d := &appsv1.Deployment{}
	if err := f.c.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: "echoserver"}, d); err != nil || d.Spec.Paused {
		t.Errorf("the Deployment is left paused (%v)", err)
	}
}

// Prometheus that cannot be reached pauses the release (policy Error ->
// Pause) with a message saying where; approving goes on and is recorded.
func TestReleasePausedWhenPrometheusIsDown(t *testing.T) {
	f := newFixture(t)
	f.ctx = withTimeout(t, 4*time.Minute)
	f.startRelease(framework.UnreachableTemplate, imageV2)
	r := f.waitRollout("the release to pause", func(r *v1beta1.Rollout) bool { return strings.Contains(r.Status.Message, "paused: analysis of step 1") })
	if !strings.Contains(r.Status.Message, "Prometheus at http://127.0.0.1:9 could not be reached") {
		t.Errorf("message %q", r.Status.Message)
	}
	// kubectl-kruise rollout approve, on the v1alpha1 object.
	u := &v1beta1.Rollout{}
	u.Namespace, u.Name = f.ns, "rollouts-demo"
	approve := client.RawPatch(types.MergePatchType, []byte(`{"status":{"canaryStatus":{"currentStepState":"StepReady"}}}`))
	if err := f.c.Status().Patch(f.ctx, u, approve); err != nil {
		t.Fatal(err)
	}
	r = f.waitRollout("step 2", func(r *v1beta1.Rollout) bool { return r.Status.CurrentStepIndex >= 2 })
	if a := r.Status.Analysis; a == nil || len(a.Overrides) != 1 || a.Overrides[0].Action != "Approve" || a.Overrides[0].Verdict != v1alpha1.AnalysisError {
		t.Errorf("override not recorded: %+v", a)
	}
}

func meta(r *v1beta1.Rollout, t v1beta1.RolloutConditionType) *v1beta1.RolloutCondition {
	for i := range r.Status.Conditions {
		if r.Status.Conditions[i].Type == t {
			return &r.Status.Conditions[i]
		}
	}
	return nil
}

func withTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// batchRollout is a plan without traffic routing: two new pods analysed
// by the given templates, then all.
func batchRollout(templates string) string {
	return fmt.Sprintf(`apiVersion: rollouts.kruise.io/v1beta1
kind: Rollout
metadata: {name: rollouts-demo}
spec:
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: echoserver}
  strategy:
    canary:
      steps:
      - replicas: 2
        pause: {duration: 0}
        analysis: {templates: [%s]}
      - replicas: 100%%
`, templates)
}

// startBatchRelease is startRelease for batchRollout: the echoserver
// without its Ingress, the given template, and image released.
func (f *fixture) startBatchRelease(template, templates, image string) {
	f.t.Helper()
	if _, err := manifest.CreateFile(f.ctx, f.c, f.ns, framework.RepoRoot()+"/docs/examples/guide/echoserver.yaml"); err != nil {
		f.t.Fatal(err)
	}
	f.template(template)
	if _, err := manifest.Create(f.ctx, f.c, f.ns, []byte(batchRollout(templates))); err != nil {
		f.t.Fatal(err)
	}
	f.waitRollout("Healthy", func(r *v1beta1.Rollout) bool { return r.Status.Phase == v1beta1.RolloutPhaseHealthy })
	f.setImage(image)
}

func isAborted(r *v1beta1.Rollout) bool {
	c := meta(r, v1beta1.RolloutConditionProgressing)
	return c != nil && c.Reason == rollout.ReasonAborted
}

// A slow version judged only by comparing its latency with the stable
// pods' (Mann-Whitney, no absolute threshold) is rolled back; a version
// with the same latency distribution is promoted.
func TestReleaseJudgedAgainstBaseline(t *testing.T) {
	template := latencyBaselineTemplate()
	for _, tc := range []struct {
		name, image string
		promoted    bool
	}{{"slow version rolled back", imageV2 + "-slow", false}, {"same latency promoted", imageV2, true}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.ctx = withTimeout(t, 4*time.Minute)
			f.startBatchRelease(template, "{templateName: latency}", tc.image)
			if tc.promoted {
				f.waitRollout("the release to complete", completed)
				return
			}
			r := f.waitRollout("the release to abort", isAborted)
			if !strings.Contains(r.Status.Message, "canary is significantly higher than baseline") {
				t.Errorf("message %q", r.Status.Message)
			}
		})
	}
}

// Prometheus stopped during the analysis pauses the release (Error ->
// Pause) and does not roll it back; once it is back, a retry completes it.
func TestReleasePrometheusStoppedThenRetried(t *testing.T) {
	f := newFixture(t)
	f.ctx = withTimeout(t, 4*time.Minute)
	prom, err := framework.StartPrometheusFor(f.ctx, t.TempDir(), metrics.SimulatorAddress)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = prom.Stop() })
	if err := prom.Stop(); err != nil {
		t.Fatal(err)
	}
	f.startBatchRelease(fmt.Sprintf(`apiVersion: analysis.sluice.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: error-rate}
spec:
  metrics:
  - name: error-rate
    initialDelay: 2s
    interval: 1s
    count: 3
    consecutiveErrorLimit: 2
    successCondition: result[0] < 0.05
    provider:
      prometheus:
        address: %s
        timeout: 1s
        query: %q
`, prom.URL(), errorRate), "{templateName: error-rate}", imageV2)
	r := f.waitRollout("the release to pause", func(r *v1beta1.Rollout) bool { return strings.Contains(r.Status.Message, "paused: analysis of step 1") })
	if want := "Prometheus at " + prom.URL() + " could not be reached"; !strings.Contains(r.Status.Message, want) {
		t.Errorf("message %q lacks %q", r.Status.Message, want)
	}
	if isAborted(r) || f.newPods(imageV2) != 2 {
		t.Fatalf("an unreachable Prometheus must not roll back: aborted %v, %d new pods", isAborted(r), f.newPods(imageV2))
	}

	ctx, cancel := context.WithTimeout(f.ctx, time.Minute)
	defer cancel()
	if err := prom.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	// A person retries once Prometheus has data again: right after its
	// restart a 10s rate has too few samples and the verdict would be
	// Inconclusive (no data), another hold.
	api, err := promapi.NewClient(promapi.Config{Address: prom.URL()})
	if err != nil {
		t.Fatal(err)
	}
	hasData := fmt.Sprintf(`sum(rate(http_requests_total{namespace=%q}[10s]))`, f.ns)
	if err := framework.Poll(ctx, time.Minute, func() (bool, error) {
		v, _, _, err := promv1.NewAPI(api).Query(ctx, hasData, time.Now())
		vec, ok := v.(model.Vector)
		return err == nil && ok && len(vec) > 0, nil
	}); err != nil {
		t.Fatalf("the restarted Prometheus has no data: %v", err)
	}
	f.annotate(v1alpha1.RetryAnnotation, "after-prometheus-restart")
	r = f.waitRollout("the release to complete", completed)
	if a := r.Status.Analysis; a == nil || a.Attempt != 1 || len(a.Overrides) != 1 || a.Overrides[0].Action != "Retry" {
		t.Errorf("retry not recorded: %+v", a)
	}
}

// Pods that receive no traffic give NaN: the noData policy (default
// Inconclusive) holds the release.
func TestReleaseWithoutTrafficIsInconclusive(t *testing.T) {
	f := newFixture(t)
	f.ctx = withTimeout(t, 3*time.Minute)
	f.startBatchRelease(errorRateTemplate("error-rate", ""), "{templateName: error-rate}", imageV2+"-idle")
	r := f.waitRollout("the release to pause", func(r *v1beta1.Rollout) bool { return strings.Contains(r.Status.Message, "paused: analysis of step 1") })
	if !strings.Contains(r.Status.Message, "is Inconclusive") || !strings.Contains(r.Status.Message, "noData policy Inconclusive") {
		t.Errorf("message %q", r.Status.Message)
	}
}

// Abort mid-release rolls back at once; retry restarts the release, which
// then completes.
func TestReleaseAbortThenRetry(t *testing.T) {
	f := newFixture(t)
	f.ctx = withTimeout(t, 4*time.Minute)
	f.startBatchRelease(errorRateTemplate("error-rate", ""), "{templateName: error-rate}", imageV2)
	f.waitRollout("the analysis", func(r *v1beta1.Rollout) bool {
		return r.Status.CurrentStepState == v1beta1.CanaryStepStateMetricsAnalysis
	})
	f.annotate(v1alpha1.AbortAnnotation, "stop")
	r := f.waitRollout("the release to abort", isAborted)
	if !strings.Contains(r.Status.Message, "aborted by a person") {
		t.Errorf("message %q", r.Status.Message)
	}
	if err := framework.Poll(f.ctx, time.Minute, func() (bool, error) { return f.newPods(imageV2) == 0, nil }); err != nil {
		t.Fatalf("new pods stay after abort: %d", f.newPods(imageV2))
	}
	f.annotate(v1alpha1.RetryAnnotation, "again")
	r = f.waitRollout("the retried release to complete", completed)
	if c := r.Status.CanaryStatus; c.StableRevision != c.CanaryRevision || f.newPods(imageV2) != 5 {
		t.Errorf("not promoted after retry: %+v, %d new pods", c, f.newPods(imageV2))
	}
}

func (f *fixture) annotate(key, value string) {
	f.t.Helper()
	r := &v1beta1.Rollout{}
	r.Namespace, r.Name = f.ns, "rollouts-demo"
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, key, value)
	if err := f.c.Patch(f.ctx, r, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
		f.t.Fatal(err)
	}
}

// watchRollbackOrder watches, from now on, for the moment the canary
// Ingress (present once step 1 routes) is deleted and the moment the first
// pod of the bad version starts going; the returned func stops and reports
// both (zero if not seen). Watches, not polls: on a busy machine a poll can miss a release
// that takes a few seconds, a watch delivers every change in order.
func (f *fixture) watchRollbackOrder() func() (routedToStable, podsGoing time.Time) {
	f.t.Helper()
	ctx, cancel := context.WithCancel(f.ctx)
	wc, err := client.NewWithWatch(env.ControlPlane.RESTConfig(), client.Options{Scheme: f.c.Scheme()})
	if err != nil {
		f.t.Fatal(err)
	}
	first := func(list client.ObjectList, match func(watch.Event) bool) func() time.Time {
		w, err := wc.Watch(ctx, list, client.InNamespace(f.ns))
		if err != nil {
			f.t.Fatal(err)
		}
		at := make(chan time.Time, 1)
		go func() {
			defer w.Stop()
			for e := range w.ResultChan() {
				if match(e) {
					at <- time.Now()
					return
				}
			}
			at <- time.Time{}
		}()
		return func() time.Time {
			select {
			case t := <-at:
				return t
			case <-time.After(30 * time.Second):
				return time.Time{}
			}
		}
	}
	routed := first(&networkingv1.IngressList{}, func(e watch.Event) bool {
		return e.Type == watch.Deleted && e.Object.(client.Object).GetName() == "echoserver-canary"
	})
	going := first(&corev1.PodList{}, func(e watch.Event) bool {
		p, ok := e.Object.(*corev1.Pod)
		return ok && p.Spec.Containers[0].Image == imageBad && (e.Type == watch.Deleted || p.DeletionTimestamp != nil)
	})
	return func() (time.Time, time.Time) {
		defer cancel()
		return routed(), going()
	}
}

// The controller is killed while a step routes traffic and again while it
// is analysed; restarted each time, it carries on from the Rollout's and
// the AnalysisRuns' status alone: one run per step, the release promoted.
// Not parallel: the webhooks are down while it is killed.
func TestControllerKilledDuringTrafficAndAnalysis(t *testing.T) {
	ctx := withTimeout(t, 4*time.Minute)
	f := &fixture{t: t, ctx: ctx, ns: env.Namespace(t), c: env.Client}
	f.startRelease("", imageV2)
	restartAt := func(state v1beta1.CanaryStepState) {
		t.Helper()
		f.waitRollout(string(state), func(r *v1beta1.Rollout) bool { return r.Status.CurrentStepState == state })
		env.Manager.Kill()
		time.Sleep(500 * time.Millisecond)
		if err := env.Manager.Start(ctx, env.ControlPlane); err != nil {
			t.Fatal(err)
		}
	}
	restartAt(v1beta1.CanaryStepStateTrafficRouting)
	restartAt(v1beta1.CanaryStepStateMetricsAnalysis)
	r := f.waitRollout("the release to complete", completed)
	if c := r.Status.CanaryStatus; c.StableRevision != c.CanaryRevision {
		t.Errorf("not promoted: %+v", c)
	}
	var runs v1alpha1.AnalysisRunList
	if err := f.c.List(ctx, &runs, client.InNamespace(f.ns)); err != nil {
		t.Fatal(err)
	}
	if len(runs.Items) != 3 {
		t.Errorf("%d runs, want one per step", len(runs.Items))
	}
	if err := f.c.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: "echoserver-canary"}, &networkingv1.Ingress{}); !apierrors.IsNotFound(err) {
		t.Errorf("canary Ingress left: %v", err)
	}
}
