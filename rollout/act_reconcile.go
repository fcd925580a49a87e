package rollout

import (
	"context"
	"errors"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/traffic/script"
	"github.com/sluicehq/sluice/workload"
)

// +kubebuilder:rbac:groups=rollouts.kruise.io,resources=rollouts,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=rollouts.kruise.io,resources=rollouts/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=rollouts.kruise.io,resources=rollouts/finalizers,verbs=update
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconciler releases workloads as their Rollouts say.
type Reconciler struct {
	// Client reads through the manager's cache: Rollouts, AnalysisRuns,
	// the workloads a Rollout references, their ReplicaSets and pods.
	Client client.Client
	// Live reads without the cache: a workload not labelled yet,
	// EndpointSlices, pods about to be rolled back; nil skips the reads
	// that need it.
	Live client.Reader
	// Traffic reads and writes the routing objects (Services, Ingresses,
	// routes), which the manager does not cache; nil uses Client.
	Traffic client.Client
	// Workers is how many Rollouts are reconciled at once (default 1).
	Workers  int
	Recorder events.EventRecorder
	Now      func() time.Time
	// Scripts are the users' Lua traffic scripts (nil: the built-in ones).
	Scripts script.Source
	// Observer, when set, learns every decision carried out (metrics).
	Observer Observer
	// Workloads are the manager's choices for the workload adapters.
	Workloads workload.Options
}

// Observer learns each decision once its status is written: before is
// the Rollout as it was, d what was decided, took how long the reconcile
// had taken by then.
type Observer interface {
	Decided(before *v1beta1.Rollout, d Decision, took time.Duration)
}

// SetupWithManager registers the reconciler and its watches: the Rollout,
// its workload, the workload's ReplicaSets (whose status moves a batch) and
// the canary Deployments and AnalysisRuns it owns.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1beta1.Rollout{}, workload.RolloutsByWorkload, workload.IndexRolloutByWorkload); err != nil {
		return err
	}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1beta1.Rollout{}, trafficRoutingIndex, func(o client.Object) []string {
		if name := o.(*v1beta1.Rollout).Spec.Strategy.TrafficRoutingName(); name != "" {
			return []string{name}
		}
		return nil
	}); err != nil {
		return err
	}
	b := ctrl.NewControllerManagedBy(mgr).
		For(&v1beta1.Rollout{}).
		// A Rollout waiting to join a TrafficRouting that restores its
		// routing goes on once it is Healthy again.
		Watches(&v1alpha1.TrafficRouting{}, handler.EnqueueRequestsFromMapFunc(r.byTrafficRouting)).
		Owns(&appsv1.Deployment{}).
		Owns(&analysisv1alpha1.AnalysisRun{}).
		Watches(&appsv1.Deployment{}, handler.EnqueueRequestsFromMapFunc(r.byWorkload("Deployment"))).
		Watches(&appsv1.StatefulSet{}, handler.EnqueueRequestsFromMapFunc(r.byWorkload("StatefulSet"))).
		Watches(&appsv1.DaemonSet{}, handler.EnqueueRequestsFromMapFunc(r.byWorkload("DaemonSet"))).
		Watches(&appsv1.ReplicaSet{}, handler.EnqueueRequestsFromMapFunc(r.byOwner))
	// OpenKruise's workloads are watched where its CRDs are installed (at
	// start; a restart picks up CRDs installed later).
	for _, gvk := range workload.KruiseKinds {
		if _, err := mgr.GetRESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
			continue
		}
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		b = b.Watches(u, handler.EnqueueRequestsFromMapFunc(r.byWorkload(gvk.Kind)))
	}
	return b.Named("rollout").WithOptions(controller.Options{MaxConcurrentReconciles: max(1, r.Workers)}).Complete(r)
}

// trafficRoutingIndex indexes Rollouts by the TrafficRouting they name.
const trafficRoutingIndex = "spec.strategy.trafficRoutingRef"

// byTrafficRouting maps a TrafficRouting to the Rollouts that name it.
func (r *Reconciler) byTrafficRouting(ctx context.Context, o client.Object) []reconcile.Request {
	var list v1beta1.RolloutList
	if err := r.Client.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{trafficRoutingIndex: o.GetName()}); err != nil {
		log.FromContext(ctx).Error(err, "listing Rollouts of a TrafficRouting")
		return nil
	}
	out := make([]reconcile.Request, len(list.Items))
	for i := range list.Items {
		out[i] = reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])}
	}
	return out
}

func (r *Reconciler) byWorkload(kind string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		return r.rolloutsOf(ctx, o.GetNamespace(), kind, o.GetName())
	}
}

