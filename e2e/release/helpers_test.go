//go:build e2e

package release_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/devenv/manifest"
	"github.com/sluicehq/sluice/e2e/framework"
)

const (
	imageV1 = "openkruise-registry.cn-shanghai.cr.aliyuncs.com/openkruise/demo:1.10.2"
	imageV2 = "openkruise-registry.cn-shanghai.cr.aliyuncs.com/openkruise/demo:1.10.3"
	imageV3 = "openkruise-registry.cn-shanghai.cr.aliyuncs.com/openkruise/demo:1.10.4"
)

// fixture is one test's namespace with the guide's echoserver and a Rollout.
type fixture struct {
	t   *testing.T
	ctx context.Context
	ns  string
	c   client.Client
}

func newFixture(t *testing.T, timeout time.Duration) *fixture {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return &fixture{t: t, ctx: ctx, ns: env.Namespace(t), c: env.Client}
}

func guideFile(name string) string {
	return filepath.Join(framework.RepoRoot(), "docs", "examples", "guide", name)
}

// createEchoserver creates the guide's Deployment and Service with the
// given number of replicas, and waits until every pod is ready.
func (f *fixture) createEchoserver(replicas int32) {
	objs, err := manifest.Objects(mustRead(f.t, guideFile("echoserver.yaml")))
	if err != nil {
		f.t.Fatal(err)
	}
	for _, o := range objs {
		o.SetNamespace(f.ns)
		if o.GetKind() == "Deployment" {
			if err := unstructured.SetNestedField(o.Object, int64(replicas), "spec", "replicas"); err != nil {
				f.t.Fatal(err)
			}
		}
		if err := f.c.Create(f.ctx, o); err != nil {
			f.t.Fatal(err)
		}
	}
	f.waitDeploymentComplete("echoserver")
}

func (f *fixture) createFile(name string) {
	if _, err := manifest.CreateFile(f.ctx, f.c, f.ns, guideFile(name)); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) create(doc string) {
	if _, err := manifest.Create(f.ctx, f.c, f.ns, []byte(doc)); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) deployment(name string) *appsv1.Deployment {
	d := &appsv1.Deployment{}
	if err := f.c.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: name}, d); err != nil {
		f.t.Fatal(err)
	}
	return d
}

func (f *fixture) rollout(name string) *v1beta1.Rollout {
	r := &v1beta1.Rollout{}
	if err := f.c.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: name}, r); err != nil {
		f.t.Fatal(err)
	}
	return r
}

// setImage changes the Deployment's image as `kubectl apply` of an edited
// manifest would.
func (f *fixture) setImage(name, image string) {
	f.t.Helper()
	d := f.deployment(name)
	patch := client.MergeFrom(d.DeepCopy())
	d.Spec.Template.Spec.Containers[0].Image = image
	if err := f.c.Patch(f.ctx, d, patch); err != nil {
		f.t.Fatal(err)
	}
}

// approve sends exactly what `kubectl-kruise rollout approve` sends: a
// merge patch of the status subresource, here of the v1alpha1 object.
func (f *fixture) approve(name string) { f.approveAs("v1alpha1", name) }

// approveAs sends the approval patch to the given API version.
func (f *fixture) approveAs(version, name string) {
	f.t.Helper()
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("rollouts.kruise.io/" + version)
	u.SetKind("Rollout")
	u.SetNamespace(f.ns)
	u.SetName(name)
	body := []byte(`{"status":{"canaryStatus":{"currentStepState":"StepReady"}}}`)
	if err := f.c.Status().Patch(f.ctx, u, client.RawPatch(types.MergePatchType, body)); err != nil {
		f.t.Fatal(err)
	}
}

// waitRollout waits until cond holds for the Rollout, and reports the last
// status seen on failure.
func (f *fixture) waitRollout(name, what string, cond func(r *v1beta1.Rollout) bool) *v1beta1.Rollout {
	f.t.Helper()
	r, err := framework.WaitRollout(f.ctx, f.c, client.ObjectKey{Namespace: f.ns, Name: name}, 3*time.Minute, cond)
	if err != nil {
		f.t.Fatalf("waiting for %s: %v\nconditions %+v\nmanager log:\n%s", what, err, r.Status.Conditions, env.Manager.LogTail())
	}
	return r
}

func (f *fixture) waitStep(name string, step int32, state v1beta1.CanaryStepState) *v1beta1.Rollout {
	f.t.Helper()
	return f.waitRollout(name, fmt.Sprintf("step %d %s", step, state), func(r *v1beta1.Rollout) bool {
		return r.Status.Phase == v1beta1.RolloutPhaseProgressing && r.Status.CurrentStepIndex == step && r.Status.CurrentStepState == state
	})
}

func (f *fixture) waitHealthy(name string) *v1beta1.Rollout {
	f.t.Helper()
	return f.waitRollout(name, "Healthy", func(r *v1beta1.Rollout) bool { return r.Status.Phase == v1beta1.RolloutPhaseHealthy })
}

