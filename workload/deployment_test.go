package workload

import (
	"context"
	"errors"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func fakeClient(t *testing.T, objs ...client.Object) client.Client {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	return fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).WithStatusSubresource(&appsv1.Deployment{}, &appsv1.ReplicaSet{}, &appsv1.StatefulSet{}).Build()
}

// releasing is a 10-replica Deployment (maxSurge 25%, maxUnavailable 25%)
// held by a release of v2 over v1: stableSpec/stableReady pods on v1,
// newSpec/newReady on v2.
func releasing(stableSpec, stableReady, newSpec, newReady int32) (*appsv1.Deployment, *appsv1.ReplicaSet, *appsv1.ReplicaSet) {
	ten := int32(10)
	tmpl := func(image string) corev1.PodTemplateSpec {
		return corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: image}}},
		}
	}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "d-uid", Generation: 3,
			Labels:      map[string]string{},
			Annotations: map[string]string{InProgressingAnnotation: `{"rolloutName":"web"}`, ControlInfoAnnotation: "{}"}},
		Spec: appsv1.DeploymentSpec{Replicas: &ten, Paused: true, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: tmpl("demo:v2"), Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}},
		Status: appsv1.DeploymentStatus{ObservedGeneration: 3},
	}
	raw := `{"rollingStyle":"Partition","rollingUpdate":{"maxSurge":"25%","maxUnavailable":"25%"},"paused":false,"partition":0}`
	d.Annotations[DeploymentStrategyAnnotation] = raw
	rs := func(hash, image string, spec, ready int32, revision string) *appsv1.ReplicaSet {
		t := tmpl(image)
		t.Labels[appsv1.DefaultDeploymentUniqueLabelKey] = hash
		return &appsv1.ReplicaSet{
			ObjectMeta: metav1.ObjectMeta{Name: "web-" + hash, Namespace: "ns", Labels: t.Labels,
				Annotations:     map[string]string{"deployment.kubernetes.io/revision": revision},
				OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(d, appsv1.SchemeGroupVersion.WithKind("Deployment"))}},
			Spec:   appsv1.ReplicaSetSpec{Replicas: &spec, Template: t},
			Status: appsv1.ReplicaSetStatus{Replicas: spec, ReadyReplicas: ready, AvailableReplicas: ready},
		}
	}
	v1, v2 := tmpl("demo:v1"), tmpl("demo:v2")
	d.Labels[StableRevisionLabel] = TemplateHash(&v1, nil)
	return d, rs(TemplateHash(&v1, nil), "demo:v1", stableSpec, stableReady, "1"), rs(TemplateHash(&v2, nil), "demo:v2", newSpec, newReady, "2")
}

func replicasOfRS(t *testing.T, c client.Client, name string) int32 {
	t.Helper()
	rs := &appsv1.ReplicaSet{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: "ns", Name: name}, rs); err != nil {
		t.Fatal(err)
	}
	return *rs.Spec.Replicas
}

func TestDeploymentObserve(t *testing.T) {
	d, stable, next := releasing(7, 7, 4, 3)
	a := &Deployment{Client: fakeClient(t, d, stable, next), Key: client.ObjectKey{Namespace: "ns", Name: "web"}, RolloutName: "web"}
	info, err := a.Observe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	v1, v2 := stable.Labels[appsv1.DefaultDeploymentUniqueLabelKey], next.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
	want := Info{Replicas: 10, Frozen: true, StableRevision: v1, UpdateRevision: v2, PodRevision: v2,
		Updated: 4, UpdatedReady: 3, Others: 7, Settled: true, Controlled: true, CanHandOver: true, RevisionLabel: "pod-template-hash"}
	info.Unready = nil // named from pods, which this test has none of
	if !equality.Semantic.DeepEqual(*info, want) {
		t.Errorf("info\n got %+v\nwant %+v", *info, want)
	}
}

