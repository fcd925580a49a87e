//go:build e2e

package daemonset_test

import (
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/e2e/framework"
	"github.com/sluicehq/sluice/workload"
)

// deleteRollout deletes the Rollout and waits until it is gone (its
// finalizer removed once the workload is given back).
func (f *fixture) deleteRollout() {
	f.t.Helper()
	r := &v1beta1.Rollout{}
	r.Namespace, r.Name = f.ns, "agent"
	if err := f.c.Delete(f.ctx, r); err != nil {
		f.t.Fatal(err)
	}
	if err := framework.Poll(f.ctx, 2*time.Minute, func() (bool, error) {
		err := f.c.Get(f.ctx, client.ObjectKeyFromObject(r), r)
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	}); err != nil {
		f.t.Fatalf("the Rollout is not gone: %v\n%s", err, env.Manager.LogTail())
	}
}

// With --keep-workload-paused-on-rollout-deletion, a Rollout deleted
// mid-release leaves its DaemonSet where the batch held it: on OnDelete
// (its own strategy still saved), one pod of the new version, so that the
// team can roll back; the release's marks are gone.
func TestKeepPausedOnRolloutDeletionDaemonSet(t *testing.T) {
	f := newFixture(t, appsv1.SchemeGroupVersion.WithKind("DaemonSet"), nativeDaemonSet)
	f.setImage(imageV2)
	f.waitRollout("step 1 to wait for approval", pausedAt(1))
	f.deleteRollout()
	ds := f.get()
	if typ, _, _ := unstructured.NestedString(ds.Object, "spec", "updateStrategy", "type"); typ != "OnDelete" {
		t.Errorf("updateStrategy.type %q, want OnDelete kept", typ)
	}
	if got := annotation(ds, workload.DaemonSetOriginalStrategyAnnotation); got != "RollingUpdate" {
		t.Errorf("%s = %q, want the original strategy kept", workload.DaemonSetOriginalStrategyAnnotation, got)
	}
	for _, k := range []string{workload.InProgressingAnnotation, workload.ControlInfoAnnotation} {
		if _, ok := ds.GetAnnotations()[k]; ok {
			t.Errorf("%s left", k)
		}
	}
	if n := len(ofImage(f.pods(), imageV2)); n != 1 {
		t.Errorf("%d pods of the new version, want the batch's 1", n)
	}
}

// The same for a StatefulSet: its partition stays at the batch's.
func TestKeepPausedOnRolloutDeletionStatefulSet(t *testing.T) {
	f := newFixtureWith(t, appsv1.SchemeGroupVersion.WithKind("StatefulSet"), 4, `apiVersion: apps/v1
kind: StatefulSet
metadata: {name: agent}
spec:
  replicas: 4
  serviceName: agent
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: agent, image: "`+imageV1+`"}]}
`, `apiVersion: rollouts.kruise.io/v1beta1
kind: Rollout
metadata: {name: agent}
spec:
  workloadRef: {apiVersion: apps/v1, kind: StatefulSet, name: agent}
  strategy:
    canary:
      steps:
      - {replicas: 1, pause: {}}
      - {replicas: 100%}
`)
	f.setImage(imageV2)
	f.waitRollout("step 1 to wait for approval", pausedAt(1))
	f.deleteRollout()
	s := f.get()
	if p, _, _ := unstructured.NestedInt64(s.Object, "spec", "updateStrategy", "rollingUpdate", "partition"); p != 3 {
		t.Errorf("partition %d, want the batch's 3 kept", p)
	}
	if _, ok := s.GetAnnotations()[workload.InProgressingAnnotation]; ok {
		t.Errorf("%s left", workload.InProgressingAnnotation)
	}
	if n := len(ofImage(f.pods(), imageV2)); n != 1 {
		t.Errorf("%d pods of the new version, want the batch's 1", n)
	}
}
