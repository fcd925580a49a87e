//go:build e2e

package kruise_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/cmd/sluice-controller/app"
	"github.com/sluicehq/sluice/devenv/manifest"
	"github.com/sluicehq/sluice/devenv/openkruise"
	"github.com/sluicehq/sluice/e2e/framework"
)

// Regression tests for issue 10. Each names its defect; each fails until
// that defect is fixed.

// ISSUE 10, DEFECT 1 — "CloneSet with traffic routing: the stable Service
// selects no pod". The guide's Example 1 on a CloneSet: while steps 1 and
// 2 run, the stable Service must select exactly the pods still on the
// stable revision, and its EndpointSlices must list them ready; the canary
// Service must select exactly the new ones. Sluice pins the stable Service
// to pod-template-hash=<full revision name>, but OpenKruise labels CloneSet
// pods pod-template-hash=<short hash>: the stable side has no endpoint.
func TestIssue10Defect1CloneSetStableServiceSelectsStablePods(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ns, c := env.Namespace(t), env.Client
	for _, f := range []string{
		filepath.Join(framework.RepoRoot(), "e2e", "kruise", "testdata", "echoserver-cloneset.yaml"),
		filepath.Join(framework.RepoRoot(), "docs", "examples", "guide", "example1-ingress.yaml"),
		filepath.Join(framework.RepoRoot(), "e2e", "kruise", "testdata", "example1-cloneset-rollout.yaml"),
	} {
		if _, err := manifest.CreateFile(ctx, c, ns, f); err != nil {
			t.Fatal(err)
		}
	}
	w := &workloadOf{t: t, ctx: ctx, c: c, gvk: openkruise.CloneSetKind, key: client.ObjectKey{Namespace: ns, Name: "echoserver"}}
	r := &rolloutWaiter{t: t, ctx: ctx, c: c, key: client.ObjectKey{Namespace: ns, Name: "rollouts-demo"}}
	r.wait("Healthy", func(ro *v1beta1.Rollout) bool { return ro.Status.Phase == v1beta1.RolloutPhaseHealthy })
	w.waitSettled(5)
	w.setImage("openkruise-registry.cn-shanghai.cr.aliyuncs.com/openkruise/demo:1.10.3")

	for step := int32(1); step <= 2; step++ {
		r.wait(fmt.Sprintf("step %d paused", step), func(ro *v1beta1.Rollout) bool {
			return ro.Status.CurrentStepIndex == step && ro.Status.CurrentStepState == v1beta1.CanaryStepStatePaused
		})
		u := w.get()
		stableRev, _, _ := unstructured.NestedString(u.Object, "status", "currentRevision")
		newRev, _, _ := unstructured.NestedString(u.Object, "status", "updateRevision")
		pods := w.pods()
		stable, canary := podsAt(pods, stableRev), podsAt(pods, newRev)
		if len(stable) == 0 || len(canary) == 0 {
			t.Fatalf("step %d: %d stable and %d new pods; the release is not where the test expects it", step, len(stable), len(canary))
		}
		for _, svc := range []struct {
			name string
			want []string
		}{{"echoserver", stable}, {"echoserver-canary", canary}} {
			s := &corev1.Service{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: svc.name}, s); err != nil {
				t.Fatal(err)
			}
			// The EndpointSlice controller gets time to catch up, unless the
			// selector already says it cannot.
			wait := 30 * time.Second
			selected := selectedBy(pods, s.Spec.Selector)
			if !slices.Equal(selected, svc.want) {
				t.Errorf("step %d: Service %s (selector %v) selects the pods %v, want %v (pods: %s)",
					step, svc.name, s.Spec.Selector, selected, svc.want, describe(pods))
				wait = time.Second
			}
			if got := waitEndpoints(ctx, c, ns, svc.name, svc.want, wait); !slices.Equal(got, svc.want) {
				t.Errorf("step %d: the EndpointSlices of %s list the ready pods %v, want %v", step, svc.name, got, svc.want)
			}
		}
		r.approve()
	}
}

