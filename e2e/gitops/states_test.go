//go:build e2e

package gitops_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/deploy/captured"
	"github.com/sluicehq/sluice/deploy/karmada"
	"github.com/sluicehq/sluice/e2e/framework"
)

const demo = "rollouts-demo"

// Releases through every state of deploy/captured, each scenario in its
// own namespace, all at once. In each state the customizations run on the
// live object (fixture.capture); Argo CD's actions move the releases on.
func TestCaptureStates(t *testing.T) {
	var flows, ran atomic.Int32
	flow := func(t *testing.T, name string, fn func(*testing.T)) {
		flows.Add(1)
		t.Run(name, func(t *testing.T) {
			ran.Add(1)
			fn(t)
		})
	}
	t.Run("releases", func(t *testing.T) {
		flow(t, "manual canary: pause, resume, approve, promote, disable", manualCanary)
		flow(t, "analysis: completed, then abort, retry and cancel", analysisAbortRetry)
		flow(t, "analysis fails: rolled back, then reverted", analysisRollsBack)
		flow(t, "analysis error: retry and approve past it", analysisError)
		flow(t, "analysis inconclusive, then failed with onFailed Pause", analysisHolds)
		flow(t, "progress deadline", progressDeadline)
		flow(t, "analysis cannot start", analysisNotStarted)
		flow(t, "blue-green: approve, then a new version refused", blueGreen)
		for _, w := range heldWorkloads {
			flow(t, w.state, func(t *testing.T) { releaseHeld(t, w) })
		}
	})
	if t.Failed() || ran.Load() < flows.Load() {
		return // a failure, or -run chose some scenarios only
	}
	for _, s := range captured.States {
		if capturedStates[s.Name] == nil {
			t.Errorf("no scenario reached state %s", s.Name)
		}
	}
	t.Run("Karmada's aggregated statuses are valid on a hub", aggregatedStatuses)
}

// The statuses Karmada's aggregation writes to the hub's Rollout and
// AnalysisRun, from members in the states just captured, pass the API
// server's validation of the CRDs and are kept whole: a dry-run status
// update returns them unchanged.
func aggregatedStatuses(t *testing.T) {
	f := newSerialFixture(t, 2*time.Minute)
	f.create(deploymentYAML("web", 1))
	f.create(`
apiVersion: rollouts.kruise.io/v1beta1
kind: Rollout
metadata: {name: web}
spec:
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  strategy:
    canary:
      steps:
      - {replicas: 100%}
---
apiVersion: analysis.sluice.dev/v1alpha1
kind: AnalysisRun
metadata: {name: web}
spec:
  rollout: web
  metrics:
  - name: up
    successCondition: result[0] == 1
    provider:
      prometheus:
        address: http://127.0.0.1:9
        query: up
`)
	f.waitAtRest("web", "")
	for _, members := range [][]string{
		{"rollout-completed", "rollout-waiting-for-approval"},
		{"rollout-waiting-for-approval", "rollout-rolled-back", "rollout-analysis-running"},
		{"rollout-bluegreen-waiting-for-approval", "rollout-new-revision-refused"},
		{"rollout-analysis-error", "rollout-progress-deadline-exceeded", "rollout-finalising"},
		{"rollout-promoted", "rollout-rolled-back-then-reverted", "rollout-disabled"},
		{"analysisrun-successful", "analysisrun-failed"},
		{"analysisrun-running", "analysisrun-inconclusive", "analysisrun-error"},
	} {
		gvr, name := rolloutGVR, "web"
		if strings.HasPrefix(members[0], "analysisrun") {
			gvr = analysisRunGVR
		}
		var items []karmada.StatusItem
		for i, m := range members {
			st, err := f.karmada.ReflectStatus(capturedStates[m])
			if err != nil {
				t.Fatal(err)
			}
			items = append(items, karmada.StatusItem{ClusterName: fmt.Sprintf("member%d", i+1), Status: st, Applied: true})
		}
		err := retry.RetryOnConflict(framework.ConflictRetry, func() error {
			hub := f.get(gvr, name)
			aggregated, err := f.karmada.AggregateStatus(hub, items)
			if err != nil {
				t.Fatal(err)
			}
			stored, err := f.dyn.Resource(gvr).Namespace(f.ns).UpdateStatus(f.ctx, aggregated, metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}})
			if err != nil {
				return err
			}
			if !equalJSON(stored.Object["status"], aggregated.Object["status"]) {
				t.Errorf("%v: the hub stores\n%v\nof the aggregated status\n%v", members, stored.Object["status"], aggregated.Object["status"])
			}
			return nil
		})
		if err != nil {
			t.Errorf("%v: the hub refuses the aggregated status: %v", members, err)
		}
	}
}

