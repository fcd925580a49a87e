package rollout

import (
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

// decideBlueGreen decides a blue-green release as the canary plan it is,
// except that the old pods stay until the switch: the same steps, traffic
// and analysis, its progress kept in status.blueGreenStatus (where
// kubectl-kruise's approval patch for blue-green lands).
func decideBlueGreen(o Observed) Decision {
	r := o.Rollout.DeepCopy()
	bg := r.Spec.Strategy.BlueGreen
	r.Spec.Strategy.Canary = &v1beta1.CanaryStrategy{
		Steps: bg.Steps, TrafficRoutings: bg.TrafficRoutings, FailureThreshold: bg.FailureThreshold,
		TrafficRoutingRef: bg.TrafficRoutingRef, DisableGenerateCanaryService: bg.DisableGenerateCanaryService,
	}
	r.Spec.Strategy.BlueGreen = nil
	if s := r.Status.BlueGreenStatus; s != nil {
		r.Status.CanaryStatus = &v1beta1.CanaryStatus{
			CommonStatus: s.CommonStatus, CanaryRevision: s.UpdatedRevision,
			CanaryReplicas: s.UpdatedReplicas, CanaryReadyReplicas: s.UpdatedReadyReplicas,
		}
		r.Status.BlueGreenStatus = nil
	}
	o.Rollout = r
	d := decide(o, true)
	if cs := d.Status.CanaryStatus; cs != nil {
		d.Status.BlueGreenStatus = &v1beta1.BlueGreenStatus{
			CommonStatus: cs.CommonStatus, UpdatedRevision: cs.CanaryRevision,
			UpdatedReplicas: cs.CanaryReplicas, UpdatedReadyReplicas: cs.CanaryReadyReplicas,
		}
		d.Status.CanaryStatus = nil
	}
	return d
}

// finaliseBlueGreen is Kruise's blue-green success order: all traffic to
// the new pods, the stable Service selecting every pod, the workload
// resumed (its old pods go), then the routing and canary Service removed.
var finaliseBlueGreen = []v1beta1.FinalisingStepType{
	v1beta1.FinalisingStepRouteTrafficToNew, v1beta1.FinalisingStepRestoreStableService,
	v1beta1.FinalisingStepResumeWorkload, v1beta1.FinalisingStepRouteTrafficToStable,
	v1beta1.FinalisingStepRemoveCanaryService,
}

// successOrder is the finalising order of a release that completes (or is
// disabled or deleted).
func (x *decider) successOrder() []v1beta1.FinalisingStepType {
	if x.blueGreen {
		return finaliseBlueGreen
	}
	return finaliseSuccess
}

// StepsOf returns a Rollout's steps, canary or blue-green.
func StepsOf(ro *v1beta1.Rollout) []v1beta1.CanaryStep {
	switch s := ro.Spec.Strategy; {
	case s.Canary != nil:
		return s.Canary.Steps
	case s.BlueGreen != nil:
		return s.BlueGreen.Steps
	}
	return nil
}

// RoutingsOf returns a Rollout's traffic routings, canary or blue-green.
func RoutingsOf(ro *v1beta1.Rollout) []v1beta1.TrafficRoutingRef {
	switch s := ro.Spec.Strategy; {
	case s.Canary != nil:
		return s.Canary.TrafficRoutings
	case s.BlueGreen != nil:
		return s.BlueGreen.TrafficRoutings
	}
	return nil
}
