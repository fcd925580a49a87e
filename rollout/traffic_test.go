package rollout

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluicehq/sluice/analysis/run"
	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/workload"
)

// example1 is the guide's Example 1: header User-Agent=Andriod on 1 pod
// with approval, then 50% and 50% of the pods, then 100%.
func example1() *v1beta1.Rollout {
	one, half, all := intstr.FromInt32(1), intstr.FromString("50%"), intstr.FromString("100%")
	sixty := int32(60)
	w50, w100 := "50%", "100%"
	r := example4()
	r.Spec.Strategy.Canary.Steps = []v1beta1.CanaryStep{
		{Replicas: &one, TrafficRoutingStrategy: v1beta1.TrafficRoutingStrategy{Matches: []v1beta1.HttpRouteMatch{{
			Headers: []gatewayv1.HTTPHeaderMatch{{Name: "User-Agent", Value: "Andriod"}},
		}}}},
		{Replicas: &half, TrafficRoutingStrategy: v1beta1.TrafficRoutingStrategy{Traffic: &w50}, Pause: v1beta1.RolloutPause{Duration: &sixty}},
		{Replicas: &all, TrafficRoutingStrategy: v1beta1.TrafficRoutingStrategy{Traffic: &w100}, Pause: v1beta1.RolloutPause{Duration: &sixty}},
	}
	r.Spec.Strategy.Canary.TrafficRoutings = []v1beta1.TrafficRoutingRef{{
		Service: "echoserver", GracePeriodSeconds: 3, Ingress: &v1beta1.IngressTrafficRouting{Name: "echoserver"},
	}}
	return r
}

// releaseSim runs reconciles through the executor the Reconciler uses
// (execute), against a workload and a routing in memory that do at once
// what they are asked. It records every change to the routing and the
// workload, and checks the safety rules on the way.
type releaseSim struct {
	t    *testing.T
	r    *v1beta1.Rollout
	info *workload.Info
	now  time.Time

	pinned, canaryService bool
	// joined: the Rollout holds its TrafficRouting; sharedBusy: the
	// TrafficRouting restores its routing and lets nobody join.
	joined, sharedBusy bool
	routedStep         int32 // the step whose route is in place; 0: all to stable, -1: all to new
	changes            []string

	// verdict is the phase a new AnalysisRun of step (0: background) ends
	// in at once; nil leaves runs Running.
	verdict   func(step int32) analysisv1alpha1.AnalysisPhase
	runs      []analysisv1alpha1.AnalysisRun
	startErr  error
	actErr    error
	commitErr error
	acts      int             // workload actions carried out
	results   []TrafficResult // of this reconcile's traffic calls
	made      []Made
	events    []Event
}

var _ Effects = (*releaseSim)(nil)

func newReleaseSim(t *testing.T, r *v1beta1.Rollout) *releaseSim {
	r.Status.Phase = v1beta1.RolloutPhaseHealthy
	return &releaseSim{t: t, r: r, info: frozen(0, 0), now: t0}
}

func (s *releaseSim) routed() bool { return s.r.Spec.Strategy.RoutesSteps() }

// Route is the fake routing: done when nothing had to change.
func (s *releaseSim) Route(ctx context.Context, c TrafficCall) (bool, error) {
	done, err := s.route(c)
	s.results = append(s.results, TrafficResult{Call: c, Done: done, Err: err})
	return done, err
}

