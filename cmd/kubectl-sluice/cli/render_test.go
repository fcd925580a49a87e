package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

func TestRenderStatusHeldByAnalysis(t *testing.T) {
	r := heldByAnalysis()
	got := renderStatus(snapshot{rollout: r, replicas: 5, stepRun: errorRun(analysisv1alpha1.AnalysisError)}, now)
	want := `Rollout   rollouts-demo (namespace shop)
Workload  Deployment/echoserver, 5 replicas (canary)
Phase     Progressing: step 1/3 Held
Revision  756ff5f57c (stable) -> 5ddcc7f994 (new)
Message   ` + msgHeld + `

Steps
     STEP  REPLICAS  TRAFFIC                    PAUSE     ANALYSIS    NEW PODS
  ▶  1     1         header User-Agent=Andriod  approval  error-rate  [####................] 1/1 ready
     2     50% (3)   50%                        1m0s      -           [------------........] 0/3
     3     100% (5)  100%                       -         -           [--------------------] 0/5

Traffic   header User-Agent=Andriod to the new version

Analysis
  step 1: rollouts-demo-5ddcc7f994-1 Error (1 Failed, 1 Running)
    METRIC       VERDICT  LAST VALUES          CONDITION
    error-rate   Failed   [0.19] [0.2] [0.21]  pass if result[0] < 0.05
    p99-latency  Running  [0.09]               pass if result[0] < 0.25
    error-rate: value [0.2]: successCondition "result[0] < 0.05" is false

Waiting   AnalysisError for 15s: held by analysis: analysis of step 1 (rollouts-demo-5ddcc7f994-1) is Error: metric "error-rate" Error: Prometheus at http://127.0.0.1:9 could not be reached
Next      kubectl sluice approve rollouts-demo         go on despite the analysis verdict (recorded as an override)
          kubectl sluice retry rollouts-demo           run the analysis of this step again
          kubectl sluice pause rollouts-demo           hold the release where it is
          kubectl sluice promote rollouts-demo --full  skip the remaining steps and analyses and release the new version to all (recorded as an override)
          kubectl sluice abort rollouts-demo           roll back now: traffic to stable, the new pods scaled to zero
          kubectl sluice undo rollouts-demo            put the stable template back on the workload: the release is cancelled
`
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("status view (-want +got):\n%s", diff)
	}
}

