package run

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/sluicehq/sluice/analysis/condition"
	"github.com/sluicehq/sluice/analysis/measure"
	"github.com/sluicehq/sluice/analysis/prometheus"
	"github.com/sluicehq/sluice/api/analysis/v1alpha1"
)

// +kubebuilder:rbac:groups=analysis.sluice.dev,resources=analysisruns,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=analysis.sluice.dev,resources=analysisruns/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=analysis.sluice.dev,resources=analysistemplates;clusteranalysistemplates,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Querier runs one query; *prometheus.Provider is the implementation.
type Querier interface {
	Query(ctx context.Context, r prometheus.Request) (measure.Value, error)
}

// Options configure the reconciler.
type Options struct {
	// PrometheusAddress is used by metrics that name no address.
	PrometheusAddress string
	// PrometheusAuthentication, when set, authenticates the queries sent
	// to PrometheusAddress by metrics that name no authentication; its
	// Secret is in PrometheusAuthNamespace.
	PrometheusAuthentication *v1alpha1.PrometheusAuthentication
	PrometheusAuthNamespace  string
	// MaxConcurrentReconciles is how many runs are measured at once
	// (default 4).
	MaxConcurrentReconciles int
	// Shard, when set, limits the reconciler to the runs of this manager's
	// shard (shard.go); nil measures every run.
	Shard *Shard
}

// Reconciler reconciles AnalysisRuns.
type Reconciler struct {
	Client   client.Client
	Querier  Querier
	Recorder events.EventRecorder
	// Now is the clock; time.Now when nil.
	Now func() time.Time

	conditions condition.Cache
	shard      *shardFilter
}

// SetupWithManager registers the AnalysisRun reconciler with mgr.
// Credentials Secrets are read directly, not cached, so the manager needs
// no permission to list Secrets.
func SetupWithManager(mgr ctrl.Manager, o Options) error {
	r := &Reconciler{
		Client: mgr.GetClient(),
		Querier: &prometheus.Provider{
			DefaultAddress:        o.PrometheusAddress,
			DefaultAuthentication: o.PrometheusAuthentication,
			DefaultAuthNamespace:  o.PrometheusAuthNamespace,
			Secrets:               mgr.GetAPIReader(),
		},
		Recorder: mgr.GetEventRecorder("sluice-analysis"),
	}
	n := o.MaxConcurrentReconciles
	if n <= 0 {
		n = 4
	}
	var err error
	if r.shard, err = newShardFilter(mgr.GetClient(), o.Shard, mgr.GetScheme()); err != nil {
		return err
	}
	// Only spec changes (and creation) start work: the reconciler's own
	// status writes must not, it requeues itself for the next due time.
	b := ctrl.NewControllerManagedBy(mgr).
		Named("analysisrun").
		For(&v1alpha1.AnalysisRun{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: n})
	if r.shard != nil {
		b = b.Watches(o.Shard.Owner, r.shard.ownerArrived(mgr.GetClient()), builder.WithPredicates(onlyCreate()))
	}
	return b.Complete(r)
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Reconcile measures what is due and writes status once.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	run := &v1alpha1.AnalysisRun{}
	if err := r.Client.Get(ctx, req.NamespacedName, run); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if run.Status.Phase.Completed() {
		return ctrl.Result{}, nil
	}
	// Another shard's run (or one whose Rollout has just moved away): left
	// alone; its owner's arrival in a shard wakes it there.
	if mine, err := r.shard.owns(ctx, run); err != nil || !mine {
		return ctrl.Result{}, err
	}
	before := run.DeepCopy()
	next := r.step(ctx, run)

	// The optimistic lock makes a reconcile that read a stale run fail
	// instead of recording a measurement twice.
	if err := r.Client.Status().Patch(ctx, run, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		if apierrors.IsConflict(err) {
			// Our own status writes do not trigger a reconcile: retry soon.
			return ctrl.Result{RequeueAfter: 200 * time.Millisecond}, nil
		}
		return ctrl.Result{}, err
	}
	r.emitEvents(before, run)
	if next.IsZero() {
		return ctrl.Result{}, nil
	}
	return ctrl.Result{RequeueAfter: max(next.Sub(r.now()), 50*time.Millisecond)}, nil
}