func (s *releaseSim) route(c TrafficCall) (bool, error) {
	change := func(what string) (bool, error) { s.changes = append(s.changes, what); return false, nil }
	switch c.Op {
	case TrafficPinStable:
		if !s.pinned {
			s.pinned = true
			return change(c.Op.String())
		}
	case TrafficRestoreStable:
		if s.pinned {
			s.pinned = false
			return change(c.Op.String())
		}
	case TrafficCanaryService:
		if p := s.r.Status.Progress(); c.Revision != s.info.PodRevision && (p == nil || c.Revision != p.PodTemplateHash) {
			s.t.Errorf("canary Service for revision %q, the new pods are %q", c.Revision, s.info.PodRevision)
		}
		if !s.canaryService {
			s.canaryService = true
			return change("CreateCanaryService")
		}
	case TrafficRoute:
		target := s.r.Spec.Strategy.Steps()[c.Step-1]
		if want := target.ReplicasFor(s.info.Replicas); s.info.UpdatedReady < want {
			s.t.Errorf("step %d routed with %d of %d new pods ready", c.Step, s.info.UpdatedReady, want)
		}
		if !s.canaryService {
			s.t.Errorf("step %d routed before the canary Service exists", c.Step)
		}
		if s.routedStep != c.Step {
			s.routedStep = c.Step
			return change(fmt.Sprintf("RouteTraffic step %d", c.Step))
		}
	case TrafficToStable:
		if s.routedStep != 0 {
			s.routedStep = 0
			return change(c.Op.String())
		}
	case TrafficToNew:
		if s.routedStep != -1 {
			s.routedStep = -1
			return change(c.Op.String())
		}
	case TrafficRemoveCanary:
		if s.canaryService {
			s.canaryService = false
			return change(c.Op.String())
		}
	case TrafficJoinShared: // as trafficrouting.Join
		if s.sharedBusy {
			return false, nil
		}
		if !s.joined {
			s.joined = true
			return change(c.Op.String())
		}
	case TrafficLeaveShared: // as trafficrouting.Leave: done at once
		if s.joined {
			s.joined = false
			s.changes = append(s.changes, c.Op.String())
		}
	}
	return true, nil
}

// Commit stores the status.
func (s *releaseSim) Commit(_ context.Context, st v1beta1.RolloutStatus) error {
	if s.commitErr != nil {
		return s.commitErr
	}
	s.r.Status = *st.DeepCopy()
	return nil
}

// Committed keeps the decisions' Events and what was made.
func (s *releaseSim) Committed(_ v1beta1.RolloutStatus, d Decision) {
	s.made = append(s.made, d.Made...)
	s.events = append(s.events, d.Events...)
}

// StartRun creates a run that ends as verdict says.
func (s *releaseSim) StartRun(_ context.Context, st v1beta1.RolloutStatus, req RunRequest) error {
	if s.startErr != nil {
		return s.startErr
	}
	t := run.Target{Rollout: s.r.Name, CanaryRevision: st.Progress().PodTemplateHash, StepIndex: req.Step, Attempt: req.Attempt}
	ar := analysisv1alpha1.AnalysisRun{ObjectMeta: metav1.ObjectMeta{Name: run.Name(t)}, Status: analysisv1alpha1.AnalysisRunStatus{Phase: analysisv1alpha1.AnalysisRunning}}
	if s.verdict != nil {
		ar.Status.Phase = s.verdict(req.Step)
		ar.Status.Message = fmt.Sprintf("metric %q %s: value [0.2]", "error-rate", ar.Status.Phase)
		ar.Status.MetricResults = []analysisv1alpha1.MetricResult{{Name: "error-rate", Phase: ar.Status.Phase}}
	}
	s.changes = append(s.changes, "StartRun "+ar.Name)
	s.runs = append(s.runs, ar)
	return nil
}

// TerminateRuns marks runs terminated.
func (s *releaseSim) TerminateRuns(_ context.Context, names []string) error {
	for _, name := range names {
		for i := range s.runs {
			if s.runs[i].Name == name {
				s.runs[i].Spec.Terminate = true
				s.changes = append(s.changes, "StopRun "+name)
			}
		}
	}
	return nil
}

