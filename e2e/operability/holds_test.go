//go:build e2e

package operability_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/cmd/kubectl-sluice/cli"
	"github.com/sluicehq/sluice/devenv/manifest"
	"github.com/sluicehq/sluice/docs/examples"
	"github.com/sluicehq/sluice/e2e/framework"
	"github.com/sluicehq/sluice/e2e/invariants"
)

// holdCase is a hold reason a user can meet, and how a real release gets
// there.
type holdCase struct {
	name   string
	reason v1beta1.HoldReason
	// start creates the objects in h's namespace (the Rollout is "app" of
	// the Deployment "echoserver") and starts the release, leaving it in
	// reason.
	start func(h *holdFixture)
	// alerts fire for the release in this hold, and no other does:
	// "Alert", or "Alert/Reason" for the alerts with a reason label.
	alerts []string
	// outcome is status.lastRelease.outcome in the hold, when one is set.
	outcome v1beta1.ReleaseOutcome
	// then, when set, runs once every reader agreed.
	then func(h *holdFixture)
	opts []invariants.Option
}

var holdCases = []holdCase{
	{name: "WaitingForPods", reason: v1beta1.HoldWaitingForPods, start: func(h *holdFixture) {
		h.create(deploymentYAML, canary(timedSteps))
		h.release(imageRepo+"1.10.3", true) // its pods never get ready
	}},
	{name: "TrafficGracePeriod", reason: v1beta1.HoldTrafficGracePeriod, start: func(h *holdFixture) {
		h.create(deploymentYAML, serviceYAML, ingressYAML(), routed(canary(`
      - {replicas: 1, traffic: 20%, pause: {duration: 600}}
      - {replicas: 100%, traffic: 100%}
`), 600))
		h.release(imageRepo+"1.10.3", false) // the stable Service pinned, a grace period of 10 minutes
	}},
	{name: "AnalysisRunning", reason: v1beta1.HoldAnalysisRunning, start: func(h *holdFixture) {
		h.create(deploymentYAML, analysisTemplate("result[0] > 0", "vector(1)", 1000), canary(analysedSteps("")))
		h.release(imageRepo+"1.10.3", false)
	}},
	{name: "TimedPause", reason: v1beta1.HoldTimedPause, start: func(h *holdFixture) {
		h.create(deploymentYAML, canary(timedSteps))
		h.release(imageRepo+"1.10.3", false)
	}},
	{name: "WaitingForApproval", reason: v1beta1.HoldWaitingForApproval, alerts: []string{"SluiceReleasePausedTooLong/WaitingForApproval"}, start: func(h *holdFixture) {
		h.create(deploymentYAML, canary(`
      - {replicas: 1, pause: {}}
      - {replicas: 100%}
`))
		h.release(imageRepo+"1.10.3", false)
	}, then: func(h *holdFixture) {
		h.plugin(cli.ExitRefused, "retry", "waiting for WaitingForApproval")
	}},
	{name: "PausedBySpec", reason: v1beta1.HoldPausedBySpec, alerts: []string{"SluiceReleasePausedTooLong/PausedBySpec"}, start: func(h *holdFixture) {
		h.create(deploymentYAML, canary(timedSteps))
		h.release(imageRepo+"1.10.3", false)
		h.waitHold(v1beta1.HoldTimedPause)
		h.plugin(cli.ExitOK, "pause")
	}, then: func(h *holdFixture) {
		h.plugin(cli.ExitRefused, "approve", "resume it first")
	}},
	{name: "AnalysisInconclusive", reason: v1beta1.HoldAnalysisInconclusive, alerts: []string{"SluiceReleasePausedTooLong/AnalysisInconclusive"}, start: func(h *holdFixture) {
		h.create(deploymentYAML, analysisTemplate("result[0] > 0", "absent(vector(1))", 1), canary(analysedSteps("")))
		h.release(imageRepo+"1.10.3", false)
	}},
	{name: "AnalysisError", reason: v1beta1.HoldAnalysisError, alerts: []string{"SluiceAnalysisErroring", "SluiceReleasePausedTooLong/AnalysisError"}, start: func(h *holdFixture) {
		h.create(deploymentYAML, strings.Replace(framework.UnreachableTemplate, "name: error-rate}", "name: check}", 1), canary(analysedSteps("")))
		h.release(imageRepo+"1.10.3", false)
	}},
	{name: "AnalysisFailedPaused", reason: v1beta1.HoldAnalysisFailedPaused, alerts: []string{"SluiceReleasePausedTooLong/AnalysisFailedPaused"}, start: func(h *holdFixture) {
		h.create(deploymentYAML, analysisTemplate("result[0] < 0", "vector(1)", 1), canary(analysedSteps(", onFailed: Pause")))
		h.release(imageRepo+"1.10.3", false)
	}, then: func(h *holdFixture) {
		h.plugin(cli.ExitOK, "approve") // past the verdict, recorded
		h.waitRollout("the approval past the Failed verdict", func(r *v1beta1.Rollout) bool { return r.Status.CurrentStepIndex == 2 })
	}},
	{name: "AnalysisNotStarted", reason: v1beta1.HoldAnalysisNotStarted, alerts: []string{"SluiceReleasePausedTooLong/AnalysisNotStarted"}, start: func(h *holdFixture) {
		h.create(deploymentYAML, analysisTemplate("result[0] > 0", "vector(1)", 1), canary(analysedSteps("")))
		// Admission wants the template when the Rollout is written; it
		// goes before the release needs it.
		h.delete(&analysisv1alpha1.AnalysisTemplate{ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: "check"}})
		h.release(imageRepo+"1.10.3", false)
	}},
	{name: "Aborted by a person", reason: v1beta1.HoldAborted, outcome: v1beta1.OutcomeAborted, start: func(h *holdFixture) {
		h.create(deploymentYAML, canary(timedSteps))
		h.release(imageRepo+"1.10.3", false)
		h.waitHold(v1beta1.HoldTimedPause)
		h.plugin(cli.ExitOK, "abort")
	}},
	{name: "Aborted by its analysis", reason: v1beta1.HoldAborted, outcome: v1beta1.OutcomeRolledBack, alerts: []string{"SluiceReleaseAbortedByAnalysis"}, start: func(h *holdFixture) {
		h.create(deploymentYAML, analysisTemplate("result[0] < 0", "vector(1)", 1), canary(analysedSteps("")))
		h.release(imageRepo+"1.10.3", false)
	}},
	{name: "ProgressDeadlineExceeded", reason: v1beta1.HoldProgressDeadlineExceeded,
		alerts: []string{"SluiceReleaseProgressDeadlineExceeded", "SluiceReleasePausedTooLong/ProgressDeadlineExceeded"}, start: func(h *holdFixture) {
			h.create(deploymentYAML, strings.Replace(canary(timedSteps), "  strategy:\n", "  strategy:\n    progressDeadlineSeconds: 3\n", 1))
			h.release(imageRepo+"1.10.3", true)
		}},
	{name: "TrafficError", reason: v1beta1.HoldTrafficError, alerts: []string{"SluiceTrafficRoutingFailing"}, start: func(h *holdFixture) {
		// The Rollout routes through an Ingress that is not there.
		h.create(deploymentYAML, serviceYAML, routed(canary(`
      - {replicas: 1, traffic: 20%, pause: {duration: 600}}
      - {replicas: 100%, traffic: 100%}
`), 1))
		h.release(imageRepo+"1.10.3", false)
	}, then: func(h *holdFixture) {
		// It recovers once the Ingress exists.
		h.create(ingressYAML())
		h.waitHold(v1beta1.HoldTimedPause)
	}},
	{name: "NewRevisionRefused", reason: v1beta1.HoldNewRevisionRefused, alerts: []string{"SluiceReleasePausedTooLong/NewRevisionRefused"}, start: func(h *holdFixture) {
		h.create(deploymentYAML, rolloutHead+`    blueGreen:
      steps:
      - {replicas: 100%, pause: {duration: 600}}
      - {replicas: 100%}
`)
		h.release(imageRepo+"1.10.3", false)
		h.waitHold(v1beta1.HoldTimedPause)
		h.release(imageRepo+"1.10.4", false)
	}, then: func(h *holdFixture) {
		h.plugin(cli.ExitRefused, "abort", "a blue-green release takes no new version mid-release")
	}},
	{name: "WorkloadError", reason: v1beta1.HoldWorkloadError, alerts: []string{"SluiceWorkloadFailing/WorkloadError"}, start: func(h *holdFixture) {
		h.create(deploymentYAML, canary(timedSteps))
		h.refuseRecreate()
		h.release(imageRepo+"1.10.3", false) // preparing the Deployment (Recreate, paused) is refused
	}, then: func(h *holdFixture) {
		if d := h.detail(); !strings.Contains(d, "preparing the workload failed") || !strings.Contains(d, "Sluice e2e refuses Recreate") {
			h.t.Errorf("hold detail %q does not say the workload write failed and why", d)
		}
	}},
	{name: "WorkloadNotFound", reason: v1beta1.HoldWorkloadNotFound, alerts: []string{"SluiceWorkloadFailing/WorkloadNotFound"}, start: func(h *holdFixture) {
		h.create(deploymentYAML, canary(timedSteps))
		h.release(imageRepo+"1.10.3", false)
		h.waitHold(v1beta1.HoldTimedPause)
		h.delete(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: "echoserver"}})
	}, opts: []invariants.Option{invariants.Allowing(invariants.Availability, "the test deletes the workload mid-release")}},
}

