package cli

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

var (
	t0  = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	now = t0.Add(10 * time.Minute)
)

func ptr[T any](v T) *T { return &v }

// example1 is the guide's Example 1 with an analysis on its first step:
// a header match on 1 pod waiting for approval, 50% for 60s, then 100%.
func example1() *v1beta1.Rollout {
	errorRate := &analysisv1alpha1.RolloutAnalysis{Templates: []analysisv1alpha1.AnalysisTemplateRef{{TemplateName: "error-rate"}}}
	exact := gatewayv1.HeaderMatchExact
	return &v1beta1.Rollout{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "rollouts-demo", CreationTimestamp: metav1.NewTime(t0)},
		Spec: v1beta1.RolloutSpec{
			WorkloadRef: v1beta1.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "echoserver"},
			Strategy: v1beta1.RolloutStrategy{Canary: &v1beta1.CanaryStrategy{
				Steps: []v1beta1.CanaryStep{
					{
						TrafficRoutingStrategy: v1beta1.TrafficRoutingStrategy{Matches: []v1beta1.HttpRouteMatch{{Headers: []gatewayv1.HTTPHeaderMatch{{Type: &exact, Name: "User-Agent", Value: "Andriod"}}}}},
						Replicas:               ptr(intstr.FromInt32(1)),
						Analysis:               errorRate,
					},
					{
						TrafficRoutingStrategy: v1beta1.TrafficRoutingStrategy{Traffic: ptr("50%")},
						Replicas:               ptr(intstr.FromString("50%")),
						Pause:                  v1beta1.RolloutPause{Duration: ptr(int32(60))},
					},
					{
						TrafficRoutingStrategy: v1beta1.TrafficRoutingStrategy{Traffic: ptr("100%")},
						Replicas:               ptr(intstr.FromString("100%")),
					},
				},
				TrafficRoutings: []v1beta1.TrafficRoutingRef{{Service: "echoserver", Ingress: &v1beta1.IngressTrafficRouting{Name: "echoserver"}}},
			}},
		},
	}
}

// at puts r in a release at step i, state st, with reason and message.
func at(r *v1beta1.Rollout, i int32, st v1beta1.CanaryStepState, reason, message string) *v1beta1.Rollout {
	r.Status.Phase = v1beta1.RolloutPhaseProgressing
	r.Status.Message = message
	r.Status.CurrentStepIndex, r.Status.CurrentStepState = i, st
	r.Status.Conditions = []v1beta1.RolloutCondition{{Type: v1beta1.RolloutConditionProgressing, Status: corev1.ConditionTrue, Reason: reason}}
	r.Status.CanaryStatus = &v1beta1.CanaryStatus{
		CommonStatus: v1beta1.CommonStatus{
			StableRevision: "756ff5f57c", PodTemplateHash: "5ddcc7f994", CurrentStepIndex: i, CurrentStepState: st,
			Message: message, LastUpdateTime: ptr(metav1.NewTime(now.Add(-15 * time.Second))),
		},
		CanaryRevision: "5ddcc7f994", CanaryReplicas: 1, CanaryReadyReplicas: 1,
	}
	r.Status.Release = &v1beta1.ReleaseStatus{
		Started: metav1.NewTime(now.Add(-5 * time.Minute)),
		Batch:   &v1beta1.BatchStatus{Step: i, Replicas: r.Spec.Strategy.Steps()[i-1].ReplicasFor(5)},
	}
	return r
}

// waitingFor makes r's release wait for reason since 15s ago, with detail.
func waitingFor(r *v1beta1.Rollout, reason v1beta1.HoldReason, detail string) *v1beta1.Rollout {
	r.Status.Release.Hold = &v1beta1.Hold{Reason: reason, Since: metav1.NewTime(now.Add(-15 * time.Second)), Step: r.Status.CurrentStepIndex, Message: detail}
	return r
}

// until sets the end of r's timed wait.
func until(r *v1beta1.Rollout, left time.Duration) *v1beta1.Rollout {
	r.Status.Release.Hold.Until = ptr(metav1.NewTime(now.Add(left)))
	return r
}

