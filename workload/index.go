package workload

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

// RolloutsByWorkload names the cache's field index of Rollouts by the kind
// and name of the workload they release: the reconciler maps a workload's
// events to its Rollout by it, and the freeze webhook finds the Rollout of
// a workload being written.
const RolloutsByWorkload = "spec.workloadRef.kindName"

// IndexRolloutByWorkload is the RolloutsByWorkload index's function.
func IndexRolloutByWorkload(o client.Object) []string {
	ref := o.(*v1beta1.Rollout).Spec.WorkloadRef
	return []string{workloadKey(ref.Kind, ref.Name)}
}

// RolloutsOf lists, from a cache holding the RolloutsByWorkload index, the
// Rollouts of namespace that release the workload kind/name.
func RolloutsOf(ctx context.Context, c client.Reader, namespace, kind, name string) ([]v1beta1.Rollout, error) {
	var list v1beta1.RolloutList
	err := c.List(ctx, &list, client.InNamespace(namespace), client.MatchingFields{RolloutsByWorkload: workloadKey(kind, name)})
	return list.Items, err
}

func workloadKey(kind, name string) string { return kind + "/" + name }