// TestEveryHoldReason brings a real release into each hold reason a user
// can meet (WorkloadError through a policy refusing the workload write),
// side by side, and checks that every reader agrees on it:
// status.release.hold, the Waiting condition (with observedGeneration),
// the manager's metrics (sluice_rollout_waiting{reason} and its since,
// sluice_rollout_paused, sluice_rollout_aborted), what Prometheus scraped,
// kubectl sluice get and status; and that exactly the alerts meant for it
// fire, in a Prometheus loading the shipped rules (every for: cut to
// shortenedFor).
func TestEveryHoldReason(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	t.Cleanup(cancel)
	prom := startPrometheus(ctx, t, shortFor(t, filepath.Join(framework.RepoRoot(), "deploy", "prometheus", "alerts.yaml"), shortenedFor))
	api := promv1.NewAPI(mustClient(t, prom.URL()))
	expectData(ctx, t, api, "the manager's scrape", `up{job="sluice-controller"} == 1`, "")

	for _, c := range holdCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h := newHoldFixture(ctx, t, api, c.opts...)
			c.start(h)
			r := h.waitHold(c.reason)
			h.expectCondition(r, c.reason)
			h.expectManagerMetrics(c.reason)
			h.expectScraped(c.reason)
			h.expectPlugin(c.reason)
			if c.outcome != "" {
				if l := h.rollout().Status.LastRelease; l == nil || l.Outcome != c.outcome {
					t.Errorf("status.lastRelease %+v, want outcome %s", l, c.outcome)
				}
			}
			h.expectAlerts(c.alerts)
			if c.then != nil {
				c.then(h)
			}
		})
	}
}

