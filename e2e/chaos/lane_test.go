//go:build e2e

package chaos_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/devenv/manifest"
	"github.com/sluicehq/sluice/e2e/invariants"
)

// lane releases one workload over and over in its namespace, acting as
// the people and tools around it: it applies new versions (kubectl for
// Deployments, a GitOps tool's server-side apply for the others), re-
// applies the same manifest mid-release, applies yet another version
// mid-release, approves a manual step, and retries (or approves past) an
// analysis that a Prometheus fault held.
type lane struct {
	spec    laneSpec
	ns      string
	c       client.Client
	obs     *observer
	st      *stats
	rng     *rand.Rand
	chk     *invariants.Checker
	bound   time.Duration
	prom    string
	version int
	// started counts the releases of every lane begun so far; completed
	// this lane's releases that ended.
	started   *atomic.Int64
	completed atomic.Int64
	// failed is set when the lane has ended early.
	failed atomic.Bool
}

// Field managers of the tools the lanes play.
const (
	gitOpsManager  = "argocd-controller"
	kubectlManager = "kubectl-client-side-apply"
	writerManager  = "chaos-writer"
)

// apiRetry bounds how long a write is retried: it outlasts a restart of
// kube-apiserver and a manager's restart.
const apiRetry = 2 * time.Minute

// retrying calls f until it succeeds, ctx ends or apiRetry passes: the API
// server may be restarting, a webhook call may have met a dying replica.
func retrying(ctx context.Context, f func() error) error {
	deadline := time.Now().Add(apiRetry)
	for {
		err := f()
		if err == nil || ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		if !sleep(ctx, 300*time.Millisecond) {
			return err
		}
	}
}

func (l *lane) workloadKey() client.ObjectKey {
	return client.ObjectKey{Namespace: l.ns, Name: "echoserver"}
}

// setup creates the lane's objects at version 0 and waits until the
// workload runs and the Rollout is Healthy.
func (l *lane) setup(ctx context.Context) error {
	if l.spec.analysis {
		if _, err := manifest.Create(ctx, l.c, l.ns, []byte(analysisTemplate(l.prom))); err != nil {
			return err
		}
	}
	raw, err := guideFile("echoserver.yaml")
	if err != nil {
		return err
	}
	objs, err := manifest.Objects(raw)
	if err != nil {
		return err
	}
	for _, o := range objs[1:] { // the Service
		o.SetNamespace(l.ns)
		if err := l.c.Create(ctx, o); err != nil {
			return err
		}
	}
	if l.spec.traffic {
		raw, err := guideFile("example1-ingress.yaml")
		if err != nil {
			return err
		}
		if _, err := manifest.Create(ctx, l.c, l.ns, raw); err != nil {
			return err
		}
	}
	w, err := l.spec.workloadManifest(image(0))
	if err != nil {
		return err
	}
	w.SetNamespace(l.ns)
	if err := l.c.Create(ctx, w); err != nil {
		return err
	}
	ro, err := l.spec.rolloutManifest()
	if err != nil {
		return err
	}
	if _, err := manifest.Create(ctx, l.c, l.ns, ro); err != nil {
		return err
	}
	return l.waitAtRest(ctx, image(0), 3*time.Minute)
}

