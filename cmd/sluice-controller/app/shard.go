package app

import (
	"fmt"
	"hash/fnv"

	"k8s.io/apimachinery/pkg/labels"
)

// ShardKeyLabel is the label that puts a Rollout in a shard, the
// ecosystem's convention (Flux's sharding.fluxcd.io/key): a manager started
// with --watch-label-selector=sharding.fluxcd.io/key=shard1 releases the
// Rollouts labelled shard1, one with !sharding.fluxcd.io/key those without
// the label.
const ShardKeyLabel = "sharding.fluxcd.io/key"

// defaultLeaseName is the leader-election Lease of an unsharded manager.
const defaultLeaseName = "sluice-controller.sluice.dev"

// shardSelector parses --watch-label-selector: nil when it is empty (every
// Rollout is this manager's).
func (o *options) shardSelector() (labels.Selector, error) {
	if o.watchLabelSelector == "" {
		return nil, nil
	}
	sel, err := labels.Parse(o.watchLabelSelector)
	if err != nil {
		return nil, fmt.Errorf("--watch-label-selector %q: %w", o.watchLabelSelector, err)
	}
	if sel.Empty() {
		return nil, fmt.Errorf("--watch-label-selector %q selects everything: leave it out instead", o.watchLabelSelector)
	}
	return sel, nil
}

// leaseName is --leader-election-id, or the Lease of this manager's
// shard: each shard elects its own leader, so two shards never wait on
// each other's Lease. The name derived from the selector is stable (the
// same selector, the same Lease across restarts and replicas):
// sluice-controller-<fnv32a of the canonical selector>.sluice.dev.
func (o *options) leaseName() string {
	if o.leaderElectionID != "" {
		return o.leaderElectionID
	}
	sel, err := o.shardSelector()
	if err != nil || sel == nil {
		return defaultLeaseName
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(sel.String()))
	return fmt.Sprintf("sluice-controller-%08x.sluice.dev", h.Sum32())
}
