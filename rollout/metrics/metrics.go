// Package metrics exports the state of every release as Prometheus
// metrics, for dashboards and alerts (deploy/grafana, deploy/prometheus).
//
// Two sources, each with bounded labels (namespace, rollout, and where they
// apply metric, phase, state, decision, cause; never pods or values):
//   - a Collector that reads Rollouts and AnalysisRuns from the manager's
//     cache at scrape time: what is true now (phase, step, weight, canary
//     pods, each analysis metric's last value and phase). Its series go
//     with the objects; nothing to clean up.
//   - a Recorder, the Rollout reconciler's Observer: what happened
//     (decisions by cause, release durations, reconcile time of step
//     transitions). Its series of a Rollout are deleted when the Rollout
//     is let go, and at the next scrape after it left the cache otherwise
//     (its finalizer removed by hand).
//
// Only the leader exports: every replica of the manager has the same
// cache, and a dashboard that sums over replicas would count each release
// once per replica. A replica waiting for the lease serves controller-
// runtime's metrics only.
package metrics

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/rollout"
)

var rolloutLabels = []string{"namespace", "rollout"}

func desc(name, help string, extra ...string) *prometheus.Desc {
	return prometheus.NewDesc("sluice_"+name, help, append(append([]string{}, rolloutLabels...), extra...), nil)
}

// The Collector's series.
var (
	phaseDesc       = desc("rollout_phase", "1 for the Rollout's current phase (Healthy, Progressing, ...).", "phase")
	stepStateDesc   = desc("rollout_step_state", "1 for the current step's state (StepUpgrade, StepPaused, ...), and for Aborted when the release is aborted.", "state")
	stepDesc        = desc("rollout_step", "The current step, 1-based (0 before the first release).")
	stepsDesc       = desc("rollout_steps", "The number of steps of the Rollout's plan.")
	weightDesc      = desc("rollout_canary_weight", "The percentage of traffic the routing sends to the new version, as last applied to the routing objects (status.release.traffic.weight); 0 when none is routed, or by request match only.")
	replicasDesc    = desc("rollout_canary_replicas", "Pods of the new version.")
	readyDesc       = desc("rollout_canary_ready_replicas", "Ready pods of the new version.")
	pausedDesc      = desc("rollout_paused", "1 while the release waits for a person (status.release.hold.reason is one that needs a person: WaitingForApproval, PausedBySpec, an analysis hold, ProgressDeadlineExceeded, ...), Aborted aside.")
	abortedDesc     = desc("rollout_aborted", "1 while the release is aborted (by its analysis or a person) and held at the stable revision.")
	waitingDesc     = desc("rollout_waiting", "1 for what the release in progress waits for: status.release.hold.reason (WaitingForPods, TrafficGracePeriod, AnalysisRunning, TimedPause, WaitingForApproval, PausedBySpec, AnalysisError, Aborted, ...).", "reason")
	waitingSince    = desc("rollout_waiting_since_seconds", "When the release began to wait for its reason, as a Unix time (status.release.hold.since).", "reason")
	lastReleaseDesc = desc("rollout_last_release", "1 for how the last release ended (status.lastRelease.outcome: Completed, Promoted, RolledBack, Aborted, Cancelled).", "outcome")
	metricValueDesc = desc("analysis_metric_value", "The last measured value of an analysis metric of the Rollout's current runs (the first number of the result).", "metric", "run")
	metricPhaseDesc = desc("analysis_metric_phase", "1 for the phase of an analysis metric of the Rollout's current runs (Running, Successful, Failed, Error, Inconclusive).", "metric", "run", "phase")
	runPhaseDesc    = desc("analysis_run_phase", "1 for the phase of the Rollout's current runs: kind step or background.", "kind", "phase")
	thresholdDesc   = desc("analysis_metric_threshold", "The bound of an analysis metric's condition when it is a plain comparison of the first result (result[0] < 0.05): condition success or failure, op the comparison.", "metric", "run", "condition", "op")
)

// plainComparison matches a condition that compares the first result with
// a number, the shape whose bound a dashboard can draw.
var plainComparison = regexp.MustCompile(`^\s*result(?:\[0\])?\s*(<=|<|>=|>)\s*([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*$`)

// Collector reads the releases from the manager's cache at scrape time.
type Collector struct {
	Reader client.Reader
	// Elected, when not nil, is closed once this replica leads (the
	// manager's Elected()); until then the Collector exports nothing.
	Elected <-chan struct{}
	// listed, when not nil, learns the Rollouts a successful scrape found,
	// and when it began listing them.
	listed func(since time.Time, present map[types.NamespacedName]bool)
}