func (l *lane) waitAtRest(ctx context.Context, img string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, why := l.atRest(ctx, img)
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not at rest on %s after %s: %s", img, timeout, why)
		}
		if !sleep(ctx, 300*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// atRest reports whether the release of img is over: the Rollout Healthy
// with no release in progress, and the workload's own controller reporting
// every pod on img and ready. why says what is missing.
func (l *lane) atRest(ctx context.Context, img string) (bool, string) {
	ro := &v1beta1.Rollout{}
	if err := l.c.Get(ctx, client.ObjectKey{Namespace: l.ns, Name: rolloutName}, ro); err != nil {
		return false, err.Error()
	}
	if ro.Status.Phase != v1beta1.RolloutPhaseHealthy || ro.Status.Release != nil || ro.Status.ObservedGeneration != ro.Generation {
		return false, describeRollout(ro)
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(l.spec.kind)
	if err := l.c.Get(ctx, l.workloadKey(), u); err != nil {
		return false, err.Error()
	}
	n := func(f string) int64 { v, _, _ := unstructured.NestedInt64(u.Object, "status", f); return v }
	replicas, _, _ := unstructured.NestedInt64(u.Object, "spec", "replicas")
	paused, _, _ := unstructured.NestedBool(u.Object, "spec", "paused")
	containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
	current, _, _ := unstructured.NestedString(containers[0].(map[string]any), "image")
	cur, _, _ := unstructured.NestedString(u.Object, "status", "currentRevision")
	upd, _, _ := unstructured.NestedString(u.Object, "status", "updateRevision")
	rest := current == img && !paused && n("observedGeneration") >= u.GetGeneration() &&
		n("replicas") == replicas && n("updatedReplicas") == replicas && n("readyReplicas") == replicas &&
		(l.spec.kind != statefulSetKind || cur == upd)
	if !rest {
		return false, fmt.Sprintf("%s %s: image %s, paused %t, generation %d observed %d, replicas %d, status %v",
			l.spec.kind.Kind, u.GetName(), current, paused, u.GetGeneration(), n("observedGeneration"), replicas, u.Object["status"])
	}
	return true, ""
}

func describeRollout(ro *v1beta1.Rollout) string {
	s := fmt.Sprintf("Rollout %s: phase %s, step %d %s, generation %d observed %d", ro.Name, ro.Status.Phase,
		ro.Status.CurrentStepIndex, ro.Status.CurrentStepState, ro.Generation, ro.Status.ObservedGeneration)
	if r := ro.Status.Release; r != nil && r.Hold != nil {
		s += fmt.Sprintf(", waiting: %s at step %d since %s (%s)", r.Hold.Reason, r.Hold.Step, r.Hold.Since.Format("15:04:05"), r.Hold.Message)
	}
	if ro.Status.Message != "" {
		s += ": " + ro.Status.Message
	}
	return s
}

// apply writes version img of the workload: a merge patch of the image
// for a Deployment (kubectl apply of an edited manifest), a forced
// server-side apply of the whole manifest for the others (a GitOps sync;
// its partition 0 included).
func (l *lane) apply(ctx context.Context, img string) error {
	if l.spec.kind == deploymentKind {
		patch := fmt.Sprintf(`{"spec":{"template":{"spec":{"containers":[{"name":"echoserver","image":%q}]}}}}`, img)
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(l.spec.kind)
		u.SetNamespace(l.ns)
		u.SetName("echoserver")
		return retrying(ctx, func() error {
			return l.c.Patch(ctx, u, client.RawPatch(types.StrategicMergePatchType, []byte(patch)), client.FieldOwner(kubectlManager))
		})
	}
	return l.reapply(ctx, img)
}

// reapply server-side applies the manifest of img, as a GitOps tool
// syncing (again) does.
func (l *lane) reapply(ctx context.Context, img string) error {
	u, err := l.spec.workloadManifest(img)
	if err != nil {
		return err
	}
	u.SetNamespace(l.ns)
	return retrying(ctx, func() error {
		return l.c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u.DeepCopy()), client.FieldOwner(gitOpsManager), client.ForceOwnership)
	})
}

