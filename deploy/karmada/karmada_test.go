package karmada

import (
	"encoding/json"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/sluicehq/sluice/deploy/captured"
)

// load reads customizations.yaml, what a user installs.
func load(t *testing.T) *Interpreter {
	t.Helper()
	raw, err := os.ReadFile(CustomizationsFile)
	if err != nil {
		t.Fatal(err)
	}
	in, err := Load(raw)
	if err != nil {
		t.Fatal(err)
	}
	in.Timeout = testTimeout
	return in
}

func object(t *testing.T, state string) *unstructured.Unstructured {
	t.Helper()
	obj, err := captured.Object(state)
	if err != nil {
		t.Fatal(err)
	}
	return obj
}

func TestCustomizationsAreGenerated(t *testing.T) {
	want, err := CustomizationsYAML()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(CustomizationsFile)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("%s is out of date: run `make generate` (or go run ./deploy/gitopssync)", CustomizationsFile)
	}
	in := load(t)
	var targets []string
	for k := range in.byTarget {
		targets = append(targets, k)
	}
	slices.Sort(targets)
	want2 := []string{"analysis.sluice.dev/v1alpha1/AnalysisRun", "apps.kruise.io/v1alpha1/CloneSet", "apps.kruise.io/v1beta1/StatefulSet",
		"apps/v1/Deployment", "apps/v1/StatefulSet", "rollouts.kruise.io/v1beta1/Rollout"}
	if !slices.Equal(targets, want2) {
		t.Errorf("targets %v, want %v", targets, want2)
	}
}

// Each Rollout and AnalysisRun captured from a real release has the
// health its state means, and reflects its status.
func TestHealthAndReflection(t *testing.T) {
	in := load(t)
	for _, s := range captured.States {
		obj := object(t, s.Name)
		if obj.GetAPIVersion() == "rollouts.kruise.io/v1alpha1" {
			continue // the hub propagates v1beta1 (docs/karmada.md)
		}
		healthy, err := in.InterpretHealth(obj)
		if err != nil {
			t.Errorf("%s: %v", s.Name, err)
		} else if healthy != s.Healthy {
			t.Errorf("%s: healthy %t, want %t", s.Name, healthy, s.Healthy)
		}
		if s.Kind == captured.Workload {
			continue
		}
		reflected, err := in.ReflectStatus(member(obj, 4))
		if err != nil {
			t.Fatalf("%s: %v", s.Name, err)
		}
		status, _, _ := unstructured.NestedMap(obj.Object, "status")
		for k, v := range status {
			if !sameJSON(reflected[k], v) {
				t.Errorf("%s: status.%s reflected as %v, want %v", s.Name, k, reflected[k], v)
			}
		}
		if s.Kind == captured.Rollout && (reflected["generation"] != float64(obj.GetGeneration()) || reflected["resourceTemplateGeneration"] != float64(4)) {
			t.Errorf("%s: generations reflected as %v and %v", s.Name, reflected["generation"], reflected["resourceTemplateGeneration"])
		}
	}
}

// member is obj as Karmada finds it in a member cluster: marked with the
// generation of the hub's object it was made from.
func member(obj *unstructured.Unstructured, templateGeneration int) *unstructured.Unstructured {
	m := obj.DeepCopy()
	ann := m.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann["resourcetemplate.karmada.io/generation"] = strconv.Itoa(templateGeneration)
	m.SetAnnotations(ann)
	return m
}

// hub is the hub's Rollout of a captured state: the object without its
// status, at generation 4.
func hub(t *testing.T, state string) *unstructured.Unstructured {
	h := object(t, state)
	delete(h.Object, "status")
	h.SetGeneration(4)
	return h
}

// items reflects the captured states as members cluster-1, cluster-2, ...
// made from the hub's generation 4.
func items(t *testing.T, in *Interpreter, states ...string) []StatusItem {
	t.Helper()
	var out []StatusItem
	for i, s := range states {
		obj := object(t, s)
		reflected, err := in.ReflectStatus(member(obj, 4))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, StatusItem{ClusterName: "cluster-" + strconv.Itoa(i+1), Status: reflected, Applied: true})
	}
	return out
}

