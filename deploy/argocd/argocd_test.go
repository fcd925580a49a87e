package argocd

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/sluicehq/sluice/deploy/captured"
)

var actionNames = []string{"abort", "approve", "pause", "promote", "resume", "retry"}

// load reads argocd-cm.yaml, what a user installs, with a fixed clock.
func load(t *testing.T) *Customizations {
	t.Helper()
	raw, err := os.ReadFile(ConfigMapFile)
	if err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfigMap(raw)
	if err != nil {
		t.Fatal(err)
	}
	c.Now = func() time.Time { return time.Date(2026, 8, 22, 18, 31, 32, 0, time.FixedZone("CEST", 2*3600)) }
	c.Timeout = testTimeout
	return c
}

func object(t *testing.T, state string) *unstructured.Unstructured {
	t.Helper()
	obj, err := captured.Object(state)
	if err != nil {
		t.Fatal(err)
	}
	return obj
}

func TestConfigMapIsGenerated(t *testing.T) {
	want, err := ConfigMapYAML()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(ConfigMapFile)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("%s is out of date: run `make generate` (or go run ./deploy/gitopssync)", ConfigMapFile)
	}
	c := load(t)
	for _, gk := range GroupKinds() {
		if c.byKind[gk] == nil || c.byKind[gk].health == "" {
			t.Errorf("argocd-cm.yaml has no health check for %s", gk)
		}
	}
	if a := c.byKind["rollouts.kruise.io/Rollout"].actions; a == nil || len(a.Definitions) != len(actionNames) {
		t.Errorf("argocd-cm.yaml defines the Rollout's actions %+v, want %v", a, actionNames)
	}
}

// Each state captured from a real release has the health and the actions
// it must have; an action discovery disables refuses to run, and one it
// enables changes the Rollout.
func TestCapturedStates(t *testing.T) {
	c := load(t)
	for _, s := range captured.States {
		if s.Kind == captured.Workload {
			continue
		}
		t.Run(s.Name, func(t *testing.T) {
			obj := object(t, s.Name)
			h, err := c.Health(obj)
			if err != nil {
				t.Fatal(err)
			}
			if h.Status != s.Health || h.Message == "" {
				t.Errorf("health %s %q, want %s with a message", h.Status, h.Message, s.Health)
			}
			if s.Kind != captured.Rollout {
				return
			}
			actions, err := c.Actions(obj)
			if err != nil {
				t.Fatal(err)
			}
			var names, on []string
			for _, a := range actions {
				names = append(names, a.Name)
				if !a.Disabled {
					on = append(on, a.Name)
				}
				if a.DisplayName == "" || !strings.HasPrefix(a.IconClass, "fa fa-fw fa-") {
					t.Errorf("action %s: display name %q, icon %q", a.Name, a.DisplayName, a.IconClass)
				}
			}
			if !slices.Equal(names, actionNames) {
				t.Errorf("discovery offers %v, want %v", names, actionNames)
			}
			if !slices.Equal(on, s.Actions) {
				t.Errorf("enabled actions %v, want %v", on, s.Actions)
			}
			for _, name := range actionNames {
				p, err := c.Run(obj.DeepCopy(), name)
				switch {
				case slices.Contains(s.Actions, name) && err != nil:
					t.Errorf("enabled action %s fails: %v", name, err)
				case slices.Contains(s.Actions, name) && p.Empty():
					t.Errorf("enabled action %s changes nothing", name)
				case !slices.Contains(s.Actions, name) && err == nil:
					t.Errorf("disabled action %s runs: %+v", name, p)
				case !slices.Contains(s.Actions, name) && !strings.HasPrefix(err.Error(), "cannot "+name+" rollout "+obj.GetName()+": "):
					t.Errorf("disabled action %s fails without saying why: %v", name, err)
				}
			}
		})
	}
}

