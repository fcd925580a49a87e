//go:build e2e

package invariants_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
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
	imageV2 = "openkruise-registry.cn-shanghai.cr.aliyuncs.com/openkruise/demo:1.10.3"
)

// echoserver is the guide's application with 10 replicas (maxSurge and
// maxUnavailable default to 25%: 3 and 2 pods).
const echoserver = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: echoserver, labels: {app: echoserver}}
spec:
  replicas: 10
  selector: {matchLabels: {app: echoserver}}
  template:
    metadata: {labels: {app: echoserver}}
    spec:
      containers:
      - {name: echoserver, image: "` + imageV1 + `", ports: [{containerPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: echoserver, labels: {app: echoserver}}
spec:
  ports: [{port: 80, targetPort: 8080, name: http}]
  selector: {app: echoserver}
`

const ingress = `
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: echoserver, annotations: {kubernetes.io/ingress.class: nginx}}
spec:
  rules:
  - http:
      paths:
      - {path: /apis/echo, pathType: Exact, backend: {service: {name: echoserver, port: {number: 80}}}}
`

// Three steps waiting for approval: 1 pod, half, all; with traffic 20%,
// 50%, 100% through the Ingress when routed.
func rollout(routed bool) string {
	if !routed {
		return `
apiVersion: rollouts.kruise.io/v1beta1
kind: Rollout
metadata: {name: web}
spec:
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: echoserver}
  strategy:
    canary:
      steps:
      - {replicas: 1, pause: {}}
      - {replicas: 50%, pause: {}}
      - {replicas: 100%}
`
	}
	return `
apiVersion: rollouts.kruise.io/v1beta1
kind: Rollout
metadata: {name: web}
spec:
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: echoserver}
  strategy:
    canary:
      steps:
      - {replicas: 1, traffic: 20%, pause: {}}
      - {replicas: 50%, traffic: 50%, pause: {}}
      - {replicas: 100%, traffic: 100%}
      trafficRoutings:
      - service: echoserver
        gracePeriodSeconds: 1
        ingress: {name: echoserver}