// The Kruise guide's Example 1 as published (v1alpha1; step 1 waits for
// approval, steps 2 and 3 for 60s), driven by Argo CD's actions.
func manualCanary(t *testing.T) {
	f := newFixture(t, 6*time.Minute)
	f.createFile("docs/examples/guide/echoserver.yaml")
	f.createFile("docs/examples/guide/example1-ingress.yaml")
	f.createFile("docs/examples/guide/example1-rollout.yaml")
	f.capture("rollout-no-release", f.waitAtRest(demo, ""))
	echoserver := readFile(t, "docs/examples/guide/echoserver.yaml")
	f.waitPods("echoserver", imageV1, 5)
	f.capture("deployment-at-rest", f.get(deploymentGVR, "echoserver"), desiredOf(t, echoserver, imageV1))

	f.setImage(deploymentGVR, "echoserver", imageV2)
	f.capture("rollout-waiting-for-pods", f.rec.first(f.ctx, t, rolloutGVR, "waiting for pods", holding(v1beta1.HoldWaitingForPods)))
	f.capture("rollout-traffic-grace-period", f.rec.first(f.ctx, t, rolloutGVR, "waiting out the grace period", holding(v1beta1.HoldTrafficGracePeriod)))
	f.capture("rollout-waiting-for-approval", f.waitHold(demo, v1beta1.HoldWaitingForApproval))
	f.capture("rollout-waiting-for-approval-v1alpha1", f.get(rolloutV1alpha1, demo))
	d, desired := f.get(deploymentGVR, "echoserver"), desiredOf(t, echoserver, imageV2)
	f.capture("deployment-in-release", d, desired)
	f.updateRetained(deploymentGVR, d, desired)

	f.act(demo, "pause")
	f.capture("rollout-paused-by-spec", f.waitHold(demo, v1beta1.HoldPausedBySpec))
	f.act(demo, "resume")
	f.waitHold(demo, v1beta1.HoldWaitingForApproval)
	f.act(demo, "approve")
	f.capture("rollout-timed-pause", f.waitRollout(demo, "step 2's timed pause", func(r *v1beta1.Rollout) bool {
		return r.Status.CurrentStepIndex == 2 && holdOf(r) == v1beta1.HoldTimedPause
	}))
	f.act(demo, "promote")
	f.capture("rollout-promoted", f.waitAtRest(demo, v1beta1.OutcomePromoted))
	f.waitPods("echoserver", imageV2, 5)

	f.patch(rolloutGVR, demo, `{"spec":{"disabled":true}}`)
	f.capture("rollout-disabled", f.waitRollout(demo, "disabled", func(r *v1beta1.Rollout) bool {
		return r.Status.Phase == v1beta1.RolloutPhaseDisabled && r.Status.ObservedGeneration == r.Generation
	}))
}

