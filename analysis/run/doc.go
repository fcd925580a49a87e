// Package run is the AnalysisRun reconciler: it takes each metric's
// measurements when they are due, folds them into status and decides the
// run's verdict, with the pure decisions of analysis/measure. It also
// builds AnalysisRuns from a Rollout's analysis (Build), for the release
// engine.
//
// Status is the only memory: every reconcile reads what was measured and
// when, measures what is due, writes status once, and asks to be called
// again at the next due time. A restarted controller carries on.
//
// # For the release engine
//
// To analyse a step (or, with StepIndex 0, the whole release):
//
//	specs, err := run.Templates(ctx, reader, ns, analysis.Templates)
//	ar, err := run.Build(run.Target{Namespace: ns, Rollout: name, Owner: ownerRef,
//		Workload: ..., Service: ..., Ingress: ...,
//		StableRevision: stableHash, CanaryRevision: canaryHash,
//		StepIndex: step, Attempt: retries}, specs, analysis)
//	err = client.Create(ctx, ar) // AlreadyExists: the run was made before a crash; use it
//
// Build resolves each template arg from the Rollout's args, else the
// template's default, else fails (say so on the Rollout); it renders the
// queries and conditions with them and the built-ins, and stores every
// resolved arg in spec.args. Names are <rollout>-<canaryRevision>-<step>
// ("-bg" for background, "-r<attempt>" for retries), so a retry needs a
// new Attempt. Labels sluice.dev/rollout, sluice.dev/revision and
// sluice.dev/step select a Rollout's runs, e.g. to keep the last N.
//
// The verdict is status.phase once Completed(): Successful (go on),
// Failed, Error (Prometheus could not be queried, limit exceeded) or
// Inconclusive, for RolloutAnalysis' policies. status.message names the
// metric, the value and the condition, ready for the Rollout's MESSAGE;
// while errors are retried the run stays Running and its message says so
// ("metric "x": 2 errors in a row, retrying: Prometheus at ... could not
// be reached"). Set spec.terminate to stop a run (background analysis at
// the end of the release, any run on abort): metrics still running end
// Successful if they passed a measurement, Inconclusive otherwise.
package run
