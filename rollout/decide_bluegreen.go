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
