package rollout

import (
	"context"
	"errors"
	"fmt"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/workload"
)

// Effects are what a reconcile does to the world besides deciding. The
// Reconciler's touch the cluster (act_cluster.go); the simulation tests'
// touch memory. execute drives both the same way, with the same order and
// limits, so the tests exercise the real glue.
type Effects interface {
	// Route makes one traffic call; done is false when it changed
	// something (or the canary Service has no ready endpoint yet).
	Route(ctx context.Context, c TrafficCall) (done bool, err error)
	// Commit writes the decided status, unless the Rollout changed since
	// it was read: then it returns an error that wraps ErrStale.
	Commit(ctx context.Context, st v1beta1.RolloutStatus) error
	// Act carries out a workload action, or RemoveFinalizer. An error
	// wrapping ErrStale means it was computed from a stale read.
	Act(ctx context.Context, a Action, b workload.Batch) error
	// StartRun creates the AnalysisRun req names, for the committed status.
	StartRun(ctx context.Context, st v1beta1.RolloutStatus, req RunRequest) error
	// TerminateRuns ends, by name, runs still measuring.
	TerminateRuns(ctx context.Context, names []string) error
	// Committed learns each committed decision and the status it
	// replaced (Events, metrics).
	Committed(before v1beta1.RolloutStatus, d Decision)
}

// ErrStale marks a write refused because it was computed from an object
// that has changed since (an optimistic-lock conflict): nothing was done,
// and deciding again on fresh reads is all it takes.
var ErrStale = errors.New("stale read")

// maxTrafficCalls bounds the traffic calls of one reconcile. A call that
// changes something ends the reconcile's calls (the grace period
// follows), so this is only a guard.
const maxTrafficCalls = 4

// execute is one reconcile after the observation: decide (making the
// traffic calls the decision waits for), commit the decided status, and
// only then act on it. A controller killed, failed over or reading a
// stale cache therefore never acts on a step that is not recorded, and a
// stale read fails the commit (optimistic lock) before anything moves.
//
// Traffic calls are made before the commit: each is idempotent and asked
// for by the committed state or the one just before it (a reconcile reads
// at worst the status its predecessor read), so repeating one never moves
// traffic past what the status allows.
//
// What the effects did reaches Decide like any observation: a failure
// becomes the hold, an Event and the message, committed in a second write
// (only then: otherwise deciding again changes nothing), and the error is
// returned for a retry with backoff.
func execute(ctx context.Context, fx Effects, o Observed) (Decision, error) {
	d := Decide(o)
	for range maxTrafficCalls {
		if d.Traffic.Op == NoTraffic || calledAlready(o.Traffic, d.Traffic) {
			break
		}
		done, err := fx.Route(ctx, d.Traffic)
		o.Traffic = append(o.Traffic, TrafficResult{Call: d.Traffic, Done: done, Err: err})
		d = Decide(o)
	}
	before := o.Rollout.Status
	if d.Action == RemoveFinalizer { // the Rollout is gone: no status to write
		if err := fx.Act(ctx, d.Action, d.Batch); err != nil {
			return d, err
		}
		fx.Committed(before, d)
		return d, nil
	}
	if err := fx.Commit(ctx, d.Status); err != nil {
		return d, err
	}
	fx.Committed(before, d)

	// The decision is recorded; act on it in the safety order: stop what
	// no longer measures, move the workload, start measuring.
	stopErr := fx.TerminateRuns(ctx, d.RunsToStop)
	committed := o.Rollout.DeepCopy()
	committed.Status = *d.Status.DeepCopy()
	o.Rollout = committed
	if d.Action != NoAction {
		err := fx.Act(ctx, d.Action, d.Batch)
		if errors.Is(err, ErrStale) {
			return d, err
		}
		o.Acted = &ActionResult{Action: d.Action, Err: err}
	}
	for _, req := range d.RunsToStart {
		if err := fx.StartRun(ctx, d.Status, req); err != nil {
			o.RunErrors = append(o.RunErrors, RunError{Request: req, Err: err})
		}
	}
	if o.Acted == nil && len(o.RunErrors) == 0 {
		return d, errors.Join(trafficError(o.Traffic), stopErr)
	}
	// What the effects did is one more observation: deciding again shows
	// a failure (or the end of one) on the Rollout. The decision is
	// otherwise the same, so this writes only when something failed or
	// recovered.
	after := Decide(o)
	if err := fx.Commit(ctx, after.Status); err != nil {
		return after, err
	}
	fx.Committed(d.Status, after)
	if a := o.Acted; a != nil && a.Err != nil {
		return after, fmt.Errorf("%s: %w", a.Action, a.Err)
	}
	if len(o.RunErrors) > 0 {
		return after, fmt.Errorf("starting analysis: %w", o.RunErrors[0].Err)
	}
	return after, errors.Join(trafficError(o.Traffic), stopErr)
}

func calledAlready(results []TrafficResult, c TrafficCall) bool {
	for _, res := range results {
		if res.Call == c {
			return true
		}
	}
	return false
}

// trafficError is the first failed traffic call of a reconcile; returning
// it retries the reconcile with backoff.
func trafficError(results []TrafficResult) error {
	for _, res := range results {
		if res.Err != nil {
			return fmt.Errorf("%s: %w", res.Call.Op, res.Err)
		}
	}
	return nil
}
