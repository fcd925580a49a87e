package rollout

import (
	"context"
	"fmt"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/traffic"
	"github.com/sluicehq/sluice/traffic/route"
	"github.com/sluicehq/sluice/workload"
)

// maxTrafficCalls bounds the traffic calls of one reconcile. A call that
// changes something ends the reconcile's calls (the grace period
// follows), so this is only a guard.
const maxTrafficCalls = 4

// decideWithTraffic decides, makes the traffic call the decision waits
// for, and decides again with the result, until no new call is asked for.
// It returns the last decision and the calls' results.
func (r *Reconciler) decideWithTraffic(ctx context.Context, o Observed) (Decision, []TrafficResult) {
	d := Decide(o)
	for range maxTrafficCalls {
		if d.Traffic.Op == NoTraffic || made(o.Traffic, d.Traffic) {
			break
		}
		done, err := r.callTraffic(ctx, o.Rollout, o.Workload, d.Traffic)
		o.Traffic = append(o.Traffic, TrafficResult{Call: d.Traffic, Done: done, Err: err})
		d = Decide(o)
	}
	return d, o.Traffic
}

func made(results []TrafficResult, c TrafficCall) bool {
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

// callTraffic makes one traffic call for a Rollout.
func (r *Reconciler) callTraffic(ctx context.Context, ro *v1beta1.Rollout, info *workload.Info, c TrafficCall) (bool, error) {
	o, ok := traffic.ForRollout(ro, revisionLabel(ro, info), r.Scripts)
	if !ok {
		return true, nil
	}
	svc := traffic.NewServices(r.Client, o)
	p, err := traffic.NewProvider(r.Client, o)
	if err != nil {
		return false, err
	}
	switch c.Op {
	case TrafficInitialize:
		return true, p.Initialize(ctx)
	case TrafficPinStable:
		return svc.PinStable(ctx, c.Revision)
	case TrafficRestoreStable:
		return svc.RestoreStable(ctx)
	case TrafficToNew:
		if done, err := svc.EnsureCanary(ctx, c.Revision); !done || err != nil {
			return done, err
		}
		return p.EnsureRoutes(ctx, route.Route{Weight: route.Weight(100)})
	case TrafficRoute:
		if done, err := svc.EnsureCanary(ctx, c.Revision); !done || err != nil {
			return done, err
		}
		steps := StepsOf(ro)
		if c.Step < 1 || int(c.Step) > len(steps) {
			return false, fmt.Errorf("step %d does not exist", c.Step)
		}
		rt, err := route.FromStep(steps[c.Step-1].TrafficRoutingStrategy)
		if err != nil {
			return false, fmt.Errorf("spec.strategy.canary.steps[%d]: %w", c.Step-1, err)
		}
		return p.EnsureRoutes(ctx, rt)
	case TrafficToStable:
		return p.Finalise(ctx)
	case TrafficRemoveCanary:
		return svc.RemoveCanary(ctx)
	}
	return false, fmt.Errorf("unknown traffic call %d", c.Op)
}

// revisionLabel is the pod label that tells revisions apart: the
// workload's, or (when it is gone) the one of its kind.
func revisionLabel(ro *v1beta1.Rollout, info *workload.Info) string {
	if info != nil && info.RevisionLabel != "" {
		return info.RevisionLabel
	}
	if ro.Spec.WorkloadRef.Kind == "StatefulSet" {
		return traffic.ControllerRevisionHashLabel
	}
	return traffic.PodTemplateHashLabel
}