// Act moves the workload as asked, at once, checking that the action
// follows a committed status and the safety order.
func (s *releaseSim) Act(_ context.Context, a Action, b workload.Batch) error {
	if s.actErr != nil {
		return s.actErr
	}
	s.acts++
	i := s.info
	switch a {
	case Prepare:
		i.Controlled = true
	case Release:
		if rel := s.r.Status.Release; rel == nil || rel.Batch == nil || b.Updated > rel.Batch.Replicas || b.Shrink != rel.Batch.Shrink {
			s.t.Errorf("released %+v while the committed batch is %+v", b, rel)
		}
		if b.Updated < i.Updated && !b.Shrink {
			s.t.Errorf("a forward batch of %d would remove new pods (%d run)", b.Updated, i.Updated)
		}
		if b.Updated == 0 && i.Updated > 0 && s.routedStep != 0 {
			s.t.Errorf("new pods removed while traffic still goes to them")
		}
		if b.Updated > i.Updated && !s.pinned && b.Updated < i.Replicas && s.routed() {
			s.t.Errorf("new pods created before the stable Service was pinned")
		}
		if b.Updated > i.Updated && !s.joined && s.r.Spec.Strategy.SharesRouting() {
			s.t.Errorf("new pods created before the Rollout joined its TrafficRouting")
		}
		n := b.Updated
		if !b.Shrink {
			n = max(n, i.Updated)
		}
		i.Updated, i.UpdatedReady, i.Others = n, n, i.Replicas-n
		if s.r.Spec.Strategy.IsBlueGreen() {
			i.Others = i.Replicas // the old pods stay until the workload resumes
		}
	case HandOver:
		s.changes = append(s.changes, "HandOver "+b.Revision)
		if i.CanHandOver {
			i.StableRevision = b.Revision
		}
	case Finalise:
		// Resumed, the workload rolls to its update revision: traffic must
		// not still go to the pods of another one.
		if s.routedStep != 0 && i.UpdateRevision != s.r.Status.NewRevision() {
			s.t.Errorf("new pods removed while traffic still goes to them")
		}
		s.changes = append(s.changes, "ResumeWorkload")
		i.Frozen, i.Released, i.Others = false, true, 0
		i.Updated, i.UpdatedReady = i.Replicas, i.Replicas
	case RemoveFinalizer:
		s.changes = append(s.changes, "RemoveFinalizer")
	}
	return nil
}

// reconcile is one reconcile through the executor.
func (s *releaseSim) reconcile() Decision {
	s.results = nil
	info := *s.info
	o := Observed{Rollout: s.r.DeepCopy(), Workload: &info, Now: s.now, Runs: slices.Clone(s.runs)}
	d, err := execute(context.Background(), s, o)
	if err != nil && s.startErr == nil && s.actErr == nil && s.commitErr == nil {
		s.t.Fatalf("reconcile: %v", err)
	}
	// A committed decision is a fixed point: deciding again on it, with
	// what was observed, decides nothing new (the executor relies on it
	// when it decides again after acting).
	if err == nil {
		o.Rollout, o.Traffic = s.r.DeepCopy(), s.results
		if again := Decide(o); len(again.Events) > 0 {
			s.t.Errorf("deciding again on a committed status made Events %+v", again.Events)
		}
	}
	s.now = s.now.Add(max(d.RequeueAfter, time.Second))
	return d
}

// run reconciles until done says so, approving manual pauses.
func (s *releaseSim) run(done func(Decision) bool) { s.runWith(done, true) }

// until reconciles until done says so, approving nothing.
func (s *releaseSim) until(done func(Decision) bool) { s.runWith(done, false) }

func (s *releaseSim) runWith(done func(Decision) bool, approve bool) {
	for range 500 {
		d := s.reconcile()
		if done(d) {
			return
		}
		if h := d.Status.HoldOf(); approve && h != nil && h.Reason == v1beta1.HoldWaitingForApproval {
			s.approve()
		}
	}
	s.t.Fatalf("the release did not get there; status %+v", s.r.Status)
}

