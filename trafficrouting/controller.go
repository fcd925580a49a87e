// Package trafficrouting is the TrafficRouting controller (Kruise Rollout's
// rollouts.kruise.io/v1alpha1 TrafficRouting): one routing change shared by
// several Rollouts, for a full-link canary. A Rollout that names it joins
// it for its release with the finalizer progressing.rollouts.kruise.io/<rollout>
// (Join, called by the release engine's executor) and leaves it when its
// release ends (Leave); while any Rollout holds it, the controller applies
// its strategy through the traffic package's providers, with the stable
// Service as the canary one, and once the last has left it restores the
// routing objects. Plan is the phase machine, pure; the Reconciler does
// the I/O. Admission (admission.go) validates the spec with field paths.
package trafficrouting

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/sluicehq/sluice/api/rollouts/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/traffic"
	"github.com/sluicehq/sluice/traffic/route"
	"github.com/sluicehq/sluice/traffic/script"
)

// +kubebuilder:rbac:groups=rollouts.kruise.io,resources=trafficroutings,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=rollouts.kruise.io,resources=trafficroutings/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=rollouts.kruise.io,resources=trafficroutings/finalizers,verbs=update

// defaultGrace is Kruise's defaultGracePeriodSeconds, for an objectRef
// without gracePeriodSeconds.
const defaultGrace = 3 * time.Second

// Reconciler applies and restores TrafficRoutings.
type Reconciler struct {
	// Client reads TrafficRoutings through the manager's cache and writes them.
	Client client.Client
	// Live reads without the cache: whether a Rollout holding a
	// TrafficRouting still exists (one just created may not be cached yet).
	Live client.Reader
	// Traffic reads and writes the routing objects, uncached; nil uses Client.
	Traffic client.Client
	// Scripts are the users' Lua traffic scripts (nil: the built-in ones).
	Scripts script.Source
}

// SetupWithManager registers the controller: a TrafficRouting is
// reconciled when it changes (a Rollout joining or leaving changes its
// finalizers) and when a Rollout naming it is deleted.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.TrafficRouting{}).
		Watches(&v1beta1.Rollout{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			name := o.(*v1beta1.Rollout).Spec.Strategy.TrafficRoutingName()
			if name == "" {
				return nil
			}
			return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: o.GetNamespace(), Name: name}}}
		}), builder.WithPredicates(predicate.Funcs{
			// Only a Rollout gone matters (dropGoneHolders): joining and
			// leaving change the TrafficRouting itself.
			CreateFunc:  func(event.CreateEvent) bool { return false },
			UpdateFunc:  func(event.UpdateEvent) bool { return false },
			GenericFunc: func(event.GenericEvent) bool { return false },
		})).
		Named("trafficrouting").Complete(r)
}

// Reconcile moves a TrafficRouting one phase on (Plan) and does that
// phase's work on its routing objects.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	tr := &v1alpha1.TrafficRouting{}
	if err := r.Client.Get(ctx, req.NamespacedName, tr); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	deleting := tr.DeletionTimestamp != nil
	if !deleting && !controllerutil.ContainsFinalizer(tr, v1alpha1.TrafficRoutingFinalizer) {
		patch := client.MergeFrom(tr.DeepCopy())
		controllerutil.AddFinalizer(tr, v1alpha1.TrafficRoutingFinalizer)
		return reconcile.Result{}, r.Client.Patch(ctx, tr, patch)
	}
	if deleting && !controllerutil.ContainsFinalizer(tr, v1alpha1.TrafficRoutingFinalizer) {
		return reconcile.Result{}, nil // restored already; the Rollouts' finalizers keep it
	}
	if dropped, err := r.dropGoneHolders(ctx, tr); err != nil || dropped {
		return retryConflict(err) // the patch reconciles it again
	}

	phase, work := Plan(tr.Status.Phase, len(tr.HoldingRollouts()) > 0, deleting)
	done, err := r.do(ctx, tr, work)
	st := v1alpha1.TrafficRoutingStatus{ObservedGeneration: tr.Generation, Phase: phase, Message: Message(phase)}
	switch {
	case err != nil:
		st.Message = fmt.Sprintf("%s, and %s failed: %v", Message(phase), work, err)
	case done:
		st.Phase = Done(phase)
		st.Message = Message(st.Phase)
	}
	if werr := r.writeStatus(ctx, tr, st); werr != nil || err != nil {
		if err == nil {
			return retryConflict(werr)
		}
		return reconcile.Result{}, err
	}
	if !done {
		// The routing changed: give its controller the grace period, then
		// check again (the routing objects are not watched).
		return reconcile.Result{RequeueAfter: grace(tr)}, nil
	}
	if deleting {
		patch := client.MergeFrom(tr.DeepCopy())
		controllerutil.RemoveFinalizer(tr, v1alpha1.TrafficRoutingFinalizer)
		return reconcile.Result{}, client.IgnoreNotFound(r.Client.Patch(ctx, tr, patch))
	}
	return reconcile.Result{}, nil
}

