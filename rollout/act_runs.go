package rollout

import (
	"context"
	"errors"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/analysis/run"
	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

// keepRuns is how many completed AnalysisRuns a Rollout keeps, newest first.
const keepRuns = 10

// listRuns returns the Rollout's AnalysisRuns, oldest first.
func (r *Reconciler) listRuns(ctx context.Context, ro *v1beta1.Rollout) ([]analysisv1alpha1.AnalysisRun, error) {
	var list analysisv1alpha1.AnalysisRunList
	if err := r.Client.List(ctx, &list, client.InNamespace(ro.Namespace), client.MatchingLabels{run.LabelRollout: run.Labels(run.Target{Rollout: ro.Name})[run.LabelRollout]}); err != nil {
		return nil, err
	}
	runs := slices.DeleteFunc(list.Items, func(ar analysisv1alpha1.AnalysisRun) bool { return !metav1.IsControlledBy(&ar, ro) })
	slices.SortStableFunc(runs, func(a, b analysisv1alpha1.AnalysisRun) int {
		return a.CreationTimestamp.Compare(b.CreationTimestamp.Time)
	})
	return runs, nil
}

// builtInNames are the names the built-in args stand for.
type builtInNames struct{ workload, service, ingress string }

func namesOf(ro *v1beta1.Rollout) builtInNames {
	n := builtInNames{workload: ro.Spec.WorkloadRef.Name}
	if rs := ro.Spec.Strategy.Routings(); len(rs) > 0 {
		n.service = rs[0].Service
		if ing := rs[0].Ingress; ing != nil {
			n.ingress = ing.Name
		}
	}
	return n
}

// StartRun creates the AnalysisRun of a step (0: the background run).
func (c *clusterEffects) StartRun(ctx context.Context, st v1beta1.RolloutStatus, req RunRequest) error {
	ro := c.ro
	a := ro.Spec.Strategy.Analysis
	if req.Step > 0 {
		steps := ro.Spec.Strategy.Steps()
		if int(req.Step) > len(steps) || steps[req.Step-1].Analysis == nil {
			return fmt.Errorf("step %d has no analysis", req.Step)
		}
		a = steps[req.Step-1].Analysis
	}
	cs := st.Progress()
	if a == nil || cs == nil {
		return errors.New("no analysis to run")
	}
	specs, err := run.Templates(ctx, c.r.Client, ro.Namespace, a.Templates)
	if err != nil {
		return err
	}
	names := namesOf(ro)
	ar, err := run.Build(run.Target{
		Namespace: ro.Namespace, Rollout: ro.Name, Owner: metav1.NewControllerRef(ro, v1beta1.GroupVersion.WithKind("Rollout")),
		Workload: names.workload, Service: names.service, Ingress: names.ingress,
		StableRevision: cs.StableRevision, CanaryRevision: cs.PodTemplateHash,
		StepIndex: req.Step, Attempt: req.Attempt,
	}, specs, a)
	if err != nil {
		return err
	}
	if err := c.r.Client.Create(ctx, ar); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

// TerminateRuns ends runs by name: metrics still measuring end now.
func (c *clusterEffects) TerminateRuns(ctx context.Context, names []string) error {
	for _, name := range names {
		ar := &analysisv1alpha1.AnalysisRun{ObjectMeta: metav1.ObjectMeta{Namespace: c.ro.Namespace, Name: name}}
		patch := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"terminate":true}}`))
		if err := c.r.Client.Patch(ctx, ar, patch); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("terminating AnalysisRun %s: %w", name, err)
		}
	}
	return nil
}

// pruneRuns deletes the oldest completed runs beyond keepRuns.
func (r *Reconciler) pruneRuns(ctx context.Context, runs []analysisv1alpha1.AnalysisRun) error {
	completed := slices.DeleteFunc(slices.Clone(runs), func(ar analysisv1alpha1.AnalysisRun) bool { return !ar.Status.Phase.Completed() })
	for i := 0; i < len(completed)-keepRuns; i++ {
		if err := r.Client.Delete(ctx, &completed[i]); client.IgnoreNotFound(err) != nil {
			return err
		}
	}
	return nil
}
