package workload

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

// CanaryDeploymentLabel marks a canary Deployment with the name of the
// Deployment it releases (Kruise's label).
const CanaryDeploymentLabel = "rollouts.kruise.io/canary-deployment"

// CanaryDeployment releases an apps/v1 Deployment in canary style
// (enableExtraWorkloadForCanary, the v1alpha1 default): the Deployment
// stays paused on its old pods while an extra canary Deployment runs the
// new template, sized per step. Finalise resumes the Deployment, lets it
// roll natively, and then removes the canary Deployment.
type CanaryDeployment struct {
	Client   client.Client
	Key      client.ObjectKey
	Rollout  *v1beta1.Rollout
	Metadata *v1beta1.PatchPodTemplateMetadata
}

// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=create;delete

func (a *CanaryDeployment) get(ctx context.Context) (*appsv1.Deployment, []*appsv1.Deployment, error) {
	d := &appsv1.Deployment{}
	if err := a.Client.Get(ctx, a.Key, d); err != nil {
		return nil, nil, err
	}
	var list appsv1.DeploymentList
	if err := a.Client.List(ctx, &list, client.InNamespace(a.Key.Namespace), client.MatchingLabels{CanaryDeploymentLabel: a.Key.Name}); err != nil {
		return nil, nil, err
	}
	canaries := make([]*appsv1.Deployment, 0, len(list.Items))
	for i := range list.Items {
		canaries = append(canaries, &list.Items[i])
	}
	return d, canaries, nil
}

// canaryTemplate is the stable template with the canary's extra metadata.
func (a *CanaryDeployment) canaryTemplate(d *appsv1.Deployment) *appsv1.Deployment {
	c := &appsv1.Deployment{Spec: *d.Spec.DeepCopy()}
	if m := a.Metadata; m != nil {
		for k, v := range m.Labels {
			metav1.SetMetaDataLabel(&c.Spec.Template.ObjectMeta, k, v)
		}
		for k, v := range m.Annotations {
			metav1.SetMetaDataAnnotation(&c.Spec.Template.ObjectMeta, k, v)
		}
	}
	return c
}

// current is the canary Deployment running d's template, if any.
func (a *CanaryDeployment) current(d *appsv1.Deployment, canaries []*appsv1.Deployment) *appsv1.Deployment {
	want := a.canaryTemplate(d)
	for _, c := range canaries {
		if c.DeletionTimestamp == nil && EqualIgnoreHash(&c.Spec.Template, &want.Spec.Template) {
			return c
		}
	}
	return nil
}

// Observe reads the Deployment and its canary.
func (a *CanaryDeployment) Observe(ctx context.Context) (*Info, error) {
	d, canaries, err := a.get(ctx)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	stable := &Deployment{Client: a.Client, Key: a.Key}
	s, err := stable.load(ctx)
	if err != nil {
		return nil, err
	}
	info := &Info{
		Replicas:       replicasOf(d.Spec.Replicas),
		Frozen:         d.Annotations[InProgressingAnnotation] != "",
		StableRevision: d.Labels[StableRevisionLabel],
		UpdateRevision: TemplateHash(&d.Spec.Template, d.Status.CollisionCount),
		RolloutID:      d.Labels[RolloutIDLabel],
		Settled:        d.Status.ObservedGeneration >= d.Generation,
		RevisionLabel:  appsv1.DefaultDeploymentUniqueLabelKey,
		Controlled:     d.Annotations[ControlInfoAnnotation] != "",
		Labelled:       d.Labels[WorkloadTypeLabel] != "",
	}
	if info.StableRevision == "" {
		info.StableRevision = s.newestOldHash()
	}
	if c := a.current(d, canaries); c != nil {
		info.Updated, info.UpdatedReady = c.Status.Replicas, c.Status.ReadyReplicas
		info.Settled = info.Settled && c.Status.ObservedGeneration >= c.Generation
		canary := &Deployment{Client: a.Client, Key: client.ObjectKeyFromObject(c)}
		cs, err := canary.load(ctx)
		if err != nil {
			return nil, err
		}
		if cs.newRS != nil {
			info.PodRevision = cs.newHash
		}
		if info.UpdatedReady < info.Updated {
			info.Unready, _ = canary.unready(ctx, c.Namespace, cs.newHash)
		}
	}
	// The stable pods stay while the canary runs beside them: none of
	// them is in the way of a batch.
	info.Released = !d.Spec.Paused && !info.Frozen && info.Settled && len(canaries) == 0 &&
		d.Status.UpdatedReplicas == info.Replicas && d.Status.Replicas == info.Replicas && d.Status.AvailableReplicas == info.Replicas
	return info, nil
}

