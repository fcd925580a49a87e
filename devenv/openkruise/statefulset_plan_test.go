package openkruise

import (
	"fmt"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func healthyPods(n int, updated bool) []stsPod {
	out := make([]stsPod, n)
	for i := range out {
		out[i] = stsPod{exists: true, healthy: true, ready: true, available: true, updated: updated}
	}
	return out
}

func actions(as []stsAction) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}

func TestStatefulSetMaxUnavailable(t *testing.T) {
	for _, tc := range []struct {
		v    *intstr.IntOrString
		want int
	}{
		{nil, 1}, {ptr.To(intstr.FromInt32(3)), 3}, {ptr.To(intstr.FromString("25%")), 2},
		{ptr.To(intstr.FromString("5%")), 1}, {ptr.To(intstr.FromInt32(0)), 1},
	} {
		if got, err := statefulSetMaxUnavailable(tc.v, 10); err != nil || got != tc.want {
			t.Errorf("maxUnavailable %v of 10: %d %v, want %d", tc.v, got, err, tc.want)
		}
	}
}

func TestPlanStatefulSet(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   stsInput
		want []string
	}{{
		name: "empty set, ordered: pod 0 first",
		in:   stsInput{pods: make([]stsPod, 3), monotonic: true, rollingUpdate: true},
		want: []string{"create 0 (update revision)"},
	}, {
		name: "ordered: the next pod waits for the one below to be available",
		in:   stsInput{pods: []stsPod{{exists: true}, {}, {}}, monotonic: true, rollingUpdate: true},
	}, {
		name: "parallel: all missing pods at once",
		in:   stsInput{pods: make([]stsPod, 3), rollingUpdate: true},
		want: []string{"create 0 (update revision)", "create 1 (update revision)", "create 2 (update revision)"},
	}, {
		name: "a pod below the partition is created at the current revision",
		in:   stsInput{pods: append(healthyPods(2, false), stsPod{}), monotonic: true, rollingUpdate: true, partition: 5},
		want: []string{"create 2 (current revision)"},
	}, {
		name: "partition 9 of 10 updates ordinal 9",
		in:   stsInput{pods: healthyPods(10, false), monotonic: true, rollingUpdate: true, partition: 9, maxUnavailable: 1},
		want: []string{"delete 9 (to update)"},
	}, {
		name: "partition 5, 9 done: 8 next",
		in: stsInput{pods: append(healthyPods(9, false), healthyPods(1, true)...), monotonic: true, rollingUpdate: true,
			partition: 5, maxUnavailable: 1},
		want: []string{"delete 8 (to update)"},
	}, {
		name: "partition 5, ordinals 5–9 done: nothing below",
		in: stsInput{pods: append(healthyPods(5, false), healthyPods(5, true)...), monotonic: true, rollingUpdate: true,
			partition: 5, maxUnavailable: 1},
	}, {
		name: "partition raised to 8 after 5–9 were updated: nothing rolls back",
		in: stsInput{pods: append(healthyPods(5, false), healthyPods(5, true)...), monotonic: true, rollingUpdate: true,
			partition: 8, maxUnavailable: 1},
	}, {
		name: "maxUnavailable 3 takes 3 down at once",
		in:   stsInput{pods: healthyPods(10, false), monotonic: true, rollingUpdate: true, maxUnavailable: 3},
		want: []string{"delete 9 (to update)", "delete 8 (to update)", "delete 7 (to update)"},
	}, {
		name: "ordered: a pod being recreated holds the update",
		in:   stsInput{pods: append(healthyPods(9, false), stsPod{}), monotonic: true, rollingUpdate: true, maxUnavailable: 3},
		want: []string{"create 9 (update revision)"},
	}, {
		name: "parallel, maxUnavailable 2: one down, one more may go",
		in:   stsInput{pods: append(healthyPods(9, false), stsPod{exists: true, updated: true}), rollingUpdate: true, maxUnavailable: 2},
		want: []string{"delete 8 (to update)"},
	}, {
		name: "OnDelete: pods are not touched",
		in:   stsInput{pods: healthyPods(3, false), monotonic: true, maxUnavailable: 1},
	}, {
		name: "paused",
		in:   stsInput{pods: healthyPods(3, false), monotonic: true, rollingUpdate: true, paused: true, maxUnavailable: 1},
	}, {
		name: "scale down: the highest ordinal goes first, one at a time",
		in:   stsInput{pods: healthyPods(2, true), condemned: healthyPods(2, true), monotonic: true, rollingUpdate: true, maxUnavailable: 1},
		want: []string{"delete 3"},
	}, {
		name: "ordered: a terminating pod is waited for",
		in:   stsInput{pods: append(healthyPods(1, false), stsPod{exists: true, terminating: true}), monotonic: true, rollingUpdate: true, maxUnavailable: 1},
	}, {
		name: "a finished pod is deleted to be recreated",
		in:   stsInput{pods: append(healthyPods(1, true), stsPod{exists: true, finished: true}), monotonic: true, rollingUpdate: true, maxUnavailable: 1},
		want: []string{"delete 1"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			if got := actions(planStatefulSet(tc.in)); !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// A whole rolling update, pass by pass: partition 5 of 10 updates exactly
// ordinals 5–9, top down, one at a time.
func TestStatefulSetRollingUpdateSimulated(t *testing.T) {
	pods := healthyPods(10, false)
	var order []int
	for pass := 0; pass < 100; pass++ {
		plan := planStatefulSet(stsInput{pods: pods, monotonic: true, rollingUpdate: true, partition: 5, maxUnavailable: 1})
		if len(plan) == 0 {
			break
		}
		if len(plan) > 1 {
			t.Fatalf("pass %d: %v, one action at a time", pass, actions(plan))
		}
		switch a := plan[0]; {
		case a.create:
			pods[a.ordinal] = stsPod{exists: true, healthy: true, ready: true, available: true, updated: a.atUpdate}
		default:
			pods[a.ordinal] = stsPod{}
			order = append(order, a.ordinal)
		}
	}
	if fmt.Sprint(order) != "[9 8 7 6 5]" {
		t.Errorf("updated ordinals %v, want [9 8 7 6 5]", order)
	}
	for i, p := range pods {
		if p.updated != (i >= 5) {
			t.Errorf("ordinal %d updated=%v", i, p.updated)
		}
	}
}