var _ prometheus.Collector = (*Collector)(nil)

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{phaseDesc, stepStateDesc, stepDesc, stepsDesc, weightDesc, replicasDesc, readyDesc, pausedDesc, abortedDesc, waitingDesc, waitingSince, lastReleaseDesc, metricValueDesc, metricPhaseDesc, runPhaseDesc, thresholdDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	if !leading(c.Elected) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	since := time.Now()
	// The cache's own objects, not copies (a scrape would copy every
	// AnalysisRun kept): only read here.
	var rollouts v1beta1.RolloutList
	if err := c.Reader.List(ctx, &rollouts, client.UnsafeDisableDeepCopy); err != nil {
		log.FromContext(ctx).Error(err, "listing Rollouts for metrics")
		return
	}
	var runs analysisv1alpha1.AnalysisRunList
	if err := c.Reader.List(ctx, &runs, client.UnsafeDisableDeepCopy); err != nil {
		log.FromContext(ctx).Error(err, "listing AnalysisRuns for metrics")
		return
	}
	byName := map[string]*analysisv1alpha1.AnalysisRun{}
	for i := range runs.Items {
		byName[runs.Items[i].Namespace+"/"+runs.Items[i].Name] = &runs.Items[i]
	}
	present := map[types.NamespacedName]bool{}
	for i := range rollouts.Items {
		collectRollout(ch, &rollouts.Items[i], byName)
		present[client.ObjectKeyFromObject(&rollouts.Items[i])] = true
	}
	if c.listed != nil {
		c.listed(since, present)
	}
}

// leading reports whether elected is nil or closed.
func leading(elected <-chan struct{}) bool {
	if elected == nil {
		return true
	}
	select {
	case <-elected:
		return true
	default:
		return false
	}
}

func collectRollout(ch chan<- prometheus.Metric, r *v1beta1.Rollout, runs map[string]*analysisv1alpha1.AnalysisRun) {
	lv := []string{r.Namespace, r.Name}
	gauge := func(d *prometheus.Desc, v float64, extra ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append(append([]string{}, lv...), extra...)...)
	}
	st := r.Status
	if st.Phase != "" {
		gauge(phaseDesc, 1, string(st.Phase))
	}
	gauge(stepsDesc, float64(len(r.Spec.Strategy.Steps())))
	gauge(stepDesc, float64(st.CurrentStepIndex))
	progressing := st.InProgress()
	hold := st.HoldOf()
	if !progressing {
		hold = nil
	}
	aborted := hold != nil && hold.Reason == v1beta1.HoldAborted
	switch {
	case aborted:
		gauge(stepStateDesc, 1, rollout.ReasonAborted)
	case st.CurrentStepState != "":
		gauge(stepStateDesc, 1, string(st.CurrentStepState))
	}
	gauge(abortedDesc, boolf(aborted))
	gauge(pausedDesc, boolf(hold != nil && !aborted && hold.Reason.NeedsPerson()))
	if hold != nil {
		gauge(waitingDesc, 1, string(hold.Reason))
		gauge(waitingSince, float64(hold.Since.Unix()), string(hold.Reason))
	}
	if l := st.LastRelease; l != nil {
		gauge(lastReleaseDesc, 1, string(l.Outcome))
	}

	var replicas, ready int32
	if progressing {
		replicas, ready = st.NewPods()
	}
	gauge(replicasDesc, float64(replicas))
	gauge(readyDesc, float64(ready))
	var weight int32
	if t := st.TrafficOf(); progressing && t != nil && t.Weight != nil {
		weight = *t.Weight
	}
	gauge(weightDesc, float64(weight))

	if a := st.Analysis; a != nil {
		for kind, rs := range map[string]*analysisv1alpha1.RunStatus{"step": a.StepRun, "background": a.BackgroundRun} {
			if rs == nil || rs.Phase == "" {
				continue
			}
			gauge(runPhaseDesc, 1, kind, string(rs.Phase))
			if run := runs[r.Namespace+"/"+rs.Name]; run != nil {
				collectRun(gauge, run)
			}
		}
	}
}

func collectRun(gauge func(*prometheus.Desc, float64, ...string), run *analysisv1alpha1.AnalysisRun) {
	for _, m := range run.Spec.Metrics {
		for condition, expr := range map[string]string{"success": m.SuccessCondition, "failure": m.FailureCondition} {
			if g := plainComparison.FindStringSubmatch(expr); g != nil {
				if v, err := strconv.ParseFloat(g[2], 64); err == nil {
					gauge(thresholdDesc, v, m.Name, run.Name, condition, g[1])
				}
			}
		}
	}
	for _, m := range run.Status.MetricResults {
		if m.Phase != "" {
			gauge(metricPhaseDesc, 1, m.Name, run.Name, string(m.Phase))
		}
		if n := len(m.Measurements); n > 0 {
			if v, ok := firstNumber(m.Measurements[n-1].Value); ok {
				gauge(metricValueDesc, v, m.Name, run.Name)
			}
		}
	}
}

// firstNumber reads the first number of a measured value as the run
// shows it: "[0.2]", "0.2", "[0.1 0.3]"; not NaN or text.
func firstNumber(s string) (float64, bool) {
	f := strings.Fields(strings.NewReplacer("[", " ", "]", " ", ",", " ").Replace(s))
	if len(f) == 0 {
		return 0, false
	}
	v, err := strconv.ParseFloat(f[0], 64)
	return v, err == nil && v == v // v == v: not NaN
}