// routedAt puts step k's route in force, as the controller records it
// once the routing call succeeded.
func routedAt(r *v1beta1.Rollout, k int32) *v1beta1.Rollout {
	s := r.Spec.Strategy.Steps()[k-1]
	t := &v1beta1.TrafficStatus{Step: k, Revision: "5ddcc7f994", Matches: s.Matches, Since: metav1.NewTime(now.Add(-time.Minute))}
	if w, ok := s.Weight(); ok {
		t.Weight = &w
	}
	r.Status.Release.Traffic = t
	return r
}

// ended records how r's last release ended.
func ended(r *v1beta1.Rollout, outcome v1beta1.ReleaseOutcome, step int32, why string) *v1beta1.Rollout {
	r.Status.LastRelease = &v1beta1.ReleaseRecord{
		Outcome: outcome, Revision: "5ddcc7f994", StableRevision: "756ff5f57c", Step: step,
		Started: ptr(metav1.NewTime(now.Add(-5 * time.Minute))), Ended: metav1.NewTime(now.Add(-time.Minute)), Message: why,
	}
	return r
}

func healthy(r *v1beta1.Rollout) *v1beta1.Rollout {
	r.Status.Phase = v1beta1.RolloutPhaseHealthy
	r.Status.Message = "Rollout progressing has been completed"
	r.Status.CurrentStepIndex, r.Status.CurrentStepState = 3, v1beta1.CanaryStepStateCompleted
	r.Status.Conditions = []v1beta1.RolloutCondition{
		{Type: v1beta1.RolloutConditionProgressing, Status: corev1.ConditionFalse, Reason: v1beta1.ProgressingReasonCompleted},
		{Type: v1beta1.RolloutConditionSucceeded, Status: corev1.ConditionTrue, Reason: v1beta1.ProgressingReasonCompleted},
	}
	r.Status.CanaryStatus = &v1beta1.CanaryStatus{CommonStatus: v1beta1.CommonStatus{
		StableRevision: "5ddcc7f994", PodTemplateHash: "5ddcc7f994", CurrentStepIndex: 3, CurrentStepState: v1beta1.CanaryStepStateCompleted,
	}, CanaryRevision: "5ddcc7f994"}
	r.Status.Release = nil
	return ended(r, v1beta1.OutcomeCompleted, 3, "")
}

const (
	// whyHeld and whyAborted are the hold's details (status.release.hold.message).
	whyHeld    = `analysis of step 1 (rollouts-demo-5ddcc7f994-1) is Error: metric "error-rate" Error: Prometheus at http://127.0.0.1:9 could not be reached`
	whyAborted = `analysis of step 1 (rollouts-demo-5ddcc7f994-1) is Failed: metric "error-rate" Failed: value [0.2]`
	msgHeld    = `Rollout is in step(1/3), paused: analysis of step 1 (rollouts-demo-5ddcc7f994-1) is Error: metric "error-rate" Error: Prometheus at http://127.0.0.1:9 could not be reached. Approve to go on, retry the analysis (sluice.dev/retry), or abort (sluice.dev/abort)`
	msgAborted = `Rollout is aborted: analysis of step 1 (rollouts-demo-5ddcc7f994-1) is Failed: metric "error-rate" Failed: value [0.2]; the workload is held at its stable revision 756ff5f57c: re-apply it to end the release, push a fix, or retry (sluice.dev/retry)`
)

func heldByAnalysis() *v1beta1.Rollout {
	r := at(example1(), 1, v1beta1.CanaryStepStateMetricsAnalysis, v1beta1.ProgressingReasonInRolling, msgHeld)
	r.Status.Analysis = &analysisv1alpha1.RolloutAnalysisStatus{StepRun: &analysisv1alpha1.RunStatus{
		Name: "rollouts-demo-5ddcc7f994-1", Phase: analysisv1alpha1.AnalysisError, Message: `metric "error-rate" Error: Prometheus at http://127.0.0.1:9 could not be reached`,
	}}
	waitingFor(r, v1beta1.HoldAnalysisError, whyHeld)
	r.Status.Release.Hold.Run, r.Status.Release.Hold.Metric = "rollouts-demo-5ddcc7f994-1", "error-rate"
	return routedAt(r, 1)
}

