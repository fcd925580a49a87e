package openkruise

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/intstr"
)

// The CloneSet controller's arithmetic, as pure functions. It reproduces
// pkg/controller/cloneset/sync/cloneset_sync_utils.go
// calculateDiffsWithExpectation ("the most important algorithm in
// cloneset-controller"), with OpenKruise v1.9's default feature gates
// (CloneSetPartitionRollback and PreparingUpdateAsUpdate off) and without
// lifecycle hooks (no PreparingDelete pods).

// cloneSetNumbers are a CloneSet's spec numbers, resolved against replicas.
type cloneSetNumbers struct {
	replicas, partition, maxSurge, maxUnavailable, scaleMaxUnavailable int
}

// resolveCloneSetNumbers resolves partition, maxSurge and maxUnavailable
// the way OpenKruise does:
//   - partition: a number, or a percentage of replicas rounded up, kept
//     below replicas when it is a percentage under 100% (so at least one
//     pod updates), clamped to [0, replicas] (pkg/util/tools.go
//     CalculatePartitionReplicas). 10 replicas: "25%" → 3; "99%" → 9.
//   - maxSurge: rounded up; 0 while the update is paused.
//   - maxUnavailable: default 20%, rounded up when maxSurge is 0, down
//     otherwise (10 replicas, 20% → 2).
//   - scaleStrategy.maxUnavailable: default unlimited.
func resolveCloneSetNumbers(spec *cloneSetSpec) (cloneSetNumbers, error) {
	n := cloneSetNumbers{replicas: 1, scaleMaxUnavailable: math.MaxInt32}
	if spec.Replicas != nil {
		n.replicas = int(*spec.Replicas)
	}
	us := spec.UpdateStrategy
	var err error
	if us.Partition != nil {
		if n.partition, err = partitionReplicas(*us.Partition, n.replicas); err != nil {
			return n, fmt.Errorf("spec.updateStrategy.partition: %w", err)
		}
	}
	if us.MaxSurge != nil && !us.Paused {
		if n.maxSurge, err = intstr.GetScaledValueFromIntOrPercent(us.MaxSurge, n.replicas, true); err != nil {
			return n, fmt.Errorf("spec.updateStrategy.maxSurge: %w", err)
		}
	}
	maxUnavailable := intstr.FromString("20%")
	if us.MaxUnavailable != nil {
		maxUnavailable = *us.MaxUnavailable
	}
	if n.maxUnavailable, err = intstr.GetScaledValueFromIntOrPercent(&maxUnavailable, n.replicas, n.maxSurge == 0); err != nil {
		return n, fmt.Errorf("spec.updateStrategy.maxUnavailable: %w", err)
	}
	if m := spec.ScaleStrategy.MaxUnavailable; m != nil {
		if n.scaleMaxUnavailable, err = intstr.GetScaledValueFromIntOrPercent(m, n.replicas, true); err != nil {
			return n, fmt.Errorf("spec.scaleStrategy.maxUnavailable: %w", err)
		}
	}
	return n, nil
}

// partitionReplicas is CalculatePartitionReplicas; OpenKruise parses the
// percentage as a float ("33.3%" is allowed) and rounds it up.
func partitionReplicas(p intstr.IntOrString, replicas int) (int, error) {
	v := p.IntValue()
	if p.Type == intstr.String {
		s, ok := strings.CutSuffix(p.StrVal, "%")
		if !ok {
			return 0, fmt.Errorf("%q is neither a number nor a percentage", p.StrVal)
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0, fmt.Errorf("%q: %w", p.StrVal, err)
		}
		v = int(math.Ceil(f * float64(replicas) / 100))
		if replicas > 1 && v == replicas && p.StrVal != "100%" {
			v = replicas - 1
		}
	}
	return max(min(v, replicas), 0), nil
}