func boolf(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Recorder counts what the release engine decided. It is the Rollout
// reconciler's Observer.
type Recorder struct {
	decisions   *prometheus.CounterVec
	durations   *prometheus.HistogramVec
	transitions *prometheus.HistogramVec
	state       *Collector

	mu sync.Mutex
	// last is when each Rollout with series was last recorded.
	last map[types.NamespacedName]time.Time
	now  func() time.Time // time.Now when nil
}

var _ rollout.Observer = (*Recorder)(nil)

// NewRecorder makes the Recorder and registers it with reg, together with
// a Collector on reader. elected is the manager's Elected(): nothing is
// exported before this replica leads (nil: at once).
func NewRecorder(reg prometheus.Registerer, reader client.Reader, elected <-chan struct{}) (*Recorder, error) {
	r := &Recorder{
		last: map[types.NamespacedName]time.Time{},
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_rollout_decisions_total",
			Help: "Decisions the release engine took: advance, complete, pause, rollback, promote or retry, caused by analysis, a person (manual), a progress deadline or the plan.",
		}, append(append([]string{}, rolloutLabels...), "decision", "cause")),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_release_duration_seconds",
			Help:    "How long releases took, from start to end, by outcome (status.lastRelease: Completed, Promoted, RolledBack, Aborted, Cancelled); an aborted release counts once, when it is aborted.",
			Buckets: []float64{30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400},
		}, append(append([]string{}, rolloutLabels...), "outcome")),
		transitions: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_step_transition_seconds",
			Help:    "The controller's own time for a reconcile that moves a release to another step or state: from the reconcile's start to its status write.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, rolloutLabels),
	}
	r.state = &Collector{Reader: reader, Elected: elected, listed: r.forgetAbsent}
	if err := reg.Register(r); err != nil {
		return nil, err
	}
	return r, nil
}

var _ prometheus.Collector = (*Recorder)(nil)

// Describe implements prometheus.Collector.
func (r *Recorder) Describe(ch chan<- *prometheus.Desc) {
	r.state.Describe(ch)
	r.decisions.Describe(ch)
	r.durations.Describe(ch)
	r.transitions.Describe(ch)
}

// Collect implements prometheus.Collector: the state first, which forgets
// the Rollouts gone from the cache, then what was recorded.
func (r *Recorder) Collect(ch chan<- prometheus.Metric) {
	r.state.Collect(ch)
	r.decisions.Collect(ch)
	r.durations.Collect(ch)
	r.transitions.Collect(ch)
}

// Decided implements rollout.Observer.
func (r *Recorder) Decided(before *v1beta1.Rollout, d rollout.Decision, took time.Duration) {
	ns, name := before.Namespace, before.Name
	key := types.NamespacedName{Namespace: ns, Name: name}
	r.mu.Lock()
	defer r.mu.Unlock()
	if d.Action == rollout.RemoveFinalizer {
		r.forget(key)
		return
	}
	r.last[key] = r.clock()
	for _, m := range d.Made {
		r.decisions.WithLabelValues(ns, name, m.Decision, m.Cause).Inc()
	}
	if before.Status.CurrentStepIndex != d.Status.CurrentStepIndex || before.Status.CurrentStepState != d.Status.CurrentStepState {
		r.transitions.WithLabelValues(ns, name).Observe(took.Seconds())
	}
	if rec := ended(&before.Status, &d.Status); rec != nil && rec.Started != nil {
		r.durations.WithLabelValues(ns, name, string(rec.Outcome)).Observe(rec.Ended.Sub(rec.Started.Time).Seconds())
	}
}

// ended is the record of a release that ended with this decision: a
// status.lastRelease that was not there before.
func ended(before, after *v1beta1.RolloutStatus) *v1beta1.ReleaseRecord {
	rec := after.LastRelease
	if rec == nil || equality.Semantic.DeepEqual(rec, before.LastRelease) {
		return nil
	}
	return rec
}

func (r *Recorder) clock() time.Time {
	if r.now != nil {
		return r.now()
	}
	return time.Now()
}

// forgetAbsent deletes the series of Rollouts that a scrape begun at
// since did not find, unless they were recorded after since (created
// meanwhile).
func (r *Recorder) forgetAbsent(since time.Time, present map[types.NamespacedName]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for key, at := range r.last {
		if !present[key] && at.Before(since) {
			r.forget(key)
		}
	}
}

// forget deletes a Rollout's series; r.mu is held.
func (r *Recorder) forget(key types.NamespacedName) {
	labels := prometheus.Labels{"namespace": key.Namespace, "rollout": key.Name}
	r.decisions.DeletePartialMatch(labels)
	r.durations.DeletePartialMatch(labels)
	r.transitions.DeletePartialMatch(labels)
	delete(r.last, key)
}
