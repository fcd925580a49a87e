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
		{name: "a lower step scales the new version down", in: scaleInput{replicas: 10, target: 1, surge: 3, unavailable: 2, newSpec: 5, newAvailable: 5, stable: rs(5, 5)},
			wantNew: 1, wantOld: []int32{9}},
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
			// Never more new pods than the batch, never above replicas+surge.
			total := p.newReplicas
			for _, n := range p.oldReplicas {
				total += n
			}
			if p.newReplicas > tc.in.target || total > tc.in.replicas+tc.in.surge {
				t.Errorf("plan exceeds its bounds: new %d (target %d), total %d (max %d)", p.newReplicas, tc.in.target, total, tc.in.replicas+tc.in.surge)
			}
		})
	}
}
