// Package rollout is the Rollout reconciler: Decide (decide.go) is a pure
// function from what was observed — the Rollout's spec and status, the
// workload, the clock — to the next status and the one action to take;
// the Reconciler (reconciler.go) observes, calls Decide, acts, and writes
// the status once. The status is the only memory, so the controller can be
// killed at any instant and resume.
package rollout
