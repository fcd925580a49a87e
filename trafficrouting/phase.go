package trafficrouting

import (
	"github.com/sluicehq/sluice/api/rollouts/v1alpha1"
)

// Work is what a TrafficRouting needs done to its routing objects now.
type Work int

// The works, named after the traffic provider's calls.
const (
	// NoWork: the routing objects are as they should be.
	NoWork Work = iota
	// Check that the routing objects exist (Provider.Initialize).
	Check
	// Apply the strategy (Provider.EnsureRoutes).
	Apply
	// Restore the routing objects as the user wrote them (Provider.Finalise).
	Restore
)

func (w Work) String() string { return [...]string{"None", "Check", "Apply", "Restore"}[w] }

// Plan is Kruise's phase machine, as a pure function: the phase a
// TrafficRouting is in, given the phase last written, whether any Rollout
// holds it (a progressing.rollouts.kruise.io finalizer) and whether it is
// deleted, and the work that phase needs. Kruise moves one phase per
// reconcile (Healthy, then Progressing at the next); Plan moves at once.
//
//	Initial --checked--> Healthy --held--> Progressing --let go--> Finalizing --restored--> Healthy
//	any phase --deleted--> Terminating --restored--> (its finalizer removed)
func Plan(last v1alpha1.TrafficRoutingPhase, held, deleting bool) (v1alpha1.TrafficRoutingPhase, Work) {
	if deleting {
		return v1alpha1.TrafficRoutingPhaseTerminating, Restore
	}
	switch last {
	case "", v1alpha1.TrafficRoutingPhaseInitial:
		return v1alpha1.TrafficRoutingPhaseInitial, Check
	case v1alpha1.TrafficRoutingPhaseHealthy:
		if held {
			return v1alpha1.TrafficRoutingPhaseProgressing, Apply
		}
		return v1alpha1.TrafficRoutingPhaseHealthy, NoWork
	case v1alpha1.TrafficRoutingPhaseProgressing:
		if held {
			return v1alpha1.TrafficRoutingPhaseProgressing, Apply
		}
		return v1alpha1.TrafficRoutingPhaseFinalizing, Restore
	}
	// Finalizing (a Rollout that joins meanwhile waits for it to end), or
	// a Terminating whose deletion was undone.
	return v1alpha1.TrafficRoutingPhaseFinalizing, Restore
}

// Done is the phase once its work is done: checked and restored routings
// are Healthy; an applied one stays Progressing.
func Done(p v1alpha1.TrafficRoutingPhase) v1alpha1.TrafficRoutingPhase {
	switch p {
	case v1alpha1.TrafficRoutingPhaseInitial, v1alpha1.TrafficRoutingPhaseFinalizing:
		return v1alpha1.TrafficRoutingPhaseHealthy
	}
	return p
}

// Message is Kruise's message of a phase.
func Message(p v1alpha1.TrafficRoutingPhase) string {
	if p == v1alpha1.TrafficRoutingPhaseInitial {
		return "TrafficRouting is Initializing"
	}
	return "TrafficRouting is " + string(p)
}