// ISSUE 10, DEFECT 2 — "A GitOps re-apply bypasses the batch for OpenKruise
// kinds". A GitOps tool re-applies the unchanged v2 manifest (carrying the
// manifest's partition 0) while the Rollout waits at step 1 of a paused
// plan: the number of pods on the new revision must stay at step 1's (1),
// as it does for a Deployment. Sluice lets the partition through: every pod
// updates while the Rollout says step 1.
func TestIssue10Defect2GitOpsReapplyKeepsTheBatch(t *testing.T) {
	workloadYAML := func(kind schema.GroupVersionKind, image string) string {
		strategy := "updateStrategy: {partition: 0}"
		extra := ""
		if kind == openkruise.AdvancedStatefulSetKind {
			strategy = "updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 0}}"
			extra = "serviceName: web"
		}
		return fmt.Sprintf(`apiVersion: %s
kind: %s
metadata: {name: web}
spec:
  replicas: 5
  %s
  %s
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: %q}]}
`, kind.GroupVersion(), kind.Kind, extra, strategy, image)
	}
	for _, kind := range []schema.GroupVersionKind{openkruise.CloneSetKind, openkruise.AdvancedStatefulSetKind} {
		t.Run(kind.Kind, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			ns, c := env.Namespace(t), env.Client
			w := &workloadOf{t: t, ctx: ctx, c: c, gvk: kind, key: client.ObjectKey{Namespace: ns, Name: "web"}}
			w.apply(workloadYAML(kind, "demo:1.10.2"))
			if _, err := manifest.Create(ctx, c, ns, []byte(fmt.Sprintf(`apiVersion: rollouts.kruise.io/v1beta1
kind: Rollout
metadata: {name: web}
spec:
  workloadRef: {apiVersion: %s, kind: %s, name: web}
  strategy:
    canary:
      steps:
      - {replicas: 1, pause: {}}
      - {replicas: 50%%, pause: {}}
      - {replicas: 100%%}
`, kind.GroupVersion(), kind.Kind))); err != nil {
				t.Fatal(err)
			}
			r := &rolloutWaiter{t: t, ctx: ctx, c: c, key: w.key}
			r.wait("Healthy", func(ro *v1beta1.Rollout) bool { return ro.Status.Phase == v1beta1.RolloutPhaseHealthy })
			w.waitSettled(5)

			v2 := workloadYAML(kind, "demo:1.10.3")
			w.apply(v2)
			r.wait("step 1 paused", func(ro *v1beta1.Rollout) bool {
				return ro.Status.CurrentStepIndex == 1 && ro.Status.CurrentStepState == v1beta1.CanaryStepStatePaused
			})
			u := w.waitSettled(1)
			newRev, _, _ := unstructured.NestedString(u.Object, "status", "updateRevision")
			seen := w.watchNewPods(newRev)

			w.apply(v2) // the GitOps tool syncs again: nothing changed in Git
			u = w.waitSettledAnyBatch()
			partition, _, _ := unstructured.NestedFieldNoCopy(u.Object, w.partitionPath()...)
			if most := seen.most(); most > 1 {
				t.Errorf("after the re-apply, %d pods ran the new revision while the Rollout was at step 1 (1 allowed); "+
					"the workload's partition is %v", most, partition)
			}
			if updated, _, _ := unstructured.NestedInt64(u.Object, "status", "updatedReplicas"); updated != 1 {
				t.Errorf("after the re-apply the workload settled with %d pods on the new revision, want step 1's 1 (partition %v)", updated, partition)
			}
			ro := r.wait("the Rollout", func(*v1beta1.Rollout) bool { return true })
			if ro.Status.CurrentStepIndex != 1 {
				t.Errorf("the Rollout moved to step %d without approval", ro.Status.CurrentStepIndex)
			}
		})
	}
}