// The hub shows the member that most needs attention, its status whole;
// the message names it and sums up the others.
func TestRolloutAggregation(t *testing.T) {
	in := load(t)
	for _, tc := range []struct {
		members []string
		lead    int
		message []string
	}{
		{[]string{"rollout-completed", "rollout-waiting-for-approval"}, 1,
			[]string{"cluster-2: Rollout is in step(1/3), and you need manually confirm", "; cluster-1: Healthy (last release Completed)"}},
		{[]string{"rollout-waiting-for-approval", "rollout-rolled-back", "rollout-analysis-running"}, 1,
			[]string{"cluster-2: Rollout is aborted: analysis of step 1", "; cluster-1: Progressing step 1 WaitingForApproval", "; cluster-3: Progressing step 1 AnalysisRunning"}},
		{[]string{"rollout-analysis-running", "rollout-analysis-error"}, 1, []string{"cluster-2: ", "; cluster-1: Progressing step 1 AnalysisRunning"}},
		{[]string{"rollout-completed", "rollout-rolled-back-then-reverted"}, 1, []string{"cluster-2: ", "; cluster-1: Healthy (last release Completed)"}},
		{[]string{"rollout-completed", "rollout-promoted"}, 0, []string{"cluster-1: Rollout progressing has been completed", "; cluster-2: Healthy (last release Promoted)"}},
		{[]string{"rollout-completed"}, 0, []string{"cluster-1: Rollout progressing has been completed"}},
	} {
		its := items(t, in, tc.members...)
		got, err := in.AggregateStatus(hub(t, tc.members[0]), its)
		if err != nil {
			t.Fatalf("%v: %v", tc.members, err)
		}
		lead := object(t, tc.members[tc.lead])
		status, _, _ := unstructured.NestedMap(got.Object, "status")
		leadStatus, _, _ := unstructured.NestedMap(lead.Object, "status")
		for _, k := range []string{"phase", "currentStepIndex", "currentStepState", "canaryStatus", "conditions", "release", "lastRelease", "analysis"} {
			if !sameJSON(status[k], leadStatus[k]) {
				t.Errorf("%v: status.%s %v, want cluster-%d's %v", tc.members, k, status[k], tc.lead+1, leadStatus[k])
			}
		}
		msg, _ := status["message"].(string)
		for _, m := range tc.message {
			if !strings.Contains(msg, m) {
				t.Errorf("%v: message %q lacks %q", tc.members, msg, m)
			}
		}
		if status["observedGeneration"] != int64(4) {
			t.Errorf("%v: observedGeneration %v, want the hub's 4 (every member saw it)", tc.members, status["observedGeneration"])
		}
	}
}

// Until every member has observed the hub's generation, observedGeneration
// stays what it was; without members' statuses nothing changes.
func TestRolloutAggregationWaitsForEveryMember(t *testing.T) {
	in := load(t)
	its := items(t, in, "rollout-completed", "rollout-waiting-for-approval")
	its[1].Status["resourceTemplateGeneration"] = float64(3)
	h := hub(t, "rollout-completed")
	_ = unstructured.SetNestedField(h.Object, int64(3), "status", "observedGeneration")
	got, err := in.AggregateStatus(h, its)
	if err != nil {
		t.Fatal(err)
	}
	if g, _, _ := unstructured.NestedInt64(got.Object, "status", "observedGeneration"); g != 3 {
		t.Errorf("observedGeneration %d, want 3 while cluster-2 has not seen generation 4", g)
	}
	its = append(its, StatusItem{ClusterName: "cluster-3", Applied: false})
	if _, err := in.AggregateStatus(hub(t, "rollout-completed"), its); err != nil {
		t.Errorf("a member without status: %v", err)
	}
	got, err = in.AggregateStatus(hub(t, "rollout-completed"), nil)
	if err != nil || got.Object["status"] != nil {
		t.Errorf("no members: %v, %v", got.Object["status"], err)
	}
}