// Prepare marks the Deployment as controlled; the freeze webhook paused it.
func (a *CanaryDeployment) Prepare(ctx context.Context) error {
	d := &appsv1.Deployment{}
	if err := a.Client.Get(ctx, a.Key, d); err != nil {
		return err
	}
	if d.Spec.Paused && d.Annotations[ControlInfoAnnotation] != "" {
		return nil
	}
	patch := client.MergeFrom(d.DeepCopy())
	d.Spec.Paused = true
	metav1.SetMetaDataAnnotation(&d.ObjectMeta, ControlInfoAnnotation, controlInfo(a.Rollout.Name))
	return a.Client.Patch(ctx, d, patch)
}

// Release sizes the canary Deployment to b.Updated pods, creating it (and
// deleting canaries of replaced templates) as needed.
func (a *CanaryDeployment) Release(ctx context.Context, b Batch) error {
	d, canaries, err := a.get(ctx)
	if err != nil {
		return err
	}
	if rev := TemplateHash(&d.Spec.Template, d.Status.CollisionCount); d.Status.ObservedGeneration < d.Generation || (b.Revision != "" && b.Revision != rev) {
		return fmt.Errorf("%w: batch for %s, Deployment %s at %s", ErrRevisionChanged, b.Revision, d.Name, rev)
	}
	cur := a.current(d, canaries)
	for _, c := range canaries {
		if c != cur && c.DeletionTimestamp == nil {
			if err := client.IgnoreNotFound(a.Client.Delete(ctx, c)); err != nil {
				return err
			}
		}
	}
	n := min(b.Updated, replicasOf(d.Spec.Replicas))
	if cur == nil {
		c := a.canaryTemplate(d)
		c.GenerateName = d.Name + "-"
		c.Namespace = d.Namespace
		// The workload-type label keeps it in the manager's cache, which
		// holds the workloads Sluice manages only.
		c.Labels = map[string]string{CanaryDeploymentLabel: d.Name, WorkloadTypeLabel: TypeLabelValue("Deployment")}
		for k, v := range d.Labels {
			if k != StableRevisionLabel {
				c.Labels[k] = v
			}
		}
		c.Annotations = map[string]string{ControlInfoAnnotation: controlInfo(a.Rollout.Name)}
		c.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(a.Rollout, v1beta1.GroupVersion.WithKind("Rollout"))}
		c.Spec.Replicas = &n
		c.Spec.Paused = false
		if err := a.Client.Create(ctx, c); err != nil {
			return fmt.Errorf("creating the canary Deployment: %w", err)
		}
		return nil
	}
	if !b.Shrink {
		n = max(n, replicasOf(cur.Spec.Replicas))
	}
	if replicasOf(cur.Spec.Replicas) != n {
		patch := client.MergeFromWithOptions(cur.DeepCopy(), client.MergeFromWithOptimisticLock{})
		cur.Spec.Replicas = &n
		if err := a.Client.Patch(ctx, cur, patch); err != nil {
			return err
		}
	}
	canary := &Deployment{Client: a.Client, Key: client.ObjectKeyFromObject(cur)}
	cs, err := canary.load(ctx)
	if err != nil || cs.newRS == nil {
		return err
	}
	return labelPods(ctx, a.Client, d.Namespace, map[string]string{appsv1.DefaultDeploymentUniqueLabelKey: cs.newHash}, b)
}

// Finalise resumes the Deployment (one write), and once it has rolled to
// its template (or was rolled back to the stable one) deletes the canary
// Deployments: the new pods serve until the Deployment's own are ready.
func (a *CanaryDeployment) Finalise(ctx context.Context) error {
	d, canaries, err := a.get(ctx)
	if err != nil {
		return client.IgnoreNotFound(err)
	}
	if d.Spec.Paused || d.Annotations[InProgressingAnnotation] != "" || d.Annotations[ControlInfoAnnotation] != "" || d.Labels[StableRevisionLabel] != "" {
		patch := client.MergeFrom(d.DeepCopy())
		d.Spec.Paused = false
		delete(d.Annotations, InProgressingAnnotation)
		delete(d.Annotations, ControlInfoAnnotation)
		delete(d.Labels, StableRevisionLabel)
		return a.Client.Patch(ctx, d, patch)
	}
	want := replicasOf(d.Spec.Replicas)
	if d.Status.ObservedGeneration < d.Generation || d.Status.UpdatedReplicas != want || d.Status.AvailableReplicas < want {
		return nil // the Deployment is still rolling: keep the canary serving
	}
	for _, c := range canaries {
		if err := client.IgnoreNotFound(a.Client.Delete(ctx, c)); err != nil {
			return err
		}
	}
	return nil
}

// HandOver does nothing: the workload reports its stable revision itself
// (or, for a canary Deployment, the released pods are not its own).
func (a *CanaryDeployment) HandOver(context.Context, string) error { return nil }