// The worked example of planScale, through the adapter: 10 replicas,
// maxSurge 25% (3) and maxUnavailable 25% (2) kept in the strategy
// annotation; a batch of 5 from 1 new / 9 stable, all available.
func TestDeploymentRelease(t *testing.T) {
	ctx := context.Background()
	key := client.ObjectKey{Namespace: "ns", Name: "web"}
	for _, tc := range []struct {
		name                 string
		stable, next         [2]int32 // spec, ready
		batch                Batch
		wantStable, wantNext int32
		wantErr              error
	}{
		{name: "the new ReplicaSet grows within maxSurge, the stable one shrinks within maxUnavailable",
			stable: [2]int32{9, 9}, next: [2]int32{1, 1}, batch: Batch{Index: 2, Updated: 5, Revision: "v2"}, wantStable: 7, wantNext: 4},
		{name: "a forward batch never removes new pods (an earlier step replayed)",
			stable: [2]int32{5, 5}, next: [2]int32{5, 5}, batch: Batch{Index: 1, Updated: 1, Revision: "v2"}, wantStable: 5, wantNext: 5},
		{name: "a shrinking batch does, within maxUnavailable",
			stable: [2]int32{5, 5}, next: [2]int32{5, 5}, batch: Batch{Index: 1, Updated: 1, Revision: "v2", Shrink: true}, wantStable: 8, wantNext: 3},
		{name: "a batch for another revision is refused",
			stable: [2]int32{9, 9}, next: [2]int32{1, 1}, batch: Batch{Index: 2, Updated: 5, Revision: "v3"}, wantStable: 9, wantNext: 1, wantErr: ErrRevisionChanged},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, stable, next := releasing(tc.stable[0], tc.stable[1], tc.next[0], tc.next[1])
			c := fakeClient(t, d, stable, next)
			a := &Deployment{Client: c, Key: key, RolloutName: "web"}
			b := tc.batch
			if b.Revision == "v2" {
				b.Revision = next.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
			}
			if err := a.Release(ctx, b); !errors.Is(err, tc.wantErr) {
				t.Fatalf("Release: %v, want %v", err, tc.wantErr)
			}
			if got := replicasOfRS(t, c, stable.Name); got != tc.wantStable {
				t.Errorf("stable ReplicaSet %d, want %d", got, tc.wantStable)
			}
			if got := replicasOfRS(t, c, next.Name); got != tc.wantNext {
				t.Errorf("new ReplicaSet %d, want %d", got, tc.wantNext)
			}
		})
	}
}

// Nothing is released while the Deployment controller has not seen the
// Deployment's latest spec: its new ReplicaSet may be about to change.
func TestDeploymentReleaseWaitsForItsController(t *testing.T) {
	d, stable, next := releasing(9, 9, 1, 1)
	d.Generation = 4 // a template written, not yet observed
	c := fakeClient(t, d, stable, next)
	a := &Deployment{Client: c, Key: client.ObjectKey{Namespace: "ns", Name: "web"}}
	if err := a.Release(context.Background(), Batch{Index: 2, Updated: 5, Revision: next.Labels[appsv1.DefaultDeploymentUniqueLabelKey]}); !errors.Is(err, ErrRevisionChanged) {
		t.Fatalf("Release: %v, want %v", err, ErrRevisionChanged)
	}
	if got := replicasOfRS(t, c, next.Name); got != 1 {
		t.Errorf("new ReplicaSet scaled to %d before its Deployment was observed", got)
	}
}

// A scale computed from a stale copy of a ReplicaSet fails (optimistic
// lock) instead of overwriting a newer size.
func TestScaleReplicaSetIsConditional(t *testing.T) {
	ctx := context.Background()
	d, stable, next := releasing(5, 5, 5, 5)
	c := fakeClient(t, d, stable, next)
	stale := &appsv1.ReplicaSet{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(next), stale); err != nil {
		t.Fatal(err)
	}
	fresh := stale.DeepCopy()
	if err := scaleReplicaSet(ctx, c, fresh, 6); err != nil {
		t.Fatal(err)
	}
	if err := scaleReplicaSet(ctx, c, stale, 1); !apierrors.IsConflict(err) {
		t.Fatalf("a write from a stale copy: %v, want a conflict", err)
	}
	if got := replicasOfRS(t, c, next.Name); got != 6 {
		t.Errorf("new ReplicaSet %d, want the newer 6", got)
	}
}
