//go:build e2e

package framework

import _ "embed"

// NeverReadyLabel on a pod template makes kwok keep its pods running but
// never ready (CrashLoopBackOff), for tests of stuck batches.
const NeverReadyLabel = "e2e.sluice.dev/never-ready"

//go:embed stages/never-ready.yaml
var neverReadyStage string

// Stages are the kwok stages every e2e control plane runs with.
func Stages() []string { return []string{neverReadyStage} }
