//go:build e2e

package gitops_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/deploy/argocd"
	"github.com/sluicehq/sluice/deploy/captured"
	"github.com/sluicehq/sluice/deploy/karmada"
	"github.com/sluicehq/sluice/devenv/manifest"
	"github.com/sluicehq/sluice/e2e/framework"
)

const (
	imageV1  = "openkruise-registry.cn-shanghai.cr.aliyuncs.com/openkruise/demo:1.10.2"
	imageV2  = "openkruise-registry.cn-shanghai.cr.aliyuncs.com/openkruise/demo:1.10.3"
	imageV3  = "openkruise-registry.cn-shanghai.cr.aliyuncs.com/openkruise/demo:1.10.4"
	imageBad = "openkruise-registry.cn-shanghai.cr.aliyuncs.com/openkruise/demo:1.10.3-errors"
)

var (
	rolloutGVR        = schema.GroupVersionResource{Group: "rollouts.kruise.io", Version: "v1beta1", Resource: "rollouts"}
	rolloutV1alpha1   = schema.GroupVersionResource{Group: "rollouts.kruise.io", Version: "v1alpha1", Resource: "rollouts"}
	analysisRunGVR    = schema.GroupVersionResource{Group: "analysis.sluice.dev", Version: "v1alpha1", Resource: "analysisruns"}
	deploymentGVR     = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	statefulSetGVR    = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"}
	cloneSetGVR       = schema.GroupVersionResource{Group: "apps.kruise.io", Version: "v1alpha1", Resource: "clonesets"}
	kruiseStatefulGVR = schema.GroupVersionResource{Group: "apps.kruise.io", Version: "v1beta1", Resource: "statefulsets"}
)

// The customizations as a user installs them: the generated files.
var (
	loadOnce sync.Once
	argo     *argocd.Customizations
	interp   *karmada.Interpreter
	loadErr  error
)

func customizations(t *testing.T) (*argocd.Customizations, *karmada.Interpreter) {
	t.Helper()
	loadOnce.Do(func() {
		raw, err := os.ReadFile(filepath.Join(framework.RepoRoot(), "deploy", "argocd", argocd.ConfigMapFile))
		if err == nil {
			argo, err = argocd.LoadConfigMap(raw)
		}
		if err == nil {
			raw, err = os.ReadFile(filepath.Join(framework.RepoRoot(), "deploy", "karmada", karmada.CustomizationsFile))
		}
		if err == nil {
			interp, err = karmada.Load(raw)
		}
		if err == nil {
			// Argo CD and Karmada allow a script 1s; this machine runs a
			// control plane and a dozen releases at once.
			argo.Timeout, interp.Timeout = 30*time.Second, 30*time.Second
		}
		loadErr = err
	})
	if loadErr != nil {
		t.Fatal(loadErr)
	}
	return argo, interp
}

// capturedStates are the objects of the states captured in this run, for
// the check that every state of deploy/captured was reached and for the
// aggregation of member statuses.
var (
	capturedMu     sync.Mutex
	capturedStates = map[string]*unstructured.Unstructured{}
)

// fixture is one release scenario in its own namespace, with a record of
// every version of its Rollouts and AnalysisRuns.
type fixture struct {
	t       *testing.T
	ctx     context.Context
	ns      string
	c       client.Client
	dyn     dynamic.Interface
	argo    *argocd.Customizations
	karmada *karmada.Interpreter
	rec     *recorder
}

func newFixture(t *testing.T, timeout time.Duration) *fixture {
	t.Parallel()
	return newSerialFixture(t, timeout)
}

