//go:build e2e

package bench_test

import (
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

// kruiseRecheck is how often Kruise Rollout re-checks a release in
// progress: its overhead per step transition is up to this much.
const kruiseRecheck = 3 * time.Second

// The release of issue 3: three steps of a 10-replica Deployment (partition
// style, the guide's echoserver), no pause.
const (
	releaseReplicas  = 10
	zeroPauseRollout = `
apiVersion: rollouts.kruise.io/v1beta1
kind: Rollout
metadata: {name: rollouts-demo}
spec:
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: echoserver}
  strategy:
    canary:
      steps:
      - {replicas: 1, pause: {duration: 0}}
      - {replicas: "50%", pause: {duration: 0}}
      - {replicas: "100%"}
`
	// The same release approved by hand after steps 1 and 2.
	approvedRollout = `
apiVersion: rollouts.kruise.io/v1beta1
kind: Rollout
metadata: {name: rollouts-demo}
spec:
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: echoserver}
  strategy:
    canary:
      steps:
      - {replicas: 1, pause: {}}
      - {replicas: "50%", pause: {}}
      - {replicas: "100%"}
`
)

// targets are the new pods each step asks for (50% of 10 is 5).
var targets = []int32{1, 5, 10}

// BenchmarkStepTransitions releases the echoserver back to back, one
// release per iteration, with no pause: each step ends when its pods are
// ready. It reports the controller's overhead per step transition and its
// API writes per release.
func BenchmarkStepTransitions(b *testing.B) {
	res := releases(b, zeroPauseRollout, false)
	batch := res.samples("batch", false)
	fmt.Printf("\n== Step transitions (issue 3): %d releases of a 10-replica Deployment in 3 steps (1, 50%%, 100%%), no pause\n", res.releases)
	fmt.Println(machine())
	fmt.Printf("   batch ready in the API (ReplicaSet status) -> the controller's next write: %s\n", batch)
	fmt.Printf("   batch pods Ready (kwok's write) -> the controller's next write:               %s\n", res.samples("batch", true))
	fmt.Printf("     (this includes kube-controller-manager updating the ReplicaSet status, which is what the controller reads)\n")
	fmt.Printf("   new template written -> the controller's first write (release start):        %s\n", res.samples("start", false))
	fmt.Printf("   Kruise Rollout re-checks every %s (a transition waits up to that, half on average): Sluice's p99 is %.3fx that, its p50 %.3fx\n",
		kruiseRecheck, ratio(batch.quantile(0.99), kruiseRecheck), ratio(batch.quantile(0.5), kruiseRecheck))
	fmt.Printf("   target p99 under 100 ms: %s\n", verdict(batch.quantile(0.99) < 100*time.Millisecond))
	fmt.Printf("   API writes per completed release (manager's rest_client_requests_total): %s\n", res.requests.perRelease(res.releases))
	fmt.Printf("   a whole release, template written to Completed: %s\n", res.wall)
	batch.report(b, "transition")
	b.ReportMetric(res.requests.writes()/float64(res.releases), "writes/release")
}

// BenchmarkApprovalTransitions is the same release with a manual pause
// after steps 1 and 2, approved a second after the step pauses: the
// overhead from the approval written to the controller's next write.
func BenchmarkApprovalTransitions(b *testing.B) {
	res := releases(b, approvedRollout, true)
	approvals := res.samples("approval", false)
	fmt.Printf("\n== Approvals (issue 3): %d releases of the same Deployment, steps 1 and 2 approved with kubectl-kruise's patch\n", res.releases)
	fmt.Println(machine())
	fmt.Printf("   approval written -> the controller's next write:                         %s\n", approvals)
	fmt.Printf("   batch ready in the API -> the controller's next write (StepPaused):      %s\n", res.samples("batch", false))
	fmt.Printf("   Kruise Rollout re-checks every %s: Sluice's p99 is %.3fx that; target p99 under 100 ms: %s\n",
		kruiseRecheck, ratio(approvals.quantile(0.99), kruiseRecheck), verdict(approvals.quantile(0.99) < 100*time.Millisecond))
	fmt.Printf("   API writes per completed release: %s\n", res.requests.perRelease(res.releases))
	approvals.report(b, "approval")
}

func verdict(met bool) string {
	if met {
		return "met"
	}
	return "missed"
}

// releaseResults are the measurements of back-to-back releases.
type releaseResults struct {
	releases    int
	transitions []transition
	requests    requests
	wall        samples
}

// samples are the overheads of the transitions of kind what, from the
// condition in the API (or, with fromPods, from the batch's pods seen
// Ready) to the controller's write.
func (r releaseResults) samples(what string, fromPods bool) samples {
	var out samples
	for _, t := range r.transitions {
		if t.what != what {
			continue
		}
		from := t.cond
		if fromPods {
			from = t.pods
		}
		out = append(out, t.write.Sub(from))
	}
	return out
}

// releases creates the echoserver and the Rollout, then releases a new
// version per iteration, approving each paused step when manual.
func releases(b *testing.B, rollout string, manual bool) releaseResults {
	f := newFixture(b, &v1beta1.RolloutList{}, &appsv1.DeploymentList{}, &appsv1.ReplicaSetList{}, &corev1.PodList{})
	f.createEchoserver(releaseReplicas)
	f.create(rollout)
	f.waitRollout(0, "Healthy", func(r *v1beta1.Rollout) bool { return r.Status.Phase == v1beta1.RolloutPhaseHealthy })
	time.Sleep(time.Second) // let the set-up's writes land before counting

	var res releaseResults
	res.requests = newRequests()
	i := 0
	for b.Loop() {
		i++
		img := image(i)
		from := f.rec.mark()
		before, err := scrapeRequests()
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		f.setImage(img)
		p := plan{image: img, replicas: releaseReplicas, targets: targets, approvals: map[int32]string{}}
		next := from
		if manual {
			for step := int32(1); step < int32(len(targets)); step++ {
				next, _ = f.waitRollout(next, fmt.Sprintf("step %d to pause", step), atStep(step, v1beta1.CanaryStepStatePaused))
				time.Sleep(time.Second) // a person approves later than at once
				p.approvals[step] = f.approve()
			}
		}
		next, _ = f.waitRollout(next, "the release to start", progressing)
		_, done := f.waitRollout(next, "the release to complete", completed)
		res.wall = append(res.wall, done.at.Sub(start))
		f.waitDeployment(from, img)
		time.Sleep(time.Second) // the last Events are sent asynchronously
		after, err := scrapeRequests()
		if err != nil {
			b.Fatal(err)
		}
		res.requests = res.requests.add(after.sub(before))
		ts, err := f.replay(from, p)
		if err != nil {
			b.Fatalf("release %d: %v", i, err)
		}
		res.transitions = append(res.transitions, ts...)
		if testing.Verbose() {
			for _, t := range ts {
				b.Logf("release %d: %-8s step %d: condition %s, controller's write %s later", i, t.what, t.step, t.cond.Format("15:04:05.000"), ms(t.write.Sub(t.cond)))
			}
		}
		res.releases++
	}
	return res
}

// transition is one moment the release could move on, and when the
// controller did.
type transition struct {
	what string // start, batch or approval
	step int32
	// cond is when the condition held in the API: the new template
	// written, the batch ready in its ReplicaSet's status (what the
	// controller reads), or the approval written.
	cond time.Time
	// pods is, for a batch, when its pods were seen Ready (and the old
	// ones gone).
	pods time.Time
	// write is the controller's first write that acts on it.
	write time.Time
}

// plan is what a release was asked to do.
type plan struct {
	image     string
	replicas  int32
	targets   []int32
	approvals map[int32]string // step -> resourceVersion of its approval
}

// replay finds the transitions of one release in the events since from,
// in the order they were written: the release start, then each step's
// batch and, for approved steps, its approval.
func (f *fixture) replay(from int, p plan) ([]transition, error) {
	s, events, err := f.rec.replayFrom(from)
	if err != nil {
		return nil, err
	}
	ts := []transition{{what: "start"}}
	for i := range p.targets {
		step := int32(i + 1)
		ts = append(ts, transition{what: "batch", step: step})
		if _, ok := p.approvals[step]; ok {
			ts = append(ts, transition{what: "approval", step: step})
		}
	}
	cur := 0
	for _, e := range events {
		s.apply(e)
		if cur == len(ts) {
			break
		}
		t := &ts[cur]
		switch t.what {
		case "start":
			if t.cond.IsZero() {
				if d, ok := is[*appsv1.Deployment](e, "echoserver"); ok && imageOf(d.Spec.Template.Spec) == p.image {
					t.cond = e.at
				}
			} else if startWrite(e, p) {
				t.write = e.at
				cur++
			}
		case "batch":
			target := p.targets[t.step-1]
			if t.pods.IsZero() && podsDone(s, p, target) {
				t.pods = e.at
			}
			if t.cond.IsZero() {
				if batchDone(s, p, target) {
					t.cond = e.at
				}
			} else if batchWrite(e, p, t.step) {
				t.write = e.at
				cur++
			}
		case "approval":
			r, isRollout := is[*v1beta1.Rollout](e, rolloutName)
			if t.cond.IsZero() {
				if isRollout && r.ResourceVersion == p.approvals[t.step] {
					t.cond = e.at
				}
			} else if isRollout || newReplicas(e, p) > p.targets[t.step-1] {
				t.write = e.at
				cur++
			}
		}
	}
	if cur < len(ts) {
		t := ts[cur]
		return nil, fmt.Errorf("no controller write seen for the %s of step %d (condition seen: %v)", t.what, t.step, !t.cond.IsZero())
	}
	for i := range ts {
		if ts[i].what == "batch" && ts[i].pods.After(ts[i].cond) {
			ts[i].pods = ts[i].cond // the pods' events came in after the ReplicaSet's
		}
	}
	return ts, nil
}

// startWrite: the controller took the release on (its status, or the
// Deployment prepared, or the new ReplicaSet created).
func startWrite(e event, p plan) bool {
	if _, ok := is[*v1beta1.Rollout](e, rolloutName); ok {
		return true
	}
	if rs, ok := is[*appsv1.ReplicaSet](e, ""); ok && e.typ == watch.Added && imageOf(rs.Spec.Template.Spec) == p.image {
		return true
	}
	d, ok := is[*appsv1.Deployment](e, "echoserver")
	return ok && d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType
}

// batchWrite: the controller moved past step's batch (its status says so,
// the next batch is scaled up, or the Deployment is given back).
func batchWrite(e event, p plan, step int32) bool {
	if r, ok := is[*v1beta1.Rollout](e, rolloutName); ok {
		st := r.Status
		return st.Phase != v1beta1.RolloutPhaseProgressing || st.CurrentStepIndex > step ||
			(st.CurrentStepIndex == step && st.CurrentStepState != v1beta1.CanaryStepStateUpgrade && st.CurrentStepState != v1beta1.CanaryStepStateInit)
	}
	if newReplicas(e, p) > p.targets[step-1] {
		return true
	}
	d, ok := is[*appsv1.Deployment](e, "echoserver")
	return ok && !d.Spec.Paused
}

// newReplicas is the replicas the new ReplicaSet asks for, if e is about it.
func newReplicas(e event, p plan) int32 {
	rs, ok := is[*appsv1.ReplicaSet](e, "")
	if !ok || imageOf(rs.Spec.Template.Spec) != p.image || rs.Spec.Replicas == nil {
		return 0
	}
	return *rs.Spec.Replicas
}

// batchDone is the controller's own test (rollout.batchDone over
// workload.Deployment.Observe): the Deployment's status is current, the
// new ReplicaSet has target pods, all ready, and the old ones have made
// room.
func batchDone(s state, p plan, target int32) bool {
	var updated, ready, others int32
	settled := false
	for _, d := range all[*appsv1.Deployment](s) {
		settled = d.Status.ObservedGeneration >= d.Generation
	}
	for _, rs := range all[*appsv1.ReplicaSet](s) {
		if imageOf(rs.Spec.Template.Spec) == p.image {
			updated, ready = rs.Status.Replicas, rs.Status.ReadyReplicas
		} else {
			others += rs.Status.Replicas
		}
	}
	return settled && updated >= target && ready >= target && updated+others <= p.replicas
}

// podsDone is the same seen from the pods: target new pods Ready, and no
// more pods than replicas (terminating ones aside).
func podsDone(s state, p plan, target int32) bool {
	var ready, n int32
	for _, pod := range all[*corev1.Pod](s) {
		if pod.DeletionTimestamp != nil {
			continue
		}
		n++
		if imageOf(pod.Spec) == p.image && podReady(pod) {
			ready++
		}
	}
	return ready >= target && n <= p.replicas
}
