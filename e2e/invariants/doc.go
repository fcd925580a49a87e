// Package invariants checks Sluice's safety promises from outside: it
// watches the Kubernetes objects of one namespace and never calls Sluice's
// code (it reads Sluice's API types, nothing else), computing every
// allowance with its own arithmetic from the Rollout's spec and the
// workload. Every e2e test runs under it (e2e/framework's Namespace starts
// one), as do the chaos suite and the benchmarks (with ReportOnly, counting
// Violations).
//
// # What it reads
//
// Pods, ReplicaSets, Deployments, StatefulSets, OpenKruise CloneSets and
// Advanced StatefulSets (a Rollout of a DaemonSet or an Advanced DaemonSet
// is not followed: its batches, one pod per node replaced by deletion,
// have no rules here yet, so it raises no alarm either), Services, EndpointSlices, Ingresses, Gateway API
// HTTPRoutes, AnalysisRuns, and of each Rollout its metadata, spec and the
// status fields a user sees: phase, currentStepIndex, currentStepState and
// nextStepIndex (which kubectl-kruise rollout undo --fast patches), from
// canaryStatus or blueGreenStatus.
//
// # Terms
//
// A release begins when a Rollout's workload gets a pod template other than
// the one it last rested at (the workload is at rest when its controller
// reports every pod updated and ready, no rollouts.kruise.io/in-progressing
// mark is on it, and the Rollout is not Progressing, Terminating or
// Disabling). It is cancelled when the template goes back, replaced by yet
// another template, and it ends when the workload is at rest again. A
// release in progress when the checker starts is not followed.
//
// The new version's pods (not being deleted, not finished): for a
// Deployment, pods of its ReplicaSets whose template equals the
// Deployment's ignoring pod-template-hash, plus in canary style the pods of
// its canary Deployments (label rollouts.kruise.io/canary-deployment) that
// run that template with the Rollout's patchPodTemplateMetadata; for a
// StatefulSet, Advanced StatefulSet or CloneSet, its pods whose
// controller-revision-hash is status.updateRevision (unknown while the
// status lags the spec).
//
// The status step s: 0 until the Rollout shows the release (Progressing;
// after a replacement, back at step 1), then currentStepIndex. The next
// step is s+1 (at most the last), or a later nextStepIndex a user set.
// Step k allows replicas(k) new pods: steps[k-1].replicas, a number or a
// percentage of the workload's replicas rounded up, capped at the
// replicas (no replicas: all); step 0 allows none. Its traffic is
// steps[k-1].traffic (0 if none). surge is the workload's maxSurge in pods:
// a Deployment's rollingUpdate.maxSurge (from the
// rollouts.kruise.io/deployment-strategy annotation while a release holds
// it in Recreate; default 25%, rounded up), a CloneSet's
// updateStrategy.maxSurge (default 0), 0 for StatefulSets.
//
// A release is stepping unless cancelled, finishing (promoted with
// sluice.dev/promote, the Rollout disabled or deleted, or the status state
// Completed) or ended. It is forward while stepping and not aborted (a new
// value of sluice.dev/abort, or an AnalysisRun verdict whose policy is
// Rollback; until a new sluice.dev/retry value) and not suspended (the step
// index went down, nextStepIndex was set below it, or the workload was
// scaled; until the step index goes up again).
//
// # The invariants
//
// Each is checked after every event, in revision order; a condition that
// starts holding is one violation, reported once until it stops holding.
//
//  1. StepAllowance: while stepping, new pods ≤ replicas(next step) + surge.
//     Only a status write lost after acting could put pods one step ahead;
//     beyond the next step nothing can.
//  2. ForwardOnly: while forward, the new pods never drop below the most
//     seen since the release (or the last suspension) began.
//  3. Availability: once every replica of a Rollout's workload has been
//     ready (and again after a scale-up), its ready pods (both versions,
//     canary Deployments' included) ≥ replicas − maxUnavailable.
//     maxUnavailable: a Deployment's (from the annotation while held;
//     default 25%, rounded down; 1 if it and maxSurge both come to 0; a
//     Deployment of its own Recreate promises nothing); a StatefulSet's or
//     Advanced StatefulSet's rollingUpdate.maxUnavailable (default 1,
//     rounded down, at least 1); a CloneSet's updateStrategy.maxUnavailable
//     (default 20%, rounded up when maxSurge is 0, as OpenKruise does).
//  4. StatusLag: while stepping, new pods > replicas(s) + surge for longer
//     than the lag bound: the status claims an earlier step than the pods
//     reached for longer than one reconcile.
//  5. TrafficReady: no request routed to the canary Service (a canary
//     Ingress of the nginx, ALB or MSE annotations with weight > 0 or a
//     header, cookie or query match whose backend it is; an HTTPRoute rule
//     giving it weight > 0) while its EndpointSlices have no ready
//     endpoint; and the stable Service, once it has served, selects a ready
//     pod (its selector against the pods) whenever it is routed requests
//     (a stable Ingress backend not shadowed by a 100% canary Ingress on
//     the same host, or an HTTPRoute backend with weight > 0).
//  6. TrafficWithinStep: while stepping, the canary weight (the canary
//     Ingress's canary-weight over canary-weight-total; an HTTPRoute rule's
//     canary weight over the sum of its weights) ≤ the larger of
//     traffic(s) and traffic(next step) (at a step without a route, which
//     takes the weight back to 0, also of the step before), and
//     > traffic(s) for no longer than the lag bound.
//     AnalysisVerdict: an AnalysisRun of the release (created during it,
//     judging the current step or the whole release, not terminated) that
//     ends Failed, Error or Inconclusive does only what the Rollout's
//     onFailed/onError/onInconclusive policy allows (defaults Rollback,
//     Pause, Pause): with Rollback, or with Pause until a person approves
//     (the status shows StepReady at that step), the release never advances
//     (step index up, or Completed); with Pause or Continue it never rolls
//     back (new pods down, or the canary weight down at the same step)
//     unless something else does (an abort, a jump back, a cancel), or a
//     person approved past it (at the last step the release then ends and
//     gives traffic back to the stable Service). A promote or retry ends
//     these constraints.
//  7. ReleaseEnds: every release completes, is cancelled, or (aborted)
//     rolls back to no new pod and no canary traffic within the release
//     bound.
//     Restoration: when a release ends at rest, the workload's spec apart
//     from template and replicas equals the write that began the release,
//     except the fields a release may change (paused, strategy,
//     minReadySeconds, progressDeadlineSeconds, updateStrategy), which
//     equal the snapshot at rest before it; its release-owned labels and
//     annotations (rollouts.kruise.io/, batchrelease.rollouts.kruise.io/,
//     sluice.dev/, except the workload-type label and rollout-id) are as at
//     rest, so no in-progressing, control-info, saved strategy or
//     stable-revision mark is left; the stable Service (spec, labels,
//     annotations), the stable Ingress and the HTTPRoute (spec with default
//     weights, annotations) are as at rest; the canary Service, canary
//     Ingress and canary Deployments that did not exist at rest are gone.
//     An absent field equals its zero value (a partition of 0 equals none).
//     Labels and annotations that a field manager declared with
//     ConcurrentWriter owns are that client's, not the release's, and are
//     not compared (the chaos suite's other client checks its own writes).
//
// # Ordering across kinds
//
// Watches of different kinds deliver independently, so a check joining
// pods with the Rollout's status could see one stream ahead of the other.
// Every event is ordered by its resourceVersion (etcd's revision, global on
// one API server) after a watermark delay, and a violation is reported only
// once an exact read of etcd at its revision shows the checker held the
// real state then (see merge.go and confirm.go).
//
// # History the watches lost
//
// A watch that breaks resumes where it stopped, unless etcd's revision it
// stopped at is no longer served (an API server restarted, a CRD's storage
// rebuilt after the CRD changed): then the informer lists again, and the
// states in between are lost, though each object's last one arrives. The
// checker runs its own informers over a ListWatch it observes (streams.go):
// a list after the first that finds an object of the kind changed, added
// or gone since the last event is a Gap. A release open across a gap, or
// opening before its end, is judged in part from then on: the invariants
// that follow its history (1, 2, 4, 6) could misjudge a step the status went
// through unseen, so only those about the present (3, 5) and its time bound
// (7a) are evaluated for it. A history violation found while a watch is
// broken, or back for less than two seconds, waits until it is settled, and
// is not judged if a gap turned out to cover its release. The count of
// releases judged in part is reported (Checker.JudgedInPart, the chaos
// report), so a run that lost much of its history shows it.
package invariants
