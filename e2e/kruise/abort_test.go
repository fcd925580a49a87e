//go:build e2e

package kruise_test

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/e2e/framework"
	"github.com/sluicehq/sluice/workload"
)

// An aborted release takes the new pods away. Raising an OpenKruise
// workload's partition does not roll pods back (OpenKruise's default), so
// Sluice deletes them one at a time and the workload recreates them at
// the stable revision; re-applying the stable template then ends the
// release, recorded as aborted.
func TestKruiseAbort(t *testing.T) {
	for _, tc := range kruiseCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newKruiseFixture(t, tc, 4*time.Minute)
			f.setImage("demo:1.10.3")
			f.waitPaused(1)
			f.r.approve()
			f.waitPaused(2)
			ro := &v1beta1.Rollout{}
			ro.Namespace, ro.Name = f.ns, "web"
			if err := f.c.Patch(f.ctx, ro, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"annotations":{"`+analysisv1alpha1.AbortAnnotation+`":"now"}}}`))); err != nil {
				t.Fatal(err)
			}
			f.r.wait("aborted", func(ro *v1beta1.Rollout) bool {
				h := ro.Status.HoldOf()
				return h != nil && h.Reason == v1beta1.HoldAborted
			})
			var all, ready map[string]int
			if err := framework.Poll(f.ctx, 2*time.Minute, func() (bool, error) {
				all, ready = f.podsByImage()
				return all["demo:1.10.3"] == 0 && ready["demo:1.10.2"] == 4, nil
			}); err != nil {
				t.Fatalf("the new pods never went after the abort: pods %v, ready %v, spec %v", all, ready, f.get().Object["spec"])
			}

			f.setImage("demo:1.10.2")
			done := f.r.wait("cancelled", func(ro *v1beta1.Rollout) bool { return ro.Status.Phase == v1beta1.RolloutPhaseHealthy })
			if l := done.Status.LastRelease; l == nil || l.Outcome != v1beta1.OutcomeAborted || l.Step != 2 {
				t.Errorf("lastRelease %+v, want Aborted at step 2", l)
			}
			if u := f.get(); u.GetAnnotations()[workload.InProgressingAnnotation] != "" {
				t.Error("the workload is still marked in progress")
			}
		})
	}
}

// podsByImage counts the workload's live pods per image, and the ready ones.
func (f *kruiseFixture) podsByImage() (all, ready map[string]int) {
	f.t.Helper()
	var list corev1.PodList
	if err := f.c.List(f.ctx, &list, client.InNamespace(f.ns), client.MatchingLabels{"app": "web"}); err != nil {
		f.t.Fatal(err)
	}
	all, ready = map[string]int{}, map[string]int{}
	for _, p := range list.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		all[p.Spec.Containers[0].Image]++
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
				ready[p.Spec.Containers[0].Image]++
			}
		}
	}
	return all, ready
}