func TestRenderStatus(t *testing.T) {
	timed := timedPause("Rollout is in step(2/3), and wait duration(60 seconds) to enter the next step")
	approved := heldByAnalysis()
	approved.Status.Analysis.StepRun.Overridden = true
	approved.Status.Analysis.Overrides = []analysisv1alpha1.Override{{Action: "Approve", Step: 1, Run: "rollouts-demo-5ddcc7f994-1", Verdict: analysisv1alpha1.AnalysisError, Time: metav1.NewTime(now)}}
	bg := waitingApproval()
	bg.Spec.Strategy.Analysis = &analysisv1alpha1.RolloutAnalysis{Templates: []analysisv1alpha1.AnalysisTemplateRef{{TemplateName: "latency"}}}
	bg.Status.Analysis.BackgroundRun = &analysisv1alpha1.RunStatus{Name: "rollouts-demo-5ddcc7f994-bg", Phase: analysisv1alpha1.AnalysisRunning}
	baseline := errorRun(analysisv1alpha1.AnalysisRunning)
	baseline.Spec.StepIndex = 0
	baseline.Spec.Metrics = []analysisv1alpha1.Metric{{Name: "latency", Baseline: &analysisv1alpha1.BaselineComparison{AllowedChangePercent: ptr(int32(20))}}, {Name: "saturation", FailureCondition: "result[0] > 0.9", DryRun: true}}
	baseline.Status.MetricResults = []analysisv1alpha1.MetricResult{{Name: "latency", Phase: analysisv1alpha1.AnalysisRunning, LastError: "Prometheus at http://prom:9090 could not be reached"}}

	for _, c := range []struct {
		name string
		sn   snapshot
		want []string
		not  []string
	}{
		{"timed pause", snapshot{rollout: timed, replicas: 5}, []string{
			"  ✔  1     1 ", "[####................] 1/1\n",
			"  ▶  2     50% (3)", "[########----........] 2/3 ready",
			"Traffic   50% to the new version",
			"Waiting   TimedPause for 15s: step 2 waits 60s before going on (45s left)",
			"kubectl sluice approve rollouts-demo         go on to step 3",
		}, []string{"retry", "resume", "\nAnalysis"}},
		{"aborted", snapshot{rollout: abortedRollout(), replicas: 5}, []string{
			"Phase     Progressing: step 1/3 Aborted",
			"  ✖  1 ", "0/0 (aborted)",
			"Traffic   all to the stable version",
			"  step 1: rollouts-demo-5ddcc7f994-1 Failed\n",
			"Waiting   Aborted for 15s: aborted: analysis of step 1",
			"Next      kubectl sluice retry rollouts-demo           start the release again at step 1",
			"          kubectl sluice undo rollouts-demo ",
		}, []string{"approve", "abort rollouts-demo", "promote"}},
		{"approved past its verdict", snapshot{rollout: approved, replicas: 5}, []string{
			"rollouts-demo-5ddcc7f994-1 Error, approved past its verdict",
			"  last override: Approve at step 1, over rollouts-demo-5ddcc7f994-1 (Error)",
		}, nil},
		{"background analysis", snapshot{rollout: bg, replicas: 5, backgroundRun: baseline}, []string{
			"  step 1: rollouts-demo-5ddcc7f994-1 Successful\n",
			"  background: rollouts-demo-5ddcc7f994-bg Running (1 Failed, 1 Running)",
			"vs stable: fail on a significant increase over 20% (95% confidence)",
			"saturation  Pending  -            fail if result[0] > 0.9",
			"latency: last error: Prometheus at http://prom:9090 could not be reached",
			"Waiting   WaitingForApproval for 15s: step 1 waits for approval (pause: {})",
		}, nil},
		{"healthy, size unknown", snapshot{rollout: healthy(example1()), replicas: -1}, []string{
			"Phase     Healthy, last release completed",
			"Revision  5ddcc7f994 (stable)\n",
			"     1     1         header User-Agent=Andriod  approval  error-rate  ?\n",
		}, []string{"Next", "Waiting", "[", "Traffic"}},
		{"healthy: the plan with its batch sizes", snapshot{rollout: healthy(example1()), replicas: 5}, []string{
			"     2     50% (3)   50%                        1m0s      -           3\n",
			"     3     100% (5)  100%                       -         -           5\n",
		}, []string{"[", "✔", "▶"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := renderStatus(c.sn, now)
			for _, w := range c.want {
				if !strings.Contains(got, w) {
					t.Errorf("lacks %q", w)
				}
			}
			for _, w := range c.not {
				if strings.Contains(got, w) {
					t.Errorf("has %q", w)
				}
			}
			if t.Failed() {
				t.Logf("view:\n%s", got)
			}
		})
	}
}