// release releases the next version and follows it until it ends.
func (l *lane) release(ctx context.Context) releaseRecord {
	l.version++
	img := image(l.version)
	rec := releaseRecord{lane: l.spec.name, kind: l.spec.kindName(), started: time.Now(), versions: []int{l.version}, holds: map[string]int{}}
	l.started.Add(1)
	if err := l.apply(ctx, img); err != nil {
		rec.err = fmt.Errorf("applying version %d: %w", l.version, err)
		return rec
	}
	// A lane's first release is re-applied, then replaced, mid-release
	// (every run has both); later ones at random.
	var reapplyAt, newVersionAt time.Time
	first := l.version == 1
	if first || l.rng.Float64() < 0.4 {
		reapplyAt = rec.started.Add(between(l.rng, [2]time.Duration{500 * time.Millisecond, 4 * time.Second}))
	}
	if l.spec.newVersionMidRelease && (first || l.rng.Float64() < 0.2) {
		newVersionAt = rec.started.Add(between(l.rng, [2]time.Duration{4 * time.Second, 10 * time.Second}))
	}
	acted := map[string]time.Time{}
	deadline := rec.started.Add(l.bound)
	for {
		if !sleep(ctx, 300*time.Millisecond) {
			rec.err = ctx.Err()
			return rec
		}
		if ok, _ := l.atRest(ctx, img); ok {
			break
		}
		if time.Now().After(deadline) {
			_, why := l.atRest(ctx, img)
			rec.err = fmt.Errorf("the release of version %d did not end within %s: %s; pods by image: %s", l.version, l.bound, why, l.podsOf(ctx))
			return rec
		}
		ro := &v1beta1.Rollout{}
		if err := l.c.Get(ctx, client.ObjectKey{Namespace: l.ns, Name: rolloutName}, ro); err != nil {
			continue
		}
		midway := ro.Status.Phase == v1beta1.RolloutPhaseProgressing && ro.Status.CurrentStepState != v1beta1.CanaryStepStateCompleted
		if !reapplyAt.IsZero() && time.Now().After(reapplyAt) && midway {
			reapplyAt = time.Time{}
			if err := l.reapply(ctx, img); err != nil {
				rec.err = fmt.Errorf("re-applying version %d: %w", l.version, err)
				return rec
			}
			rec.reapplies++
		}
		last := int32(len(steps(ro)))
		if !newVersionAt.IsZero() && time.Now().After(newVersionAt) && midway && ro.Status.CurrentStepIndex < last {
			newVersionAt = time.Time{}
			l.version++
			img = image(l.version)
			rec.versions = append(rec.versions, l.version)
			l.started.Add(1)
			if err := l.apply(ctx, img); err != nil {
				rec.err = fmt.Errorf("applying version %d mid-release: %w", l.version, err)
				return rec
			}
		}
		if err := l.person(ctx, ro, &rec, acted); err != nil {
			rec.err = err
			return rec
		}
	}
	rec.ended = time.Now()
	ro := &v1beta1.Rollout{}
	if err := l.c.Get(ctx, client.ObjectKey{Namespace: l.ns, Name: rolloutName}, ro); err == nil && ro.Status.LastRelease != nil {
		rec.outcome = string(ro.Status.LastRelease.Outcome)
		if ro.Status.LastRelease.Outcome != v1beta1.OutcomeCompleted {
			l.st.violation("release outcome", fmt.Sprintf("%s: the release of version %d ended %s (every version is healthy, nobody aborted, promoted or cancelled it): %s",
				l.ns, l.version, ro.Status.LastRelease.Outcome, ro.Status.LastRelease.Message))
		}
	}
	return rec
}

func steps(ro *v1beta1.Rollout) []v1beta1.CanaryStep {
	if c := ro.Spec.Strategy.Canary; c != nil {
		return c.Steps
	}
	if bg := ro.Spec.Strategy.BlueGreen; bg != nil {
		return bg.Steps
	}
	return nil
}

// person does what a person watching the release does about what it
// waits for: approves a manual step; retries (or approves past) an
// analysis that a Prometheus fault held; retries a release that was
// rolled back (every version here is healthy, so a rollback is itself a
// violation, recorded). Each hold is acted on once, and again if it is
// still there a while later (5s for an approval, 10s otherwise).
func (l *lane) person(ctx context.Context, ro *v1beta1.Rollout, rec *releaseRecord, acted map[string]time.Time) error {
	rel := ro.Status.Release
	if rel == nil || rel.Hold == nil {
		return nil
	}
	h := rel.Hold
	key := fmt.Sprintf("%s/%d/%s/%s", h.Reason, h.Step, h.Run, h.Since.UTC().Format(time.RFC3339Nano))
	first, seen := acted[key]
	if !seen {
		acted[key] = time.Time{}
		rec.holds[string(h.Reason)]++
		if h.Reason == v1beta1.HoldAborted {
			l.st.violation("rollback", fmt.Sprintf("%s: version %d was rolled back though it is healthy: %s", l.ns, l.version, h.Message))
		}
		return nil
	}
	since := time.Since(h.Since.Time)
	switch h.Reason {
	case v1beta1.HoldWaitingForApproval:
		// Again when the approval did not get through (a conflict, or the
		// conversion webhook down with a solo manager).
		if (first.IsZero() && since > between(l.rng, [2]time.Duration{300 * time.Millisecond, 1500 * time.Millisecond})) ||
			(!first.IsZero() && time.Since(first) > 5*time.Second) {
			acted[key] = time.Now()
			rec.approvals++
			return l.approve(ctx, ro)
		}
	case v1beta1.HoldAnalysisError, v1beta1.HoldAnalysisInconclusive, v1beta1.HoldAnalysisFailedPaused, v1beta1.HoldAborted:
		if (first.IsZero() && since > between(l.rng, [2]time.Duration{time.Second, 3 * time.Second})) ||
			(!first.IsZero() && time.Since(first) > 10*time.Second) {
			acted[key] = time.Now()
			if h.Reason != v1beta1.HoldAborted && l.rng.Float64() < 0.3 {
				rec.approvals++
				return l.approve(ctx, ro)
			}
			rec.retries++
			return l.retry(ctx)
		}
	}
	return nil
}