// byOwner maps a ReplicaSet to the Rollouts of its Deployment.
func (r *Reconciler) byOwner(ctx context.Context, o client.Object) []reconcile.Request {
	owner := metav1.GetControllerOf(o)
	if owner == nil || owner.Kind != "Deployment" {
		return nil
	}
	return r.rolloutsOf(ctx, o.GetNamespace(), owner.Kind, owner.Name)
}

func (r *Reconciler) rolloutsOf(ctx context.Context, namespace, kind, name string) []reconcile.Request {
	rollouts, err := workload.RolloutsOf(ctx, r.Client, namespace, kind, name)
	if err != nil {
		log.FromContext(ctx).Error(err, "listing Rollouts of a workload")
		return nil
	}
	out := make([]reconcile.Request, len(rollouts))
	for i := range rollouts {
		out[i] = reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&rollouts[i])}
	}
	return out
}

// staleRetry is how soon a reconcile whose write lost a race runs again
// (the cache has usually caught up by then).
const staleRetry = 50 * time.Millisecond

// Reconcile observes the Rollout, its workload and its runs, and executes
// one decision on them (act_execute.go).
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	start := time.Now()
	ro := &v1beta1.Rollout{}
	if err := r.Client.Get(ctx, req.NamespacedName, ro); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if ro.DeletionTimestamp == nil && !controllerutil.ContainsFinalizer(ro, Finalizer) {
		patch := client.MergeFrom(ro.DeepCopy())
		controllerutil.AddFinalizer(ro, Finalizer)
		return reconcile.Result{}, r.Client.Patch(ctx, ro, patch)
	}

	o := Observed{Rollout: ro, Now: r.Now()}
	adapter, err := workload.For(r.Client, r.Live, ro, r.Workloads)
	if err != nil {
		o.Unsupported = err
	} else {
		if o.Workload, err = adapter.Observe(ctx); err != nil {
			return reconcile.Result{}, err
		}
		if o.Workload == nil || !o.Workload.Labelled {
			// Not labelled yet, or not in the cache (which holds labelled
			// workloads only): labelling it brings it in and reconciles the
			// Rollout again.
			if labelled, err := r.labelWorkload(ctx, ro); err != nil || labelled {
				return reconcile.Result{}, err
			}
		}
	}
	if o.Runs, err = r.listRuns(ctx, ro); err != nil {
		return reconcile.Result{}, err
	}
	if err := r.pruneRuns(ctx, o.Runs); err != nil {
		return reconcile.Result{}, err
	}

	fx := &clusterEffects{r: r, ro: ro, adapter: adapter, info: o.Workload, start: start}
	d, err := execute(ctx, fx, o)
	switch {
	case errors.Is(err, ErrStale):
		// Someone wrote the Rollout or the workload meanwhile (an
		// approval, our own write not yet in the cache): decide again on
		// fresh reads; not an error.
		log.FromContext(ctx).V(1).Info("a write lost a race; deciding again", "error", err.Error())
		return reconcile.Result{RequeueAfter: staleRetry}, nil
	case err != nil:
		return reconcile.Result{}, err
	case d.Traffic.Op != NoTraffic:
		// The reconcile's traffic calls ran out with one still asked for.
		return reconcile.Result{RequeueAfter: staleRetry}, nil
	}
	return reconcile.Result{RequeueAfter: d.RequeueAfter}, nil
}

// labelWorkload puts the workload-type label on the workload, read live,
// so that the manager's cache (cache.go in the manager) and the freeze
// webhook (whose objectSelector requires it) see it; it reports whether it
// labelled it now.
func (r *Reconciler) labelWorkload(ctx context.Context, ro *v1beta1.Rollout) (bool, error) {
	ref := ro.Spec.WorkloadRef
	value := workload.TypeLabelValue(ref.Kind)
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil || value == "" {
		return false, err
	}
	meta := &metav1.PartialObjectMetadata{}
	meta.SetGroupVersionKind(gv.WithKind(ref.Kind))
	live := r.Live
	if live == nil {
		live = r.Client
	}
	if err := live.Get(ctx, client.ObjectKey{Namespace: ro.Namespace, Name: ref.Name}, meta); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	if meta.Labels[workload.WorkloadTypeLabel] == value {
		return false, nil
	}
	patch := client.MergeFrom(meta.DeepCopy())
	metav1.SetMetaDataLabel(&meta.ObjectMeta, workload.WorkloadTypeLabel, value)
	return true, r.Client.Patch(ctx, meta, patch)
}