// holdFixture is one release's namespace, with the Prometheus that
// evaluates the alert rules.
type holdFixture struct {
	t     *testing.T
	ctx   context.Context
	ns    string
	c     client.Client
	api   promv1.API
	begun time.Time
}

func newHoldFixture(ctx context.Context, t *testing.T, api promv1.API, opts ...invariants.Option) *holdFixture {
	ctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(cancel)
	return &holdFixture{t: t, ctx: ctx, ns: env.Namespace(t, opts...), c: env.Client, api: api, begun: time.Now()}
}

const (
	deploymentYAML = `apiVersion: apps/v1
kind: Deployment
metadata: {name: echoserver, labels: {app: echoserver}}
spec:
  replicas: 2
  selector: {matchLabels: {app: echoserver}}
  template:
    metadata: {labels: {app: echoserver}}
    spec:
      containers:
      - {name: echoserver, image: "` + imageRepo + `1.10.2", ports: [{containerPort: 8080}]}
`
	serviceYAML = `apiVersion: v1
kind: Service
metadata: {name: echoserver}
spec:
  selector: {app: echoserver}
  ports: [{name: http, port: 80, targetPort: 8080}]
`
	rolloutHead = `apiVersion: rollouts.kruise.io/v1beta1
kind: Rollout
metadata: {name: app}
spec:
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: echoserver}
  strategy:
`
	// timedSteps hold at step 1 for 10 minutes.
	timedSteps = `
      - {replicas: 1, pause: {duration: 600}}
      - {replicas: 100%}
`
)

func canary(steps string) string {
	return rolloutHead + "    canary:\n      steps:" + steps
}

