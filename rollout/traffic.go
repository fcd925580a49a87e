package rollout

import (
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/traffic/route"
)

// Sluice's condition for a traffic routing call that failed; it goes once
// the call succeeds.
const (
	ConditionTrafficRouting    v1beta1.RolloutConditionType = "TrafficRouting"
	ReasonTrafficRoutingFailed                              = "TrafficRoutingFailed"
)

// TrafficOp is one call into the traffic routing (package traffic).
type TrafficOp int

// The traffic calls, named after the traffic package's methods.
const (
	NoTraffic TrafficOp = iota
	// TrafficInitialize checks that the routing objects exist (Provider.Initialize).
	TrafficInitialize
	// TrafficPinStable makes the stable Service select only the stable
	// revision (Services.PinStable), so new pods never get stable traffic.
	TrafficPinStable
	// TrafficRestoreStable gives the stable Service its own selector back.
	TrafficRestoreStable
	// TrafficRoute points the canary Service at the new pods and routes to
	// it as a step says (Services.EnsureCanary, then Provider.EnsureRoutes).
	TrafficRoute
	// TrafficToStable sends all traffic to stable and removes the canary
	// routing objects (Provider.Finalise).
	TrafficToStable
	// TrafficRemoveCanary deletes the canary Service.
	TrafficRemoveCanary
	// TrafficToNew sends all traffic to the new pods (blue-green switch).
	TrafficToNew
)

func (op TrafficOp) String() string {
	return [...]string{"None", "InitializeTrafficRouting", "PatchStableService", "RestoreStableService",
		"RouteTraffic", "RouteTrafficToStable", "RemoveCanaryService", "RouteTrafficToNew"}[op]
}

// TrafficCall is a traffic call a decision waits for. It is comparable, so
// that the next decision finds its result.
type TrafficCall struct {
	Op TrafficOp
	// Step is the 1-based step whose route TrafficRoute applies.
	Step int32
	// Revision is the stable revision (TrafficPinStable) or the revision of
	// the new pods (TrafficRoute, TrafficToNew).
	Revision string
}

// TrafficResult is the outcome of a TrafficCall made during this reconcile.
// Done is false when the call changed something: the routing needs the
// grace period before the next change.
type TrafficResult struct {
	Call TrafficCall
	Done bool
	Err  error
}

// routed reports whether the Rollout routes traffic at all.
func (x *decider) routed() bool {
	return len(RoutingsOf(x.Rollout)) > 0
}

// grace is the wait after each routing change (trafficRoutings[].gracePeriodSeconds).
func (x *decider) grace() time.Duration {
	return time.Duration(x.Rollout.Spec.Strategy.Canary.TrafficRoutings[0].GracePeriodSeconds) * time.Second
}

// hasRoute reports whether a step sends any traffic to the new version.
func hasRoute(s v1beta1.CanaryStep) bool {
	return s.Traffic != nil || len(s.Matches) > 0
}

// trafficDone asks for call unless this reconcile has made it already,
// and reports whether it is done. A call that changed something stamps
// lastUpdateTime and waits the grace period; with gated, a done call also
// waits until the grace period since lastUpdateTime has passed (as Kruise
// does after entering StepTrafficRouting and each finalising task).
func (x *decider) trafficDone(call TrafficCall, gated bool) bool {
	var res *TrafficResult
	for i := range x.Traffic {
		if x.Traffic[i].Call == call {
			res = &x.Traffic[i]
		}
	}
	if res == nil {
		x.d.Traffic = call
		return false
	}
	if res.Err != nil {
		x.trafficFailed(call, res.Err)
		return false
	}
	removeCondition(&x.d.Status, ConditionTrafficRouting)
	if !res.Done {
		x.stamp()
		x.requeue(x.grace())
		return false
	}
	if gated {
		if left := x.cs.LastUpdateTime.Add(x.grace()).Sub(x.Now); left > 0 {
			x.requeue(left)
			return false
		}
	}
	return true
}

// trafficFailed shows a failed call on the Rollout. The reconciler returns
// the error, so the call is retried with backoff.
func (x *decider) trafficFailed(call TrafficCall, err error) {
	msg := fmt.Sprintf("traffic routing failed at %s: %v", call.Op, err)
	if errors.Is(err, route.ErrUnsupported) {
		msg += "; retrying will not help: change the step"
	}
	if c := condition(&x.d.Status, ConditionTrafficRouting); c == nil || c.Message != msg {
		x.event(corev1.EventTypeWarning, ReasonTrafficRoutingFailed, msg)
	}
	setCondition(&x.d.Status, ConditionTrafficRouting, corev1.ConditionFalse, ReasonTrafficRoutingFailed, msg, x.Now)
	x.setMessage(msg)
}

func (x *decider) requeue(after time.Duration) {
	if x.d.RequeueAfter == 0 || after < x.d.RequeueAfter {
		x.d.RequeueAfter = after
	}
}

