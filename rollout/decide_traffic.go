package rollout

import (
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"

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
	// TrafficCanaryService points the canary Service at the new pods and
	// is done once it has a ready endpoint (Services.EnsureCanary).
	TrafficCanaryService
	// TrafficRoute routes to the canary Service as a step says
	// (Provider.EnsureRoutes).
	TrafficRoute
	// TrafficToStable sends all traffic to stable and removes the canary
	// routing objects (Provider.Finalise).
	TrafficToStable
	// TrafficRemoveCanary deletes the canary Service.
	TrafficRemoveCanary
	// TrafficToNew sends all traffic to the new pods (blue-green switch).
	TrafficToNew
	// TrafficJoinShared puts the Rollout's finalizer
	// (progressing.rollouts.kruise.io/<rollout>) on the TrafficRouting it
	// names, whose controller then applies its strategy; done once it is
	// there, and only while the TrafficRouting is not being restored.
	TrafficJoinShared
	// TrafficLeaveShared removes that finalizer: the TrafficRouting's
	// routing is restored once no Rollout holds it any more.
	TrafficLeaveShared
)

func (op TrafficOp) String() string {
	return [...]string{"None", "InitializeTrafficRouting", "PatchStableService", "RestoreStableService",
		"EnsureCanaryService", "RouteTraffic", "RouteTrafficToStable", "RemoveCanaryService", "RouteTrafficToNew",
		"JoinTrafficRouting", "LeaveTrafficRouting"}[op]
}

// TrafficCall is a traffic call a decision waits for. It is comparable, so
// that the next decision finds its result.
type TrafficCall struct {
	Op TrafficOp
	// Step is the 1-based step whose route TrafficRoute applies.
	Step int32
	// Revision is the stable revision (TrafficPinStable) or the revision of
	// the new pods (TrafficCanaryService, TrafficRoute, TrafficToNew).
	Revision string
}

// TrafficResult is the outcome of a TrafficCall made during this reconcile.
// Done is false when the call changed something (or the canary Service
// has no ready endpoint yet): the routing waits before the next change.
type TrafficResult struct {
	Call TrafficCall
	Done bool
	Err  error
}

// routed reports whether the Rollout has a routing of its own, which its
// steps drive.
func (x *decider) routed() bool { return x.Rollout.Spec.Strategy.RoutesSteps() }

// shared reports whether the Rollout joins a TrafficRouting while it
// releases (trafficRoutingRef).
func (x *decider) shared() bool { return x.Rollout.Spec.Strategy.SharesRouting() }

// defaultGrace is Kruise's defaultGracePeriodSeconds: the wait of a
// Rollout without a routing of its own (only a TrafficRouting) before it
// asks again.
const defaultGrace = 3 * time.Second

// grace is the wait after each routing change (trafficRoutings[].gracePeriodSeconds).
func (x *decider) grace() time.Duration {
	if !x.routed() {
		return defaultGrace
	}
	return time.Duration(x.Rollout.Spec.Strategy.Routings()[0].GracePeriodSeconds) * time.Second
}

// joinShared holds the TrafficRouting the Rollout names for the release
// (Kruise does it while Initializing), so that its routing is changed
// before the first new pod comes up; it reports whether it is held.
func (x *decider) joinShared() bool {
	if !x.shared() || x.trafficDone(TrafficCall{Op: TrafficJoinShared}, false) {
		return true
	}
	if h := x.hold; h != nil && h.Reason == v1beta1.HoldTrafficGracePeriod && h.Message == "" {
		// The TrafficRouting lets nobody join while it restores the
		// routing of a release that ended: say what the release waits for.
		h.Message = "joining TrafficRouting " + x.Rollout.Spec.Strategy.TrafficRoutingName() + " (once it is not restoring the routing of a release that ended)"
	}
	return false
}

// leaveShared lets the TrafficRouting go (Kruise does it first thing in
// doFinalising); its controller restores the routing once every Rollout
// holding it has let go.
func (x *decider) leaveShared() bool {
	return !x.shared() || x.trafficDone(TrafficCall{Op: TrafficLeaveShared}, false)
}