// docs/examples' Example 1 with analysis after every step: a healthy
// version completes; the next one is aborted and retried by Argo CD's
// actions, then cancelled by re-applying the stable template.
func analysisAbortRetry(t *testing.T) {
	f := newFixture(t, 6*time.Minute)
	f.createAnalysisExample(false)
	f.setImage(deploymentGVR, "echoserver", imageV2)
	f.capture("rollout-analysis-running", f.rec.first(f.ctx, t, rolloutGVR, "analysing", holding(v1beta1.HoldAnalysisRunning)))
	f.capture("analysisrun-running", f.rec.first(f.ctx, t, analysisRunGVR, "measuring", func(u *unstructured.Unstructured) bool {
		results, _, _ := unstructured.NestedSlice(u.Object, "status", "metricResults")
		if runPhase(u) != analysisv1alpha1.AnalysisRunning || len(results) == 0 {
			return false
		}
		measurements, _, _ := unstructured.NestedSlice(results[0].(map[string]any), "measurements")
		return len(measurements) > 0
	}))
	completed := f.waitAtRest(demo, v1beta1.OutcomeCompleted)
	f.capture("rollout-finalising", f.rec.first(f.ctx, t, rolloutGVR, "finalising", func(u *unstructured.Unstructured) bool {
		r := typed(u)
		return r.Status.Phase == v1beta1.RolloutPhaseProgressing && r.Status.ProgressingReason() == v1beta1.ProgressingReasonFinalising
	}))
	f.capture("rollout-completed", completed)
	f.capture("analysisrun-successful", f.rec.first(f.ctx, t, analysisRunGVR, "successful", runIn(analysisv1alpha1.AnalysisSuccessful)))

	f.setImage(deploymentGVR, "echoserver", imageV3)
	f.waitRollout(demo, "the release of "+imageV3+" at step 1", func(r *v1beta1.Rollout) bool {
		return holdOf(r) == v1beta1.HoldAnalysisRunning && r.Status.CurrentStepIndex == 1
	})
	f.act(demo, "abort")
	aborted := f.waitHold(demo, v1beta1.HoldAborted)
	if got := outcomeOf(typed(aborted)); got != v1beta1.OutcomeAborted {
		t.Errorf("abort recorded outcome %q, want Aborted", got)
	}
	f.capture("rollout-aborted", aborted)
	f.waitPods("echoserver", imageV3, 0)

	f.act(demo, "retry")
	f.waitRollout(demo, "the release restarted", func(r *v1beta1.Rollout) bool {
		return r.Status.Phase == v1beta1.RolloutPhaseProgressing && holdOf(r) != v1beta1.HoldAborted &&
			r.Status.Analysis != nil && r.Status.Analysis.Attempt == 1
	})
	f.waitPods("echoserver", imageV3, 1)
	f.setImage(deploymentGVR, "echoserver", imageV2)
	f.capture("rollout-cancelled", f.waitAtRest(demo, v1beta1.OutcomeCancelled))
	f.waitPods("echoserver", imageV2, 5)
}

// A version that answers 20% of requests with errors is rolled back by
// its analysis; re-applying the stable template ends the release.
func analysisRollsBack(t *testing.T) {
	f := newFixture(t, 5*time.Minute)
	f.createAnalysisExample(false)
	f.setImage(deploymentGVR, "echoserver", imageBad)
	f.capture("rollout-rolled-back", f.waitRollout(demo, "rolled back", func(r *v1beta1.Rollout) bool {
		return holdOf(r) == v1beta1.HoldAborted && outcomeOf(r) == v1beta1.OutcomeRolledBack
	}))
	f.capture("analysisrun-failed", f.rec.first(f.ctx, t, analysisRunGVR, "failed", runIn(analysisv1alpha1.AnalysisFailed)))
	f.setImage(deploymentGVR, "echoserver", imageV1)
	f.capture("rollout-rolled-back-then-reverted", f.waitAtRest(demo, v1beta1.OutcomeRolledBack))
}

