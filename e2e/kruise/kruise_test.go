//go:build e2e

package kruise_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/devenv/manifest"
	"github.com/sluicehq/sluice/e2e/framework"
	"github.com/sluicehq/sluice/workload"
)

// kruiseCase is one OpenKruise kind with 4 replicas of demo:1.10.2.
type kruiseCase struct {
	name, manifest string
	gvk            schema.GroupVersionKind
	partition      []string
	frozen         any
}

func kruiseCases() []kruiseCase {
	return []kruiseCase{
		{"CloneSet", `apiVersion: apps.kruise.io/v1alpha1
kind: CloneSet
metadata: {name: web}
spec:
  replicas: 4
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "demo:1.10.2"}]}
`, workload.CloneSetKind, []string{"spec", "updateStrategy", "partition"}, "100%"},
		{"Advanced StatefulSet", `apiVersion: apps.kruise.io/v1beta1
kind: StatefulSet
metadata: {name: web}
spec:
  replicas: 4
  serviceName: web
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "demo:1.10.2"}]}
`, workload.AdvancedStatefulSetKind, []string{"spec", "updateStrategy", "rollingUpdate", "partition"}, int64(workload.FrozenPartition)},
	}
}

// kruiseFixture is one OpenKruise workload of 4 pods of demo:1.10.2 with
// a Rollout that waits for approval after 1 pod and after half of them.
type kruiseFixture struct {
	t   *testing.T
	ctx context.Context
	c   client.Client
	ns  string
	key client.ObjectKey
	tc  kruiseCase
	r   *rolloutWaiter
}

