//go:build e2e

package bench_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/devenv/manifest"
	"github.com/sluicehq/sluice/e2e/framework"
	"github.com/sluicehq/sluice/e2e/invariants"
)

const (
	imageV1 = "openkruise-registry.cn-shanghai.cr.aliyuncs.com/openkruise/demo:1.10.2"
	// rolloutName is the name of every Rollout here, the guide's.
	rolloutName = "rollouts-demo"
)

// image is the i-th new version, healthy.
func image(i int) string {
	return fmt.Sprintf("openkruise-registry.cn-shanghai.cr.aliyuncs.com/openkruise/demo:1.11.%d", i)
}

// fixture is one benchmark's namespace, with a recorder of what happens
// in it.
type fixture struct {
	b   *testing.B
	ctx context.Context
	ns  string
	c   client.Client
	rec *recorder
}

func newFixture(b *testing.B, lists ...client.ObjectList) *fixture {
	b.Helper()
	// Benchmarks report and never fail: the invariant checker counts and
	// prints what it sees (b.Log always prints) instead of failing.
	f := &fixture{b: b, ctx: b.Context(), ns: env.Namespace(b, invariants.ReportOnly()), c: env.Client}
	rec, err := record(f.ctx, f.ns, lists...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(rec.stop)
	f.rec = rec
	return f
}

func guideFile(name string) string {
	return filepath.Join(framework.RepoRoot(), "docs", "examples", "guide", name)
}

// createEchoserver creates the guide's Deployment (with replicas pods) and
// Service, and waits until every pod is available.
func (f *fixture) createEchoserver(replicas int32) {
	f.b.Helper()
	from := f.rec.mark()
	objs, err := manifest.Objects(mustRead(f.b, guideFile("echoserver.yaml")))
	if err != nil {
		f.b.Fatal(err)
	}
	for _, o := range objs {
		o.SetNamespace(f.ns)
		if o.GetKind() == "Deployment" {
			if err := unstructured.SetNestedField(o.Object, int64(replicas), "spec", "replicas"); err != nil {
				f.b.Fatal(err)
			}
		}
		if err := f.c.Create(f.ctx, o); err != nil {
			f.b.Fatal(err)
		}
	}
	f.waitDeployment(from, imageV1)
}

func (f *fixture) create(doc string) {
	f.b.Helper()
	if _, err := manifest.Create(f.ctx, f.c, f.ns, []byte(doc)); err != nil {
		f.b.Fatal(err)
	}
}

func (f *fixture) createFile(path string) {
	f.b.Helper()
	if _, err := manifest.CreateFile(f.ctx, f.c, f.ns, path); err != nil {
		f.b.Fatal(err)
	}
}

// setImage changes the echoserver's image as `kubectl apply` of an
// edited manifest would.
func (f *fixture) setImage(image string) {
	f.b.Helper()
	d := &appsv1.Deployment{}
	if err := f.c.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: "echoserver"}, d); err != nil {
		f.b.Fatal(err)
	}
	patch := client.MergeFrom(d.DeepCopy())
	d.Spec.Template.Spec.Containers[0].Image = image
	if err := f.c.Patch(f.ctx, d, patch); err != nil {
		f.b.Fatal(err)
	}
}

// approve sends what `kubectl-kruise rollout approve` sends (a merge patch
// of the v1alpha1 status) and returns the resourceVersion it wrote.
func (f *fixture) approve() string {
	f.b.Helper()
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("rollouts.kruise.io/v1alpha1")
	u.SetKind("Rollout")
	u.SetNamespace(f.ns)
	u.SetName(rolloutName)
	body := []byte(`{"status":{"canaryStatus":{"currentStepState":"StepReady"}}}`)
	if err := f.c.Status().Patch(f.ctx, u, client.RawPatch(types.MergePatchType, body)); err != nil {
		f.b.Fatal(err)
	}
	return u.GetResourceVersion()
}

// waitRollout waits for a Rollout event at or after from for which cond
// holds, and returns its index.
func (f *fixture) waitRollout(from int, what string, cond func(*v1beta1.Rollout) bool) (int, event) {
	f.b.Helper()
	i, e, err := f.rec.wait(f.ctx, from, 3*time.Minute, what, func(e event) bool {
		r, ok := is[*v1beta1.Rollout](e, rolloutName)
		return ok && cond(r)
	})
	if err != nil {
		f.b.Fatalf("%v\nmanager log:\n%s", err, env.Manager.LogTail())
	}
	return i, e
}

// waitDeployment waits until every pod of the echoserver runs image and is
// available, and the Deployment is not paused, and returns when that was
// seen.
func (f *fixture) waitDeployment(from int, image string) time.Time {
	f.b.Helper()
	_, e, err := f.rec.wait(f.ctx, from, 3*time.Minute, "the Deployment to complete on "+image, func(e event) bool {
		d, ok := is[*appsv1.Deployment](e, "echoserver")
		return ok && deploymentDone(d, image)
	})
	if err != nil {
		f.b.Fatal(err)
	}
	return e.at
}

// deploymentDone: every pod of d runs image and is available, no old pod
// is left, and d is not paused.
func deploymentDone(d *appsv1.Deployment, image string) bool {
	if imageOf(d.Spec.Template.Spec) != image {
		return false
	}
	want, s := *d.Spec.Replicas, d.Status
	return !d.Spec.Paused && s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == want && s.Replicas == want && s.AvailableReplicas == want
}

func progressing(r *v1beta1.Rollout) bool { return r.Status.Phase == v1beta1.RolloutPhaseProgressing }

func completed(r *v1beta1.Rollout) bool {
	return r.Status.Phase == v1beta1.RolloutPhaseHealthy && r.Status.CurrentStepState == v1beta1.CanaryStepStateCompleted
}

func atStep(step int32, state v1beta1.CanaryStepState) func(*v1beta1.Rollout) bool {
	return func(r *v1beta1.Rollout) bool {
		return progressing(r) && r.Status.CurrentStepIndex == step && r.Status.CurrentStepState == state
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func imageOf(spec corev1.PodSpec) string {
	if len(spec.Containers) == 0 {
		return ""
	}
	return spec.Containers[0].Image
}

func mustRead(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