// approve sends kubectl-kruise rollout approve's patch (through v1alpha1
// and the conversion webhook; blue-green through v1beta1), on the status
// as read, so that it never approves a step it did not see.
func (l *lane) approve(ctx context.Context, ro *v1beta1.Rollout) error {
	u := &unstructured.Unstructured{}
	u.SetKind("Rollout")
	u.SetNamespace(l.ns)
	u.SetName(rolloutName)
	body := fmt.Sprintf(`{"metadata":{"resourceVersion":%q},"status":{"canaryStatus":{"currentStepState":"StepReady"}}}`, ro.ResourceVersion)
	u.SetAPIVersion("rollouts.kruise.io/v1alpha1")
	if ro.Spec.Strategy.BlueGreen != nil {
		body = fmt.Sprintf(`{"metadata":{"resourceVersion":%q},"status":{"blueGreenStatus":{"currentStepState":"StepReady"}}}`, ro.ResourceVersion)
		u.SetAPIVersion("rollouts.kruise.io/v1beta1")
	}
	err := l.c.Status().Patch(ctx, u, client.RawPatch(types.MergePatchType, []byte(body)))
	if err == nil {
		l.obs.ourWrite(u.GetResourceVersion())
		return nil
	}
	// A conflict: the status moved on; the loop looks again.
	l.st.writeFailed("approval", err)
	return nil
}

// retry asks for the analysis to run again (sluice.dev/retry, a new value
// each time, as kubectl sluice retry sets it).
func (l *lane) retry(ctx context.Context) error {
	ro := &v1beta1.Rollout{}
	ro.SetNamespace(l.ns)
	ro.SetName(rolloutName)
	body := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, analysisv1alpha1.RetryAnnotation, fmt.Sprint(time.Now().UnixNano()))
	return retrying(ctx, func() error {
		return l.c.Patch(ctx, ro, client.RawPatch(types.MergePatchType, []byte(body)))
	})
}

// run releases versions one after another until stop is set, then ends
// with the release in progress. A release that fails (did not end within
// the bound) is recorded and ended as a person ends a stuck release: by
// re-applying the version at rest; the lane goes on from there, and ends
// (with an error) only if that does not bring the workload to rest.
func (l *lane) run(ctx context.Context, stop *atomic.Bool) error {
	for !stop.Load() {
		stable := l.version
		rec := l.release(ctx)
		l.st.release(rec)
		if rec.err == nil {
			l.completed.Add(1)
			continue
		}
		if errors.Is(rec.err, context.Canceled) || errors.Is(rec.err, context.DeadlineExceeded) {
			l.failed.Store(true)
			return fmt.Errorf("%s: the run ended mid-release: %w", l.spec.name, rec.err)
		}
		l.st.violation("release did not end", fmt.Sprintf("%s (%s): %v", l.ns, l.spec.name, rec.err))
		if err := l.apply(ctx, image(stable)); err != nil {
			l.failed.Store(true)
			return fmt.Errorf("%s: re-applying version %d to end a stuck release: %w", l.spec.name, stable, err)
		}
		if err := l.waitAtRest(ctx, image(stable), 3*time.Minute); err != nil {
			l.failed.Store(true)
			return fmt.Errorf("%s: version %d re-applied to end a stuck release, and then: %w", l.spec.name, stable, err)
		}
	}
	return nil
}

// podsOf counts the lane's pods (for messages).
func (l *lane) podsOf(ctx context.Context) string {
	pods := &corev1.PodList{}
	if err := l.c.List(ctx, pods, client.InNamespace(l.ns)); err != nil {
		return err.Error()
	}
	by := map[string]int{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			by[p.Spec.Containers[0].Image]++
		}
	}
	return fmt.Sprint(by)
}
