package controlplane

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestKwokStages(t *testing.T) {
	dir := t.TempDir()
	for _, rel := range builtinStages {
		name := strings.TrimSuffix(filepath.Base(rel), ".yaml")
		p := filepath.Join(dir, "kustomize", "stage", filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		doc := "apiVersion: kwok.x-k8s.io/v1alpha1\nkind: Stage\nmetadata:\n  name: " + name + "\nspec: {}\n"
		if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	extra := []string{
		"kind: Stage\nmetadata: {name: pod-ready}\nspec:\n  selector: {}\n  next:\n    statusTemplate: |\n      phase: Running\n",
		"---\nkind: Stage\nmetadata: {name: weighted}\nspec: {selector: {}, weight: 5}\n---\nkind: Stage\nmetadata: {name: computed}\nspec: {selector: {}, weightFrom: {expressionFrom: .x}}\n",
	}
	if _, err := kwokStages(t.Context(), dir, []string{"kind: Stage\nmetadata: {name: x}\nspec: {}\n"}); err == nil {
		t.Error("a stage without selector was accepted")
	}
	out, err := kwokStages(t.Context(), dir, extra)
	if err != nil {
		t.Fatal(err)
	}
	docs := splitYAML(out)
	if !strings.HasPrefix(out, "---\n") || len(docs) != len(builtinStages)+2 {
		t.Fatalf("want %d documents each after ---, got:\n%s", len(builtinStages)+2, out)
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
		if obj.Metadata.Name == "pod-ready" && obj.Spec["next"] == nil {
			t.Errorf("built-in pod-ready not replaced by the extra stage: %s", d)
		}
	}
	want := map[string]any{"pod-ready": float64(1), "weighted": float64(5), "computed": nil, "pod-delete": nil}
	for name, w := range want {
		if weights[name] != w {
			t.Errorf("stage %s weight = %v, want %v", name, weights[name], w)
		}
	}
}
