package trafficrouting

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/sluicehq/sluice/api/rollouts/v1alpha1"
)

// Join puts Rollout rollout's finalizer on the TrafficRouting name, so
// that its controller applies the strategy and keeps it applied until the
// Rollout leaves. It is done (true) once the finalizer is there; it waits
// (false) while the TrafficRouting is being restored or deleted, as Kruise
// does, and after adding the finalizer, for one grace period, so that the
// controller sees it before the release goes on.
func Join(ctx context.Context, c client.Client, namespace, name, rollout string) (bool, error) {
	finalizer := v1alpha1.ProgressingRolloutFinalizer(rollout)
	done := false
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		tr := &v1alpha1.TrafficRouting{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, tr); err != nil {
			if apierrors.IsNotFound(err) {
				return fmt.Errorf("TrafficRouting %s (trafficRoutingRef) does not exist in namespace %s: create it, or remove the reference", name, namespace)
			}
			return err
		}
		if controllerutil.ContainsFinalizer(tr, finalizer) {
			done = true
			return nil
		}
		if tr.DeletionTimestamp != nil || tr.Status.Phase == v1alpha1.TrafficRoutingPhaseFinalizing || tr.Status.Phase == v1alpha1.TrafficRoutingPhaseTerminating {
			return nil // it restores the routing for the last release: join the next one
		}
		patch := client.MergeFromWithOptions(tr.DeepCopy(), client.MergeFromWithOptimisticLock{})
		controllerutil.AddFinalizer(tr, finalizer)
		return c.Patch(ctx, tr, patch)
	})
	return done, err
}

// Leave removes Rollout rollout's finalizer from the TrafficRouting name.
// Done at once: the TrafficRouting restores its routing when the last
// Rollout has left, and the Rollout does not wait for that (others may
// still be releasing).
func Leave(ctx context.Context, c client.Client, namespace, name, rollout string) (bool, error) {
	finalizer := v1alpha1.ProgressingRolloutFinalizer(rollout)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		tr := &v1alpha1.TrafficRouting{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, tr); err != nil {
			return client.IgnoreNotFound(err)
		}
		if !controllerutil.ContainsFinalizer(tr, finalizer) {
			return nil
		}
		patch := client.MergeFromWithOptions(tr.DeepCopy(), client.MergeFromWithOptimisticLock{})
		controllerutil.RemoveFinalizer(tr, finalizer)
		return c.Patch(ctx, tr, patch)
	})
	return err == nil, err
}