// The hub's AnalysisRun carries the worst verdict.
func TestAnalysisRunAggregation(t *testing.T) {
	in := load(t)
	for _, tc := range []struct {
		members []string
		phase   string
		done    bool
	}{
		{[]string{"analysisrun-successful", "analysisrun-failed"}, "Failed", true},
		{[]string{"analysisrun-successful", "analysisrun-running"}, "Running", false},
		{[]string{"analysisrun-inconclusive", "analysisrun-error"}, "Error", true},
		{[]string{"analysisrun-successful", "analysisrun-successful"}, "Successful", true},
	} {
		got, err := in.AggregateStatus(hub(t, tc.members[0]), items(t, in, tc.members...))
		if err != nil {
			t.Fatal(err)
		}
		status, _, _ := unstructured.NestedMap(got.Object, "status")
		if status["phase"] != tc.phase {
			t.Errorf("%v: phase %v, want %s", tc.members, status["phase"], tc.phase)
		}
		if _, done := status["completedAt"]; done != tc.done {
			t.Errorf("%v: completedAt %v", tc.members, status["completedAt"])
		}
		if _, ok := status["metricResults"]; !ok {
			t.Errorf("%v: no metric results", tc.members)
		}
		for i := range tc.members {
			if !strings.Contains(status["summary"].(string), "cluster-"+strconv.Itoa(i+1)+": ") {
				t.Errorf("%v: summary %q lacks cluster-%d", tc.members, status["summary"], i+1)
			}
		}
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

// Karmada's update of a member workload keeps what Sluice holds while a
// release holds it, and only then; everything else is the hub's.
func TestRetention(t *testing.T) {
	in := load(t)
	for _, s := range captured.States {
		if s.Kind != captured.Workload {
			continue
		}
		observed := object(t, s.Name)
		desired, err := captured.Desired(s.Name)
		if err != nil {
			t.Fatal(err)
		}
		desired.SetNamespace(observed.GetNamespace())
		RetainClusterFields(desired, observed)
		retained, err := in.Retain(desired.DeepCopy(), observed)
		if err != nil {
			t.Fatalf("%s: %v", s.Name, err)
		}
		held := false
		for _, p := range heldFields(observed) {
			member, _, _ := unstructured.NestedFieldNoCopy(observed.Object, p...)
			hubValue, _, _ := unstructured.NestedFieldNoCopy(desired.Object, p...)
			got, _, _ := unstructured.NestedFieldNoCopy(retained.Object, p...)
			want := hubValue
			if s.Held {
				want = member
			}
			if !sameJSON(got, want) {
				t.Errorf("%s: %v = %v after retention, want %v", s.Name, p, got, want)
			}
			held = held || !sameJSON(member, hubValue)
		}
		if s.Held && !held {
			t.Errorf("%s: the capture shows no held field: the hub's manifest alone keeps what Sluice holds", s.Name)
		}
		// Nothing else changes: the template is the hub's.
		for _, p := range [][]string{{"spec", "template"}, {"spec", "replicas"}, {"spec", "selector"}} {
			want, _, _ := unstructured.NestedFieldNoCopy(desired.Object, p...)
			got, _, _ := unstructured.NestedFieldNoCopy(retained.Object, p...)
			if !sameJSON(got, want) {
				t.Errorf("%s: %v changed by retention: %v, want %v", s.Name, p, got, want)
			}
		}
	}
}

// A workload a release holds is healthy while all its replicas are
// available, whatever their revision; otherwise Karmada's rule applies:
// every replica updated and available.
func TestWorkloadHealth(t *testing.T) {
	in := load(t)
	for _, state := range []string{"deployment-in-release", "statefulset-in-release", "cloneset-in-release", "advanced-statefulset-in-release"} {
		held := object(t, state)
		_ = unstructured.SetNestedField(held.Object, int64(2), "status", "availableReplicas")
		if ok, err := in.InterpretHealth(held); err != nil || ok {
			t.Errorf("%s with 2 replicas available: healthy %t (%v)", state, ok, err)
		}
		free := object(t, state)
		ann := free.GetAnnotations()
		delete(ann, "rollouts.kruise.io/in-progressing")
		free.SetAnnotations(ann)
		if ok, err := in.InterpretHealth(free); err != nil || ok {
			t.Errorf("%s not held, 1 replica updated: healthy %t (%v)", state, ok, err)
		}
		stale := object(t, state)
		stale.SetGeneration(stale.GetGeneration() + 1)
		if ok, err := in.InterpretHealth(stale); err != nil || ok {
			t.Errorf("%s with a spec not observed: healthy %t (%v)", state, ok, err)
		}
	}
	rest := object(t, "deployment-at-rest")
	_ = unstructured.SetNestedField(rest.Object, int64(4), "status", "availableReplicas")
	if ok, err := in.InterpretHealth(rest); err != nil || ok {
		t.Errorf("a Deployment with an updated replica not available: healthy %t (%v)", ok, err)
	}
}

// A customization replaces Karmada's own Deployment retention, so it keeps
// its rule: the label retain-replicas keeps the member's replicas.
func TestDeploymentRetentionKeepsRetainReplicas(t *testing.T) {
	in := load(t)
	observed := object(t, "deployment-at-rest")
	_ = unstructured.SetNestedField(observed.Object, int64(7), "spec", "replicas")
	desired, _ := captured.Desired("deployment-at-rest")
	retained, err := in.Retain(desired.DeepCopy(), observed)
	if err != nil {
		t.Fatal(err)
	}
	if r, _, _ := unstructured.NestedInt64(retained.Object, "spec", "replicas"); r != 5 {
		t.Errorf("replicas %d without the label, want the hub's 5", r)
	}
	desired.SetLabels(map[string]string{"resourcetemplate.karmada.io/retain-replicas": "true"})
	retained, err = in.Retain(desired, observed)
	if err != nil {
		t.Fatal(err)
	}
	if r, _, _ := unstructured.NestedInt64(retained.Object, "spec", "replicas"); r != 7 {
		t.Errorf("replicas %d with retain-replicas, want the member's 7", r)
	}
}

// A Rollout needs the AnalysisTemplates its analysis names.
func TestRolloutDependencies(t *testing.T) {
	in := load(t)
	deps, err := in.GetDependencies(object(t, "rollout-analysis-running"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Dependency{{APIVersion: "analysis.sluice.dev/v1alpha1", Kind: "AnalysisTemplate", Namespace: captured.Namespace, Name: "error-rate"}}
	if !slices.Equal(deps, want) {
		t.Errorf("dependencies %+v, want %+v", deps, want)
	}
	r := object(t, "rollout-analysis-running")
	_ = unstructured.SetNestedField(r.Object, map[string]any{"templates": []any{
		map[string]any{"templateName": "latency", "clusterScope": true},
		map[string]any{"templateName": "error-rate"},
	}}, "spec", "strategy", "analysis")
	deps, err = in.GetDependencies(r)
	if err != nil {
		t.Fatal(err)
	}
	want = []Dependency{{APIVersion: "analysis.sluice.dev/v1alpha1", Kind: "ClusterAnalysisTemplate", Name: "latency"}, want[0]}
	if !slices.Equal(deps, want) {
		t.Errorf("dependencies %+v, want %+v", deps, want)
	}
	if deps, err := in.GetDependencies(object(t, "rollout-waiting-for-approval")); err != nil || len(deps) != 0 {
		t.Errorf("a Rollout without analysis: %+v %v", deps, err)
	}
}

// sameJSON compares values by their JSON (int64 and float64 alike, as the
// API server and Lua see them).
func sameJSON(a, b any) bool {
	x, errA := json.Marshal(a)
	y, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(x) == string(y)
}

// What the scripts cost per run (Karmada allows 1s each): health and
// reflection of a captured Rollout, the aggregation of three members, the
// retention of a held Deployment.
func BenchmarkScripts(b *testing.B) {
	raw, err := os.ReadFile(CustomizationsFile)
	if err != nil {
		b.Fatal(err)
	}
	in, err := Load(raw)
	if err != nil {
		b.Fatal(err)
	}
	get := func(state string) *unstructured.Unstructured {
		obj, err := captured.Object(state)
		if err != nil {
			b.Fatal(err)
		}
		return obj
	}
	rollout := get("rollout-rolled-back")
	var items []StatusItem
	for i, s := range []string{"rollout-completed", "rollout-rolled-back", "rollout-analysis-error"} {
		st, err := in.ReflectStatus(get(s))
		if err != nil {
			b.Fatal(err)
		}
		items = append(items, StatusItem{ClusterName: "cluster-" + strconv.Itoa(i), Status: st})
	}
	observed := get("deployment-in-release")
	desired, err := captured.Desired("deployment-in-release")
	if err != nil {
		b.Fatal(err)
	}
	for _, step := range []struct {
		name string
		run  func() error
	}{
		{"health", func() error { _, err := in.InterpretHealth(rollout); return err }},
		{"reflection", func() error { _, err := in.ReflectStatus(rollout); return err }},
		{"aggregation", func() error { _, err := in.AggregateStatus(rollout, items); return err }},
		{"retention", func() error { _, err := in.Retain(desired, observed); return err }},
	} {
		b.Run(step.name, func(b *testing.B) {
			for b.Loop() {
				if err := step.run(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