// csPod is what the arithmetic needs to know of one active pod.
type csPod struct {
	updated         bool // carries the update revision
	ready           bool // lifecycle normal, running and ready (IsPodAvailable with minReadySeconds 0)
	available       bool // ready for minReadySeconds
	specifiedDelete bool
}

// cloneSetDiffs is expectationDiffs: how many pods to create or delete, of
// which revision, and how many to move to the update revision.
type cloneSetDiffs struct {
	scaleUpNum, scaleUpNumOldRevision     int
	scaleDownNum, scaleDownNumOldRevision int
	scaleUpLimit, deleteReadyLimit        int
	useSurge, useSurgeOldRevision         int
	// updateNum > 0: that many more pods must move to the update
	// revision. It is never negative here: going back to the current
	// revision needs the CloneSetPartitionRollback gate, off by default.
	updateNum, updateMaxUnavailable int
}

// diffCloneSet computes the diffs. Worked numbers: 10 replicas on the old
// revision, partition 7, maxUnavailable 2 → updateNum 3 (10 - 7 old pods
// too many), updateMaxUnavailable 2; once 3 pods are new, updateNum 0.
// Raising the partition to 9 then gives updateOldDiff 7 - 9 = -2, clamped
// to 0: the 3 new pods stay new.
func diffCloneSet(n cloneSetNumbers, pods []csPod) cloneSetDiffs {
	var newCount, oldCount, unavailableNew, unavailableOld, toDeleteNew, toDeleteOld int
	for _, p := range pods {
		if p.updated {
			newCount++
		} else {
			oldCount++
		}
		switch {
		case p.specifiedDelete && p.updated:
			toDeleteNew++
		case p.specifiedDelete:
			toDeleteOld++
		case !p.available && p.updated:
			unavailableNew++
		case !p.available:
			unavailableOld++
		}
	}
	// Without the rollback gate pods only ever move to the update revision.
	updateOldDiff := max(oldCount-n.partition, 0)
	updateNewDiff := min(newCount-(n.replicas-n.partition), 0)
	totalUnavailable := unavailableNew + unavailableOld

	var d cloneSetDiffs
	if n.maxSurge > 0 {
		// Surge first covers pods specified for deletion beyond
		// maxUnavailable, then the update.
		var scaleSurge, scaleOldSurge int
		if toDelete := toDeleteNew + toDeleteOld; toDelete > 0 {
			scaleSurge = min(max(totalUnavailable+toDelete-n.maxUnavailable, 0), toDelete)
			if scaleSurge > toDeleteNew {
				scaleOldSurge = scaleSurge - toDeleteNew
			}
		}
		// Pods moving forward surge with new pods only: the surge for the
		// update is the smaller of the two diffs, none of it old.
		updateSurge := min(updateOldDiff, -updateNewDiff)
		if scaleSurge >= updateSurge {
			d.useSurge = min(n.maxSurge, scaleSurge)
			d.useSurgeOldRevision = min(d.useSurge, scaleOldSurge)
		} else {
			d.useSurge = min(n.maxSurge, updateSurge)
		}
	}

	expectedTotal, expectedOld := n.replicas+d.useSurge, n.partition+d.useSurgeOldRevision
	if num := expectedTotal - len(pods); num > 0 {
		d.scaleUpNum = num
		d.scaleUpNumOldRevision = max(expectedOld-oldCount, 0)
		d.scaleUpLimit = min(num, max(n.scaleMaxUnavailable-totalUnavailable, 0))
	}
	if num := len(pods) - toDeleteOld - toDeleteNew - expectedTotal; num > 0 {
		d.scaleDownNum = num
		d.scaleDownNumOldRevision = max(oldCount-toDeleteOld-expectedOld, 0)
	}
	if toDeleteNew > 0 || toDeleteOld > 0 || d.scaleDownNum > 0 {
		d.deleteReadyLimit = max(n.maxUnavailable+(len(pods)-n.replicas)-totalUnavailable, 0)
	}
	d.updateNum = min(updateOldDiff, -updateNewDiff)
	if d.updateNum != 0 {
		d.updateMaxUnavailable = n.maxUnavailable + len(pods) - n.replicas
	}
	return d
}

