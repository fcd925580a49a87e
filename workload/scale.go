package workload

import appsv1 "k8s.io/api/apps/v1"

// scaleInput is what planScale needs to know.
type scaleInput struct {
	replicas    int32 // desired pods in all
	target      int32 // new-version pods this batch wants
	surge       int32 // pods allowed above replicas
	unavailable int32 // pods allowed below replicas
	newSpec     int32 // the new ReplicaSet's spec.replicas
	// newAvailable counts available new pods.
	newAvailable int32
	old          []*appsv1.ReplicaSet // in scale-down order
}

// scalePlan is the next spec.replicas of each ReplicaSet.
type scalePlan struct {
	newReplicas int32
	oldOrder    []*appsv1.ReplicaSet
	oldReplicas []int32
}

// planScale moves one rolling-update step towards target new pods and
// replicas-target old ones. Worked example: 10 replicas, maxSurge 25% (3),
// maxUnavailable 25% (2), a batch of 5 from 1 new / 9 old, all available:
// the new ReplicaSet may grow to 10+3-10 = +3 → 4; the old ones may shrink
// by available(10) - minAvailable(8) = 2 → 7. The next round (once the new
// pods are available): new 4→5 (capped by the target), old 7→5.
func planScale(in scaleInput) scalePlan {
	p := scalePlan{newReplicas: in.newSpec, oldOrder: in.old, oldReplicas: make([]int32, len(in.old))}
	var oldSpec, oldAvailable int32
	for i, rs := range in.old {
		p.oldReplicas[i] = replicasOf(rs.Spec.Replicas)
		oldSpec += p.oldReplicas[i]
		oldAvailable += min(rs.Status.AvailableReplicas, p.oldReplicas[i])
	}

	switch {
	case in.newSpec < in.target:
		room := in.replicas + in.surge - (in.newSpec + oldSpec)
		p.newReplicas = in.newSpec + max(0, min(in.target-in.newSpec, room))
	case in.newSpec > in.target:
		// A plan that went back (a lowered step): never more than asked.
		p.newReplicas = in.target
	}

	excess := oldSpec - (in.replicas - in.target)
	if excess <= 0 {
		return p
	}
	// Old pods that are not available can go at once; available ones only
	// while enough pods stay available.
	minAvailable := in.replicas - in.unavailable
	removable := max(0, min(in.newAvailable, p.newReplicas)+oldAvailable-minAvailable) + (oldSpec - oldAvailable)
	remove := min(excess, removable)
	for i := range p.oldReplicas {
		if remove == 0 {
			break
		}
		cut := min(remove, p.oldReplicas[i])
		p.oldReplicas[i] -= cut
		remove -= cut
	}
	return p
}