// An analysis whose Prometheus does not answer holds the release; Argo
// CD's retry runs it again, its approve goes on past it.
func analysisError(t *testing.T) {
	f := newFixture(t, 5*time.Minute)
	f.createAnalysisExample(true)
	f.setImage(deploymentGVR, "echoserver", imageV2)
	held := f.waitHold(demo, v1beta1.HoldAnalysisError)
	f.capture("rollout-analysis-error", held)
	f.capture("analysisrun-error", f.rec.first(f.ctx, t, analysisRunGVR, "an error", runIn(analysisv1alpha1.AnalysisError)))

	f.act(demo, "retry")
	retried := typed(held).Status.HoldOf().Run + "-r1"
	f.waitRollout(demo, "held again by the retried run "+retried, func(r *v1beta1.Rollout) bool {
		h := r.Status.HoldOf()
		return h != nil && h.Reason == v1beta1.HoldAnalysisError && h.Run == retried
	})
	f.act(demo, "approve")
	f.waitRollout(demo, "step 2", func(r *v1beta1.Rollout) bool { return r.Status.CurrentStepIndex == 2 })
}

// Step 1's analysis can neither pass nor fail a version with 20% errors
// (success below 5%, failure above 50%): held Inconclusive. Approved past
// it, step 2's analysis fails, and its policy onFailed: Pause holds it.
func analysisHolds(t *testing.T) {
	f := newFixture(t, 5*time.Minute)
	f.create(deploymentYAML("web", 3))
	f.createErrorRate()
	f.create(`
apiVersion: analysis.sluice.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: error-rate-bounds}
spec:
  metrics:
  - name: error-rate
    initialDelay: 10s
    interval: 1s
    count: 2
    successCondition: result[0] < 0.05
    failureCondition: result[0] > 0.5
    provider:
      prometheus:
        query: |
          sum(rate(http_requests_total{namespace="{{ .namespace }}",pod_template_hash="{{ .canaryRevision }}",code=~"5.."}[10s]))
            / sum(rate(http_requests_total{namespace="{{ .namespace }}",pod_template_hash="{{ .canaryRevision }}"}[10s]))
---
apiVersion: rollouts.kruise.io/v1beta1
kind: Rollout
metadata: {name: web}
spec:
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  strategy:
    canary:
      steps:
      - replicas: 1
        pause: {duration: 0}
        analysis: {templates: [{templateName: error-rate-bounds}]}
      - replicas: 2
        pause: {duration: 0}
        analysis: {templates: [{templateName: error-rate}], onFailed: Pause}
      - replicas: 100%
`)
	f.waitAtRest("web", "")
	f.setImage(deploymentGVR, "web", imageBad)
	f.capture("rollout-analysis-inconclusive", f.waitHold("web", v1beta1.HoldAnalysisInconclusive))
	f.capture("analysisrun-inconclusive", f.rec.first(f.ctx, t, analysisRunGVR, "inconclusive", runIn(analysisv1alpha1.AnalysisInconclusive)))
	f.act("web", "approve")
	f.capture("rollout-analysis-failed-paused", f.waitHold("web", v1beta1.HoldAnalysisFailedPaused))
}

// A version whose pods never become ready misses its progress deadline.
func progressDeadline(t *testing.T) {
	f := newFixture(t, 4*time.Minute)
	f.create(deploymentYAML("web", 3))
	f.create(`
apiVersion: rollouts.kruise.io/v1beta1
kind: Rollout
metadata: {name: web}
spec:
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  strategy:
    progressDeadlineSeconds: 3
    canary:
      steps:
      - {replicas: 1, pause: {duration: 0}}
      - {replicas: 100%}
`)
	f.waitAtRest("web", "")
	f.patch(deploymentGVR, "web", fmt.Sprintf(`{"spec":{"template":{"metadata":{"labels":{%q:"true"}},"spec":{"containers":[{"name":"web","image":%q}]}}}}`,
		framework.NeverReadyLabel, imageV2))
	f.capture("rollout-progress-deadline-exceeded", f.waitHold("web", v1beta1.HoldProgressDeadlineExceeded))
}