// approve patches the step state as kubectl-kruise does, in canaryStatus
// or blueGreenStatus.
func (s *releaseSim) approve() {
	if bg := s.r.Status.BlueGreenStatus; bg != nil {
		bg.CurrentStepState = v1beta1.CanaryStepStateReady
		return
	}
	s.r.Status.CanaryStatus.CurrentStepState = v1beta1.CanaryStepStateReady
}

func atStep(i int32, state v1beta1.CanaryStepState) func(Decision) bool {
	return func(d Decision) bool { return d.Status.CurrentStepIndex == i && d.Status.CurrentStepState == state }
}

func healthy(d Decision) bool {
	return d.Status.Phase == v1beta1.RolloutPhaseHealthy && d.Status.CurrentStepState == v1beta1.CanaryStepStateCompleted
}

// The order of traffic changes through the guide's Example 1, as Kruise
// Rollout's reference §3.2 and §4 give it, with Sluice's one difference:
// the stable Service is pinned before the first new pod exists.
func TestTrafficOrder(t *testing.T) {
	upToStep2 := []string{"PatchStableService", "CreateCanaryService", "RouteTraffic step 1", "RouteTraffic step 2"}
	cases := []struct {
		name  string
		after func(s *releaseSim) // at step 2's pause
		done  func(Decision) bool
		want  []string
	}{
		{name: "success", done: healthy, want: append(slices.Clone(upToStep2),
			// at 100% in place, stable takes the new pods (ingress-nginx #9635)
			"RestoreStableService", "RouteTraffic step 3",
			"RouteTrafficToStable", "RemoveCanaryService", "ResumeWorkload")},
		{name: "rollback", done: healthy, after: func(s *releaseSim) { s.info.UpdateRevision = s.info.StableRevision },
			want: append(slices.Clone(upToStep2), "RouteTrafficToStable", "ResumeWorkload", "RestoreStableService", "RemoveCanaryService")},
		{name: "deleted mid-release", after: func(s *releaseSim) { s.r.DeletionTimestamp = &metav1.Time{Time: s.now} },
			done: func(d Decision) bool { return d.Action == RemoveFinalizer },
			want: append(slices.Clone(upToStep2), "RestoreStableService", "RouteTrafficToStable", "RemoveCanaryService", "ResumeWorkload", "RemoveFinalizer")},
		{name: "disabled mid-release", after: func(s *releaseSim) { s.r.Spec.Disabled = true },
			done: func(d Decision) bool { return d.Status.Phase == v1beta1.RolloutPhaseDisabled },
			want: append(slices.Clone(upToStep2), "RestoreStableService", "RouteTrafficToStable", "RemoveCanaryService", "ResumeWorkload")},
		{name: "continuous release", after: func(s *releaseSim) {
			i := s.info
			i.UpdateRevision, i.PodRevision, i.Updated, i.UpdatedReady, i.Others = "v3", "v3", 0, 0, i.Replicas
		},
			done: atStep(1, v1beta1.CanaryStepStatePaused),
			want: append(slices.Clone(upToStep2), "RouteTrafficToStable", "RouteTraffic step 1")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newReleaseSim(t, example1())
			s.run(atStep(2, v1beta1.CanaryStepStatePaused))
			if tc.after != nil {
				tc.after(s)
			}
			s.run(tc.done)
			if !slices.Equal(s.changes, tc.want) {
				t.Errorf("changes:\n got %q\nwant %q", s.changes, tc.want)
			}
			if tc.name != "continuous release" && (s.pinned || s.canaryService || s.routedStep != 0) {
				t.Errorf("routing left behind: pinned %v, canary Service %v, step %d", s.pinned, s.canaryService, s.routedStep)
			}
		})
	}
}

