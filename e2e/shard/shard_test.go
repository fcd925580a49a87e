//go:build e2e

package shard_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/devenv/manager"
	"github.com/sluicehq/sluice/devenv/manifest"
	"github.com/sluicehq/sluice/e2e/framework"
)

const (
	imageV1 = "openkruise-registry.cn-shanghai.cr.aliyuncs.com/openkruise/demo:1.10.2"
	imageV2 = "openkruise-registry.cn-shanghai.cr.aliyuncs.com/openkruise/demo:1.10.3"
)

// app is a 4-replica Deployment and its Rollout; shard "" leaves the
// Rollout unlabelled (the default shard's).
func createApp(t *testing.T, ns, name, shard, steps string) {
	t.Helper()
	labels := "{}"
	if shard != "" {
		labels = fmt.Sprintf("{%s: %s}", shardKey, shard)
	}
	doc := fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s}
spec:
  replicas: 4
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec: {containers: [{name: main, image: %[2]s}]}
---
apiVersion: rollouts.kruise.io/v1beta1
kind: Rollout
metadata: {name: %[1]s, labels: %[3]s}
spec:
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: %[1]s}
  strategy:
    canary:
      steps:
%[4]s`, name, imageV1, labels, steps)
	if _, err := manifest.Create(t.Context(), env.Client, ns, []byte(doc)); err != nil {
		t.Fatal(err)
	}
	waitRollout(t, ns, name, "Healthy", func(r *v1beta1.Rollout) bool { return r.Status.Phase == v1beta1.RolloutPhaseHealthy })
}

const (
	zeroPause = `      - {replicas: 1, pause: {duration: 0}}
      - {replicas: "50%", pause: {duration: 0}}
      - {replicas: "100%"}
`
	// The release waits for an approval after step 1.
	approveAfterStep1 = `      - {replicas: 1, pause: {}}
      - {replicas: "50%", pause: {duration: 0}}
      - {replicas: "100%"}
