//go:build e2e

package kruise_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/e2e/framework"
	"github.com/sluicehq/sluice/rollout"
	"github.com/sluicehq/sluice/workload"
)

// withNativeStatefulSet adds the apps/v1 StatefulSet to the OpenKruise
// cases (4 replicas of demo:1.10.2, partition in rollingUpdate).
func withNativeStatefulSet() []kruiseCase {
	return append([]kruiseCase{{"StatefulSet", `apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  replicas: 4
  serviceName: web
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "demo:1.10.2"}]}
`, appsv1.SchemeGroupVersion.WithKind("StatefulSet"), []string{"spec", "updateStrategy", "rollingUpdate", "partition"}, int64(workload.FrozenPartition)}}, kruiseCases()...)
}

func (f *kruiseFixture) annotateRollout(k, v string) {
	f.t.Helper()
	ro := &v1beta1.Rollout{}
	ro.Namespace, ro.Name = f.ns, "web"
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, k, v)
	if err := f.c.Patch(f.ctx, ro, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
		f.t.Fatal(err)
	}
}

// waitImages waits until the workload runs exactly these ready pods per
// image, none being deleted.
func (f *kruiseFixture) waitImages(what string, want map[string]int) {
	f.t.Helper()
	var all, ready map[string]int
	if err := framework.Poll(f.ctx, 2*time.Minute, func() (bool, error) {
		all, ready = f.podsByImage()
		return fmt.Sprint(all) == fmt.Sprint(want) && fmt.Sprint(ready) == fmt.Sprint(want), nil
	}); err != nil {
		f.t.Fatalf("waiting for %s: pods %v, ready %v, want %v", what, all, ready, want)
	}
}

// With rollouts.kruise.io/rollback-in-batch: "true", re-applying the
// stable version mid-release releases it in the same batches from step 1,
// counting the pods already on it as done (Kruise's no-need-update pods):
// 4 pods, 2 of them on the new version at step 2; the rollback's step 1
// (1 pod) takes one back, its step 2 (50% of the 2 left) none more, its
// step 3 the last.
func TestRollbackInBatches(t *testing.T) {
	const v1, v2 = "demo:1.10.2", "demo:1.10.3"
	for _, tc := range withNativeStatefulSet() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newKruiseFixture(t, tc, 4*time.Minute)
			f.annotateRollout(rollout.RollbackInBatchAnnotation, "true")
			f.setImage(v2)
			f.waitPaused(1)
			f.r.approve()
			f.waitPaused(2)
			f.waitImages("half the pods on the new version", map[string]int{v1: 2, v2: 2})
			before := f.r.wait("the release's status", func(*v1beta1.Rollout) bool { return true })

			f.setImage(v1)
			ro := f.r.wait("the rollback's step 1", func(ro *v1beta1.Rollout) bool {
				cs := ro.Status.CanaryStatus
				return cs != nil && cs.CanaryRevision == before.Status.CanaryStatus.StableRevision &&
					ro.Status.CurrentStepIndex == 1 && ro.Status.CurrentStepState == v1beta1.CanaryStepStatePaused
			})
			if ro.Status.Phase != v1beta1.RolloutPhaseProgressing || ro.Status.Release == nil || ro.Status.Release.NoNeedUpdate != 2 {
				t.Errorf("rollback release: phase %s, release %+v; want Progressing with 2 pods needing no update", ro.Status.Phase, ro.Status.Release)
			}
			f.waitImages("the rollback's first batch", map[string]int{v1: 3, v2: 1})
			f.r.approve()
			f.waitPaused(2)
			f.waitImages("the rollback's second batch", map[string]int{v1: 3, v2: 1})
			f.r.approve()
			f.r.wait("the rollback to complete", func(ro *v1beta1.Rollout) bool {
				return ro.Status.Phase == v1beta1.RolloutPhaseHealthy && ro.Status.CurrentStepState == v1beta1.CanaryStepStateCompleted
			})
			f.waitImages("every pod back", map[string]int{v1: 4})
		})
	}
}

// The marks tools read carry Kruise's values: the workload-type label
// (cloneset, statefulset), the in-progressing annotation
// {"rolloutName":...}, and on pods the release's rollout-id (from the
// workload's label) with the 1-based batch they were released in.
func TestKruiseMarksForTools(t *testing.T) {
	typeLabel := map[string]string{"StatefulSet": "statefulset", "CloneSet": "cloneset", "Advanced StatefulSet": "statefulset"}
	for _, tc := range withNativeStatefulSet() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newKruiseFixture(t, tc, 4*time.Minute)
			u := f.get()
			if got := u.GetLabels()[workload.WorkloadTypeLabel]; got != typeLabel[tc.name] {
				t.Errorf("%s = %q, want %q", workload.WorkloadTypeLabel, got, typeLabel[tc.name])
			}
			setID := func(id string) {
				u := &unstructured.Unstructured{}
				u.SetGroupVersionKind(tc.gvk)
				u.SetNamespace(f.ns)
				u.SetName("web")
				patch := fmt.Sprintf(`{"metadata":{"labels":{%q:%q}}}`, workload.RolloutIDLabel, id)
				// Retried: the workload's controller writes it too.
				if err := retry.RetryOnConflict(framework.ConflictRetry, func() error {
					return f.c.Patch(f.ctx, u, client.RawPatch(types.MergePatchType, []byte(patch)))
				}); err != nil {
					t.Fatal(err)
				}
			}
			setID("release-1")
			u = f.setImage("demo:1.10.3")
			var mark map[string]string
			if err := json.Unmarshal([]byte(u.GetAnnotations()[workload.InProgressingAnnotation]), &mark); err != nil || len(mark) != 1 || mark["rolloutName"] != "web" {
				t.Errorf("%s = %q, want {\"rolloutName\":\"web\"}", workload.InProgressingAnnotation, u.GetAnnotations()[workload.InProgressingAnnotation])
			}
			f.waitPaused(1)
			ro := f.r.wait("status", func(*v1beta1.Rollout) bool { return true })
			if ro.Status.CanaryStatus.ObservedRolloutID != "release-1" {
				t.Errorf("observedRolloutID %q", ro.Status.CanaryStatus.ObservedRolloutID)
			}
			labelled := func(image, id, batch string) int {
				var list corev1.PodList
				if err := f.c.List(f.ctx, &list, client.InNamespace(f.ns), client.MatchingLabels{"app": "web", workload.RolloutIDLabel: id, workload.BatchIDLabel: batch}); err != nil {
					t.Fatal(err)
				}
				n := 0
				for _, p := range list.Items {
					if p.DeletionTimestamp == nil && p.Spec.Containers[0].Image == image {
						n++
					}
				}
				return n
			}
			if err := framework.Poll(f.ctx, time.Minute, func() (bool, error) { return labelled("demo:1.10.3", "release-1", "1") == 1, nil }); err != nil {
				t.Errorf("no pod labelled rollout-id release-1, batch 1")
			}
			f.r.approve()
			f.waitPaused(2)
			if err := framework.Poll(f.ctx, time.Minute, func() (bool, error) { return labelled("demo:1.10.3", "release-1", "2") == 1, nil }); err != nil {
				t.Errorf("no pod labelled rollout-id release-1, batch 2")
			}
		})
	}
}