// routed adds the guide's Ingress routing, with a grace period.
func routed(rollout string, grace int) string {
	return rollout + fmt.Sprintf("      trafficRoutings:\n      - {service: echoserver, gracePeriodSeconds: %d, ingress: {name: echoserver}}\n", grace)
}

// analysedSteps analyse step 1 with the template "check"; policy adds to
// the analysis (", onFailed: Pause").
func analysedSteps(policy string) string {
	return fmt.Sprintf(`
      - {replicas: 1, pause: {duration: 600}, analysis: {templates: [{templateName: check}]%s}}
      - {replicas: 100%%}
`, policy)
}

// analysisTemplate is the template "check": count measurements of query
// a second apart, passing when condition holds.
func analysisTemplate(condition, query string, count int) string {
	return fmt.Sprintf(`apiVersion: analysis.sluice.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: check}
spec:
  metrics:
  - name: check
    interval: 1s
    count: %d
    successCondition: %s
    provider: {prometheus: {query: %q}}
`, count, condition, query)
}

func ingressYAML() string {
	raw, err := examples.File("guide/example1-ingress.yaml")
	if err != nil {
		panic(err)
	}
	return string(raw)
}

func (h *holdFixture) create(docs ...string) {
	h.t.Helper()
	for _, d := range docs {
		if _, err := manifest.Create(h.ctx, h.c, h.ns, []byte(d)); err != nil {
			h.t.Fatal(err)
		}
	}
	if strings.Contains(strings.Join(docs, "\n"), "kind: Rollout\n") {
		h.waitRollout("Healthy", func(r *v1beta1.Rollout) bool { return r.Status.Phase == v1beta1.RolloutPhaseHealthy })
	}
}

// refuseRecreate makes the API server refuse, in this namespace, any
// Deployment update to the Recreate strategy (what Sluice's Prepare
// writes), with a ValidatingAdmissionPolicy, until the test ends.
func (h *holdFixture) refuseRecreate() {
	h.t.Helper()
	name := "e2e-refuse-recreate-" + h.ns
	fail := admissionregistrationv1.Fail
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: &fail,
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Update},
					Rule:       admissionregistrationv1.Rule{APIGroups: []string{"apps"}, APIVersions: []string{"v1"}, Resources: []string{"deployments"}},
				},
			}}},
			Validations: []admissionregistrationv1.Validation{{
				Expression: "object.spec.strategy.type != 'Recreate'",
				Message:    "Sluice e2e refuses Recreate",
			}},
		},
	}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        name,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
			MatchResources: &admissionregistrationv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{corev1.LabelMetadataName: h.ns},
			}},
		},
	}
	for _, o := range []client.Object{policy, binding} {
		if err := h.c.Create(h.ctx, o); err != nil {
			h.t.Fatal(err)
		}
		h.t.Cleanup(func() { _ = h.c.Delete(context.Background(), o) })
	}
	// The API server takes the policy up asynchronously: wait until a
	// dry-run of Prepare's write is refused.
	err := framework.Poll(h.ctx, time.Minute, func() (bool, error) {
		d := &appsv1.Deployment{}
		if err := h.c.Get(h.ctx, client.ObjectKey{Namespace: h.ns, Name: "echoserver"}, d); err != nil {
			return false, err
		}
		d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
		err := h.c.Update(h.ctx, d, client.DryRunAll)
		return err != nil && strings.Contains(err.Error(), "Sluice e2e refuses Recreate"), nil
	})
	if err != nil {
		h.t.Fatalf("the policy refusing Recreate never took effect: %v", err)
	}
}

// detail is the hold's detail now.
func (h *holdFixture) detail() string {
	if hold := h.rollout().Status.HoldOf(); hold != nil {
		return hold.Message
	}
	return ""
}

func (h *holdFixture) delete(o client.Object) {
	h.t.Helper()
	if err := h.c.Delete(h.ctx, o); err != nil {
		h.t.Fatal(err)
	}
}

