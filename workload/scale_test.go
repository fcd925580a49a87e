package workload

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
)

func rs(spec, available int32) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{Spec: appsv1.ReplicaSetSpec{Replicas: &spec}, Status: appsv1.ReplicaSetStatus{AvailableReplicas: available}}
}

func TestPlanScale(t *testing.T) {
	cases := []struct {
		name    string
		in      scaleInput
		wantNew int32
		wantOld []int32 // others..., stable
	}{
		{name: "first batch of 1 of 10 (25%/25%)", in: scaleInput{replicas: 10, target: 1, surge: 3, unavailable: 2, stable: rs(10, 10)},
			wantNew: 1, wantOld: []int32{9}},
		{name: "batch of 5: new grows within surge, stable shrinks within unavailability", in: scaleInput{replicas: 10, target: 5, surge: 3, unavailable: 2, newSpec: 1, newAvailable: 1, stable: rs(9, 9)},
			wantNew: 4, wantOld: []int32{7}},
		{name: "batch of 5, second round", in: scaleInput{replicas: 10, target: 5, surge: 3, unavailable: 2, newSpec: 4, newAvailable: 4, stable: rs(7, 7)},
			wantNew: 5, wantOld: []int32{5}},
		{name: "new pods not yet available hold the old ones", in: scaleInput{replicas: 10, target: 5, surge: 3, unavailable: 2, newSpec: 4, newAvailable: 1, stable: rs(7, 7)},
			wantNew: 5, wantOld: []int32{7}},
		{name: "no surge: one pod at a time", in: scaleInput{replicas: 4, target: 2, surge: 0, unavailable: 1, newSpec: 0, stable: rs(4, 4)},
			wantNew: 0, wantOld: []int32{3}},
		{name: "a restart removes intermediate pods first (no room for stable yet)", in: scaleInput{replicas: 4, target: 1, surge: 1, unavailable: 1, newSpec: 1, newAvailable: 1, stable: rs(2, 2), others: []*appsv1.ReplicaSet{rs(2, 2)}},
			wantNew: 1, wantOld: []int32{0, 2}},
		{name: "then stable takes the pods back", in: scaleInput{replicas: 4, target: 1, surge: 1, unavailable: 1, newSpec: 1, newAvailable: 1, stable: rs(2, 2), others: []*appsv1.ReplicaSet{rs(0, 0)}},
			wantNew: 1, wantOld: []int32{0, 3}},
		// A jump back from 5 new pods to 1: the stable ReplicaSet grows
		// within maxSurge (5→8) and the new one shrinks within
		// maxUnavailable (10 available, 8 must stay: 5→3).
		{name: "a batch that may shrink scales the new version down", in: scaleInput{replicas: 10, target: 1, shrink: true, surge: 3, unavailable: 2, newSpec: 5, newAvailable: 5, stable: rs(5, 5)},
			wantNew: 3, wantOld: []int32{8}},
		{name: "then to the batch once the stable pods are available", in: scaleInput{replicas: 10, target: 1, shrink: true, surge: 3, unavailable: 2, newSpec: 3, newAvailable: 3, stable: rs(8, 8)},
			wantNew: 1, wantOld: []int32{9}},
		{name: "a forward batch never scales the new version down (a replayed earlier step)", in: scaleInput{replicas: 10, target: 1, surge: 3, unavailable: 2, newSpec: 5, newAvailable: 5, stable: rs(5, 5)},
			wantNew: 5, wantOld: []int32{5}},
		// A new version pushed mid-release (v3 over v2): the stable
		// ReplicaSet is growing back (2 of its 7 pods not yet available)
		// while v2's 5 pods go. Only available pods count towards the
		// 8 that must stay: v2 may lose 10-8 = 2, not 4.
		{name: "an unavailable stable pod does not make an available intermediate one removable", in: scaleInput{replicas: 10, target: 1, surge: 3, unavailable: 2, newSpec: 1, stable: rs(7, 5), others: []*appsv1.ReplicaSet{rs(5, 5)}},
			wantNew: 1, wantOld: []int32{3, 7}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := planScale(tc.in)
			if p.newReplicas != tc.wantNew {
				t.Errorf("new = %d, want %d", p.newReplicas, tc.wantNew)
			}
			if len(p.oldReplicas) != len(tc.wantOld) {
				t.Fatalf("old = %v, want %v", p.oldReplicas, tc.wantOld)
			}
			for i := range tc.wantOld {
				if p.oldReplicas[i] != tc.wantOld[i] {
					t.Errorf("old = %v, want %v", p.oldReplicas, tc.wantOld)
					break
				}
			}
			// Never more new pods than the batch (or than ran), never
			// above replicas+surge, never fewer available than allowed.
			avail := min(tc.in.newAvailable, p.newReplicas)
			for i, rs := range p.old {
				avail += min(rs.Status.AvailableReplicas, p.oldReplicas[i])
			}
			before := tc.in.newAvailable
			for _, rs := range p.old {
				before += rs.Status.AvailableReplicas
			}
			if avail < min(before, tc.in.replicas-tc.in.unavailable) {
				t.Errorf("%d pods stay available, fewer than %d", avail, min(before, tc.in.replicas-tc.in.unavailable))
			}
			total := p.newReplicas
			for _, n := range p.oldReplicas {
				total += n
			}
			if (p.newReplicas > tc.in.target && p.newReplicas > tc.in.newSpec) || total > tc.in.replicas+tc.in.surge {
				t.Errorf("plan exceeds its bounds: new %d (target %d), total %d (max %d)", p.newReplicas, tc.in.target, total, tc.in.replicas+tc.in.surge)
			}
		})
	}
}
