package captured

import (
	"slices"
	"testing"
)

// Every state has its capture and every capture a state; the objects are
// of the state's kind, a workload's capture holds its desired manifest,
// and the e2e test's namespace is replaced.
func TestCapturesMatchStates(t *testing.T) {
	files := Files()
	for _, s := range States {
		if !slices.Contains(files, s.Name) {
			t.Errorf("state %s has no capture: run %s", s.Name, "SLUICE_UPDATE_CAPTURES=1 go test -tags e2e -run TestCaptureStates ./e2e/gitops")
			continue
		}
		obj, err := Object(s.Name)
		if err != nil {
			t.Fatal(err)
		}
		switch s.Kind {
		case Rollout, AnalysisRun:
			if obj.GetKind() != s.Kind {
				t.Errorf("%s: captured a %s, want a %s", s.Name, obj.GetKind(), s.Kind)
			}
			if _, found := obj.Object["status"]; !found {
				t.Errorf("%s: captured without its status", s.Name)
			}
		case Workload:
			desired, err := Desired(s.Name)
			if err != nil || desired == nil {
				t.Errorf("%s: no desired manifest (%v)", s.Name, err)
			} else if desired.GetKind() != obj.GetKind() || desired.GetName() != obj.GetName() {
				t.Errorf("%s: desired %s %s for a %s %s", s.Name, desired.GetKind(), desired.GetName(), obj.GetKind(), obj.GetName())
			}
		default:
			t.Errorf("%s: unknown kind %q", s.Name, s.Kind)
		}
		if obj.GetNamespace() != Namespace {
			t.Errorf("%s: namespace %q, want %q", s.Name, obj.GetNamespace(), Namespace)
		}
		if len(obj.GetManagedFields()) > 0 {
			t.Errorf("%s: managed fields kept", s.Name)
		}
	}
	for _, f := range files {
		if _, ok := Lookup(f); !ok {
			t.Errorf("capture %s is of no state in States", f)
		}
	}
}