// release gives the Deployment image (whose pods never get ready with
// neverReady), as an apply of an edited manifest would.
func (h *holdFixture) release(image string, neverReady bool) {
	h.t.Helper()
	d := &appsv1.Deployment{}
	if err := h.c.Get(h.ctx, client.ObjectKey{Namespace: h.ns, Name: "echoserver"}, d); err != nil {
		h.t.Fatal(err)
	}
	patch := client.MergeFrom(d.DeepCopy())
	d.Spec.Template.Spec.Containers[0].Image = image
	if neverReady {
		d.Spec.Template.Labels[framework.NeverReadyLabel] = "true"
	}
	if err := h.c.Patch(h.ctx, d, patch); err != nil {
		h.t.Fatal(err)
	}
}

func (h *holdFixture) rollout() *v1beta1.Rollout {
	h.t.Helper()
	r := &v1beta1.Rollout{}
	if err := h.c.Get(h.ctx, client.ObjectKey{Namespace: h.ns, Name: "app"}, r); err != nil {
		h.t.Fatal(err)
	}
	return r
}

func (h *holdFixture) waitRollout(what string, cond func(*v1beta1.Rollout) bool) *v1beta1.Rollout {
	h.t.Helper()
	r, err := framework.WaitRollout(h.ctx, h.c, client.ObjectKey{Namespace: h.ns, Name: "app"}, 3*time.Minute, cond)
	if err != nil {
		h.t.Fatalf("waiting for %s: %v\nstatus.release %+v", what, err, r.Status.Release)
	}
	return r
}

// waitHold waits until the release waits for reason.
func (h *holdFixture) waitHold(reason v1beta1.HoldReason) *v1beta1.Rollout {
	h.t.Helper()
	return h.waitRollout("status.release.hold.reason "+string(reason), func(r *v1beta1.Rollout) bool {
		hold := r.Status.HoldOf()
		return r.Status.InProgress() && hold != nil && hold.Reason == reason
	})
}

// expectCondition: the Waiting condition mirrors the hold, for the
// Rollout's generation.
func (h *holdFixture) expectCondition(r *v1beta1.Rollout, reason v1beta1.HoldReason) {
	h.t.Helper()
	c := r.Status.Condition(v1beta1.RolloutConditionWaiting)
	switch {
	case c == nil:
		h.t.Errorf("no Waiting condition while the release waits for %s", reason)
	case c.Status != corev1.ConditionTrue || c.Reason != string(reason) || c.ObservedGeneration != r.Generation:
		h.t.Errorf("Waiting condition %s %s observedGeneration %d, want True %s %d", c.Status, c.Reason, c.ObservedGeneration, reason, r.Generation)
	}
	if hold := r.Status.HoldOf(); hold.Since.IsZero() || hold.Step != r.Status.CurrentStepIndex {
		h.t.Errorf("hold %+v at step %d", hold, r.Status.CurrentStepIndex)
	}
}

// expectManagerMetrics: the manager's /metrics say what the status says,
// read around the same scrape (the hold must not change in between).
func (h *holdFixture) expectManagerMetrics(reason v1beta1.HoldReason) {
	h.t.Helper()
	var got, want string
	err := framework.Poll(h.ctx, time.Minute, func() (bool, error) {
		before := h.rollout().Status.HoldOf()
		series := h.managerGauges()
		after := h.rollout().Status.HoldOf()
		if before == nil || after == nil || before.Reason != after.Reason || !before.Since.Equal(&after.Since) || before.Reason != reason {
			return false, nil
		}
		paused := reason.NeedsPerson() && reason != v1beta1.HoldAborted
		want = fmt.Sprintf("aborted=%v paused=%v waiting=[%s] since=%d", reason == v1beta1.HoldAborted, paused, reason, after.Since.Unix())
		got = fmt.Sprintf("aborted=%v paused=%v waiting=%v since=%d", series["sluice_rollout_aborted"] == 1, series["sluice_rollout_paused"] == 1,
			waitingReasons(series), int64(series["sluice_rollout_waiting_since_seconds/"+string(reason)]))
		return got == want, nil
	})
	if err != nil {
		h.t.Errorf("the manager's metrics say %s, the status %s", got, want)
	}
}