`
)

func waitRollout(t *testing.T, ns, name, what string, cond func(*v1beta1.Rollout) bool) *v1beta1.Rollout {
	t.Helper()
	r, err := framework.WaitRollout(t.Context(), env.Client, types.NamespacedName{Namespace: ns, Name: name}, 3*time.Minute, cond)
	if err != nil {
		t.Fatalf("%s/%s %s: %v", ns, name, what, err)
	}
	return r
}

func completed(r *v1beta1.Rollout) bool {
	return r.Status.Phase == v1beta1.RolloutPhaseHealthy && r.Status.CurrentStepState == v1beta1.CanaryStepStateCompleted
}

func pausedAtStep1(r *v1beta1.Rollout) bool {
	return r.Status.Phase == v1beta1.RolloutPhaseProgressing && r.Status.CurrentStepIndex == 1 && r.Status.CurrentStepState == v1beta1.CanaryStepStatePaused
}

// waitReleased waits until every pod of the Deployment runs imageV2 and it
// is not paused: the workload is released, not only the status.
func waitReleased(t *testing.T, ns, name string) {
	t.Helper()
	err := framework.Poll(t.Context(), 3*time.Minute, func() (bool, error) {
		d := &appsv1.Deployment{}
		if err := env.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, d); err != nil {
			return false, err
		}
		s := d.Status
		return !d.Spec.Paused && d.Spec.Template.Spec.Containers[0].Image == imageV2 && s.ObservedGeneration >= d.Generation &&
			s.UpdatedReplicas == 4 && s.AvailableReplicas == 4 && s.Replicas == 4, nil
	})
	if err != nil {
		t.Fatalf("%s/%s not released: %v", ns, name, err)
	}
}

func release(t *testing.T, ns, name string) {
	t.Helper()
	if err := framework.SetImage(t.Context(), env.Client, ns, name, imageV2); err != nil {
		t.Fatal(err)
	}
}

// approve sends kubectl-kruise's approval (a merge patch of the v1alpha1
// status).
func approve(t *testing.T, ns, name string) {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("rollouts.kruise.io/v1alpha1")
	u.SetKind("Rollout")
	u.SetNamespace(ns)
	u.SetName(name)
	body := []byte(`{"status":{"canaryStatus":{"currentStepState":"StepReady"}}}`)
	if err := env.Client.Status().Patch(t.Context(), u, client.RawPatch(types.MergePatchType, body)); err != nil {
		t.Fatal(err)
	}
}

// transitions is how many step transitions a manager has made for the
// Rollout (its sluice_step_transition_seconds histogram): which manager
// released what.
func transitions(t *testing.T, m *manager.Manager, ns, name string) uint64 {
	t.Helper()
	families := scrape(t, m)
	var n uint64
	for _, mt := range families["sluice_step_transition_seconds"].GetMetric() {
		if label(mt, "namespace") == ns && label(mt, "rollout") == name {
			n += mt.GetHistogram().GetSampleCount()
		}
	}
	return n
}

// holds tells whether m's cache holds the Rollout: its state collector
// exports sluice_rollout_step for every Rollout in the cache, and forgets
// the series of those that left it.
func holds(t *testing.T, m *manager.Manager, ns, name string) bool {
	t.Helper()
	for _, mt := range scrape(t, m)["sluice_rollout_step"].GetMetric() {
		if label(mt, "namespace") == ns && label(mt, "rollout") == name {
			return true
		}
	}
	return false
}

// leads tells whether m holds shard1's Lease.
func leads(t *testing.T, m *manager.Manager) bool {
	t.Helper()
	for _, mt := range scrape(t, m)["leader_election_master_status"].GetMetric() {
		if label(mt, "name") == shard1Lease {
			return mt.GetGauge().GetValue() == 1
		}
	}
	return false
}

func scrape(t *testing.T, m *manager.Manager) map[string]*dto.MetricFamily {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	families, err := m.MetricFamilies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return families
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// shard1Leader waits until one replica of shard1 leads and returns it.
func shard1Leader(t *testing.T) *manager.Manager {
	t.Helper()
	var leader *manager.Manager
	err := framework.Poll(t.Context(), time.Minute, func() (bool, error) {
		for _, m := range shard1 {
			if done, _ := m.Exited(); !done && leads(t, m) {
				leader = m
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("no shard1 replica leads: %v", err)
	}
	return leader
}

// Two shards release at once, each only its own Rollout: the default
// shard the unlabelled one, shard1's leader the labelled one, and shard1's
// standby nothing.
func TestTwoShardsReleaseAtOnce(t *testing.T) {
	ns := env.Namespace(t)
	createApp(t, ns, "web-a", "", zeroPause)
	createApp(t, ns, "web-b", "shard1", zeroPause)
	leader := shard1Leader(t)

	release(t, ns, "web-a")
	release(t, ns, "web-b")
	for _, name := range []string{"web-a", "web-b"} {
		waitRollout(t, ns, name, "completed", completed)
		waitReleased(t, ns, name)
	}

	if a, b := transitions(t, env.Manager, ns, "web-a"), transitions(t, env.Manager, ns, "web-b"); a == 0 || b != 0 {
		t.Errorf("default shard made %d transitions of web-a (want some) and %d of web-b (want none)", a, b)
	}
	if a, b := transitions(t, leader, ns, "web-a"), transitions(t, leader, ns, "web-b"); a != 0 || b == 0 {
		t.Errorf("shard1's leader made %d transitions of web-a (want none) and %d of web-b (want some)", a, b)
	}
	for _, m := range shard1 {
		if m != leader {
			if n := transitions(t, m, ns, "web-b"); n != 0 {
				t.Errorf("shard1's standby made %d transitions", n)
			}
		}
	}
}

// A Rollout moved to another shard mid-release (its label changed while it
// waits for an approval) is finished by the new shard, from the step its
// status records; the old shard makes no transition after the move.
func TestMoveRolloutMidRelease(t *testing.T) {
	ns := env.Namespace(t)
	createApp(t, ns, "web-m", "", approveAfterStep1)
	leader := shard1Leader(t)
	release(t, ns, "web-m")
	waitRollout(t, ns, "web-m", "paused at step 1", pausedAtStep1)
	before := transitions(t, env.Manager, ns, "web-m")
	if before == 0 {
		t.Fatal("the default shard made no transition of web-m before the move")
	}

	ro := &v1beta1.Rollout{}
	if err := env.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "web-m"}, ro); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(ro.DeepCopy())
	ro.Labels = map[string]string{shardKey: "shard1"}
	if err := env.Client.Patch(t.Context(), ro, patch); err != nil {
		t.Fatal(err)
	}
	moved := time.Now()
	// The label change takes the Rollout out of the default shard's cache
	// and into shard1's; approved only then, so that only shard1 can act.
	err := framework.Poll(t.Context(), time.Minute, func() (bool, error) {
		return !holds(t, env.Manager, ns, "web-m") && holds(t, leader, ns, "web-m"), nil
	})
	if err != nil {
		t.Fatalf("the Rollout did not move from the default shard's cache to shard1's: %v", err)
	}
	t.Logf("the move took %s (label written -> out of the old shard's cache, in the new one's)", time.Since(moved).Round(time.Millisecond))
	approved := time.Now()
	approve(t, ns, "web-m")
	waitRollout(t, ns, "web-m", "completed by shard1", completed)
	waitReleased(t, ns, "web-m")
	t.Logf("approved on shard1 at step 1: completed %s later", time.Since(approved).Round(time.Millisecond))

	if n := transitions(t, env.Manager, ns, "web-m"); n != 0 || holds(t, env.Manager, ns, "web-m") {
		t.Errorf("the default shard has %d transitions of web-m after it moved away (or holds it again)", n)
	}
	// Steps 1 to 2, 2 to 3, 3 to completed: shard1's.
	if n := transitions(t, leader, ns, "web-m"); n < 3 {
		t.Errorf("shard1 made %d transitions of web-m after the approval, want at least 3", n)
	}
}

// Killing shard1's leader mid-release: the standby takes shard1's Lease
// over when it expires and resumes the release; the time from the kill to
// the release's next step is the shard's failover (docs/sharding.md).
// Meanwhile the default shard releases as usual.
func TestShardFailover(t *testing.T) {
	ns := env.Namespace(t)
	createApp(t, ns, "web-f", "shard1", approveAfterStep1)
	createApp(t, ns, "web-d", "", zeroPause)
	leader := shard1Leader(t)
	release(t, ns, "web-f")
	waitRollout(t, ns, "web-f", "paused at step 1", pausedAtStep1)

	leader.Kill()
	killed := time.Now()
	approve(t, ns, "web-f")
	release(t, ns, "web-d")
	waitRollout(t, ns, "web-d", "completed by the default shard", completed)
	otherShard := time.Since(killed)
	waitRollout(t, ns, "web-f", "past step 1", func(r *v1beta1.Rollout) bool {
		return r.Status.CurrentStepIndex >= 2 || completed(r)
	})
	resumed := time.Since(killed)
	waitRollout(t, ns, "web-f", "completed", completed)
	waitReleased(t, ns, "web-f")
	next := shard1Leader(t)
	if next == leader {
		t.Fatal("the killed replica still leads")
	}
	t.Logf("shard1's leader SIGKILLed at step 1 (Lease 6s/4s/1s): its release resumed %s later (the standby's first step);"+
		" the default shard meanwhile completed a whole release %s after the kill", resumed.Round(time.Millisecond), otherShard.Round(time.Millisecond))
}
