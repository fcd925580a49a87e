package controlplane

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"strings"
	"testing"
	"text/template"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

func TestKwokStages(t *testing.T) {
	extra := []string{
		"kind: Stage\nmetadata: {name: pod-ready}\nspec:\n  selector: {}\n  next:\n    statusTemplate: |\n      phase: Running\n",
		"---\nkind: Stage\nmetadata: {name: weighted}\nspec: {selector: {}, weight: 5}\n---\nkind: Stage\nmetadata: {name: computed}\nspec: {selector: {}, weightFrom: {expressionFrom: .x}}\n",
	}
	if _, err := kwokStages([]string{"kind: Stage\nmetadata: {name: x}\nspec: {}\n"}); err == nil {
		t.Error("a stage without selector was accepted")
	}
	out, err := kwokStages(extra)
	if err != nil {
		t.Fatal(err)
	}
	docs := splitYAML(out)
	// 5 built-in stages, pod-ready replaced, weighted and computed added.
	if !strings.HasPrefix(out, "---\n") || len(docs) != 7 {
		t.Fatalf("want 7 documents each after ---, got %d:\n%s", len(docs), out)
	}
	weights := map[string]any{}
	for _, d := range docs {
		var obj struct {
			Metadata struct{ Name string }
			Spec     map[string]any
		}
		if err := yaml.Unmarshal([]byte(d), &obj); err != nil {
			t.Fatal(err)
		}
		if _, dup := weights[obj.Metadata.Name]; dup {
			t.Errorf("stage %s twice", obj.Metadata.Name)
		}
		weights[obj.Metadata.Name] = obj.Spec["weight"]
		if obj.Metadata.Name == "pod-ready" && obj.Spec["resourceRef"] != nil {
			t.Errorf("built-in pod-ready not replaced by the extra stage: %s", d)
		}
	}
	want := map[string]any{"pod-ready": float64(1), "weighted": float64(5), "computed": nil,
		"pod-delete": nil, "pod-complete": nil, "node-initialize": nil, "node-heartbeat": nil}
	for name, w := range want {
		got, ok := weights[name]
		if !ok || got != w {
			t.Errorf("stage %s: present %v, weight %v, want weight %v", name, ok, got, w)
		}
	}
}

// stage is the part of a kwok Stage the template tests read.
type stage struct {
	Metadata struct{ Name string }
	Spec     struct {
		ResourceRef struct{ APIGroup, Kind string } `json:"resourceRef"`
		Next        struct {
			StatusTemplate string `json:"statusTemplate"`
			Delete         bool
		}
	}
}

func builtinStage(t *testing.T, name string) stage {
	t.Helper()
	raw, err := fs.ReadFile(builtinStages, "stages/"+name+".yaml")
	if err != nil {
		t.Fatal(err)
	}
	var s stage
	if err := yaml.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	if s.Metadata.Name != name {
		t.Fatalf("stages/%s.yaml is named %q", name, s.Metadata.Name)
	}
	return s
}

// render renders a stage's status template the way kwok does (the object
// as JSON-like maps, Quote as JSON), with fixed answers for kwok's
// functions, and decodes the result into status.
func render(t *testing.T, s stage, obj any, status any) {
	t.Helper()
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	var data map[string]any
	if err := json.Unmarshal(raw, &data); err != nil {
		t.Fatal(err)
	}
	funcs := template.FuncMap{
		"Now":     func() string { return "2026-01-01T00:00:00Z" },
		"Version": func() string { return "v0.8.0" },
		"Quote": func(v any) string {
			b, _ := json.Marshal(v)
			if len(b) > 0 && b[0] == '"' {
				return string(b)
			}
			return `"` + string(b) + `"`
		},
		"NodeIP":      func() string { return "10.240.0.1" },
		"NodeName":    func() string { return "kwok-node-0" },
		"NodeIPsWith": func(string) []string { return []string{"10.240.0.1"} },
		"PodIPsWith":  func(string, bool, string, string, string) []string { return []string{"10.244.0.7"} },
	}
	tpl, err := template.New(s.Metadata.Name).Funcs(funcs).Parse(s.Spec.Next.StatusTemplate)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := tpl.Execute(&out, data); err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(out.Bytes(), status); err != nil {
		t.Fatalf("%s renders a status that does not decode: %v\n%s", s.Metadata.Name, err, out.String())
	}
}

func condition[C any](conds []C, match func(C) bool) (C, bool) {
	for _, c := range conds {
		if match(c) {
			return c, true
		}
	}
	var zero C
	return zero, false
}