func abortedRollout() *v1beta1.Rollout {
	r := at(example1(), 1, v1beta1.CanaryStepStateMetricsAnalysis, reasonAborted, msgAborted)
	r.Status.CanaryStatus.CanaryReplicas, r.Status.CanaryStatus.CanaryReadyReplicas = 0, 0
	r.Status.Analysis = &analysisv1alpha1.RolloutAnalysisStatus{StepRun: &analysisv1alpha1.RunStatus{Name: "rollouts-demo-5ddcc7f994-1", Phase: analysisv1alpha1.AnalysisFailed}}
	r.Status.Release.Batch = &v1beta1.BatchStatus{Step: 1, Replicas: 0, Shrink: true}
	waitingFor(r, v1beta1.HoldAborted, whyAborted)
	return ended(r, v1beta1.OutcomeRolledBack, 1, whyAborted)
}

func waitingApproval() *v1beta1.Rollout {
	r := at(example1(), 1, v1beta1.CanaryStepStatePaused, v1beta1.ProgressingReasonInRolling,
		"Rollout is in step(1/3), and you need manually confirm to enter the next step")
	r.Status.Analysis = &analysisv1alpha1.RolloutAnalysisStatus{StepRun: &analysisv1alpha1.RunStatus{Name: "rollouts-demo-5ddcc7f994-1", Phase: analysisv1alpha1.AnalysisSuccessful}}
	waitingFor(r, v1beta1.HoldWaitingForApproval, "")
	return routedAt(r, 1)
}

// timedPause is step 2's 60s pause with 45s left, 2 of its 3 pods ready.
func timedPause(message string) *v1beta1.Rollout {
	r := at(example1(), 2, v1beta1.CanaryStepStatePaused, v1beta1.ProgressingReasonInRolling, message)
	r.Status.CanaryStatus.CanaryReplicas, r.Status.CanaryStatus.CanaryReadyReplicas = 3, 2
	return routedAt(until(waitingFor(r, v1beta1.HoldTimedPause, ""), 45*time.Second), 2)
}

// errorRun is the AnalysisRun of step 1 with measurements.
func errorRun(phase analysisv1alpha1.AnalysisPhase) *analysisv1alpha1.AnalysisRun {
	mt := func(p analysisv1alpha1.AnalysisPhase, v string) analysisv1alpha1.Measurement {
		return analysisv1alpha1.Measurement{Phase: p, Value: v}
	}
	return &analysisv1alpha1.AnalysisRun{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "rollouts-demo-5ddcc7f994-1", CreationTimestamp: metav1.NewTime(t0.Add(time.Minute))},
		Spec: analysisv1alpha1.AnalysisRunSpec{
			Rollout: "rollouts-demo", Revision: "5ddcc7f994", StepIndex: 1,
			Metrics: []analysisv1alpha1.Metric{
				{Name: "error-rate", SuccessCondition: "result[0] < 0.05"},
				{Name: "p99-latency", SuccessCondition: "result[0] < 0.25"},
			},
		},
		Status: analysisv1alpha1.AnalysisRunStatus{
			Phase: phase, Summary: "1 Failed, 1 Running",
			StartedAt: ptr(metav1.NewTime(t0.Add(time.Minute))),
			MetricResults: []analysisv1alpha1.MetricResult{
				{Name: "error-rate", Phase: analysisv1alpha1.AnalysisFailed, Message: `value [0.2]: successCondition "result[0] < 0.05" is false`,
					Measurements: []analysisv1alpha1.Measurement{mt("Successful", "[0.01]"), mt("Failed", "[0.19]"), mt("Failed", "[0.2]"), mt("Failed", "[0.21]")}},
				{Name: "p99-latency", Phase: analysisv1alpha1.AnalysisRunning, Measurements: []analysisv1alpha1.Measurement{mt("Successful", "[0.09]")}},
			},
		},
	}
}
