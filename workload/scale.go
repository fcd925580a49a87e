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
	// stable is the ReplicaSet of the stable revision (nil if gone);
	// others are ReplicaSets of intermediate revisions, e.g. v2 when v3
	// replaced it mid-release.
	stable *appsv1.ReplicaSet
	others []*appsv1.ReplicaSet
}

// scalePlan is the next spec.replicas of each ReplicaSet.
type scalePlan struct {
	newReplicas int32
	old         []*appsv1.ReplicaSet // stable last
	oldReplicas []int32
}

// planScale moves one rolling-update step towards target new pods,
// replicas-target stable pods and no intermediate ones. Worked example:
// 10 replicas, maxSurge 25% (3), maxUnavailable 25% (2), a batch of 5 from
// 1 new / 9 stable, all available: the new ReplicaSet may grow by
// 10+3-10 = 3 → 4; the stable one may shrink by available(10) -
// minAvailable(8) = 2 → 7. Next round, once the new pods are available:
// new 4→5 (capped by the target), stable 7→5.
func planScale(in scaleInput) scalePlan {
	p := scalePlan{newReplicas: in.newSpec, old: append([]*appsv1.ReplicaSet(nil), in.others...)}
	if in.stable != nil {
		p.old = append(p.old, in.stable)
	}
	p.oldReplicas = make([]int32, len(p.old))
	var oldSpec, oldAvailable int32
	for i, rs := range p.old {
		p.oldReplicas[i] = replicasOf(rs.Spec.Replicas)
		oldSpec += p.oldReplicas[i]
		oldAvailable += min(rs.Status.AvailableReplicas, p.oldReplicas[i])
	}
	room := func() int32 {
		total := p.newReplicas
		for _, n := range p.oldReplicas {
			total += n
		}
		return in.replicas + in.surge - total
	}

	switch {
	case in.newSpec < in.target:
		p.newReplicas = in.newSpec + max(0, min(in.target-in.newSpec, room()))
	case in.newSpec > in.target:
		// The plan went back (a lower step, or a restart): never more
		// new pods than asked.
		p.newReplicas = in.target
	}

	// The stable version takes back the pods of intermediate versions.
	if in.stable != nil {
		last := len(p.old) - 1
		if want := in.replicas - in.target; p.oldReplicas[last] < want {
			p.oldReplicas[last] += max(0, min(want-p.oldReplicas[last], room()))
		}
		oldSpec = 0
		for _, n := range p.oldReplicas {
			oldSpec += n
		}
	}

	excess := oldSpec - (in.replicas - in.target)
	if in.stable != nil && len(in.others) > 0 {
		// Intermediate pods must go even when the count is right.
		for i := range in.others {
			excess = max(excess, p.oldReplicas[i])
		}
	}
	if excess <= 0 {
		return p
	}
	// Old pods that are not available can go at once; available ones only
	// while enough pods stay available.
	minAvailable := in.replicas - in.unavailable
	removable := max(0, min(in.newAvailable, p.newReplicas)+oldAvailable-minAvailable) + max(0, oldSpec-oldAvailable)
	remove := min(excess, removable)
	for i := range p.oldReplicas {
		if remove == 0 {
			break
		}
		keep := int32(0)
		if in.stable != nil && i == len(p.old)-1 {
			keep = in.replicas - in.target
		}
		cut := min(remove, max(0, p.oldReplicas[i]-keep))
		p.oldReplicas[i] -= cut
		remove -= cut
	}
	return p
}
