package run

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/sluicehq/sluice/api/analysis/v1alpha1"
)

// Shard limits a manager to the runs of its own shard, when several
// managers share a cluster (sluice-controller --watch-label-selector).
// A run belongs to the shard of its controlling owner (its Rollout): the
// runs follow their Rollout when it moves to another shard, mid-release
// too, without being relabelled.
type Shard struct {
	// Owner is the kind that owns runs (a *v1beta1.Rollout); the manager's
	// cache holds only the shard's objects of this kind, so a run is the
	// shard's when its owner is in the cache.
	Owner client.Object
	// Selector decides for runs that no Owner controls (created by hand):
	// the shard measures those whose own labels match.
	Selector labels.Selector
}

// shardFilter answers whether a run is this manager's to measure.
type shardFilter struct {
	c     client.Reader
	owner schema.GroupVersionKind
	newFn func() client.Object
	sel   labels.Selector
}

func newShardFilter(c client.Reader, s *Shard, scheme *runtime.Scheme) (*shardFilter, error) {
	if s == nil {
		return nil, nil
	}
	gvk, err := apiutil.GVKForObject(s.Owner, scheme)
	if err != nil {
		return nil, err
	}
	sel := s.Selector
	if sel == nil {
		sel = labels.Everything()
	}
	return &shardFilter{c: c, owner: gvk, sel: sel, newFn: func() client.Object {
		return s.Owner.DeepCopyObject().(client.Object)
	}}, nil
}

// owns reports whether run is this shard's: its owner is in the cache, or,
// without an owner of that kind, its labels match the selector.
func (f *shardFilter) owns(ctx context.Context, run *v1alpha1.AnalysisRun) (bool, error) {
	if f == nil {
		return true, nil
	}
	ref := metav1.GetControllerOf(run)
	if ref == nil || ref.Kind != f.owner.Kind || ref.APIVersion == "" || schema.FromAPIVersionAndKind(ref.APIVersion, ref.Kind).Group != f.owner.Group {
		return f.sel.Matches(labels.Set(run.Labels)), nil
	}
	o := f.newFn()
	if err := f.c.Get(ctx, client.ObjectKey{Namespace: run.Namespace, Name: ref.Name}, o); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	return o.GetUID() == ref.UID, nil
}

// ownerArrived maps an owner that enters this shard's cache (created, or
// moved here by a label change) to its runs: the shard it left stops
// measuring them, so this one must start.
func (f *shardFilter) ownerArrived(c client.Reader) handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		var list v1alpha1.AnalysisRunList
		if err := c.List(ctx, &list, client.InNamespace(o.GetNamespace())); err != nil {
			log.FromContext(ctx).Error(err, "listing the runs of an owner that entered the shard")
			return nil
		}
		var out []reconcile.Request
		for i := range list.Items {
			if ref := metav1.GetControllerOf(&list.Items[i]); ref != nil && ref.UID == o.GetUID() && !list.Items[i].Status.Phase.Completed() {
				out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
			}
		}
		return out
	})
}

// onlyCreate lets through the owner's arrival in the cache, nothing else.
func onlyCreate() predicate.Funcs {
	return predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return true },
		UpdateFunc:  func(event.UpdateEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}