// workloadOf is an OpenKruise workload under test.
type workloadOf struct {
	t   *testing.T
	ctx context.Context
	c   client.Client
	gvk schema.GroupVersionKind
	key client.ObjectKey
}

func (w *workloadOf) get() *unstructured.Unstructured {
	w.t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(w.gvk)
	if err := w.c.Get(w.ctx, w.key, u); err != nil {
		w.t.Fatal(err)
	}
	return u
}

func (w *workloadOf) partitionPath() []string {
	if w.gvk == openkruise.AdvancedStatefulSetKind {
		return []string{"spec", "updateStrategy", "rollingUpdate", "partition"}
	}
	return []string{"spec", "updateStrategy", "partition"}
}

// apply server-side applies a manifest as a GitOps tool does: its fields
// are forced to the manifest's values.
func (w *workloadOf) apply(text string) {
	w.t.Helper()
	objs, err := manifest.Objects([]byte(text))
	if err != nil {
		w.t.Fatal(err)
	}
	u := objs[0]
	u.SetNamespace(w.key.Namespace)
	if err := w.c.Apply(w.ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner("argocd-controller"), client.ForceOwnership); err != nil {
		w.t.Fatalf("applying %s: %v", w.gvk.Kind, err)
	}
}

// setImage changes the first container's image, as an edited manifest would.
func (w *workloadOf) setImage(image string) {
	w.t.Helper()
	err := retry.RetryOnConflict(framework.ConflictRetry, func() error {
		u := w.get()
		containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
		containers[0].(map[string]any)["image"] = image
		if err := unstructured.SetNestedSlice(u.Object, containers, "spec", "template", "spec", "containers"); err != nil {
			return err
		}
		return w.c.Update(w.ctx, u)
	})
	if err != nil {
		w.t.Fatal(err)
	}
}

// waitUntil waits until the workload, as its controller last reported it
// for its latest generation, satisfies cond.
func (w *workloadOf) waitUntil(what string, cond func(u *unstructured.Unstructured, n func(string) int64) bool) *unstructured.Unstructured {
	w.t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(w.gvk)
	n := func(f string) int64 { v, _, _ := unstructured.NestedInt64(u.Object, "status", f); return v }
	err := framework.Poll(w.ctx, 2*time.Minute, func() (bool, error) {
		if err := w.c.Get(w.ctx, w.key, u); err != nil {
			return false, err
		}
		replicas, _, _ := unstructured.NestedInt64(u.Object, "spec", "replicas")
		return n("observedGeneration") == u.GetGeneration() && n("replicas") == replicas && n("readyReplicas") == replicas &&
			n("updatedReadyReplicas") == n("updatedReplicas") && cond(u, n), nil
	})
	if err != nil {
		w.t.Fatalf("waiting for %s: %v; status %v", what, err, u.Object["status"])
	}
	return u
}

// waitSettled waits until updated pods run the new revision and are ready.
func (w *workloadOf) waitSettled(updated int64) *unstructured.Unstructured {
	w.t.Helper()
	return w.waitUntil(fmt.Sprintf("%d updated pods", updated), func(_ *unstructured.Unstructured, n func(string) int64) bool {
		return n("updatedReplicas") == updated
	})
}

// waitSettledAnyBatch waits until the workload has done what its current
// partition asks, whatever that is.
func (w *workloadOf) waitSettledAnyBatch() *unstructured.Unstructured {
	w.t.Helper()
	return w.waitUntil("the workload to settle", func(u *unstructured.Unstructured, n func(string) int64) bool {
		replicas, _, _ := unstructured.NestedInt64(u.Object, "spec", "replicas")
		p, found, _ := unstructured.NestedFieldNoCopy(u.Object, w.partitionPath()...)
		partition := int64(0)
		switch v := p.(type) {
		case int64:
			partition = v
		case string:
			if v == "100%" {
				partition = replicas
			} else if found {
				return n("updatedReplicas") == n("expectedUpdatedReplicas")
			}
		}
		return n("updatedReplicas") == max(replicas-partition, 0)
	})
}