// beforeUpgrade readies the routing for step s's pods. Steps without a
// route take traffic back to stable first (Kruise's
// FinalisingTrafficRouting). The stable Service is pinned to the stable
// revision before any new pod exists, except at a step where every pod is
// new in partition style: then stable must select them (ingress-nginx
// sends nothing to a canary whose stable Service has no endpoints, its
// issue #9635).
func (x *decider) beforeUpgrade(s v1beta1.CanaryStep) bool {
	if !x.routed() {
		return true
	}
	if !hasRoute(s) && !x.trafficDone(TrafficCall{Op: TrafficToStable}, false) {
		return false
	}
	if x.allNewInPlace(s) {
		return x.trafficDone(TrafficCall{Op: TrafficRestoreStable}, false)
	}
	return x.trafficDone(TrafficCall{Op: TrafficPinStable, Revision: x.cs.StableRevision}, false)
}

// allNewInPlace reports whether step s replaces every pod in place
// (partition style at 100%).
func (x *decider) allNewInPlace(s v1beta1.CanaryStep) bool {
	return !x.blueGreen && !x.Rollout.Spec.Strategy.Canary.EnableExtraWorkloadForCanary && x.target(s) >= x.Workload.Replicas
}

// describeRoute says in words what a step routes to the new version.
func describeRoute(s v1beta1.CanaryStep) string {
	var parts []string
	if s.Traffic != nil {
		parts = append(parts, *s.Traffic+" of traffic")
	}
	for _, m := range s.Matches {
		parts = append(parts, "requests with "+m.String())
	}
	return strings.Join(parts, ", ") + " to the new version"
}

// routeStep sends step i's traffic to the new pods.
func (x *decider) routeStep(i int32) bool {
	return x.trafficDone(TrafficCall{Op: TrafficRoute, Step: i, Revision: x.cs.PodTemplateHash}, true)
}

// The finalising orders of Kruise Rollout (reference §3.2): after a
// success (or a disable or delete) the stable Service takes all pods
// before the routing is restored; after a rollback traffic returns to
// stable before the new pods go.
var (
	finaliseSuccess = []v1beta1.FinalisingStepType{
		v1beta1.FinalisingStepRestoreStableService, v1beta1.FinalisingStepRouteTrafficToStable,
		v1beta1.FinalisingStepRemoveCanaryService, v1beta1.FinalisingStepResumeWorkload,
	}
	finaliseRollback = []v1beta1.FinalisingStepType{
		v1beta1.FinalisingStepRouteTrafficToStable, v1beta1.FinalisingStepResumeWorkload,
		v1beta1.FinalisingStepRestoreStableService, v1beta1.FinalisingStepRemoveCanaryService,
	}
)

// givingBack reports whether there is anything to give back: a frozen
// workload, or a finalising order under way.
func (x *decider) givingBack() bool {
	return (x.Workload != nil && x.Workload.Frozen) || (x.cs != nil && x.cs.FinalisingStep != "")
}

// giveBack runs a finalising order one task at a time, keeping its place
// in canaryStatus.finalisingStep; it reports whether every task is done.
// released says whether ResumeWorkload waits for the workload to finish
// rolling, or only for it to be unfrozen.
func (x *decider) giveBack(order []v1beta1.FinalisingStepType, released bool) bool {
	if x.cs == nil {
		x.cs = &v1beta1.CanaryStatus{}
		x.d.Status.CanaryStatus = x.cs
	}
	i := 0
	for i < len(order) && order[i] != x.cs.FinalisingStep {
		i++
	}
	if i == len(order) { // not started (or a task of another order): start over
		i = 0
		x.cs.FinalisingStep = order[0]
	}
	for ; i < len(order); i++ {
		if x.cs.FinalisingStep != order[i] {
			x.cs.FinalisingStep = order[i]
			x.stamp()
		}
		if !x.finaliseTask(order[i], released) {
			return false
		}
	}
	x.cs.FinalisingStep = ""
	return true
}

func (x *decider) finaliseTask(t v1beta1.FinalisingStepType, released bool) bool {
	if t == v1beta1.FinalisingStepResumeWorkload {
		info := x.Workload
		if info == nil || (!info.Frozen && (info.Released || !released)) {
			return true
		}
		x.d.Action = Finalise
		return false
	}
	if !x.routed() {
		return true
	}
	if t == v1beta1.FinalisingStepRouteTrafficToNew {
		return x.trafficDone(TrafficCall{Op: TrafficToNew, Revision: x.cs.PodTemplateHash}, true)
	}
	op := map[v1beta1.FinalisingStepType]TrafficOp{
		v1beta1.FinalisingStepRestoreStableService: TrafficRestoreStable,
		v1beta1.FinalisingStepRouteTrafficToStable: TrafficToStable,
		v1beta1.FinalisingStepRemoveCanaryService:  TrafficRemoveCanary,
	}[t]
	return x.trafficDone(TrafficCall{Op: op}, true)
}