// trafficRecheck is how soon a traffic call not done yet is made again
// when the grace period is shorter.
const trafficRecheck = time.Second

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
		x.wait(v1beta1.HoldTrafficGracePeriod, "")
		return false
	}
	if res.Err != nil {
		x.trafficFailed(call, res.Err)
		return false
	}
	removeCondition(&x.d.Status, ConditionTrafficRouting)
	x.routingInForce(call)
	if !res.Done {
		x.stamp()
		// gracePeriodSeconds: 0 still comes back to check the call: no
		// watch wakes the Rollout when a routing object settles.
		x.requeue(max(x.grace(), trafficRecheck))
		x.waitUntil(v1beta1.HoldTrafficGracePeriod, x.Now.Add(x.grace()))
		return false
	}
	if gated {
		end := x.cs.LastUpdateTime.Add(x.grace())
		if left := end.Sub(x.Now); left > 0 {
			x.requeue(left)
			x.waitUntil(v1beta1.HoldTrafficGracePeriod, end)
			return false
		}
	}
	return true
}

// routingInForce records the routing a successful call left in force.
func (x *decider) routingInForce(call TrafficCall) {
	var in *v1beta1.TrafficStatus
	switch call.Op {
	case TrafficRoute:
		s := x.steps()[call.Step-1]
		in = &v1beta1.TrafficStatus{Step: call.Step, Revision: call.Revision, Matches: s.Matches}
		if w, ok := s.Weight(); ok {
			in.Weight = &w
		}
	case TrafficToNew:
		all := int32(100)
		in = &v1beta1.TrafficStatus{Revision: call.Revision, Weight: &all}
	case TrafficToStable:
	default:
		return // the routing to the new version is unchanged
	}
	r := x.release()
	if in != nil && r.Traffic != nil {
		in.Since = r.Traffic.Since
		if equality.Semantic.DeepEqual(in, r.Traffic) {
			return
		}
	}
	if in != nil {
		in.Since = x.now()
	}
	r.Traffic = in
}

// trafficFailed shows a failed call on the Rollout. The executor returns
// the error, so the call is retried with backoff.
func (x *decider) trafficFailed(call TrafficCall, err error) {
	msg := fmt.Sprintf("traffic routing failed at %s: %v", call.Op, err)
	if errors.Is(err, route.ErrUnsupported) {
		msg += "; retrying will not help: change the step"
	}
	if c := condition(&x.d.Status, ConditionTrafficRouting); c == nil || c.Message != msg {
		x.event(corev1.EventTypeWarning, ReasonTrafficRoutingFailed, msg)
	}
	x.setCondition(ConditionTrafficRouting, corev1.ConditionFalse, ReasonTrafficRoutingFailed, msg)
	x.wait(v1beta1.HoldTrafficError, msg)
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
	if !s.HasRoute() && !x.trafficDone(TrafficCall{Op: TrafficToStable}, false) {
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
	return !x.blueGreen && !x.Rollout.Spec.Strategy.ExtraCanaryWorkload() && x.target(s) >= x.Workload.Replicas
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

// routeStep sends step i's traffic to the new pods: the canary Service
// first (it must have a ready endpoint), then the routes, and only while
// the step's pods are ready now (a pod may have turned unready since the
// batch was done: traffic waits for it).
func (x *decider) routeStep(i int32) bool {
	if !x.readyFor(x.target(x.steps()[i-1])) {
		x.wait(v1beta1.HoldWaitingForPods, "")
		return false
	}
	rev := x.cs.PodTemplateHash
	return x.trafficDone(TrafficCall{Op: TrafficCanaryService, Revision: rev}, false) &&
		x.trafficDone(TrafficCall{Op: TrafficRoute, Step: i, Revision: rev}, true)
}

// readyFor reports whether at least target new pods run the released
// revision and at most failureThreshold of them are unready.
func (x *decider) readyFor(target int32) bool {
	info := x.Workload
	// Whatever the threshold, a batch needs one ready new pod (Kruise too).
	return info.Settled && info.UpdateRevision == x.cs.CanaryRevision && info.Updated >= target &&
		target-info.UpdatedReady <= x.failureThreshold(target) && (target == 0 || info.UpdatedReady > 0)
}