// do carries out work on tr's routing objects; done is false while it
// changed something (the grace period follows).
func (r *Reconciler) do(ctx context.Context, tr *v1alpha1.TrafficRouting, work Work) (bool, error) {
	if work == NoWork {
		return true, nil
	}
	o, err := Options(tr, r.Scripts)
	if err != nil {
		return false, err
	}
	c := r.Traffic
	if c == nil {
		c = r.Client
	}
	p, err := traffic.NewProvider(c, o)
	if err != nil {
		return false, err
	}
	switch work {
	case Check:
		if err := c.Get(ctx, client.ObjectKey{Namespace: tr.Namespace, Name: o.Ref.Service}, &corev1.Service{}); err != nil {
			return false, fmt.Errorf("reading service %s: %w", o.Ref.Service, err)
		}
		return true, p.Initialize(ctx)
	case Apply:
		rt, err := route.FromStep(tr.Spec.Strategy.V1beta1Strategy())
		if err != nil {
			return false, fmt.Errorf("spec.strategy: %w", err)
		}
		if rt.Weight == nil && len(rt.Matches) == 0 {
			return true, nil // nothing to route (admission rejects it; Kruise does nothing)
		}
		return p.EnsureRoutes(ctx, rt)
	case Restore:
		return p.Finalise(ctx)
	}
	return false, fmt.Errorf("unknown work %d", work)
}

// Options are the traffic package's options for tr: its first objectRef,
// with the stable Service as the canary one (Kruise's OnlyTrafficRouting:
// no canary Service is made, the stable one is never pinned), and tr as
// the owner of the canary objects the routing makes (a canary Ingress).
func Options(tr *v1alpha1.TrafficRouting, scripts script.Source) (traffic.Options, error) {
	ref, ok := tr.Spec.V1beta1Ref()
	if !ok {
		return traffic.Options{}, fmt.Errorf("spec.objectRef is empty")
	}
	return traffic.Options{
		Namespace: tr.Namespace, Ref: ref, DisableGenerateCanaryService: true, Scripts: scripts,
		Owner: metav1.NewControllerRef(tr, v1alpha1.GroupVersion.WithKind("TrafficRouting")),
	}, nil
}

// dropGoneHolders removes the finalizers of Rollouts that no longer exist
// (deleted without giving back, e.g. their own finalizer removed by hand):
// Kruise keeps such a TrafficRouting changed for ever. It reports whether
// it removed any.
func (r *Reconciler) dropGoneHolders(ctx context.Context, tr *v1alpha1.TrafficRouting) (bool, error) {
	live := r.Live
	if live == nil {
		live = r.Client
	}
	var gone []string
	for _, name := range tr.HoldingRollouts() {
		err := live.Get(ctx, client.ObjectKey{Namespace: tr.Namespace, Name: name}, &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: v1beta1.GroupVersion.String(), Kind: "Rollout"}})
		switch {
		case apierrors.IsNotFound(err):
			gone = append(gone, v1alpha1.ProgressingRolloutFinalizer(name))
		case err != nil:
			return false, err
		}
	}
	if len(gone) == 0 {
		return false, nil
	}
	patch := client.MergeFromWithOptions(tr.DeepCopy(), client.MergeFromWithOptimisticLock{})
	for _, f := range gone {
		controllerutil.RemoveFinalizer(tr, f)
	}
	return true, r.Client.Patch(ctx, tr, patch)
}

func (r *Reconciler) writeStatus(ctx context.Context, tr *v1alpha1.TrafficRouting, st v1alpha1.TrafficRoutingStatus) error {
	if equality.Semantic.DeepEqual(tr.Status, st) {
		return nil
	}
	patch := client.MergeFromWithOptions(tr.DeepCopy(), client.MergeFromWithOptimisticLock{})
	tr.Status = st
	return r.Client.Status().Patch(ctx, tr, patch)
}

// grace is objectRef[0].gracePeriodSeconds, or Kruise's default.
func grace(tr *v1alpha1.TrafficRouting) time.Duration {
	if len(tr.Spec.ObjectRef) == 0 || tr.Spec.ObjectRef[0].GracePeriodSeconds <= 0 {
		return defaultGrace
	}
	return time.Duration(tr.Spec.ObjectRef[0].GracePeriodSeconds) * time.Second
}

// conflictRetry is how soon a reconcile whose write lost a race runs
// again: a Rollout joined or left meanwhile, which is no error.
const conflictRetry = 50 * time.Millisecond

func retryConflict(err error) (reconcile.Result, error) {
	if apierrors.IsConflict(err) {
		return reconcile.Result{RequeueAfter: conflictRetry}, nil
	}
	return reconcile.Result{}, err
}
