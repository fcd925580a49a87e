//go:build e2e

package framework

import _ "embed"

// NeverReadyLabel on a pod template makes kwok keep its pods running but
// never ready (CrashLoopBackOff), for tests of stuck batches.
const NeverReadyLabel = "e2e.sluice.dev/never-ready"

// RestartingLabel on a pod template makes kwok run its pods ready but with
// containers that restarted twice (restartCount 2), for tests of analysis
// on kube-state-metrics' restart counts.
const RestartingLabel = "e2e.sluice.dev/restarting"

// UnreadyAfterLabel on a pod template makes kwok's pods ready, then not
// ready three seconds later, still running: readiness lost after the start.
const UnreadyAfterLabel = "e2e.sluice.dev/unready-after"

//go:embed stages/never-ready.yaml
var neverReadyStage string

//go:embed stages/restarting.yaml
var restartingStage string

//go:embed stages/unready-after.yaml
var unreadyAfterStage string

// Stages are the kwok stages every e2e control plane runs with.
func Stages() []string { return []string{neverReadyStage, restartingStage, unreadyAfterStage} }