// newKruiseFixture creates the workload and its Rollout and waits until
// the Rollout is Healthy and the workload runs its 4 pods.
func newKruiseFixture(t *testing.T, tc kruiseCase, timeout time.Duration) *kruiseFixture {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	f := &kruiseFixture{t: t, ctx: ctx, c: env.Client, ns: env.Namespace(t), tc: tc}
	f.key = client.ObjectKey{Namespace: f.ns, Name: "web"}
	f.r = &rolloutWaiter{t: t, ctx: ctx, c: f.c, key: f.key}
	if _, err := manifest.Create(ctx, f.c, f.ns, []byte(tc.manifest)); err != nil {
		t.Fatal(err)
	}
	if _, err := manifest.Create(ctx, f.c, f.ns, []byte(fmt.Sprintf(`apiVersion: rollouts.kruise.io/v1beta1
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
	f.r.wait("Healthy", func(ro *v1beta1.Rollout) bool { return ro.Status.Phase == v1beta1.RolloutPhaseHealthy })
	// The release starts on a running workload.
	if err := framework.Poll(ctx, 2*time.Minute, func() (bool, error) {
		ready, _, _ := unstructured.NestedInt64(f.get().Object, "status", "readyReplicas")
		return ready == 4, nil
	}); err != nil {
		t.Fatalf("the workload never had 4 ready pods: %v", err)
	}
	return f
}

func (f *kruiseFixture) get() *unstructured.Unstructured {
	f.t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(f.tc.gvk)
	if err := f.c.Get(f.ctx, f.key, u); err != nil {
		f.t.Fatal(err)
	}
	return u
}

// setImage changes the pod template's image (retried: the workload's
// controller writes the object too) and returns the workload as stored.
func (f *kruiseFixture) setImage(image string) *unstructured.Unstructured {
	f.t.Helper()
	var u *unstructured.Unstructured
	if err := retry.RetryOnConflict(framework.ConflictRetry, func() error {
		u = f.get()
		containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
		containers[0].(map[string]any)["image"] = image
		_ = unstructured.SetNestedSlice(u.Object, containers, "spec", "template", "spec", "containers")
		return f.c.Update(f.ctx, u)
	}); err != nil {
		f.t.Fatal(err)
	}
	return u
}

func (f *kruiseFixture) waitPaused(step int32) {
	f.t.Helper()
	f.r.wait(fmt.Sprintf("step %d paused", step), func(ro *v1beta1.Rollout) bool {
		return ro.Status.CurrentStepIndex == step && ro.Status.CurrentStepState == v1beta1.CanaryStepStatePaused
	})
}

func TestKruiseWorkloads(t *testing.T) {
	for _, tc := range kruiseCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newKruiseFixture(t, tc, 3*time.Minute)
			r, get := f.r, f.get
			u := get()
			if u.GetLabels()[workload.WorkloadTypeLabel] == "" {
				t.Fatalf("the workload-type label is missing: %v", u.GetLabels())
			}
			// The image changes: the freeze webhook partitions it at once.
			u = f.setImage("demo:1.10.3")
			if p, _, _ := unstructured.NestedFieldNoCopy(u.Object, tc.partition...); fmt.Sprint(p) != fmt.Sprint(tc.frozen) {
				t.Errorf("partition after the update %v, want %v (frozen by the webhook)", p, tc.frozen)
			}
			if u.GetAnnotations()[workload.InProgressingAnnotation] == "" {
				t.Error("the webhook must mark the workload in-progressing")
			}

			partitionAt := func(step int32, want int64) {
				t.Helper()
				f.waitPaused(step)
				if p, _, _ := unstructured.NestedInt64(get().Object, tc.partition...); p != want {
					t.Errorf("step %d: partition %d, want %d", step, p, want)
				}
			}
			partitionAt(1, 3)
			r.approve()
			partitionAt(2, 2)
			r.approve()
			ro := r.wait("Completed", func(ro *v1beta1.Rollout) bool {
				return ro.Status.Phase == v1beta1.RolloutPhaseHealthy && ro.Status.CurrentStepState == v1beta1.CanaryStepStateCompleted
			})
			if cs := ro.Status.CanaryStatus; cs.StableRevision != cs.CanaryRevision {
				t.Errorf("stable %s, canary %s", cs.StableRevision, cs.CanaryRevision)
			}
			// Sluice removes its partition; OpenKruise's defaulting webhook
			// puts 0 back, and every pod ends on the new revision.
			u = get()
			if p, found, _ := unstructured.NestedFieldNoCopy(u.Object, tc.partition...); !found || p != int64(0) {
				t.Errorf("the partition after the release is %v (found %v), want 0", p, found)
			}
			if err := framework.Poll(f.ctx, 2*time.Minute, func() (bool, error) {
				u = get()
				update, _, _ := unstructured.NestedString(u.Object, "status", "updateRevision")
				current, _, _ := unstructured.NestedString(u.Object, "status", "currentRevision")
				updated, _, _ := unstructured.NestedInt64(u.Object, "status", "updatedReadyReplicas")
				return update == current && updated == 4, nil
			}); err != nil {
				t.Errorf("the workload never ran the new revision on all 4 pods: status %v", u.Object["status"])
			}
			for _, k := range []string{workload.InProgressingAnnotation, workload.ControlInfoAnnotation} {
				if _, ok := u.GetAnnotations()[k]; ok {
					t.Errorf("annotation %s left", k)
				}
			}
		})
	}
}

type rolloutWaiter struct {
	t   *testing.T
	ctx context.Context
	c   client.Client
	key client.ObjectKey
}

func (r *rolloutWaiter) wait(what string, cond func(*v1beta1.Rollout) bool) *v1beta1.Rollout {
	r.t.Helper()
	ro, err := framework.WaitRollout(r.ctx, r.c, r.key, 2*time.Minute, cond)
	if err != nil {
		r.t.Fatalf("waiting for %s: %v\n%s", what, err, env.Manager.LogTail())
	}
	return ro
}

func (r *rolloutWaiter) approve() {
	r.t.Helper()
	ro := &v1beta1.Rollout{}
	ro.Namespace, ro.Name = r.key.Namespace, r.key.Name
	if err := r.c.Status().Patch(r.ctx, ro, client.RawPatch(types.MergePatchType, []byte(`{"status":{"canaryStatus":{"currentStepState":"StepReady"}}}`))); err != nil {
		r.t.Fatal(err)
	}
}