// managerGauges reads this release's gauges from the manager's /metrics:
// name, or name/reason for the series with a reason label.
func (h *holdFixture) managerGauges() map[string]float64 {
	h.t.Helper()
	families, err := env.Manager.MetricFamilies(h.ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	out := map[string]float64{}
	for name, f := range families {
		for _, m := range f.Metric {
			labels := map[string]string{}
			for _, l := range m.Label {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["namespace"] != h.ns || labels["rollout"] != "app" || f.GetType() != dto.MetricType_GAUGE {
				continue
			}
			key := name
			if r, ok := labels["reason"]; ok {
				key += "/" + r
			}
			out[key] = m.GetGauge().GetValue()
		}
	}
	return out
}

func waitingReasons(series map[string]float64) []string {
	var out []string
	for k, v := range series {
		if r, ok := strings.CutPrefix(k, "sluice_rollout_waiting/"); ok && v == 1 {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return out
}

// expectScraped waits until Prometheus has scraped the hold for eight
// seconds, well past every shortened for:, so that an alert meant to fire
// has fired and one that would fire wrongly has too.
func (h *holdFixture) expectScraped(reason v1beta1.HoldReason) {
	h.t.Helper()
	expr := fmt.Sprintf(`count_over_time(sluice_rollout_waiting{namespace=%q,rollout="app",reason=%q}[1m]) >= %d`, h.ns, reason, 8)
	expectData(h.ctx, h.t, h.api, "Prometheus' scrapes of the hold", expr, "")
}

// expectPlugin: kubectl sluice get and status show the hold. Like the
// metrics, they are read until they agree with the status: a hold whose
// cause the controller retries may show another reason for a moment.
func (h *holdFixture) expectPlugin(reason v1beta1.HoldReason) {
	h.t.Helper()
	var get, status string
	err := framework.Poll(h.ctx, time.Minute, func() (bool, error) {
		get, status = h.plugin(cli.ExitOK, "get"), h.plugin(cli.ExitOK, "status")
		lines := strings.Split(strings.TrimSpace(get), "\n")
		if len(lines) != 2 {
			return false, fmt.Errorf("get printed %q", get)
		}
		cols := regexp.MustCompile(`\s{2,}`)
		header, cells := cols.Split(lines[0], -1), cols.Split(lines[1], -1)
		i := slices.Index(header, "WAITING")
		return i >= 0 && i < len(cells) && cells[i] == string(reason) && strings.Contains(status, "\nWaiting   "+string(reason)+" for "), nil
	})
	if err != nil {
		h.t.Errorf("kubectl sluice get and status do not both say the release waits for %s: %v\n%s\n%s", reason, err, get, status)
	}
}

// plugin runs `kubectl sluice verb app` in process and checks its exit
// code and that its output (or error) has each of want.
func (h *holdFixture) plugin(code int, verb string, want ...string) string {
	h.t.Helper()
	var out, errOut bytes.Buffer
	args := []string{verb, "app", "--kubeconfig", env.ControlPlane.KubeconfigPath(), "-n", h.ns}
	got := cli.Run(h.ctx, args, genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	if got != code {
		h.t.Errorf("kubectl sluice %s app: exit %d, want %d\n%s%s", verb, got, code, out.String(), errOut.String())
	}
	for _, w := range want {
		if !strings.Contains(out.String()+errOut.String(), w) {
			h.t.Errorf("kubectl sluice %s app: %q lacks %q", verb, out.String()+errOut.String(), w)
		}
	}
	return out.String()
}

// expectAlerts: each of want fires for this release, and no other alert
// has fired for it since the test began.
func (h *holdFixture) expectAlerts(want []string) {
	h.t.Helper()
	for _, a := range want {
		name, reason, _ := strings.Cut(a, "/")
		labels := map[string]string{"namespace": h.ns, "rollout": "app"}
		if reason != "" {
			labels["reason"] = reason
		}
		waitFiring(h.ctx, h.t, h.api, name, labels)
	}
	window := model.Duration(time.Since(h.begun).Truncate(time.Second) + time.Second)
	var fired []string
	for _, s := range query(h.ctx, h.t, h.api, fmt.Sprintf(`max_over_time(ALERTS{namespace=%q,alertstate="firing"}[%s])`, h.ns, window)) {
		a := string(s.Metric["alertname"])
		if r := s.Metric["reason"]; r != "" {
			a += "/" + string(r)
		}
		fired = append(fired, a)
	}
	slices.Sort(fired)
	want = slices.Sorted(slices.Values(want))
	if !slices.Equal(fired, want) {
		h.t.Errorf("alerts fired for this release: %v, want %v", fired, want)
	}
}
