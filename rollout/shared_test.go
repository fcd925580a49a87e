package rollout

import (
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

// sharedOnly is Example 4 naming a TrafficRouting and routing nothing of
// its own, as Kruise's full-link canary Rollouts are written.
func sharedOnly() *v1beta1.Rollout {
	r := example4()
	r.Spec.Strategy.Canary.TrafficRoutingRef = "full-link"
	return r
}

// A Rollout naming a TrafficRouting joins it before its first new pod
// and leaves it at the start of every finalising order (Kruise's
// doProgressingInitializing and doFinalising): the TrafficRouting then
// restores its routing once no Rollout holds it.
func TestSharedTrafficRoutingOrder(t *testing.T) {
	withOwn := func() *v1beta1.Rollout {
		r := example1()
		r.Spec.Strategy.Canary.TrafficRoutingRef = "full-link"
		return r
	}
	blueGreenShared := func() *v1beta1.Rollout {
		r := blueGreen()
		r.Spec.Strategy.BlueGreen.TrafficRoutingRef = "full-link"
		return r
	}
	cases := []struct {
		name  string
		ro    func() *v1beta1.Rollout
		after func(s *releaseSim)
		done  func(Decision) bool
		want  []string
	}{
		{name: "success", ro: sharedOnly, done: healthy,
			want: []string{"JoinTrafficRouting", "LeaveTrafficRouting", "ResumeWorkload"}},
		{name: "rollback", ro: sharedOnly, after: func(s *releaseSim) { s.info.UpdateRevision = s.info.StableRevision }, done: healthy,
			want: []string{"JoinTrafficRouting", "LeaveTrafficRouting", "ResumeWorkload"}},
		{name: "deleted mid-release", ro: sharedOnly, after: func(s *releaseSim) { s.r.DeletionTimestamp = &metav1.Time{Time: s.now} },
			done: func(d Decision) bool { return d.Action == RemoveFinalizer },
			want: []string{"JoinTrafficRouting", "LeaveTrafficRouting", "ResumeWorkload", "RemoveFinalizer"}},
		{name: "disabled mid-release", ro: sharedOnly, after: func(s *releaseSim) { s.r.Spec.Disabled = true },
			done: func(d Decision) bool { return d.Status.Phase == v1beta1.RolloutPhaseDisabled },
			want: []string{"JoinTrafficRouting", "LeaveTrafficRouting", "ResumeWorkload"}},
		{name: "its own routing too", ro: withOwn, done: healthy, want: []string{
			"JoinTrafficRouting", "PatchStableService", "CreateCanaryService", "RouteTraffic step 1", "RouteTraffic step 2",
			"RestoreStableService", "RouteTraffic step 3", "LeaveTrafficRouting", "RouteTrafficToStable", "RemoveCanaryService", "ResumeWorkload"}},
		{name: "blue-green: first in its order too", ro: blueGreenShared, done: healthy, want: []string{
			"JoinTrafficRouting", "PatchStableService", "CreateCanaryService", "RouteTraffic step 1", "RouteTraffic step 2", "RouteTraffic step 3",
			"LeaveTrafficRouting", "RouteTrafficToNew", "RestoreStableService", "ResumeWorkload", "RouteTrafficToStable", "RemoveCanaryService"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newReleaseSim(t, tc.ro())
			s.run(atStep(2, v1beta1.CanaryStepStatePaused))
			if !s.joined {
				t.Fatal("at step 2 the Rollout does not hold its TrafficRouting")
			}
			if tc.after != nil {
				tc.after(s)
			}
			s.run(tc.done)
			if !slices.Equal(s.changes, tc.want) {
				t.Errorf("changes:\n got %q\nwant %q", s.changes, tc.want)
			}
			if s.joined {
				t.Error("the Rollout still holds its TrafficRouting")
			}
		})
	}
}

// While the TrafficRouting restores the routing of the last release it
// lets nobody join: the release waits in Initializing, with no new pod,
// and goes on once it may join.
func TestSharedTrafficRoutingBusy(t *testing.T) {
	s := newReleaseSim(t, sharedOnly())
	s.sharedBusy = true
	for range 5 {
		d := s.reconcile()
		if d.Status.ProgressingReason() != v1beta1.ProgressingReasonInitializing || d.Action != NoAction {
			t.Fatalf("reason %s, action %s while the TrafficRouting is busy", d.Status.ProgressingReason(), d.Action)
		}
		if h := d.Status.HoldOf(); h == nil || h.Reason != v1beta1.HoldTrafficGracePeriod || !strings.HasPrefix(h.Message, "joining TrafficRouting full-link") || d.RequeueAfter != defaultGrace {
			t.Fatalf("hold %+v, requeue %s", h, d.RequeueAfter)
		}
	}
	if s.info.Updated != 0 || s.joined {
		t.Fatalf("updated %d, joined %v", s.info.Updated, s.joined)
	}
	s.sharedBusy = false
	s.run(healthy)
	if want := []string{"JoinTrafficRouting", "LeaveTrafficRouting", "ResumeWorkload"}; !slices.Equal(s.changes, want) {
		t.Errorf("changes %q, want %q", s.changes, want)
	}
}