func TestNodeStages(t *testing.T) {
	created := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "kwok-node-0", CreationTimestamp: created}}

	var st corev1.NodeStatus
	render(t, builtinStage(t, "node-initialize"), node, &st)
	ready, ok := condition(st.Conditions, func(c corev1.NodeCondition) bool { return c.Type == corev1.NodeReady })
	if st.Phase != corev1.NodeRunning || !ok || ready.Status != corev1.ConditionTrue || len(st.Conditions) != 5 {
		t.Errorf("node-initialize: phase %s, conditions %+v", st.Phase, st.Conditions)
	}
	if len(st.Addresses) != 2 || st.Addresses[0] != (corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "10.240.0.1"}) ||
		st.NodeInfo.KubeletVersion != "kwok-v0.8.0" || st.NodeInfo.OperatingSystem != "linux" {
		t.Errorf("node-initialize: addresses %+v, node info %+v", st.Addresses, st.NodeInfo)
	}
	if st.Capacity != nil || st.Allocatable != nil {
		t.Errorf("node-initialize overwrites the node's capacity: %v %v", st.Capacity, st.Allocatable)
	}

	// The heartbeat keeps every condition and its transition time, and
	// renews the heartbeat time.
	earlier := metav1.NewTime(created.Add(-time.Hour))
	node.Status = st
	for i := range node.Status.Conditions {
		node.Status.Conditions[i].LastHeartbeatTime = earlier
		node.Status.Conditions[i].LastTransitionTime = earlier
	}
	var beat corev1.NodeStatus
	render(t, builtinStage(t, "node-heartbeat"), node, &beat)
	if len(beat.Conditions) != len(st.Conditions) {
		t.Fatalf("node-heartbeat: %d conditions, want %d", len(beat.Conditions), len(st.Conditions))
	}
	for i, c := range beat.Conditions {
		was := node.Status.Conditions[i]
		if c.Type != was.Type || c.Status != was.Status || c.Reason != was.Reason ||
			!c.LastTransitionTime.Equal(&earlier) || !c.LastHeartbeatTime.Equal(&created) {
			t.Errorf("node-heartbeat condition %d: %+v, was %+v", i, c, was)
		}
	}
}

func TestPodStages(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web-1", UID: "u1"},
		Spec: corev1.PodSpec{
			NodeName:       "kwok-node-0",
			Containers:     []corev1.Container{{Name: "app", Image: "demo:1"}, {Name: "proxy", Image: "envoy:1"}},
			InitContainers: []corev1.Container{{Name: "init", Image: "busybox"}, {Name: "sidecar", Image: "log:1", RestartPolicy: &always}},
			ReadinessGates: []corev1.PodReadinessGate{{ConditionType: "InPlaceUpdateReady"}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodPending},
	}
	var st corev1.PodStatus
	render(t, builtinStage(t, "pod-ready"), pod, &st)
	if st.Phase != corev1.PodRunning || st.PodIP != "10.244.0.7" || st.HostIP != "10.240.0.1" || st.StartTime == nil {
		t.Errorf("pod-ready: phase %s, pod IP %q, host IP %q, start %v", st.Phase, st.PodIP, st.HostIP, st.StartTime)
	}
	for _, want := range []corev1.PodConditionType{corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady, "InPlaceUpdateReady"} {
		if c, ok := condition(st.Conditions, func(c corev1.PodCondition) bool { return c.Type == want }); !ok || c.Status != corev1.ConditionTrue {
			t.Errorf("pod-ready: condition %s missing or not True in %+v", want, st.Conditions)
		}
	}
	if len(st.ContainerStatuses) != 2 || st.ContainerStatuses[1].Name != "proxy" || !st.ContainerStatuses[1].Ready ||
		st.ContainerStatuses[1].State.Running == nil {
		t.Errorf("pod-ready: container statuses %+v", st.ContainerStatuses)
	}
	if len(st.InitContainerStatuses) != 2 || st.InitContainerStatuses[0].State.Terminated == nil ||
		st.InitContainerStatuses[1].State.Running == nil {
		t.Errorf("pod-ready: init containers %+v, want the first completed and the sidecar running", st.InitContainerStatuses)
	}

	pod.Status = st
	var done corev1.PodStatus
	render(t, builtinStage(t, "pod-complete"), pod, &done)
	if done.Phase != corev1.PodSucceeded || len(done.ContainerStatuses) != 2 ||
		done.ContainerStatuses[0].State.Terminated == nil || done.ContainerStatuses[0].State.Terminated.ExitCode != 0 {
		t.Errorf("pod-complete: %+v", done)
	}

	if del := builtinStage(t, "pod-delete"); !del.Spec.Next.Delete || del.Spec.ResourceRef.Kind != "Pod" {
		t.Errorf("pod-delete does not delete pods: %+v", del.Spec)
	}
}