// step advances run's status: it starts the run, measures the metrics that
// are due (or terminates them), and decides. It returns the next due time,
// zero when the run is complete.
func (r *Reconciler) step(ctx context.Context, run *v1alpha1.AnalysisRun) time.Time {
	now := r.now()
	st := &run.Status
	if st.StartedAt == nil {
		t := metav1.NewTime(now)
		st.StartedAt = &t
	}
	results := make([]v1alpha1.MetricResult, len(run.Spec.Metrics))
	for i, m := range run.Spec.Metrics {
		results[i] = v1alpha1.MetricResult{Name: m.Name, Phase: v1alpha1.AnalysisPending}
		for _, old := range st.MetricResults {
			if old.Name == m.Name {
				results[i] = old
			}
		}
		results[i].DryRun = m.DryRun
		if p := m.Provider.Prometheus; p != nil {
			results[i].Query = p.Query
		}
	}

	if run.Spec.Terminate {
		for i := range results {
			results[i] = measure.Terminate(results[i])
		}
	} else {
		r.measureDue(ctx, run, results, now)
	}

	st.MetricResults = results
	v := measure.Decide(results)
	st.Phase, st.Message, st.Summary = v.Phase, v.Message, v.Summary
	if v.Done() {
		t := metav1.NewTime(r.now())
		st.CompletedAt = &t
		return time.Time{}
	}
	var next time.Time
	for i := range results {
		if at, ok := measure.NextAt(results[i], &run.Spec.Metrics[i], st.StartedAt.Time); ok && (next.IsZero() || at.Before(next)) {
			next = at
		}
	}
	return next
}

// measureDue takes, concurrently, the measurements that are due and
// folds them into results.
func (r *Reconciler) measureDue(ctx context.Context, run *v1alpha1.AnalysisRun, results []v1alpha1.MetricResult, now time.Time) {
	background := run.Spec.StepIndex == 0
	var wg sync.WaitGroup
	taken := make([]*v1alpha1.Measurement, len(results))
	for i := range results {
		m := &run.Spec.Metrics[i]
		at, ok := measure.NextAt(results[i], m, run.Status.StartedAt.Time)
		if !ok || at.After(now) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ms := r.measure(ctx, run.Namespace, m)
			taken[i] = &ms
		}()
	}
	wg.Wait()
	for i, ms := range taken {
		if ms == nil {
			continue
		}
		results[i] = measure.Fold(results[i], *ms, measure.LimitsOf(&run.Spec.Metrics[i], background))
		if ms.Phase == v1alpha1.AnalysisError {
			log.FromContext(ctx).Info("measurement failed", "metric", run.Spec.Metrics[i].Name, "error", ms.Message)
		}
	}
}

// emitEvents records metric phase changes and the run's verdict.
func (r *Reconciler) emitEvents(before, after *v1alpha1.AnalysisRun) {
	if r.Recorder == nil {
		return
	}
	old := map[string]v1alpha1.AnalysisPhase{}
	for _, res := range before.Status.MetricResults {
		old[res.Name] = res.Phase
	}
	for _, res := range after.Status.MetricResults {
		if res.Phase == old[res.Name] || !res.Phase.Completed() {
			continue
		}
		note := res.Message
		if res.DryRun {
			note = "dry run: " + note
		}
		r.Recorder.Eventf(after, nil, eventType(res.Phase), "Metric"+string(res.Phase), "Measure",
			"metric %q %s: %s", res.Name, res.Phase, note)
	}
	if after.Status.Phase.Completed() && !before.Status.Phase.Completed() {
		r.Recorder.Eventf(after, nil, eventType(after.Status.Phase), "AnalysisRun"+string(after.Status.Phase), "Decide",
			"%s", after.Status.Message)
	}
}

func eventType(p v1alpha1.AnalysisPhase) string {
	if p == v1alpha1.AnalysisSuccessful {
		return corev1.EventTypeNormal
	}
	return corev1.EventTypeWarning
}
