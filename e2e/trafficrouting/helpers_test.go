//go:build e2e

package trafficrouting_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/api/rollouts/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/devenv/manifest"
	"github.com/sluicehq/sluice/e2e/framework"
)

const (
	imageV1 = "openkruise-registry.cn-shanghai.cr.aliyuncs.com/openkruise/demo:1.10.2"
	imageV2 = "openkruise-registry.cn-shanghai.cr.aliyuncs.com/openkruise/demo:1.10.3"
)

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

func (f *fixture) create(doc string) {
	f.t.Helper()
	if _, err := manifest.Create(f.ctx, f.c, f.ns, []byte(doc)); err != nil {
		f.t.Fatal(err)
	}
}

// createApp creates a Deployment of replicas pods and its Service, both
// named name, and waits until every pod is ready.
func (f *fixture) createApp(name string, replicas int) {
	f.t.Helper()
	f.create(strings.NewReplacer("NAME", name, "REPLICAS", fmt.Sprint(replicas), "IMAGE", imageV1).Replace(`
apiVersion: apps/v1
kind: Deployment
metadata: {name: NAME, labels: {app: NAME}}
spec:
  replicas: REPLICAS
  selector: {matchLabels: {app: NAME}}
  template:
    metadata: {labels: {app: NAME}}
    spec:
      containers:
      - {name: main, image: IMAGE, ports: [{containerPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: NAME, labels: {app: NAME}}
spec:
  selector: {app: NAME}
  ports: [{name: http, port: 80, targetPort: 8080}]
`))
	f.waitDeploymentComplete(name)
}

func (f *fixture) get(name string, o client.Object) error {
	return f.c.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: name}, o)
}

func (f *fixture) setImage(name, image string) {
	f.t.Helper()
	d := &appsv1.Deployment{}
	if err := f.get(name, d); err != nil {
		f.t.Fatal(err)
	}
	patch := client.MergeFrom(d.DeepCopy())
	d.Spec.Template.Spec.Containers[0].Image = image
	if err := f.c.Patch(f.ctx, d, patch); err != nil {
		f.t.Fatal(err)
	}
}

// approve sends what `kubectl-kruise rollout approve` sends.
func (f *fixture) approve(name string) {
	f.t.Helper()
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("rollouts.kruise.io/v1alpha1")
	u.SetKind("Rollout")
	u.SetNamespace(f.ns)
	u.SetName(name)
	body := []byte(`{"status":{"canaryStatus":{"currentStepState":"StepReady"}}}`)
	if err := f.c.Status().Patch(f.ctx, u, client.RawPatch(types.MergePatchType, body)); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) waitRollout(name, what string, cond func(r *v1beta1.Rollout) bool) *v1beta1.Rollout {
	f.t.Helper()
	r, err := framework.WaitRollout(f.ctx, f.c, client.ObjectKey{Namespace: f.ns, Name: name}, 3*time.Minute, cond)
	if err != nil {
		f.t.Fatalf("waiting for Rollout %s %s: %v\nstatus %+v\nmanager log:\n%s", name, what, err, r.Status, env.Manager.LogTail())
	}
	return r
}

func (f *fixture) waitPaused(name string, step int32) *v1beta1.Rollout {
	f.t.Helper()
	return f.waitRollout(name, fmt.Sprintf("paused at step %d", step), func(r *v1beta1.Rollout) bool {
		return r.Status.Phase == v1beta1.RolloutPhaseProgressing && r.Status.CurrentStepIndex == step && r.Status.CurrentStepState == v1beta1.CanaryStepStatePaused
	})
}

func (f *fixture) waitHealthy(name string) *v1beta1.Rollout {
	f.t.Helper()
	return f.waitRollout(name, "Healthy", func(r *v1beta1.Rollout) bool { return r.Status.Phase == v1beta1.RolloutPhaseHealthy })
}

func (f *fixture) waitCompleted(name string) *v1beta1.Rollout {
	f.t.Helper()
	return f.waitRollout(name, "completed", func(r *v1beta1.Rollout) bool {
		return r.Status.Phase == v1beta1.RolloutPhaseHealthy && r.Status.LastRelease != nil && r.Status.LastRelease.Outcome == v1beta1.OutcomeCompleted
	})
}