// limitUpdates is limitUpdateIndexes: of the candidates (old pods, in
// update order), how many may start updating now. At most updateNum; the
// unavailable pods of the update revision plus those started must stay
// below updateMaxUnavailable, and so must all unavailable pods (updating an
// already unavailable pod costs nothing). Worked numbers: updateNum 3,
// updateMaxUnavailable 2, nothing unavailable → 2 start; once they are
// recreated but not yet ready (2 unavailable new pods) → 0 start.
func limitUpdates(d cloneSetDiffs, pods []csPod, candidates []int) []int {
	if d.updateNum < len(candidates) {
		candidates = candidates[:max(d.updateNum, 0)]
	}
	var unavailable, unavailableNew, started int
	for _, p := range pods {
		if !p.available {
			unavailable++
			if p.updated {
				unavailableNew++
			}
		}
	}
	for _, i := range candidates {
		if unavailableNew+started >= d.updateMaxUnavailable {
			break
		}
		if pods[i].available {
			if unavailable >= d.updateMaxUnavailable {
				break
			}
			unavailable++
		}
		started++
	}
	return candidates[:started]
}

// csScalePlan is what one Scale pass does.
type csScalePlan struct {
	// create pods, the first createAtCurrent of them at the current revision.
	create, createAtCurrent int
	// delete these pods (indexes).
	delete []int
}

// planCloneSetScale is sync/cloneset_scale.go Scale, for pods given in
// ActivePods order (the order OpenKruise picks pods to delete in): create
// missing pods, the current revision's first up to the number the
// partition keeps old; else delete the pods specified for deletion; else
// delete surplus pods, old revision first. Pods that are not ready always
// go; ready ones only within deleteReadyLimit.
func planCloneSetScale(n cloneSetNumbers, pods []csPod) csScalePlan {
	d := diffCloneSet(n, pods)
	if d.scaleUpNum > 0 {
		return csScalePlan{create: d.scaleUpLimit, createAtCurrent: min(d.scaleUpNumOldRevision, d.scaleUpLimit)}
	}
	limit := d.deleteReadyLimit
	within := func(idx []int) []int {
		var out []int
		for _, i := range idx {
			if pods[i].ready {
				if limit <= 0 {
					continue
				}
				limit--
			}
			out = append(out, i)
		}
		return out
	}
	var specified []int
	for i, p := range pods {
		if p.specifiedDelete {
			specified = append(specified, i)
		}
	}
	if len(specified) > 0 {
		if del := within(specified); len(del) > 0 {
			return csScalePlan{delete: del}
		}
		return csScalePlan{} // surplus waits until the specified pods are gone
	}
	if d.scaleDownNum == 0 {
		return csScalePlan{}
	}
	var old, updated []int
	for i, p := range pods {
		if p.updated {
			updated = append(updated, i)
		} else {
			old = append(old, i)
		}
	}
	fromOld := min(d.scaleDownNumOldRevision, d.scaleDownNum, len(old))
	victims := append(old[:fromOld:fromOld], updated[:min(d.scaleDownNum-fromOld, len(updated))]...)
	return csScalePlan{delete: within(victims)}
}

// planCloneSetUpdate is the choice of sync/cloneset_update.go Update: the
// old pods (in ActivePods order) to mark for ReCreate now.
func planCloneSetUpdate(n cloneSetNumbers, pods []csPod) []int {
	d := diffCloneSet(n, pods)
	if d.updateNum <= 0 {
		return nil
	}
	var candidates []int
	for i, p := range pods {
		if !p.updated {
			candidates = append(candidates, i)
		}
	}
	return limitUpdates(d, pods, candidates)
}