func TestRenderTable(t *testing.T) {
	timed := timedPause("waiting")
	other := healthy(example1())
	other.Namespace, other.Name = "web", "frontend"
	other.Status.Analysis = &analysisv1alpha1.RolloutAnalysisStatus{StepRun: &analysisv1alpha1.RunStatus{Name: "x", Phase: analysisv1alpha1.AnalysisError, Overridden: true}}
	rows := []row{
		rowOf(snapshot{rollout: heldByAnalysis(), replicas: 5}, now),
		rowOf(snapshot{rollout: timed, replicas: 5}, now),
		rowOf(snapshot{rollout: abortedRollout(), replicas: 5}, now),
		rowOf(snapshot{rollout: other, replicas: -1}, now),
	}
	var b bytes.Buffer
	if err := renderTable(&b, rows, true, false); err != nil {
		t.Fatal(err)
	}
	want := `NAMESPACE   NAME            PHASE         STEP   STATE        WAITING         TRAFFIC                     CANARY   VERDICT            AGE
shop        rollouts-demo   Progressing   1/3    Held         AnalysisError   header User-Agent=Andriod   1/1      Error              10m
shop        rollouts-demo   Progressing   2/3    StepPaused   TimedPause      50%                         2/3      -                  10m
shop        rollouts-demo   Progressing   1/3    Aborted      Aborted         0%                          0/0      Failed             10m
web         frontend        Healthy       3/3    Completed    -               -                           -        Error (approved)   10m
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
	b.Reset()
	if err := renderTable(&b, rows[1:2], false, true); err != nil {
		t.Fatal(err)
	}
	if want := "NAME            PHASE         STEP   STATE        WAITING      TRAFFIC   CANARY   VERDICT   AGE   MESSAGE\nrollouts-demo   Progressing   2/3    StepPaused   TimedPause   50%       2/3      -         10m   waiting\n"; b.String() != want {
		t.Errorf("wide table:\n%s\nwant:\n%s", b.String(), want)
	}
}

// The traffic shown is the routing in force (status.release.traffic), as
// the controller last applied it, whatever the step's state: the plan
// says nothing about it.
func TestCurrentRoute(t *testing.T) {
	both := example1()
	both.Spec.Strategy.Canary.Steps[1].Matches = both.Spec.Strategy.Canary.Steps[0].Matches
	for _, c := range []struct {
		name string
		r    *v1beta1.Rollout
		want string
	}{
		{"nothing routed yet", at(example1(), 1, v1beta1.CanaryStepStateTrafficRouting, "InRolling", ""), "0%"},
		{"a match", routedAt(at(example1(), 1, v1beta1.CanaryStepStateMetricsAnalysis, "InRolling", ""), 1), "header User-Agent=Andriod"},
		{"routing step 2, step 1's in force", routedAt(at(example1(), 2, v1beta1.CanaryStepStateTrafficRouting, "InRolling", ""), 1), "header User-Agent=Andriod"},
		{"a weight", routedAt(at(example1(), 2, v1beta1.CanaryStepStatePaused, "InRolling", ""), 2), "50%"},
		{"a weight and a match", routedAt(at(both, 2, v1beta1.CanaryStepStatePaused, "InRolling", ""), 2), "50%, or header User-Agent=Andriod"},
		{"being cancelled, before the routing goes", routedAt(at(example1(), 2, v1beta1.CanaryStepStateUpgrade, v1beta1.ProgressingReasonCancelling, ""), 2), "50%"},
		{"finalising, all to the new pods", routedAt(at(example1(), 3, v1beta1.CanaryStepStateCompleted, v1beta1.ProgressingReasonFinalising, ""), 3), "100%"},
		{"aborted", abortedRollout(), "0%"},
		{"at rest", healthy(example1()), ""},
	} {
		if got := currentRoute(stateOf(c.r)); got != c.want {
			t.Errorf("%s: route %q, want %q", c.name, got, c.want)
		}
	}
	unrouted := routedAt(at(example1(), 2, v1beta1.CanaryStepStatePaused, "InRolling", ""), 2)
	unrouted.Spec.Strategy.Canary.TrafficRoutings = nil
	if got := currentRoute(stateOf(unrouted)); got != "" {
		t.Errorf("a plan without trafficRoutings routes %q", got)
	}
	// Finalising, the stable Service may select the new pods already.
	final := waitingFor(at(example1(), 3, v1beta1.CanaryStepStateCompleted, v1beta1.ProgressingReasonFinalising, ""), v1beta1.HoldTrafficGracePeriod, "")
	if view := renderStatus(snapshot{rollout: final, replicas: 5}, now); !strings.Contains(view, "Traffic   all through the stable Service\n") {
		t.Errorf("view:\n%s", view)
	}
	// The status view says whose route is in force when it is not the
	// current step's.
	view := renderStatus(snapshot{rollout: routedAt(at(example1(), 2, v1beta1.CanaryStepStateTrafficRouting, "InRolling", ""), 1), replicas: 5}, now)
	if !strings.Contains(view, "Traffic   header User-Agent=Andriod to the new version (step 1's route)\n") {
		t.Errorf("view:\n%s", view)
	}
}

func TestBar(t *testing.T) {
	for _, c := range []struct {
		ready, batch, replicas int32
		want                   string
	}{
		{0, 1, 5, "[----................] "},
		{1, 3, 5, "[####--------........] "},
		{3, 3, 5, "[############........] "},
		{9, 5, 5, "[####################] "},
		{1, 1, 3, "[#######.............] "},
		{0, 0, 5, "[....................] "},
		{1, -1, 5, ""},
		{1, 1, -1, ""},
	} {
		if got := bar(c.ready, c.batch, c.replicas); got != c.want {
			t.Errorf("bar(%d, %d, %d) = %q, want %q", c.ready, c.batch, c.replicas, got, c.want)
		}
	}
}

func TestProgressLine(t *testing.T) {
	timed := timedPause("Rollout is in step(2/3), and wait duration(60 seconds) to enter the next step")
	for _, c := range []struct {
		sn   snapshot
		want string
	}{
		{snapshot{rollout: timed, replicas: 5}, "Progressing  step 2/3  StepPaused  new pods 2/3 ready  traffic 50%  | Rollout is in step(2/3), and wait duration(60 seconds) to enter the next step"},
		{snapshot{rollout: abortedRollout(), replicas: 5}, "Progressing  step 1/3  Aborted  new pods 0/0 ready  traffic 0%  analysis Failed  | " + msgAborted},
		{snapshot{rollout: healthy(example1()), replicas: 5}, "Healthy  | Rollout progressing has been completed"},
	} {
		if got := progressLine(c.sn); got != c.want {
			t.Errorf("progress line\n got %q\nwant %q", got, c.want)
		}
	}
}

func TestRedraw(t *testing.T) {
	var b bytes.Buffer
	n := redraw(&b, 0, "one\ntwo\n", 0)
	if n != 2 || b.String() != "one\ntwo\n" {
		t.Fatalf("first draw: %d lines %q", n, b.String())
	}
	b.Reset()
	n = redraw(&b, n, "a long line here\nb\nc\n", 8)
	if want := "\x1b[2F\x1b[J" + "a long \nb\nc\n"; n != 3 || b.String() != want {
		t.Errorf("redraw: %d lines %q, want %q", n, b.String(), want)
	}
	b.Reset()
	redraw(&b, 0, "✔ ▶ ✖ wide", 5)
	if b.String() != "✔ ▶ \n" {
		t.Errorf("cut by runes: %q", b.String())
	}
}

func TestOutcome(t *testing.T) {
	cancelled := ended(healthy(example1()), v1beta1.OutcomeCancelled, 2, "the stable template was re-applied")
	promoted := ended(healthy(example1()), v1beta1.OutcomePromoted, 2, "promoted by a person (sluice.dev/promote)")
	// Rolled back by its analysis, then the stable template re-applied:
	// the release ended when it was rolled back.
	rolledBack := ended(healthy(example1()), v1beta1.OutcomeRolledBack, 1, whyAborted)
	byPerson := abortedRollout()
	ended(byPerson, v1beta1.OutcomeAborted, 1, "aborted by a person (sluice.dev/abort)")
	for _, c := range []struct {
		name string
		r    *v1beta1.Rollout
		code int
		why  string
	}{
		{"completed", healthy(example1()), ExitOK, ""},
		{"promoted", promoted, ExitOK, ""},
		{"cancelled", cancelled, ExitNotPromoted, "the release was cancelled: the stable template was re-applied"},
		{"rolled back, then cancelled", rolledBack, ExitNotPromoted, "the release was rolled back by its analysis at step 1: " + whyAborted},
		{"rolled back", abortedRollout(), ExitNotPromoted, "the release was rolled back by its analysis at step 1: " + whyAborted},
		{"aborted by a person", byPerson, ExitNotPromoted, "the release was aborted at step 1: aborted by a person (sluice.dev/abort)"},
		{"held", heldByAnalysis(), -1, ""},
		{"waiting for approval", waitingApproval(), -1, ""},
	} {
		if code, why := outcome(c.r); code != c.code || why != c.why {
			t.Errorf("%s: outcome %d %q, want %d %q", c.name, code, why, c.code, c.why)
		}
	}
}

func TestRenderHistory(t *testing.T) {
	r := abortedRollout()
	r.UID = "uid-1"
	r.Status.Analysis.Overrides = []analysisv1alpha1.Override{{Action: "Abort", Step: 1, Time: metav1.NewTime(now.Add(-time.Minute))}}
	mk := func(name, rev string, step int32, phase analysisv1alpha1.AnalysisPhase, created time.Duration, took time.Duration, msg string) analysisv1alpha1.AnalysisRun {
		ar := analysisv1alpha1.AnalysisRun{
			ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(t0.Add(created))},
			Spec:       analysisv1alpha1.AnalysisRunSpec{Rollout: "rollouts-demo", Revision: rev, StepIndex: step},
			Status:     analysisv1alpha1.AnalysisRunStatus{Phase: phase, Message: msg, StartedAt: ptr(metav1.NewTime(t0.Add(created)))},
		}
		if took > 0 {
			ar.Status.CompletedAt = ptr(metav1.NewTime(t0.Add(created + took)))
		}
		return ar
	}
	runs := []analysisv1alpha1.AnalysisRun{
		mk("rollouts-demo-5ddcc7f994-1", "5ddcc7f994", 1, "Failed", 5*time.Minute, 6*time.Second, "metric \"error-rate\" Failed:\n value [0.2]"),
		mk("rollouts-demo-756ff5f57c-2", "756ff5f57c", 2, "Successful", 2*time.Minute, 7*time.Second, "all passed"),
		mk("rollouts-demo-756ff5f57c-1", "756ff5f57c", 1, "Successful", time.Minute, 6*time.Second, "all passed"),
		mk("rollouts-demo-5ddcc7f994-bg", "5ddcc7f994", 0, "Running", 5*time.Minute, 0, ""),
	}
	events := []eventsv1.Event{
		{Regarding: corev1ObjectReference("Rollout", "rollouts-demo"), Type: "Warning", Reason: "Aborted", Note: "Rollout is aborted", EventTime: metav1.NewMicroTime(now.Add(-30 * time.Second))},
		{Regarding: corev1ObjectReference("Rollout", "rollouts-demo"), Type: "Normal", Reason: "ReleaseStarted", Note: "releasing revision 5ddcc7f994", EventTime: metav1.NewMicroTime(now.Add(-5 * time.Minute)),
			Series: &eventsv1.EventSeries{Count: 2, LastObservedTime: metav1.NewMicroTime(now.Add(-4 * time.Minute))}},
	}
	var b bytes.Buffer
	if err := renderHistory(&b, r, runs, events, now); err != nil {
		t.Fatal(err)
	}
	want := `Rollout rollouts-demo (namespace shop)

Revision 756ff5f57c (stable)
  RUN                         STEP  PHASE       STARTED  TOOK  MESSAGE
  rollouts-demo-756ff5f57c-1  1     Successful  9m ago   6s    all passed
  rollouts-demo-756ff5f57c-2  2     Successful  8m ago   7s    all passed

Revision 5ddcc7f994 (being released, aborted)
  RUN                          STEP        PHASE    STARTED  TOOK     MESSAGE
  rollouts-demo-5ddcc7f994-1   1           Failed   5m ago   6s       metric "error-rate" Failed: value [0.2]
  rollouts-demo-5ddcc7f994-bg  background  Running  5m ago   running  -

Overrides
  WHEN     ACTION  STEP  RUN  VERDICT
  60s ago  Abort   1     -    -

Events
  LAST SEEN  TYPE     REASON          COUNT  MESSAGE
  4m ago     Normal   ReleaseStarted  2      releasing revision 5ddcc7f994
  30s ago    Warning  Aborted         1      Rollout is aborted
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}

	b.Reset()
	if err := renderHistory(&b, healthy(example1()), nil, nil, now); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"No AnalysisRuns", "none (the API server keeps Events for an hour by default)"} {
		if !strings.Contains(b.String(), w) {
			t.Errorf("empty history lacks %q:\n%s", w, b.String())
		}
	}
}

func corev1ObjectReference(kind, name string) corev1.ObjectReference {
	return corev1.ObjectReference{Kind: kind, Name: name}
}