// The patches are those of kubectl-kruise and kubectl sluice: approve is
// a status patch of the sub-status the strategy writes, the others change
// the object.
func TestActionPatches(t *testing.T) {
	c := load(t)
	for _, tc := range []struct {
		state, action string
		status, main  string
	}{
		{"rollout-waiting-for-approval", "approve", `{"status":{"canaryStatus":{"currentStepState":"StepReady"}}}`, ""},
		{"rollout-waiting-for-approval-v1alpha1", "approve", `{"status":{"canaryStatus":{"currentStepState":"StepReady"}}}`, ""},
		{"rollout-bluegreen-waiting-for-approval", "approve", `{"status":{"blueGreenStatus":{"currentStepState":"StepReady"}}}`, ""},
		{"rollout-analysis-error", "approve", `{"status":{"canaryStatus":{"currentStepState":"StepReady"}}}`, ""},
		{"rollout-waiting-for-approval", "pause", "", `{"spec":{"strategy":{"paused":true}}}`},
		{"rollout-paused-by-spec", "resume", "", `{"spec":{"strategy":{"paused":false}}}`},
		{"rollout-waiting-for-approval", "abort", "", `{"metadata":{"annotations":{"sluice.dev/abort":"2026-08-22T16:31:32Z"}}}`},
		{"rollout-paused-by-spec", "abort", "", `{"metadata":{"annotations":{"sluice.dev/abort":"2026-08-22T16:31:32Z"}},"spec":{"strategy":{"paused":false}}}`},
		{"rollout-paused-by-spec", "promote", "", `{"metadata":{"annotations":{"sluice.dev/promote":"2026-08-22T16:31:32Z"}},"spec":{"strategy":{"paused":false}}}`},
		{"rollout-aborted", "retry", "", `{"metadata":{"annotations":{"sluice.dev/retry":"2026-08-22T16:31:32Z"}}}`},
		{"rollout-analysis-inconclusive", "retry", "", `{"metadata":{"annotations":{"sluice.dev/retry":"2026-08-22T16:31:32Z"}}}`},
	} {
		p, err := c.Run(object(t, tc.state), tc.action)
		if err != nil {
			t.Errorf("%s on %s: %v", tc.action, tc.state, err)
			continue
		}
		if string(p.Status) != tc.status || string(p.Main) != tc.main {
			t.Errorf("%s on %s: status patch %s, object patch %s; want %q and %q", tc.action, tc.state, p.Status, p.Main, tc.status, tc.main)
		}
	}
}

// What a person reads in Argo CD says why.
func TestHealthMessages(t *testing.T) {
	c := load(t)
	for state, want := range map[string]string{
		"rollout-no-release":                 "No release yet: ",
		"rollout-waiting-for-approval":       "WaitingForApproval: Rollout is in step(1/3), and you need manually confirm to enter the next step",
		"rollout-rolled-back":                "RolledBack: Rollout is aborted: analysis of step 1",
		"rollout-aborted":                    "Aborted: Rollout is aborted: aborted by a person (sluice.dev/abort)",
		"rollout-rolled-back-then-reverted":  "Last release RolledBack (revision ",
		"rollout-promoted":                   "Last release Promoted (revision ",
		"rollout-progress-deadline-exceeded": "ProgressDeadlineExceeded: ",
		"rollout-disabled":                   "Disabled: the workload rolls out by itself",
		"analysisrun-failed":                 `metric "error-rate" Failed`,
	} {
		h, err := c.Health(object(t, state))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(h.Message, want) {
			t.Errorf("%s: message %q lacks %q", state, h.Message, want)
		}
	}
}

// A Rollout no controller has written yet, or whose latest spec it has not
// seen, is Progressing.
func TestHealthBeforeTheController(t *testing.T) {
	c := load(t)
	fresh := object(t, "rollout-no-release")
	delete(fresh.Object, "status")
	if h, _ := c.Health(fresh); h.Status != "Progressing" {
		t.Errorf("no status: %+v", h)
	}
	edited := object(t, "rollout-completed")
	edited.SetGeneration(edited.GetGeneration() + 1)
	if h, _ := c.Health(edited); h.Status != "Progressing" || !strings.Contains(h.Message, "generation") {
		t.Errorf("spec not observed: %+v", h)
	}
	run := object(t, "analysisrun-running")
	delete(run.Object, "status")
	if h, _ := c.Health(run); h.Status != "Progressing" {
		t.Errorf("AnalysisRun without status: %+v", h)
	}
}

// What the scripts cost per run, on every captured Rollout: health,
// discovery and an action (Argo CD allows 1s each).
func BenchmarkScripts(b *testing.B) {
	raw, err := os.ReadFile(ConfigMapFile)
	if err != nil {
		b.Fatal(err)
	}
	c, err := LoadConfigMap(raw)
	if err != nil {
		b.Fatal(err)
	}
	var rollouts []*unstructured.Unstructured
	for _, s := range captured.States {
		if s.Kind == captured.Rollout {
			obj, err := captured.Object(s.Name)
			if err != nil {
				b.Fatal(err)
			}
			rollouts = append(rollouts, obj)
		}
	}
	for _, step := range []struct {
		name string
		run  func(*unstructured.Unstructured) error
	}{
		{"health", func(u *unstructured.Unstructured) error { _, err := c.Health(u); return err }},
		{"discovery", func(u *unstructured.Unstructured) error { _, err := c.Actions(u); return err }},
		{"resume", func(u *unstructured.Unstructured) error { _, _ = c.Run(u, "resume"); return nil }},
	} {
		b.Run(step.name, func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				if err := step.run(rollouts[i%len(rollouts)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