`
}

// rig is one test's namespace under a checker, with the echoserver at
// rest under a Rollout.
type rig struct {
	t   *testing.T
	ctx context.Context
	ns  string
	c   client.Client
	chk *invariants.Checker
}

func newRig(t *testing.T, routed bool, opts ...invariants.Option) *rig {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	r := &rig{t: t, ctx: ctx, c: env.Client}
	r.ns = env.Namespace(t, append(opts, invariants.Handle(&r.chk))...)
	objects := echoserver
	if routed {
		objects += "---" + ingress
	}
	r.create(objects)
	r.waitDeploymentComplete()
	r.create(rollout(routed))
	r.waitRollout("Healthy", func(ro *v1beta1.Rollout) bool { return ro.Status.Phase == v1beta1.RolloutPhaseHealthy })
	return r
}

func (r *rig) create(objects string) {
	r.t.Helper()
	if _, err := manifest.Create(r.ctx, r.c, r.ns, []byte(objects)); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) waitRollout(what string, cond func(*v1beta1.Rollout) bool) {
	r.t.Helper()
	if _, err := framework.WaitRollout(r.ctx, r.c, client.ObjectKey{Namespace: r.ns, Name: "web"}, 3*time.Minute, cond); err != nil {
		r.t.Fatalf("waiting for %s: %v\nmanager log:\n%s", what, err, env.Manager.LogTail())
	}
}

func (r *rig) waitStepPaused(step int32) {
	r.t.Helper()
	r.waitRollout(fmt.Sprintf("step %d paused", step), func(ro *v1beta1.Rollout) bool {
		return ro.Status.Phase == v1beta1.RolloutPhaseProgressing && ro.Status.CurrentStepIndex == step && ro.Status.CurrentStepState == v1beta1.CanaryStepStatePaused
	})
}

func (r *rig) waitDeploymentComplete() {
	r.t.Helper()
	err := framework.Poll(r.ctx, 2*time.Minute, func() (bool, error) {
		d := &appsv1.Deployment{}
		if err := r.c.Get(r.ctx, client.ObjectKey{Namespace: r.ns, Name: "echoserver"}, d); err != nil {
			return false, err
		}
		want, s := *d.Spec.Replicas, d.Status
		return s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == want && s.Replicas == want && s.AvailableReplicas == want, nil
	})
	if err != nil {
		r.t.Fatalf("the echoserver never became available: %v", err)
	}
}

// approve sends what kubectl-kruise rollout approve sends.
func (r *rig) approve() {
	r.t.Helper()
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("rollouts.kruise.io/v1beta1")
	u.SetKind("Rollout")
	u.SetNamespace(r.ns)
	u.SetName("web")
	body := []byte(`{"status":{"canaryStatus":{"currentStepState":"StepReady"}}}`)
	if err := r.c.Status().Patch(r.ctx, u, client.RawPatch(types.MergePatchType, body)); err != nil {
		r.t.Fatal(err)
	}
}

// newReplicaSet is the echoserver's ReplicaSet running v2.
func (r *rig) newReplicaSet() *appsv1.ReplicaSet {
	r.t.Helper()
	var list appsv1.ReplicaSetList
	if err := r.c.List(r.ctx, &list, client.InNamespace(r.ns), client.MatchingLabels{"app": "echoserver"}); err != nil {
		r.t.Fatal(err)
	}
	for i := range list.Items {
		if list.Items[i].Spec.Template.Spec.Containers[0].Image == imageV2 {
			return &list.Items[i]
		}
	}
	r.t.Fatal("no ReplicaSet runs v2")
	return nil
}

func (r *rig) scaleReplicaSet(rs *appsv1.ReplicaSet, n int32) {
	r.t.Helper()
	body := []byte(fmt.Sprintf(`{"spec":{"replicas":%d}}`, n))
	if err := r.c.Patch(r.ctx, rs, client.RawPatch(types.MergePatchType, body)); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) patchService(name, body string) {
	r.t.Helper()
	svc := &corev1.Service{}
	svc.Namespace, svc.Name = r.ns, name
	if err := r.c.Patch(r.ctx, svc, client.RawPatch(types.MergePatchType, []byte(body))); err != nil {
		r.t.Fatal(err)
	}
}

// waitViolation waits until the checker reports inv, and returns it.
func (r *rig) waitViolation(inv invariants.Invariant) invariants.Violation {
	r.t.Helper()
	var found invariants.Violation
	err := framework.Poll(r.ctx, time.Minute, func() (bool, error) {
		for _, v := range r.chk.Violations() {
			if v.Invariant == inv {
				found = v
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		r.t.Fatalf("the checker never reported %s; it reported %v", inv, names(r.chk.Violations()))
	}
	return found
}

// onlyViolated asserts that, once everything seen so far is evaluated,
// the checker reported exactly these invariants.
func (r *rig) onlyViolated(want ...invariants.Invariant) {
	r.t.Helper()
	if err := r.chk.Settle(r.ctx); err != nil {
		r.t.Fatal(err)
	}
	got := names(r.chk.Violations())
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		for _, v := range r.chk.Violations() {
			r.t.Log(v.Report())
		}
		r.t.Fatalf("violations %v, want %v", got, want)
	}
}

func names(vs []invariants.Violation) []invariants.Invariant {
	var out []invariants.Invariant
	for _, v := range vs {
		out = append(out, v.Invariant)
	}
	return out
}

// A release through Sluice, with traffic, approved step by step, breaks
// no invariant, and the checker followed it to its end.
func TestAReleaseUnderTheChecker(t *testing.T) {
	t.Parallel()
	r := newRig(t, true, invariants.RequireReleasesEnded())
	if err := framework.SetImage(r.ctx, r.c, r.ns, "echoserver", imageV2); err != nil {
		t.Fatal(err)
	}
	r.waitStepPaused(1)
	r.approve()
	r.waitStepPaused(2)
	r.approve()
	r.waitRollout("Completed", func(ro *v1beta1.Rollout) bool {
		return ro.Status.Phase == v1beta1.RolloutPhaseHealthy && ro.Status.CurrentStepState == v1beta1.CanaryStepStateCompleted
	})
	r.waitDeploymentComplete()
	r.onlyViolated()
	if err := framework.Poll(r.ctx, 30*time.Second, func() (bool, error) {
		opened, ended := r.chk.Releases()
		return opened == 1 && ended == 1, nil
	}); err != nil {
		opened, ended := r.chk.Releases()
		t.Fatalf("the checker followed %d releases to %d ends, want 1 and 1", opened, ended)
	}
}

// Scaling the new ReplicaSet by hand to 9 pods at step 1: step 2 allows 5
// + maxSurge 3 = 8. (Sluice then scales it back, which the checker also
// sees as a forward release losing pods, and may take longer than the lag
// bound: both follow from the test's act, and are allowed.)
func TestCatchesPodsBeyondTheStep(t *testing.T) {
	t.Parallel()
	r := newRig(t, false, invariants.ReportOnly(),
		invariants.Allowing(invariants.ForwardOnly, "Sluice scales back what the test added"),
		invariants.Allowing(invariants.StatusLag, "the test's surplus pods are ahead of the status"))
	if err := framework.SetImage(r.ctx, r.c, r.ns, "echoserver", imageV2); err != nil {
		t.Fatal(err)
	}
	r.waitStepPaused(1)
	r.scaleReplicaSet(r.newReplicaSet(), 9)
	v := r.waitViolation(invariants.StepAllowance)
	if !strings.Contains(v.Message, "9 new-version pods") || !strings.Contains(v.Message, "maxSurge 3 = 8") {
		t.Errorf("message %q", v.Message)
	}
	if v.Note != "" {
		t.Errorf("the violation was not confirmed against etcd: %s", v.Note)
	}
	r.onlyViolated(invariants.StepAllowance)
}

// Scaling the new ReplicaSet down by hand at step 2 (5 → 4; 9 pods stay
// ready, above 10 − 2): the new version loses a pod in a forward release.
func TestCatchesAForwardReleaseLosingPods(t *testing.T) {
	t.Parallel()
	r := newRig(t, false, invariants.ReportOnly())
	if err := framework.SetImage(r.ctx, r.c, r.ns, "echoserver", imageV2); err != nil {
		t.Fatal(err)
	}
	r.waitStepPaused(1)
	r.approve()
	r.waitStepPaused(2)
	r.scaleReplicaSet(r.newReplicaSet(), 4)
	v := r.waitViolation(invariants.ForwardOnly)
	if !strings.Contains(v.Message, "went down from 5 to 4") {
		t.Errorf("message %q", v.Message)
	}
	r.onlyViolated(invariants.ForwardOnly)
}

// The canary Service's selector changed by hand to select nothing while
// the canary Ingress sends it 20%: its EndpointSlice empties.
func TestCatchesCanaryTrafficWithoutEndpoints(t *testing.T) {
	t.Parallel()
	r := newRig(t, true, invariants.ReportOnly())
	if err := framework.SetImage(r.ctx, r.c, r.ns, "echoserver", imageV2); err != nil {
		t.Fatal(err)
	}
	r.waitStepPaused(1)
	r.patchService("echoserver-canary", `{"spec":{"selector":{"app":"nothing"}}}`)
	v := r.waitViolation(invariants.TrafficReady)
	if v.Subject != "Service echoserver-canary" || !strings.Contains(v.Message, "weight 20%") {
		t.Errorf("%s", v)
	}
	r.onlyViolated(invariants.TrafficReady)
}

// The stable Service's selector changed by hand to select nothing while
// the stable Ingress routes to it.
func TestCatchesAStableServiceSelectingNothing(t *testing.T) {
	t.Parallel()
	r := newRig(t, true, invariants.ReportOnly())
	if err := framework.SetImage(r.ctx, r.c, r.ns, "echoserver", imageV2); err != nil {
		t.Fatal(err)
	}
	r.waitStepPaused(1)
	r.patchService("echoserver", `{"spec":{"selector":{"app":"nothing"}}}`)
	v := r.waitViolation(invariants.TrafficReady)
	if v.Subject != "Service echoserver" || !strings.Contains(v.Message, "selects no ready pod") {
		t.Errorf("%s", v)
	}
	r.onlyViolated(invariants.TrafficReady)
}

// A label put on the stable Service mid-release by someone else is still
// there when the release ends: the release did not leave things as they
// were.
func TestCatchesAReleaseEndingUnrestored(t *testing.T) {
	t.Parallel()
	r := newRig(t, true, invariants.ReportOnly())
	if err := framework.SetImage(r.ctx, r.c, r.ns, "echoserver", imageV2); err != nil {
		t.Fatal(err)
	}
	r.waitStepPaused(1)
	r.patchService("echoserver", `{"metadata":{"labels":{"team":"blue"}}}`)
	r.approve()
	r.waitStepPaused(2)
	r.approve()
	r.waitRollout("Completed", func(ro *v1beta1.Rollout) bool {
		return ro.Status.Phase == v1beta1.RolloutPhaseHealthy && ro.Status.CurrentStepState == v1beta1.CanaryStepStateCompleted
	})
	v := r.waitViolation(invariants.Restoration)
	if !strings.Contains(v.Message, "Service echoserver labels") || !strings.Contains(v.Message, "team") {
		t.Errorf("message %q", v.Message)
	}
	r.onlyViolated(invariants.Restoration)
}