// A step's AnalysisTemplate deleted before the release: its run cannot be
// created.
func analysisNotStarted(t *testing.T) {
	f := newFixture(t, 4*time.Minute)
	f.create(deploymentYAML("web", 2))
	f.createFile("docs/examples/error-rate-template.yaml")
	f.create(`
apiVersion: rollouts.kruise.io/v1beta1
kind: Rollout
metadata: {name: web}
spec:
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  strategy:
    canary:
      steps:
      - replicas: 1
        analysis: {templates: [{templateName: error-rate}]}
      - replicas: 100%
`)
	f.waitAtRest("web", "")
	tmpl := &analysisv1alpha1.AnalysisTemplate{}
	tmpl.Namespace, tmpl.Name = f.ns, "error-rate"
	if err := f.c.Delete(f.ctx, tmpl); err != nil {
		t.Fatal(err)
	}
	f.setImage(deploymentGVR, "web", imageV2)
	f.capture("rollout-analysis-not-started", f.waitHold("web", v1beta1.HoldAnalysisNotStarted))
}

// Blue-green: Argo CD's approve patches blueGreenStatus; a new version
// mid-release is refused.
func blueGreen(t *testing.T) {
	f := newFixture(t, 5*time.Minute)
	web := deploymentYAML("web", 4)
	f.create(web)
	f.create(`
apiVersion: rollouts.kruise.io/v1beta1
kind: Rollout
metadata: {name: web}
spec:
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  strategy:
    blueGreen:
      steps:
      - {replicas: 50%, pause: {}}
      - {replicas: 100%, pause: {}}
      - {replicas: 100%}
`)
	f.waitAtRest("web", "")
	f.waitPods("web", imageV1, 4)
	f.setImage(deploymentGVR, "web", imageV2)
	f.capture("rollout-bluegreen-waiting-for-approval", f.waitHold("web", v1beta1.HoldWaitingForApproval))
	d, desired := f.get(deploymentGVR, "web"), desiredOf(t, web, imageV2)
	f.capture("deployment-bluegreen-in-release", d, desired)
	f.updateRetained(deploymentGVR, d, desired)
	f.waitPods("web", imageV1, 4)

	f.act("web", "approve")
	f.waitRollout("web", "step 2 waiting for approval", func(r *v1beta1.Rollout) bool {
		return r.Status.CurrentStepIndex == 2 && holdOf(r) == v1beta1.HoldWaitingForApproval
	})
	f.setImage(deploymentGVR, "web", imageV3)
	f.capture("rollout-new-revision-refused", f.waitHold("web", v1beta1.HoldNewRevisionRefused))
}

// heldWorkload is a workload kind released by a partition.
type heldWorkload struct {
	state    string
	gvr      schema.GroupVersionResource
	manifest string
}

var heldWorkloads = []heldWorkload{
	{"statefulset-in-release", statefulSetGVR, `apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  replicas: 3
  serviceName: web
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: ` + imageV1 + `}
`},
	{"cloneset-in-release", cloneSetGVR, `apiVersion: apps.kruise.io/v1alpha1
kind: CloneSet
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: ` + imageV1 + `}
`},
	{"advanced-statefulset-in-release", kruiseStatefulGVR, `apiVersion: apps.kruise.io/v1beta1
kind: StatefulSet
metadata: {name: web}
spec:
  replicas: 3
  serviceName: web
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: ` + imageV1 + `}
`},
}

// A workload held at step 1 of 2: its capture, and Karmada's update of it
// with the hub's manifest, after which the batch still holds.
func releaseHeld(t *testing.T, w heldWorkload) {
	f := newFixture(t, 4*time.Minute)
	f.create(w.manifest)
	kind := f.get(w.gvr, "web").GetKind()
	f.create(fmt.Sprintf(`
apiVersion: rollouts.kruise.io/v1beta1
kind: Rollout
metadata: {name: web}
spec:
  workloadRef: {apiVersion: %s, kind: %s, name: web}
  strategy:
    canary:
      steps:
      - {replicas: 1, pause: {}}
      - {replicas: 100%%}
`, w.gvr.GroupVersion(), kind))
	f.waitAtRest("web", "")
	f.waitPods("web", imageV1, 3)
	f.setImage(w.gvr, "web", imageV2)
	f.waitHold("web", v1beta1.HoldWaitingForApproval)
	f.waitPods("web", imageV2, 1)
	observed, desired := f.get(w.gvr, "web"), desiredOf(t, w.manifest, imageV2)
	f.capture(w.state, observed, desired)
	f.updateRetained(w.gvr, observed, desired)
	f.waitHold("web", v1beta1.HoldWaitingForApproval)
	f.waitPods("web", imageV2, 1)
}