// Each routing change is followed by the grace period before the next.
func TestTrafficGracePeriod(t *testing.T) {
	s := newReleaseSim(t, example1())
	s.run(atStep(1, v1beta1.CanaryStepStateTrafficRouting))
	entered := s.r.Status.CanaryStatus.LastUpdateTime.Time
	s.run(atStep(1, v1beta1.CanaryStepStatePaused))
	if waited := s.r.Status.CanaryStatus.LastUpdateTime.Sub(entered); waited < 6*time.Second {
		t.Errorf("two changes (canary Service, routes) in %s, want a 3s grace after each", waited)
	}
}

// With gracePeriodSeconds: 0 a call not done yet is still checked again:
// nothing else wakes the Rollout (found with disableGenerateCanaryService,
// whose release hung at StepTrafficRouting).
func TestTrafficCallNotDoneWithoutGrace(t *testing.T) {
	r := inStep(1, v1beta1.CanaryStepStateTrafficRouting, t0)
	r.Spec = example1().Spec
	r.Spec.Strategy.Canary.TrafficRoutings[0].GracePeriodSeconds = 0
	service := TrafficCall{Op: TrafficCanaryService, Revision: "v2"}
	d := Decide(Observed{Rollout: r, Workload: frozen(1, 1), Now: t0, Traffic: []TrafficResult{{Call: service, Done: false}}})
	if d.RequeueAfter <= 0 {
		t.Errorf("requeue %s: a call not done must be checked again", d.RequeueAfter)
	}
}

// A failing call is shown on the Rollout and retried; the release holds.
func TestTrafficError(t *testing.T) {
	r := inStep(1, v1beta1.CanaryStepStateTrafficRouting, t0)
	r.Spec = example1().Spec
	service := TrafficCall{Op: TrafficCanaryService, Revision: "v2"}
	call := TrafficCall{Op: TrafficRoute, Step: 1, Revision: "v2"}
	d := Decide(Observed{Rollout: r, Workload: frozen(1, 1), Now: t0})
	if d.Traffic != service {
		t.Fatalf("asked for %+v, want %+v", d.Traffic, service)
	}
	d = Decide(Observed{Rollout: r, Workload: frozen(1, 1), Now: t0, Traffic: []TrafficResult{{Call: service, Done: true}}})
	if d.Traffic != call {
		t.Fatalf("asked for %+v, want %+v", d.Traffic, call)
	}
	failed := []TrafficResult{{Call: service, Done: true}, {Call: call, Err: fmt.Errorf("ingress echoserver not found")}}
	d = Decide(Observed{Rollout: r, Workload: frozen(1, 1), Now: t0, Traffic: failed})
	c := condition(&d.Status, ConditionTrafficRouting)
	want := "traffic routing failed at RouteTraffic: ingress echoserver not found"
	if c == nil || c.Message != want || d.Status.Message != want || d.Status.CurrentStepState != v1beta1.CanaryStepStateTrafficRouting {
		t.Fatalf("condition %+v, message %q, state %s", c, d.Status.Message, d.Status.CurrentStepState)
	}
	if h := d.Status.HoldOf(); h == nil || h.Reason != v1beta1.HoldTrafficError || h.Message != want {
		t.Errorf("hold %+v", h)
	}
	if len(d.Events) != 1 || d.Events[0].Reason != ReasonTrafficRoutingFailed {
		t.Errorf("events %+v", d.Events)
	}
	r.Status = d.Status
	done := []TrafficResult{{Call: service, Done: true}, {Call: call, Done: true}}
	d = Decide(Observed{Rollout: r, Workload: frozen(1, 1), Now: t0.Add(5 * time.Second), Traffic: done})
	if condition(&d.Status, ConditionTrafficRouting) != nil || d.Status.CurrentStepState != v1beta1.CanaryStepStatePaused {
		t.Errorf("after the call succeeds: conditions %+v, state %s", d.Status.Conditions, d.Status.CurrentStepState)
	}
	if tr := d.Status.TrafficOf(); tr == nil || tr.Step != 1 || len(tr.Matches) != 1 || tr.Weight != nil {
		t.Errorf("traffic in force %+v, want step 1's header match", tr)
	}
}