// newSerialFixture is newFixture for a test that runs alone.
func newSerialFixture(t *testing.T, timeout time.Duration) *fixture {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	dyn, err := dynamic.NewForConfig(env.ControlPlane.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	a, k := customizations(t)
	f := &fixture{t: t, ctx: ctx, ns: env.Namespace(t), c: env.Client, dyn: dyn, argo: a, karmada: k}
	f.rec = record(ctx, t, dyn, f.ns, rolloutGVR, analysisRunGVR)
	return f
}

func (f *fixture) create(objects string) {
	f.t.Helper()
	if _, err := manifest.Create(f.ctx, f.c, f.ns, []byte(objects)); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) createFile(rel string) {
	f.t.Helper()
	if _, err := manifest.CreateFile(f.ctx, f.c, f.ns, filepath.Join(framework.RepoRoot(), rel)); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) get(gvr schema.GroupVersionResource, name string) *unstructured.Unstructured {
	f.t.Helper()
	u, err := f.dyn.Resource(gvr).Namespace(f.ns).Get(f.ctx, name, metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return u
}

// patch sends a JSON merge patch to an object.
func (f *fixture) patch(gvr schema.GroupVersionResource, name, body string) {
	f.t.Helper()
	if _, err := f.dyn.Resource(gvr).Namespace(f.ns).Patch(f.ctx, name, "application/merge-patch+json", []byte(body), metav1.PatchOptions{}); err != nil {
		f.t.Fatalf("patch %s %s with %s: %v", gvr.Resource, name, body, err)
	}
}

// setImage changes the first container's image of a workload, as a new
// manifest applied by Git or a hub would (a read-modify-write: a merge
// patch would replace the whole list of containers).
func (f *fixture) setImage(gvr schema.GroupVersionResource, name, image string) {
	f.t.Helper()
	err := retry.RetryOnConflict(framework.ConflictRetry, func() error {
		u, err := f.dyn.Resource(gvr).Namespace(f.ns).Get(f.ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
		containers[0].(map[string]any)["image"] = image
		if err := unstructured.SetNestedSlice(u.Object, containers, "spec", "template", "spec", "containers"); err != nil {
			return err
		}
		_, err = f.dyn.Resource(gvr).Namespace(f.ns).Update(f.ctx, u, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		f.t.Fatalf("setting the image of %s %s: %v", gvr.Resource, name, err)
	}
}

func typed(u *unstructured.Unstructured) *v1beta1.Rollout {
	r := &v1beta1.Rollout{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, r); err != nil {
		panic(err)
	}
	return r
}

func holdOf(r *v1beta1.Rollout) v1beta1.HoldReason {
	if h := r.Status.HoldOf(); h != nil {
		return h.Reason
	}
	return ""
}

func outcomeOf(r *v1beta1.Rollout) v1beta1.ReleaseOutcome {
	if r.Status.LastRelease != nil {
		return r.Status.LastRelease.Outcome
	}
	return ""
}

// waitRollout polls the Rollout (v1beta1) until cond holds.
func (f *fixture) waitRollout(name, what string, cond func(*v1beta1.Rollout) bool) *unstructured.Unstructured {
	f.t.Helper()
	var u *unstructured.Unstructured
	var last *v1beta1.Rollout
	err := framework.Poll(f.ctx, 3*time.Minute, func() (bool, error) {
		var err error
		if u, err = f.dyn.Resource(rolloutGVR).Namespace(f.ns).Get(f.ctx, name, metav1.GetOptions{}); err != nil {
			return false, nil
		}
		last = typed(u)
		return cond(last), nil
	})
	if err != nil {
		state := "none"
		if last != nil {
			state = fmt.Sprintf("phase %s, step %d %s, hold %q, message %q", last.Status.Phase, last.Status.CurrentStepIndex, last.Status.CurrentStepState, holdOf(last), last.Status.Message)
		}
		f.t.Fatalf("waiting for rollout %s: %s: %v; last: %s\nmanager log:\n%s", name, what, err, state, env.Manager.LogTail())
	}
	return u
}

// waitHold waits until the Rollout's release waits for reason.
func (f *fixture) waitHold(name string, reason v1beta1.HoldReason) *unstructured.Unstructured {
	f.t.Helper()
	return f.waitRollout(name, "hold "+string(reason), func(r *v1beta1.Rollout) bool {
		return r.Status.Phase == v1beta1.RolloutPhaseProgressing && holdOf(r) == reason
	})
}

// waitAtRest waits until no release is in progress and the last one ended
// with outcome ("" for none).
func (f *fixture) waitAtRest(name string, outcome v1beta1.ReleaseOutcome) *unstructured.Unstructured {
	f.t.Helper()
	return f.waitRollout(name, "at rest, last release "+string(outcome), func(r *v1beta1.Rollout) bool {
		return r.Status.Phase == v1beta1.RolloutPhaseHealthy && r.Status.ObservedGeneration == r.Generation && outcomeOf(r) == outcome
	})
}

// act runs an Argo CD action on the live Rollout as Argo CD's API server
// does: discovery must offer it, the script runs on the object read from
// the API server, and its patches are sent.
func (f *fixture) act(name, action string) {
	f.t.Helper()
	u := f.get(rolloutGVR, name)
	if !slices.Contains(enabled(f.t, f.argo, u), action) {
		f.t.Fatalf("action %s is not enabled on rollout %s (enabled: %v)", action, name, enabled(f.t, f.argo, u))
	}
	p, err := f.argo.Run(u, action)
	if err != nil {
		f.t.Fatalf("action %s: %v", action, err)
	}
	if p.Empty() {
		f.t.Fatalf("action %s changed nothing", action)
	}
	if err := p.Apply(f.ctx, f.dyn.Resource(rolloutGVR).Namespace(f.ns), name); err != nil {
		f.t.Fatalf("action %s: %v", action, err)
	}
	f.t.Logf("action %s on rollout %s: status patch %s, object patch %s", action, name, p.Status, p.Main)
}

// enabled lists the actions Argo CD's discovery enables on u.
func enabled(t *testing.T, c *argocd.Customizations, u *unstructured.Unstructured) []string {
	t.Helper()
	actions, err := c.Actions(u)
	if err != nil {
		t.Fatalf("action discovery: %v", err)
	}
	var out []string
	for _, a := range actions {
		if !a.Disabled {
			out = append(out, a.Name)
		}
	}
	return out
}

// capture checks a state on its live object — Argo CD's health and
// actions, Karmada's health and status reflection, or for a held workload
// Karmada's retention — and writes it to deploy/captured when
// SLUICE_UPDATE_CAPTURES is set. A held workload's capture has its
// desired manifest after the object.
func (f *fixture) capture(name string, objs ...*unstructured.Unstructured) {
	f.t.Helper()
	s, ok := captured.Lookup(name)
	if !ok {
		f.t.Fatalf("state %s is not in deploy/captured.States", name)
	}
	obj := objs[0]
	switch s.Kind {
	case captured.Rollout, captured.AnalysisRun:
		h, err := f.argo.Health(obj)
		if err != nil {
			f.t.Fatalf("%s: Argo CD health: %v", name, err)
		}
		if h.Status != s.Health {
			f.t.Errorf("%s: Argo CD health %s (%s), want %s", name, h.Status, h.Message, s.Health)
		}
		if s.Kind == captured.Rollout {
			if got := enabled(f.t, f.argo, obj); !slices.Equal(got, s.Actions) {
				f.t.Errorf("%s: Argo CD actions %v, want %v", name, got, s.Actions)
			}
		}
		if obj.GetAPIVersion() == "rollouts.kruise.io/v1alpha1" {
			break // Karmada propagates v1beta1 Rollouts (docs/karmada.md)
		}
		healthy, err := f.karmada.InterpretHealth(obj)
		if err != nil {
			f.t.Fatalf("%s: Karmada health: %v", name, err)
		}
		if healthy != s.Healthy {
			f.t.Errorf("%s: Karmada healthy %t, want %t", name, healthy, s.Healthy)
		}
		if _, err := f.karmada.ReflectStatus(obj); err != nil {
			f.t.Errorf("%s: Karmada status reflection: %v", name, err)
		}
	case captured.Workload:
		f.checkRetention(name, s.Held, obj, objs[1])
		healthy, err := f.karmada.InterpretHealth(obj)
		if err != nil {
			f.t.Fatalf("%s: Karmada health: %v", name, err)
		}
		if healthy != s.Healthy {
			f.t.Errorf("%s: Karmada healthy %t, want %t", name, healthy, s.Healthy)
		}
	}
	capturedMu.Lock()
	capturedStates[name] = obj.DeepCopy()
	capturedMu.Unlock()
	if os.Getenv("SLUICE_UPDATE_CAPTURES") == "" {
		return
	}
	raw, err := captured.Encode(s, f.ns, objs...)
	if err != nil {
		f.t.Fatal(err)
	}
	p := filepath.Join(framework.RepoRoot(), "deploy", "captured", captured.Dir, name+".yaml")
	if err := os.WriteFile(p, raw, 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// heldFields are the fields Sluice sets on a workload it holds: a
// Deployment's pause and strategy, and in a blue-green release its
// timings; a StatefulSet's, Advanced StatefulSet's or CloneSet's
// partition.
func heldFields(observed *unstructured.Unstructured) [][]string {
	switch observed.GetKind() {
	case "Deployment":
		fields := [][]string{{"spec", "paused"}, {"spec", "strategy"}}
		if _, blueGreen := observed.GetAnnotations()["rollouts.kruise.io/original-deployment-strategy"]; blueGreen {
			fields = append(fields, []string{"spec", "minReadySeconds"}, []string{"spec", "progressDeadlineSeconds"})
		}
		return fields
	case "CloneSet":
		return [][]string{{"spec", "updateStrategy", "partition"}}
	}
	return [][]string{{"spec", "updateStrategy", "rollingUpdate", "partition"}}
}

// checkRetention runs Karmada's update of a member workload: the hub's
// manifest (desired) keeps the member's labels, annotations and owners,
// then the retention customization runs. When Sluice holds the workload
// the fields it holds must come out as the member has them, where the
// manifest alone would have changed at least one
// (openkruise/rollouts#330); otherwise they must be the manifest's.
func (f *fixture) checkRetention(name string, held bool, observed, desired *unstructured.Unstructured) {
	f.t.Helper()
	d := desired.DeepCopy()
	d.SetNamespace(observed.GetNamespace())
	karmada.RetainClusterFields(d, observed)
	retained, err := f.karmada.Retain(d.DeepCopy(), observed)
	if err != nil {
		f.t.Fatalf("%s: Karmada retention: %v", name, err)
	}
	differs := false
	for _, path := range heldFields(observed) {
		member, _, _ := unstructured.NestedFieldCopy(observed.Object, path...)
		hub, _, _ := unstructured.NestedFieldCopy(d.Object, path...)
		got, _, _ := unstructured.NestedFieldCopy(retained.Object, path...)
		want := hub
		if held {
			want = member
		}
		if !equalJSON(got, want) {
			f.t.Errorf("%s: retention leaves %v = %v, want %v", name, path, got, want)
		}
		differs = differs || !equalJSON(hub, member)
	}
	if held && !differs {
		f.t.Errorf("%s: the hub's manifest alone already keeps what Sluice holds: the capture shows no held field", name)
	}
}

// equalJSON compares unstructured values by their JSON meaning (int64 and
// float64 alike).
func equalJSON(a, b any) bool {
	return cmp.Equal(normalize(a), normalize(b))
}

func normalize(v any) any {
	switch v := v.(type) {
	case int64:
		return float64(v)
	case int:
		return float64(v)
	case map[string]any:
		out := map[string]any{}
		for k, e := range v {
			out[k] = normalize(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = normalize(e)
		}
		return out
	}
	return v
}

// updateRetained sends Karmada's update of a held member workload (the
// hub's manifest after retention) to the live object, and checks that it
// changes nothing the release depends on: the generation stays (no new
// spec) and the workload stays held.
func (f *fixture) updateRetained(gvr schema.GroupVersionResource, observed, desired *unstructured.Unstructured) {
	f.t.Helper()
	d := desired.DeepCopy()
	d.SetNamespace(observed.GetNamespace())
	karmada.RetainClusterFields(d, observed)
	retained, err := f.karmada.Retain(d, observed)
	if err != nil {
		f.t.Fatal(err)
	}
	updated, err := f.dyn.Resource(gvr).Namespace(f.ns).Update(f.ctx, retained, metav1.UpdateOptions{})
	if err != nil {
		f.t.Fatalf("Karmada's update of %s %s: %v", observed.GetKind(), observed.GetName(), err)
	}
	if updated.GetGeneration() != observed.GetGeneration() {
		f.t.Errorf("Karmada's update of %s %s changed its spec (generation %d -> %d)", observed.GetKind(), observed.GetName(), observed.GetGeneration(), updated.GetGeneration())
	}
}

// desiredOf is the object of a manifest as the hub (or Git) holds it, with
// the image the release brings.
func desiredOf(t *testing.T, objects, image string) *unstructured.Unstructured {
	t.Helper()
	objs, err := manifest.Objects([]byte(objects))
	if err != nil {
		t.Fatal(err)
	}
	u := objs[0]
	containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
	containers[0].(map[string]any)["image"] = image
	if err := unstructured.SetNestedSlice(u.Object, containers, "spec", "template", "spec", "containers"); err != nil {
		t.Fatal(err)
	}
	return u
}
