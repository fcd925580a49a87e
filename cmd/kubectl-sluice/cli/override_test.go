package cli

import (
	"encoding/json"
	"testing"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

func TestPatches(t *testing.T) {
	js := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	// Exactly kubectl-kruise's approval, for canary and blue-green.
	if got, want := js(approvePatch(stateOf(waitingApproval()))), `{"status":{"canaryStatus":{"currentStepState":"StepReady"}}}`; got != want {
		t.Errorf("approve %s, want %s", got, want)
	}
	bg := waitingApproval()
	bg.Spec.Strategy.BlueGreen, bg.Spec.Strategy.Canary = &v1beta1.BlueGreenStrategy{Steps: bg.Spec.Strategy.Canary.Steps}, nil
	if got, want := js(approvePatch(stateOf(bg))), `{"status":{"blueGreenStatus":{"currentStepState":"StepReady"}}}`; got != want {
		t.Errorf("blue-green approve %s, want %s", got, want)
	}

	paused := waitingApproval()
	paused.Spec.Strategy.Paused = true
	for _, c := range []struct {
		a    action
		r    *v1beta1.Rollout
		want string
	}{
		{actAbort, waitingApproval(), `{"metadata":{"annotations":{"sluice.dev/abort":"v"}}}`},
		{actRetry, heldByAnalysis(), `{"metadata":{"annotations":{"sluice.dev/retry":"v"}}}`},
		{actPromote, waitingApproval(), `{"metadata":{"annotations":{"sluice.dev/promote":"v"}}}`},
		// The controller acts on abort and promote only once resumed.
		{actAbort, paused, `{"metadata":{"annotations":{"sluice.dev/abort":"v"}},"spec":{"strategy":{"paused":false}}}`},
		{actPromote, paused, `{"metadata":{"annotations":{"sluice.dev/promote":"v"}},"spec":{"strategy":{"paused":false}}}`},
	} {
		if got := js(annotationPatch(c.a, "v", stateOf(c.r))); got != c.want {
			t.Errorf("%s: %s, want %s", c.a, got, c.want)
		}
	}
}
