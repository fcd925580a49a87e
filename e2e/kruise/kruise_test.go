//go:build e2e

package kruise_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/devenv/manifest"
	"github.com/sluicehq/sluice/e2e/framework"
	"github.com/sluicehq/sluice/workload"
)

// standIn plays OpenKruise's controller for one workload: status follows
// spec as the CloneSet / Advanced StatefulSet controllers report it — the
// update revision named after the template, partition pods kept on the
// current revision, the rest updated and ready at once, the current
// revision moving on once every pod is updated and nothing is partitioned.
func standIn(ctx context.Context, t *testing.T, c client.Client, gvk schema.GroupVersionKind, key client.ObjectKey, partitionPath []string) {
	go func() {
		for ctx.Err() == nil {
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(gvk)
			if err := c.Get(ctx, key, u); err == nil {
				if err := c.Status().Patch(ctx, u, client.RawPatch(types.MergePatchType, statusPatch(u, partitionPath))); err != nil && ctx.Err() == nil {
					t.Logf("stand-in: %v", err)
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
}

func statusPatch(u *unstructured.Unstructured, partitionPath []string) []byte {
	template, _, _ := unstructured.NestedMap(u.Object, "spec", "template")
	raw, _ := json.Marshal(template)
	update := fmt.Sprintf("%s-%x", u.GetName(), sha256.Sum256(raw))[:len(u.GetName())+11]
	current, _, _ := unstructured.NestedString(u.Object, "status", "currentRevision")
	if current == "" {
		current = update
	}
	replicas, _, _ := unstructured.NestedInt64(u.Object, "spec", "replicas")
	partition := int64(0)
	if v, found, _ := unstructured.NestedFieldNoCopy(u.Object, partitionPath...); found {
		p := intstr.Parse(fmt.Sprint(v))
		n, _ := intstr.GetScaledValueFromIntOrPercent(&p, int(replicas), true)
		partition = int64(n)
	}
	updated := replicas
	if update != current {
		updated = max(0, replicas-partition)
	}
	if updated == replicas && partition == 0 {
		current = update
	}
	b, _ := json.Marshal(map[string]any{"status": map[string]any{
		"observedGeneration": u.GetGeneration(), "replicas": replicas, "readyReplicas": replicas,
		"updatedReplicas": updated, "updatedReadyReplicas": updated,
		"updateRevision": update, "currentRevision": current,
	}})
	return b
}

func TestKruiseWorkloads(t *testing.T) {
	for _, tc := range []struct {
		name, manifest string
		gvk            schema.GroupVersionKind
		partition      []string
		frozen         any
	}{
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
  updateStrategy: {type: RollingUpdate, rollingUpdate: {podUpdatePolicy: InPlaceIfPossible}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "demo:1.10.2"}]}
`, workload.AdvancedStatefulSetKind, []string{"spec", "updateStrategy", "rollingUpdate", "partition"}, int64(workload.FrozenPartition)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			ns, c := env.Namespace(t), env.Client
			if _, err := manifest.Create(ctx, c, ns, []byte(tc.manifest)); err != nil {
				t.Fatal(err)
			}
			key := client.ObjectKey{Namespace: ns, Name: "web"}
			standIn(ctx, t, c, tc.gvk, key, tc.partition)
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
			u := get()
			if u.GetLabels()[workload.WorkloadTypeLabel] == "" {
				t.Fatalf("the workload-type label is missing: %v", u.GetLabels())
			}
			// The image changes: the freeze webhook partitions it at once.
			containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
			containers[0].(map[string]any)["image"] = "demo:1.10.3"
			_ = unstructured.SetNestedSlice(u.Object, containers, "spec", "template", "spec", "containers")
			if err := c.Update(ctx, u); err != nil {
				t.Fatal(err)
			}
			if p, _, _ := unstructured.NestedFieldNoCopy(u.Object, tc.partition...); fmt.Sprint(p) != fmt.Sprint(tc.frozen) {
				t.Errorf("partition after the update %v, want %v (frozen by the webhook)", p, tc.frozen)
			}
			if u.GetAnnotations()[workload.InProgressingAnnotation] == "" {
				t.Error("the webhook must mark the workload in-progressing")
			}

			partitionAt := func(step int32, want int64) {
				t.Helper()
				r.wait(fmt.Sprintf("step %d paused", step), func(ro *v1beta1.Rollout) bool {
					return ro.Status.CurrentStepIndex == step && ro.Status.CurrentStepState == v1beta1.CanaryStepStatePaused
				})
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
			u = get()
			if _, found, _ := unstructured.NestedFieldNoCopy(u.Object, tc.partition...); found {
				t.Error("the partition is left on the workload")
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