func (f *fixture) waitCompleted(name string) *v1beta1.Rollout {
	f.t.Helper()
	return f.waitRollout(name, "Healthy and Completed", func(r *v1beta1.Rollout) bool {
		return r.Status.Phase == v1beta1.RolloutPhaseHealthy && r.Status.CurrentStepState == v1beta1.CanaryStepStateCompleted
	})
}

// waitDeploymentComplete waits until every pod runs the current template
// and is available, and the Deployment is not paused.
func (f *fixture) waitDeploymentComplete(name string) *appsv1.Deployment {
	f.t.Helper()
	var d *appsv1.Deployment
	err := framework.Poll(f.ctx, 2*time.Minute, func() (bool, error) {
		d = &appsv1.Deployment{}
		if err := f.c.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: name}, d); err != nil {
			return false, err
		}
		want := *d.Spec.Replicas
		s := d.Status
		return !d.Spec.Paused && s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == want && s.Replicas == want && s.AvailableReplicas == want, nil
	})
	if err != nil {
		f.t.Fatalf("Deployment %s never completed: %v (status %+v)", name, err, d.Status)
	}
	return d
}

// pods counts the ready and all pods of the Deployment by image.
func (f *fixture) podsByImage(app string) (all, ready map[string]int) {
	var list corev1.PodList
	if err := f.c.List(f.ctx, &list, client.InNamespace(f.ns), client.MatchingLabels{"app": app}); err != nil {
		f.t.Fatal(err)
	}
	all, ready = map[string]int{}, map[string]int{}
	for _, p := range list.Items {
		if p.DeletionTimestamp != nil {
			continue
		}
		img := p.Spec.Containers[0].Image
		all[img]++
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				ready[img]++
			}
		}
	}
	return all, ready
}

// waitPods waits until exactly want pods of image exist and are ready.
func (f *fixture) waitPods(app, image string, want int) {
	f.t.Helper()
	var all, ready map[string]int
	err := framework.Poll(f.ctx, 2*time.Minute, func() (bool, error) {
		all, ready = f.podsByImage(app)
		return all[image] == want && ready[image] == want, nil
	})
	if err != nil {
		f.t.Fatalf("want %d ready pods of %s: %v (pods %v, ready %v)", want, shortImage(image), err, all, ready)
	}
}

func shortImage(image string) string { return image[strings.LastIndex(image, "/")+1:] }

// invariant watches the pods of a release and fails the test if the pods
// of image ever outnumber what the current step allows.
type invariant struct {
	allowed atomic.Int32
	mu      sync.Mutex
	worst   int
	stop    context.CancelFunc
	done    chan struct{}
}

func (f *fixture) watchNewPods(app, image string, initial int32) *invariant {
	ctx, cancel := context.WithCancel(f.ctx)
	inv := &invariant{stop: cancel, done: make(chan struct{})}
	inv.allowed.Store(initial)
	go func() {
		defer close(inv.done)
		for ctx.Err() == nil {
			all, _ := f.podsByImageQuiet(ctx, app)
			n := all[image]
			if n > int(inv.allowed.Load()) {
				inv.mu.Lock()
				inv.worst = max(inv.worst, n-int(inv.allowed.Load()))
				inv.mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	f.t.Cleanup(func() { inv.check(f.t) })
	return inv
}

func (f *fixture) podsByImageQuiet(ctx context.Context, app string) (map[string]int, error) {
	var list corev1.PodList
	if err := f.c.List(ctx, &list, client.InNamespace(f.ns), client.MatchingLabels{"app": app}); err != nil {
		return nil, err
	}
	all := map[string]int{}
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			all[p.Spec.Containers[0].Image]++
		}
	}
	return all, nil
}

// allow raises the number of new pods the release may have from now on.
func (inv *invariant) allow(n int32) { inv.allowed.Store(n) }

func (inv *invariant) check(t *testing.T) {
	inv.stop()
	<-inv.done
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if inv.worst > 0 {
		t.Errorf("invariant broken: up to %d more new-version pods than the step allowed", inv.worst)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pods lists the live pods of app running image.
func (f *fixture) pods(app, image string) []corev1.Pod {
	var list corev1.PodList
	if err := f.c.List(f.ctx, &list, client.InNamespace(f.ns), client.MatchingLabels{"app": app}); err != nil {
		f.t.Fatal(err)
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil && p.Spec.Containers[0].Image == image {
			out = append(out, p)
		}
	}
	return out
}

// events lists the Events recorded on a Rollout.
func (f *fixture) events(rollout string) []eventsv1.Event {
	f.t.Helper()
	var list eventsv1.EventList
	if err := f.c.List(f.ctx, &list, client.InNamespace(f.ns)); err != nil {
		f.t.Fatal(err)
	}
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.Kind == "Rollout" && e.Regarding.Name == rollout {
			out = append(out, e)
		}
	}
	return out
}
