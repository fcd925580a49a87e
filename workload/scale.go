package workload

import appsv1 "k8s.io/api/apps/v1"

// scaleInput is what planScale needs to know.
type scaleInput struct {
	replicas    int32 // desired pods in all
	target      int32 // new-version pods this batch wants
	shrink      bool  // the batch may have fewer new pods than run now
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
	old         []*appsv1.ReplicaSet // others first, stable last
	oldReplicas []int32
}

// planScale moves one rolling-update step towards target new pods,
// replicas-target stable pods and no intermediate ones, with the
// Deployment controller's own rules (its rolling.go): the new ReplicaSet
// grows within maxSurge; old pods that are not available go first, as
// long as enough pods remain that are or may become available; available
// old pods go only while replicas-maxUnavailable stay available. The new
// ReplicaSet shrinks only when the batch says so.
//
// Worked example: 10 replicas, maxSurge 25% (3), maxUnavailable 25% (2),
// a batch of 5 from 1 new / 9 stable, all available: the new ReplicaSet
// may grow by 10+3-10 = 3 → 4; 1+9 = 10 pods are available, 8 must stay,
// so the stable one shrinks by 2 → 7. Next round, once the new pods are
// available: new 4→5 (capped by the target), stable 7→5.
func planScale(in scaleInput) scalePlan {
	p := scalePlan{newReplicas: in.newSpec, old: append([]*appsv1.ReplicaSet(nil), in.others...)}
	if in.stable != nil {
		p.old = append(p.old, in.stable)
	}
	p.oldReplicas = make([]int32, len(p.old))
	for i, rs := range p.old {
		p.oldReplicas[i] = replicasOf(rs.Spec.Replicas)
	}
	total := func() int32 {
		n := p.newReplicas
		for _, r := range p.oldReplicas {
			n += r
		}
		return n
	}
	room := func() int32 { return max(0, in.replicas+in.surge-total()) }

	if in.newSpec < in.target {
		p.newReplicas += min(in.target-in.newSpec, room())
	}
	// The new pods to keep: the batch's, or all that run when the batch
	// may not shrink them; and room for them among the old ones.
	keepNew := p.newReplicas
	if in.shrink {
		keepNew = min(p.newReplicas, in.target)
	}
	keepOld := in.replicas - max(in.target, keepNew)
	last := len(p.old) - 1
	// The stable version takes back the pods of intermediate versions and
	// of a batch that shrinks.
	if in.stable != nil && p.oldReplicas[last] < keepOld {
		p.oldReplicas[last] += min(keepOld-p.oldReplicas[last], room())
	}

	// What may go, in order: intermediate versions entirely, the new
	// pods beyond a shrinking batch, the stable pods beyond keepOld.
	type set struct {
		replicas  *int32
		available int32
		keep      int32
	}
	sets := make([]set, 0, len(p.old)+1)
	for i := range p.old {
		keep := int32(0)
		if in.stable != nil && i == last {
			keep = max(0, keepOld)
			sets = append(sets, set{&p.newReplicas, in.newAvailable, keepNew})
		}
		sets = append(sets, set{&p.oldReplicas[i], p.old[i].Status.AvailableReplicas, keep})
	}
	if in.stable == nil {
		sets = append(sets, set{&p.newReplicas, in.newAvailable, keepNew})
	}
	avail := func(s set) int32 { return min(s.available, *s.replicas) }
	minAvailable := in.replicas - in.unavailable

	// Pods that are not available go first, while the pods left can still
	// make minAvailable (the new pods not yet available count against it).
	budget := max(0, total()-minAvailable-(p.newReplicas-min(in.newAvailable, p.newReplicas)))
	for _, s := range sets {
		cut := min(budget, *s.replicas-avail(s), max(0, *s.replicas-s.keep))
		*s.replicas -= cut
		budget -= cut
	}
	// Then available ones, while enough pods stay available.
	budget = -minAvailable
	for _, s := range sets {
		budget += avail(s)
	}
	for _, s := range sets {
		cut := min(max(0, budget), max(0, *s.replicas-s.keep))
		*s.replicas -= cut
		budget -= cut
	}
	return p
}