// createAnalysisExample creates docs/examples' Example 1 with analysis
// (an unreachable Prometheus when unreachable) and waits until it is at
// rest on 5 pods.
func (f *fixture) createAnalysisExample(unreachable bool) {
	f.t.Helper()
	f.createFile("docs/examples/guide/echoserver.yaml")
	f.createFile("docs/examples/guide/example1-ingress.yaml")
	if unreachable {
		f.create(framework.UnreachableTemplate)
	} else {
		f.createErrorRate()
	}
	f.createFile("docs/examples/example1-analysis-rollout.yaml")
	f.waitAtRest(demo, "")
	f.waitPods("echoserver", imageV1, 5)
}

// createErrorRate creates docs/examples' error-rate AnalysisTemplate with
// a first measurement after 10s instead of 4s: with a dozen releases at
// once on two cores, Prometheus may not yet have two scrapes of a new
// pod after 4s, and an empty result is Inconclusive, not the verdict a
// scenario waits for.
func (f *fixture) createErrorRate() {
	f.t.Helper()
	tmpl := strings.ReplaceAll(readFile(f.t, "docs/examples/error-rate-template.yaml"), "initialDelay: 4s", "initialDelay: 10s")
	if !strings.Contains(tmpl, "initialDelay: 10s") {
		f.t.Fatal("docs/examples/error-rate-template.yaml has no initialDelay: 4s any more")
	}
	f.create(tmpl)
}

// deploymentYAML is a Deployment of replicas pods of imageV1 labelled
// app: name.
func deploymentYAML(name string, replicas int) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s, labels: {app: %[1]s}}
spec:
  replicas: %[2]d
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec:
      containers:
      - {name: %[1]s, image: %[3]s}
`, name, replicas, imageV1)
}

func holding(reason v1beta1.HoldReason) func(*unstructured.Unstructured) bool {
	return func(u *unstructured.Unstructured) bool {
		r := typed(u)
		return r.Status.Phase == v1beta1.RolloutPhaseProgressing && holdOf(r) == reason
	}
}

func runPhase(u *unstructured.Unstructured) analysisv1alpha1.AnalysisPhase {
	p, _, _ := unstructured.NestedString(u.Object, "status", "phase")
	return analysisv1alpha1.AnalysisPhase(p)
}

func runIn(phase analysisv1alpha1.AnalysisPhase) func(*unstructured.Unstructured) bool {
	return func(u *unstructured.Unstructured) bool { return runPhase(u) == phase }
}

func readFile(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(framework.RepoRoot(), rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// pods counts the running pods labelled app (not being deleted) by image.
func (f *fixture) pods(app string) map[string]int {
	f.t.Helper()
	var list corev1.PodList
	if err := f.c.List(f.ctx, &list, client.InNamespace(f.ns), client.MatchingLabels{"app": app}); err != nil {
		f.t.Fatal(err)
	}
	out := map[string]int{}
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			out[p.Spec.Containers[0].Image]++
		}
	}
	return out
}

func (f *fixture) waitPods(app, image string, want int) {
	f.t.Helper()
	if err := framework.Poll(f.ctx, 2*time.Minute, func() (bool, error) { return f.pods(app)[image] == want, nil }); err != nil {
		f.t.Fatalf("pods of %s: %v, want %d of %s", app, f.pods(app), want, strings.TrimPrefix(image, "openkruise-registry.cn-shanghai.cr.aliyuncs.com/openkruise/"))
	}
}
