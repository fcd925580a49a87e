// Package rollout is the Rollout reconciler. Its files say what they do:
//
//   - decide*.go and messages.go decide, and are pure: Decide is a
//     function from what was observed (the Rollout's spec and status, the
//     workload, its AnalysisRuns, the results of this reconcile's traffic
//     calls and workload action, the clock) to the next status, the one
//     workload action to take, the traffic call the release waits for and
//     the runs to start or stop. The status it writes carries the release's
//     state as data (status.release: what it waits for, the batch the
//     workload is held to, the traffic in force; status.lastRelease), and
//     messages.go builds the MESSAGE column from it.
//   - act_*.go act: the Reconciler observes the cluster, and execute
//     (act_execute.go) carries out a decision through Effects — the
//     cluster's in act_cluster.go and act_runs.go, the simulation tests'
//     in memory.
//
// The status is the only memory, so the controller can be killed at any
// instant and resume. A decision is committed (the status written with
// optimistic locking) before the workload is touched, and every workload
// write carries the version it was computed from: a controller killed,
// failed over or reading a stale cache never acts on a step the status
// does not record, and never removes new pods in a forward release.
package rollout