// waitTrafficRouting waits until the TrafficRouting is in phase and held
// by exactly the Rollouts named.
func (f *fixture) waitTrafficRouting(name string, phase v1alpha1.TrafficRoutingPhase, holders ...string) *v1alpha1.TrafficRouting {
	f.t.Helper()
	tr := &v1alpha1.TrafficRouting{}
	err := framework.Poll(f.ctx, 2*time.Minute, func() (bool, error) {
		if err := f.get(name, tr); err != nil {
			return false, err
		}
		return tr.Status.Phase == phase && fmt.Sprint(sorted(tr.HoldingRollouts())) == fmt.Sprint(sorted(holders)), nil
	})
	if err != nil {
		f.t.Fatalf("TrafficRouting %s never %s held by %v: %v; phase %s, message %q, finalizers %v\nmanager log:\n%s",
			name, phase, holders, err, tr.Status.Phase, tr.Status.Message, tr.Finalizers, env.Manager.LogTail())
	}
	return tr
}

// waitDeploymentComplete waits until every pod runs the current template
// and is available, and the Deployment is not paused.
func (f *fixture) waitDeploymentComplete(name string) *appsv1.Deployment {
	f.t.Helper()
	var d *appsv1.Deployment
	err := framework.Poll(f.ctx, 2*time.Minute, func() (bool, error) {
		d = &appsv1.Deployment{}
		if err := f.get(name, d); err != nil {
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

func (f *fixture) unstructured(apiVersion, kind, name string) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	return u, f.get(name, u)
}

// waitObject waits until cond holds for the object.
func (f *fixture) waitObject(apiVersion, kind, name, what string, cond func(u *unstructured.Unstructured, err error) bool) {
	f.t.Helper()
	var last *unstructured.Unstructured
	var lastErr error
	err := framework.Poll(f.ctx, 2*time.Minute, func() (bool, error) {
		last, lastErr = f.unstructured(apiVersion, kind, name)
		return cond(last, lastErr), nil
	})
	if err != nil {
		f.t.Fatalf("%s %s never %s: %v (last error %v, object %v)\nmanager log:\n%s", kind, name, what, err, lastErr, last, env.Manager.LogTail())
	}
}

// deleteRollout deletes a Rollout and waits until it is gone (it gives
// its workload and TrafficRouting back first).
func (f *fixture) deleteRollout(name string) {
	f.t.Helper()
	ro := &v1beta1.Rollout{}
	if err := f.get(name, ro); err != nil {
		f.t.Fatal(err)
	}
	if err := f.c.Delete(f.ctx, ro); err != nil {
		f.t.Fatal(err)
	}
	err := framework.Poll(f.ctx, 2*time.Minute, func() (bool, error) {
		err := f.get(name, &v1beta1.Rollout{})
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	})
	if err != nil {
		f.t.Fatalf("Rollout %s never went: %v\nmanager log:\n%s", name, err, env.Manager.LogTail())
	}
}

// mustObject reads one object of a YAML document, in namespace ns.
func mustObject(t *testing.T, doc, ns string) *unstructured.Unstructured {
	t.Helper()
	objs, err := manifest.Objects([]byte(doc))
	if err != nil || len(objs) != 1 {
		t.Fatalf("%d objects: %v", len(objs), err)
	}
	objs[0].SetNamespace(ns)
	return objs[0]
}

// canaryRule is the HTTPRoute rule that matches the header x-canary, or nil.
func canaryRule(u *unstructured.Unstructured) map[string]any {
	rules, _ := nested(u.Object, "spec", "rules").([]any)
	for _, r := range rules {
		for i := range 4 {
			if nested(r, "matches", i, "headers", 0, "name") == "x-canary" {
				return r.(map[string]any)
			}
		}
	}
	return nil
}

// nested walks maps by key and lists by index; nil when absent.
func nested(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func sorted(s []string) []string { return slices.Sorted(slices.Values(s)) }
