package rollout

import (
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

// blueGreen is Kruise's blue-green example: half the new pods beside the
// old ones, then all of them (approved), then the switch.
func blueGreen() *v1beta1.Rollout {
	r := example1()
	half, all := intstr.FromString("50%"), intstr.FromString("100%")
	w0, w100 := "0%", "100%"
	r.Spec.Strategy.BlueGreen = &v1beta1.BlueGreenStrategy{
		Steps: []v1beta1.CanaryStep{
			{Replicas: &half, TrafficRoutingStrategy: v1beta1.TrafficRoutingStrategy{Traffic: &w0}},
			{Replicas: &all, TrafficRoutingStrategy: v1beta1.TrafficRoutingStrategy{Traffic: &w0}},
			{Replicas: &all, TrafficRoutingStrategy: v1beta1.TrafficRoutingStrategy{Traffic: &w100}},
		},
		TrafficRoutings: r.Spec.Strategy.Canary.TrafficRoutings,
	}
	r.Spec.Strategy.Canary = nil
	return r
}

func TestBlueGreen(t *testing.T) {
	s := newReleaseSim(t, blueGreen())
	s.run(func(d Decision) bool {
		return d.Status.CurrentStepIndex == 1 && d.Status.CurrentStepState == v1beta1.CanaryStepStateUpgrade
	})
	if st := s.r.Status; st.CanaryStatus != nil || st.BlueGreenStatus == nil || st.BlueGreenStatus.UpdatedRevision != "v2" {
		t.Fatalf("progress must be in blueGreenStatus: %+v", st)
	}
	s.run(healthy)
	want := []string{"PatchStableService", "CreateCanaryService", "RouteTraffic step 1", "RouteTraffic step 2", "RouteTraffic step 3",
		// Kruise's blue-green finalising order
		"RouteTrafficToNew", "RestoreStableService", "ResumeWorkload", "RouteTrafficToStable", "RemoveCanaryService"}
	if !slices.Equal(s.changes, want) {
		t.Errorf("changes:\n got %q\nwant %q", s.changes, want)
	}
	if s.r.Status.BlueGreenStatus.StableRevision != "v2" {
		t.Errorf("stable revision %q after the switch", s.r.Status.BlueGreenStatus.StableRevision)
	}
}

// Old pods stay: a batch is done with every old pod still running.
func TestBlueGreenKeepsOldPods(t *testing.T) {
	r := blueGreen()
	r.Status = inStep(1, v1beta1.CanaryStepStateUpgrade, t0).Status
	r.Status.BlueGreenStatus = &v1beta1.BlueGreenStatus{CommonStatus: r.Status.CanaryStatus.CommonStatus, UpdatedRevision: "v2"}
	r.Status.CanaryStatus = nil
	w := frozen(5, 5)
	w.Others = 10
	d := Decide(Observed{Rollout: r, Workload: w, Now: t0})
	if d.Status.BlueGreenStatus.CurrentStepState == v1beta1.CanaryStepStateUpgrade {
		t.Errorf("5 new pods beside 10 old ones should finish the 50%% batch; state %s", d.Status.BlueGreenStatus.CurrentStepState)
	}
}

// A third version mid-release is refused, as in Kruise.
func TestBlueGreenRefusesANewVersion(t *testing.T) {
	s := newReleaseSim(t, blueGreen())
	s.run(atStep(2, v1beta1.CanaryStepStateUpgrade))
	s.info.UpdateRevision, s.info.PodRevision = "v3", "v3"
	d := s.reconcile()
	if !strings.Contains(d.Status.Message, "re-apply the stable template (revision v1) first") || d.Status.CurrentStepIndex != 2 {
		t.Errorf("step %d, message %q", d.Status.CurrentStepIndex, d.Status.Message)
	}
}
