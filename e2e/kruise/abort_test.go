//go:build e2e

package kruise_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/devenv/manifest"
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
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			ns, c := env.Namespace(t), env.Client
			if _, err := manifest.Create(ctx, c, ns, []byte(tc.manifest)); err != nil {
				t.Fatal(err)
			}
			key := client.ObjectKey{Namespace: ns, Name: "web"}
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
`, tc.gvk.GroupVersion(), tc.gvk.Kind))); err != nil {
				t.Fatal(err)
			}
			r := &rolloutWaiter{t: t, ctx: ctx, c: c, key: key}
			r.wait("Healthy", func(ro *v1beta1.Rollout) bool { return ro.Status.Phase == v1beta1.RolloutPhaseHealthy })
			get := func() *unstructured.Unstructured {
				u := &unstructured.Unstructured{}
				u.SetGroupVersionKind(tc.gvk)
				if err := c.Get(ctx, key, u); err != nil {
					t.Fatal(err)
				}
				return u
			}
			setImage := func(image string) {
				if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
					u := get()
					containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
					containers[0].(map[string]any)["image"] = image
					_ = unstructured.SetNestedSlice(u.Object, containers, "spec", "template", "spec", "containers")
					return c.Update(ctx, u)
				}); err != nil {
					t.Fatal(err)
				}
			}
			// podsOf counts the live pods per image, and the ready ones.
			podsOf := func() (all, ready map[string]int) {
				var list corev1.PodList
				if err := c.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels{"app": "web"}); err != nil {
					t.Fatal(err)
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
			if err := framework.Poll(ctx, 2*time.Minute, func() (bool, error) {
				_, ready := podsOf()
				return ready["demo:1.10.2"] == 4, nil
			}); err != nil {
				t.Fatal("the workload never had 4 ready pods")
			}

			setImage("demo:1.10.3")
			r.wait("step 1 paused", func(ro *v1beta1.Rollout) bool {
				return ro.Status.CurrentStepIndex == 1 && ro.Status.CurrentStepState == v1beta1.CanaryStepStatePaused
			})
			r.approve()
			r.wait("step 2 paused", func(ro *v1beta1.Rollout) bool {
				return ro.Status.CurrentStepIndex == 2 && ro.Status.CurrentStepState == v1beta1.CanaryStepStatePaused
			})
			ro := &v1beta1.Rollout{}
			ro.Namespace, ro.Name = ns, "web"
			if err := c.Patch(ctx, ro, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"annotations":{"`+analysisv1alpha1.AbortAnnotation+`":"now"}}}`))); err != nil {
				t.Fatal(err)
			}
			r.wait("aborted", func(ro *v1beta1.Rollout) bool {
				h := ro.Status.HoldOf()
				return h != nil && h.Reason == v1beta1.HoldAborted
			})
			var all, ready map[string]int
			if err := framework.Poll(ctx, 2*time.Minute, func() (bool, error) {
				all, ready = podsOf()
				return all["demo:1.10.3"] == 0 && ready["demo:1.10.2"] == 4, nil
			}); err != nil {
				t.Fatalf("the new pods never went after the abort: pods %v, ready %v, partition %v", all, ready, get().Object["spec"])
			}

			setImage("demo:1.10.2")
			done := r.wait("cancelled", func(ro *v1beta1.Rollout) bool { return ro.Status.Phase == v1beta1.RolloutPhaseHealthy })
			if l := done.Status.LastRelease; l == nil || l.Outcome != v1beta1.OutcomeAborted || l.Step != 2 {
				t.Errorf("lastRelease %+v, want Aborted at step 2", l)
			}
			if u := get(); u.GetAnnotations()[workload.InProgressingAnnotation] != "" {
				t.Error("the workload is still marked in progress")
			}
		})
	}
}
