package rollout

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/traffic"
	"github.com/sluicehq/sluice/traffic/route"
	"github.com/sluicehq/sluice/trafficrouting"
	"github.com/sluicehq/sluice/workload"
)

// clusterEffects are one reconcile's effects on the cluster.
type clusterEffects struct {
	r       *Reconciler
	ro      *v1beta1.Rollout // as read; Commit moves it on
	adapter workload.Adapter
	info    *workload.Info
	start   time.Time
}

var _ Effects = (*clusterEffects)(nil)

// Commit writes the status when it changed, with optimistic locking: an
// approval written meanwhile (kubectl-kruise patches the status) is never
// overwritten, and a decision taken on a stale read is never recorded.
func (c *clusterEffects) Commit(ctx context.Context, st v1beta1.RolloutStatus) error {
	if equality.Semantic.DeepEqual(c.ro.Status, st) {
		return nil
	}
	orig := c.ro.DeepCopy()
	c.ro.Status = *st.DeepCopy()
	err := c.r.Client.Status().Patch(ctx, c.ro, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
	if err != nil {
		c.ro = orig
	}
	return stale(err)
}

// Act carries out a workload action.
func (c *clusterEffects) Act(ctx context.Context, a Action, b workload.Batch) error {
	var err error
	switch a {
	case Prepare:
		err = c.adapter.Prepare(ctx)
	case Release:
		err = c.adapter.Release(ctx, b)
	case Finalise:
		err = c.adapter.Finalise(ctx)
	case HandOver:
		err = c.adapter.HandOver(ctx, b.Revision)
	case RemoveFinalizer:
		patch := client.MergeFrom(c.ro.DeepCopy())
		controllerutil.RemoveFinalizer(c.ro, Finalizer)
		err = client.IgnoreNotFound(c.r.Client.Patch(ctx, c.ro, patch))
	}
	return stale(err)
}

// stale marks a conflict, a create of what the cache does not show yet,
// or a workload that moved to another revision under the decision, as
// ErrStale.
func stale(err error) error {
	if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) || errors.Is(err, workload.ErrRevisionChanged) {
		return fmt.Errorf("%w: %v", ErrStale, err)
	}
	return err
}

// Committed records the decision's Events and tells the Observer.
func (c *clusterEffects) Committed(before v1beta1.RolloutStatus, d Decision) {
	for _, e := range d.Events {
		c.r.Recorder.Eventf(c.ro, nil, e.Type, e.Reason, "Rollout", "%s", e.Message)
	}
	if c.r.Observer != nil {
		b := c.ro.DeepCopy()
		b.Status = before
		c.r.Observer.Decided(b, d, time.Since(c.start))
	}
}

// Route makes one traffic call for the Rollout.
func (c *clusterEffects) Route(ctx context.Context, call TrafficCall) (bool, error) {
	ro := c.ro
	cl := c.r.Traffic
	if cl == nil {
		cl = c.r.Client
	}
	switch call.Op {
	case TrafficJoinShared:
		return trafficrouting.Join(ctx, cl, ro.Namespace, ro.Spec.Strategy.TrafficRoutingName(), ro.Name)
	case TrafficLeaveShared:
		return trafficrouting.Leave(ctx, cl, ro.Namespace, ro.Spec.Strategy.TrafficRoutingName(), ro.Name)
	}
	o, ok := traffic.ForRollout(ro, revisionLabel(ro, c.info), c.r.Scripts)
	if !ok {
		return true, nil
	}
	o.Endpoints = c.r.Live
	svc := traffic.NewServices(cl, o)
	p, err := traffic.NewProvider(cl, o)
	if err != nil {
		return false, err
	}
	switch call.Op {
	case TrafficInitialize:
		return true, p.Initialize(ctx)
	case TrafficPinStable:
		return svc.PinStable(ctx, call.Revision)
	case TrafficRestoreStable:
		return svc.RestoreStable(ctx)
	case TrafficCanaryService:
		return svc.EnsureCanary(ctx, call.Revision)
	case TrafficToNew:
		return p.EnsureRoutes(ctx, route.Route{Weight: route.Weight(100)})
	case TrafficRoute:
		steps := ro.Spec.Strategy.Steps()
		if call.Step < 1 || int(call.Step) > len(steps) {
			return false, fmt.Errorf("step %d does not exist", call.Step)
		}
		rt, err := route.FromStep(steps[call.Step-1].TrafficRoutingStrategy)
		if err != nil {
			return false, fmt.Errorf("spec.strategy.canary.steps[%d]: %w", call.Step-1, err)
		}
		return p.EnsureRoutes(ctx, rt)
	case TrafficToStable:
		return p.Finalise(ctx)
	case TrafficRemoveCanary:
		return svc.RemoveCanary(ctx)
	}
	return false, fmt.Errorf("unknown traffic call %d", call.Op)
}

// revisionLabel is the pod label that tells revisions apart: the
// workload's, or (when it is gone) the one of its kind.
func revisionLabel(ro *v1beta1.Rollout, info *workload.Info) string {
	if info != nil && info.RevisionLabel != "" {
		return info.RevisionLabel
	}
	if k := ro.Spec.WorkloadRef.Kind; k == "StatefulSet" || k == "DaemonSet" {
		return traffic.ControllerRevisionHashLabel
	}
	return traffic.PodTemplateHashLabel
}
