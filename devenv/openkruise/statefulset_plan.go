package openkruise

import (
	"fmt"

	"k8s.io/apimachinery/pkg/util/intstr"
)

// The Advanced StatefulSet controller's decisions for one pass, as a pure
// function. It reproduces pkg/controller/statefulset/stateful_set_control.go
// updateStatefulSet (processReplica, processCondemned) and
// rollingUpdateStatefulsetPods, with sortPodsToUpdate of
// stateful_update_utils.go, for ordered updates without reserved ordinals,
// lifecycle hooks or in-place updates.

// stsPod is what the decisions need to know of the pod at one ordinal.
type stsPod struct {
	exists      bool // a pod is there; else the ordinal is empty
	finished    bool // Succeeded or Failed
	terminating bool
	healthy     bool // lifecycle normal, running and ready, not terminating (isHealthy)
	ready       bool // running and ready
	available   bool // running and available for minReadySeconds
	updated     bool // carries the update revision
}

// stsInput is a pass's view of the set.
type stsInput struct {
	pods      []stsPod // by ordinal, spec.replicas of them
	condemned []stsPod // ordinals ≥ spec.replicas, by ordinal (index + len(pods))
	// monotonic is podManagementPolicy OrderedReady (the default): one
	// pod created or deleted at a time, each waiting for the ones below.
	monotonic bool
	// rollingUpdate is updateStrategy.type RollingUpdate (else OnDelete).
	rollingUpdate, paused bool
	partition             int
	maxUnavailable        int
	// scaleMaxUnavailable is scaleStrategy.maxUnavailable, or nil.
	scaleMaxUnavailable *int
}

type stsAction struct {
	ordinal int
	create  bool // else delete
	// atUpdate: the pod is created at the update revision (else current).
	atUpdate bool
	// forUpdate: a delete that replaces an old pod by an updated one.
	forUpdate bool
}

func (a stsAction) String() string {
	switch {
	case a.create && a.atUpdate:
		return fmt.Sprintf("create %d (update revision)", a.ordinal)
	case a.create:
		return fmt.Sprintf("create %d (current revision)", a.ordinal)
	case a.forUpdate:
		return fmt.Sprintf("delete %d (to update)", a.ordinal)
	}
	return fmt.Sprintf("delete %d", a.ordinal)
}

// currentRevisionNeeded is isCurrentRevisionNeeded for ordered updates:
// under RollingUpdate a pod created below the partition gets the current
// revision; under OnDelete every new pod gets the update revision.
func currentRevisionNeeded(in stsInput, ordinal int) bool {
	return in.rollingUpdate && ordinal < in.partition
}

// statefulSetMaxUnavailable resolves rollingUpdate.maxUnavailable: default
// 1, a percentage rounded down, never below 1 (10 replicas: "25%" → 2,
// "5%" → 1).
func statefulSetMaxUnavailable(v *intstr.IntOrString, replicas int) (int, error) {
	m := intstr.FromInt32(1)
	if v != nil {
		m = *v
	}
	n, err := intstr.GetScaledValueFromIntOrPercent(&m, replicas, false)
	return max(n, 1), err
}

// planStatefulSet returns what one pass does, in order:
//  1. ordinals 0..replicas-1 upwards: delete a finished pod, create a
//     missing one; in monotonic mode stop at the first action, at a
//     terminating pod, or at a pod not yet available;
//  2. condemned ordinals downwards: delete them, in monotonic mode one at
//     a time and only once the ones below are ready;
//  3. the rolling update, unless OnDelete or paused: ordinals from the top
//     down to the partition whose pod is not at the update revision are
//     deleted (to be recreated at it by step 1 of a later pass) while
//     fewer than maxUnavailable pods are unavailable; it stops at the
//     first available pod it may not take down.
//
// Worked numbers: 10 pods at the current revision, partition 5,
// maxUnavailable 1 → "delete 9 (to update)"; next passes recreate 9 at the
// update revision, wait until it is available, then delete 8, and so on
// down to 5. Ordinals 0–4 are never touched: raising the partition later
// leaves pods already updated above it as they are.
func planStatefulSet(in stsInput) []stsAction {
	var out []stsAction
	scaleBudget := in.scaleMaxUnavailable
	if scaleBudget != nil {
		b := *scaleBudget
		scaleBudget = &b
	}
	// decreaseAndCheck is decreaseAndCheckMaxUnavailable: spend one of
	// scaleStrategy.maxUnavailable; true when none is left.
	decreaseAndCheck := func() bool {
		if scaleBudget == nil {
			return false
		}
		*scaleBudget--
		return *scaleBudget <= 0
	}
	firstUnhealthy := -1
	for ord, p := range append(append([]stsPod{}, in.pods...), in.condemned...) {
		if !p.exists || !p.healthy {
			firstUnhealthy = ord
			break
		}
	}

replicas:
	for ord, p := range in.pods {
		switch {
		case p.exists && p.finished:
			if decreaseAndCheck() {
				break replicas
			}
			if !p.terminating {
				out = append(out, stsAction{ordinal: ord})
			}
			if in.monotonic {
				return out
			}
			continue
		case !p.exists:
			out = append(out, stsAction{ordinal: ord, create: true, atUpdate: !currentRevisionNeeded(in, ord)})
			if in.monotonic {
				return out
			}
			if decreaseAndCheck() {
				break replicas
			}
			continue
		case p.terminating && in.monotonic:
			return out
		case p.terminating && decreaseAndCheck():
			break replicas
		}
		if (in.monotonic || in.scaleMaxUnavailable != nil) && !p.available {
			if in.monotonic {
				return out
			}
			if decreaseAndCheck() {
				break replicas
			}
		}
	}

	for i := len(in.condemned) - 1; i >= 0; i-- {
		p, ord := in.condemned[i], len(in.pods)+i
		if !p.exists {
			continue
		}
		if p.terminating {
			if in.monotonic {
				return out
			}
			continue
		}
		if in.monotonic && ord != firstUnhealthy && (!p.ready || !p.available) {
			return out
		}
		out = append(out, stsAction{ordinal: ord})
		if in.monotonic {
			return out
		}
	}

	if !in.rollingUpdate || in.paused {
		return out
	}
	unavailable := map[int]bool{}
	for ord, p := range in.pods {
		if !p.exists || !p.healthy || !p.available {
			unavailable[ord] = true
		}
	}
	for _, a := range out { // pods this pass creates or deletes
		if a.ordinal < len(in.pods) {
			unavailable[a.ordinal] = true
		}
	}
	for ord := len(in.pods) - 1; ord >= max(in.partition, 0); ord-- {
		p := in.pods[ord]
		if !p.exists || p.updated {
			continue // missing pods are created at the update revision above the partition
		}
		if len(unavailable) >= in.maxUnavailable && !unavailable[ord] {
			return out
		}
		if !p.terminating {
			out = append(out, stsAction{ordinal: ord, forUpdate: true})
		}
		unavailable[ord] = true
	}
	return out
}