func (w *workloadOf) pods() []corev1.Pod {
	w.t.Helper()
	var l corev1.PodList
	if err := w.c.List(w.ctx, &l, client.InNamespace(w.key.Namespace)); err != nil {
		w.t.Fatal(err)
	}
	var out []corev1.Pod
	for _, p := range l.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

// newPodWatch counts, from a watch, the pods on a revision that are not
// being deleted, and remembers the most seen at once.
type newPodWatch struct {
	mu       sync.Mutex
	revision string
	pods     map[string]bool
	max      int
}

func (w *workloadOf) watchNewPods(revision string) *newPodWatch {
	w.t.Helper()
	wc, err := client.NewWithWatch(env.ControlPlane.RESTConfig(), client.Options{Scheme: app.Scheme()})
	if err != nil {
		w.t.Fatal(err)
	}
	ch, err := wc.Watch(w.ctx, &corev1.PodList{}, client.InNamespace(w.key.Namespace))
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(ch.Stop)
	nw := &newPodWatch{revision: revision, pods: map[string]bool{}}
	for _, p := range w.pods() {
		nw.observe(watch.Added, &p)
	}
	go func() {
		for ev := range ch.ResultChan() {
			if p, ok := ev.Object.(*corev1.Pod); ok {
				nw.observe(ev.Type, p)
			}
		}
	}()
	return nw
}

func (nw *newPodWatch) observe(t watch.EventType, p *corev1.Pod) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	if t == watch.Deleted || p.DeletionTimestamp != nil || p.Labels["controller-revision-hash"] != nw.revision {
		delete(nw.pods, p.Name)
	} else {
		nw.pods[p.Name] = true
	}
	nw.max = max(nw.max, len(nw.pods))
}

func (nw *newPodWatch) most() int {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	return nw.max
}

func podsAt(pods []corev1.Pod, revision string) []string {
	var out []string
	for _, p := range pods {
		if p.Labels["controller-revision-hash"] == revision {
			out = append(out, p.Name)
		}
	}
	sort.Strings(out)
	return out
}

func selectedBy(pods []corev1.Pod, selector map[string]string) []string {
	var out []string
	if len(selector) == 0 {
		return nil
	}
	sel := labels.SelectorFromSet(selector)
	for _, p := range pods {
		if sel.Matches(labels.Set(p.Labels)) {
			out = append(out, p.Name)
		}
	}
	sort.Strings(out)
	return out
}

func describe(pods []corev1.Pod) string {
	var out []string
	for _, p := range pods {
		out = append(out, fmt.Sprintf("%s{pod-template-hash=%s controller-revision-hash=%s}", p.Name,
			p.Labels["pod-template-hash"], p.Labels["controller-revision-hash"]))
	}
	sort.Strings(out)
	return fmt.Sprint(out)
}

// waitEndpoints waits (up to timeout, for the EndpointSlice controller)
// until the Service's EndpointSlices list exactly the want pods as ready,
// and returns the ready pods they list last.
func waitEndpoints(ctx context.Context, c client.Client, ns, service string, want []string, timeout time.Duration) []string {
	var got []string
	_ = framework.Poll(ctx, timeout, func() (bool, error) {
		var l discoveryv1.EndpointSliceList
		if err := c.List(ctx, &l, client.InNamespace(ns), client.MatchingLabels{discoveryv1.LabelServiceName: service}); err != nil {
			return false, err
		}
		got = nil
		for _, s := range l.Items {
			for _, e := range s.Endpoints {
				if e.TargetRef != nil && e.Conditions.Ready != nil && *e.Conditions.Ready {
					got = append(got, e.TargetRef.Name)
				}
			}
		}
		sort.Strings(got)
		return slices.Equal(got, want), nil
	})
	return got
}
