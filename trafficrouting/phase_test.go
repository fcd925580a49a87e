package trafficrouting

import (
	"testing"

	"github.com/sluicehq/sluice/api/rollouts/v1alpha1"
)

// Kruise's phase machine, a phase at a time, and what each phase does to
// the routing objects.
func TestPlan(t *testing.T) {
	const (
		initial     = v1alpha1.TrafficRoutingPhaseInitial
		healthy     = v1alpha1.TrafficRoutingPhaseHealthy
		progressing = v1alpha1.TrafficRoutingPhaseProgressing
		finalizing  = v1alpha1.TrafficRoutingPhaseFinalizing
		terminating = v1alpha1.TrafficRoutingPhaseTerminating
	)
	cases := []struct {
		last           v1alpha1.TrafficRoutingPhase
		held, deleting bool
		phase          v1alpha1.TrafficRoutingPhase
		work           Work
		done           v1alpha1.TrafficRoutingPhase
	}{
		{last: "", phase: initial, work: Check, done: healthy},
		{last: initial, held: true, phase: initial, work: Check, done: healthy}, // checked before anything is applied
		{last: healthy, phase: healthy, work: NoWork, done: healthy},
		{last: healthy, held: true, phase: progressing, work: Apply, done: progressing},
		{last: progressing, held: true, phase: progressing, work: Apply, done: progressing},
		{last: progressing, phase: finalizing, work: Restore, done: healthy},
		{last: finalizing, phase: finalizing, work: Restore, done: healthy},
		{last: finalizing, held: true, phase: finalizing, work: Restore, done: healthy}, // a late joiner waits for the restore
		{last: progressing, held: true, deleting: true, phase: terminating, work: Restore, done: terminating},
		{last: healthy, deleting: true, phase: terminating, work: Restore, done: terminating},
	}
	for _, tc := range cases {
		phase, work := Plan(tc.last, tc.held, tc.deleting)
		if phase != tc.phase || work != tc.work || Done(phase) != tc.done {
			t.Errorf("Plan(%q, held %v, deleting %v) = %s, %s, done %s; want %s, %s, done %s",
				tc.last, tc.held, tc.deleting, phase, work, Done(phase), tc.phase, tc.work, tc.done)
		}
	}
	if got := Message(initial); got != "TrafficRouting is Initializing" {
		t.Errorf("Message(Initial) = %q", got)
	}
	if got := Message(progressing); got != "TrafficRouting is Progressing" {
		t.Errorf("Message(Progressing) = %q", got)
	}
}

func TestHoldingRollouts(t *testing.T) {
	tr := &v1alpha1.TrafficRouting{}
	tr.Finalizers = []string{v1alpha1.TrafficRoutingFinalizer, "progressing.rollouts.kruise.io/frontend", "other.example.com/x", v1alpha1.ProgressingRolloutFinalizer("backend")}
	if got := tr.HoldingRollouts(); len(got) != 2 || got[0] != "frontend" || got[1] != "backend" {
		t.Errorf("HoldingRollouts() = %q", got)
	}
}
