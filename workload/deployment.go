package workload

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"golang.org/x/sync/errgroup"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Deployment releases an apps/v1 Deployment in partition style: the
// Deployment stays paused with the Recreate strategy (so its own controller
// neither creates the new ReplicaSet nor scales anything while two are
// active) and Sluice scales the new and old ReplicaSets batch by batch,
// honouring the original maxSurge and maxUnavailable. Finalise restores the
// strategy and resumes the Deployment, whose controller then finishes the
// release (or, after a rollback, returns to the stable ReplicaSet).
type Deployment struct {
	Client      client.Client
	Key         client.ObjectKey
	RolloutName string
	// BlueGreen keeps every old pod while the new ones come up beside them
	// (strategy.blueGreen); the old pods go when the Deployment resumes.
	BlueGreen bool
	// KeepPaused leaves the Deployment paused when it is given back (its
	// Rollout deleted under KeepWorkloadPausedOnRolloutDeletion).
	KeepPaused bool
}

// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=apps,resources=replicasets,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch;patch

// savedStrategy is DeploymentStrategyAnnotation's value (Kruise's shape).
type savedStrategy struct {
	RollingStyle  string                          `json:"rollingStyle"`
	RollingUpdate *appsv1.RollingUpdateDeployment `json:"rollingUpdate,omitempty"`
	Paused        bool                            `json:"paused"`
	Partition     intstr.IntOrString              `json:"partition"`
}

// deploymentState is a Deployment with its ReplicaSets, sorted out.
type deploymentState struct {
	d       *appsv1.Deployment
	newRS   *appsv1.ReplicaSet   // nil until created
	oldRSs  []*appsv1.ReplicaSet // every other ReplicaSet the Deployment owns
	newHash string
}

func (a *Deployment) load(ctx context.Context) (*deploymentState, error) {
	d := &appsv1.Deployment{}
	if err := a.Client.Get(ctx, a.Key, d); err != nil {
		return nil, err
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, err
	}
	var list appsv1.ReplicaSetList
	if err := a.Client.List(ctx, &list, client.InNamespace(d.Namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return nil, err
	}
	// The new ReplicaSet is the one labelled with the template's hash (the
	// Deployment controller names and labels its ReplicaSets by it), so
	// the manager's cache need not keep ReplicaSets' pod templates.
	s := &deploymentState{d: d, newHash: TemplateHash(&d.Spec.Template, d.Status.CollisionCount)}
	for i := range list.Items {
		rs := &list.Items[i]
		if owner := metav1.GetControllerOf(rs); owner == nil || owner.UID != d.UID {
			continue
		}
		if s.newRS == nil && rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey] == s.newHash {
			s.newRS = rs
			continue
		}
		s.oldRSs = append(s.oldRSs, rs)
	}
	return s, nil
}

// Observe reads the Deployment and its ReplicaSets.
func (a *Deployment) Observe(ctx context.Context) (*Info, error) {
	s, err := a.load(ctx)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	d := s.d
	info := &Info{
		Replicas:       replicasOf(d.Spec.Replicas),
		Frozen:         d.Annotations[InProgressingAnnotation] != "",
		UpdateRevision: s.newHash,
		PodRevision:    s.newHash,
		RolloutID:      d.Labels[RolloutIDLabel],
		Settled:        d.Status.ObservedGeneration >= d.Generation,
		RevisionLabel:  appsv1.DefaultDeploymentUniqueLabelKey,
		Controlled:     d.Annotations[ControlInfoAnnotation] != "",
		Labelled:       d.Labels[WorkloadTypeLabel] != "",
		CanHandOver:    true,
	}
	info.StableRevision = d.Labels[StableRevisionLabel]
	if info.StableRevision == "" {
		info.StableRevision = s.newestOldHash()
	}
	if s.newRS != nil {
		info.Updated = s.newRS.Status.Replicas
		info.UpdatedReady = s.newRS.Status.ReadyReplicas
		if info.Frozen && info.UpdatedReady < info.Updated {
			if info.Unready, err = a.unready(ctx, d.Namespace, s.newHash); err != nil {
				return nil, err
			}
		}
	}
	for _, rs := range s.oldRSs {
		info.Others += rs.Status.Replicas
	}
	if stableHash := d.Labels[StableRevisionLabel]; stableHash != "" {
		_, intermediate := s.splitOld(stableHash)
		for _, rs := range intermediate {
			info.Intermediate += rs.Status.Replicas
		}
	}
	info.Released = !d.Spec.Paused && !info.Frozen && info.Settled &&
		d.Status.UpdatedReplicas == info.Replicas && d.Status.Replicas == info.Replicas &&
		d.Status.AvailableReplicas == info.Replicas && info.Others == 0
	return info, nil
}

// unready names the new-version pods that are not ready.
func (a *Deployment) unready(ctx context.Context, namespace, hash string) ([]string, error) {
	var pods corev1.PodList
	if err := a.Client.List(ctx, &pods, client.InNamespace(namespace), client.MatchingLabels{appsv1.DefaultDeploymentUniqueLabelKey: hash}); err != nil {
		return nil, err
	}
	var out []string
	for i := range pods.Items {
		if p := &pods.Items[i]; p.DeletionTimestamp == nil && !podReady(p) {
			out = appendUnready(out, p)
		}
	}
	return out, nil
}

// newestOldHash is the hash of the most recent ReplicaSet other than the
// new one: the stable revision when nothing says otherwise.
func (s *deploymentState) newestOldHash() string {
	best, bestRev := "", -1
	for _, rs := range s.oldRSs {
		rev, _ := strconv.Atoi(rs.Annotations["deployment.kubernetes.io/revision"])
		if rev > bestRev {
			best, bestRev = rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey], rev
		}
	}
	if best == "" {
		return s.newHash
	}
	return best
}

// Prepare saves the rolling update, switches to Recreate and pauses, so
// that the Deployment controller leaves the ReplicaSets to Sluice.
func (a *Deployment) Prepare(ctx context.Context) error {
	d := &appsv1.Deployment{}
	if err := a.Client.Get(ctx, a.Key, d); err != nil {
		return err
	}
	_, held := d.Annotations[OriginalDeploymentStrategyAnnotation]
	if _, saved := d.Annotations[DeploymentStrategyAnnotation]; saved && d.Spec.Paused && d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType && (held || !a.BlueGreen) {
		return nil
	}
	if _, saved := d.Annotations[DeploymentStrategyAnnotation]; !saved {
		ru := d.Spec.Strategy.RollingUpdate
		if ru == nil {
			ru = defaultRollingUpdate()
		}
		raw, err := json.Marshal(savedStrategy{RollingStyle: "Partition", RollingUpdate: ru})
		if err != nil {
			return err
		}
		metav1.SetMetaDataAnnotation(&d.ObjectMeta, DeploymentStrategyAnnotation, string(raw))
	}
	if a.BlueGreen {
		if err := holdOldPods(d); err != nil {
			return err
		}
	}
	metav1.SetMetaDataAnnotation(&d.ObjectMeta, ControlInfoAnnotation, controlInfo(a.RolloutName))
	d.Spec.Paused = true
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	return a.Client.Update(ctx, d)
}

// OriginalDeploymentStrategyAnnotation keeps a blue-green Deployment's
// minReadySeconds and progressDeadlineSeconds while Sluice holds its old
// pods (Kruise's annotation).
const OriginalDeploymentStrategyAnnotation = "rollouts.kruise.io/original-deployment-strategy"

type originalTimings struct {
	MinReadySeconds         int32  `json:"minReadySeconds"`
	ProgressDeadlineSeconds *int32 `json:"progressDeadlineSeconds,omitempty"`
}

// holdOldPods makes the new pods of a blue-green release never count as
// available (minReadySeconds near forever), so the Deployment controller,
// which scales the old ReplicaSets to zero once the new one is "saturated"
// even while paused, leaves the old pods alone until the switch. The
// original timings are saved for Finalise.
func holdOldPods(d *appsv1.Deployment) error {
	if _, ok := d.Annotations[OriginalDeploymentStrategyAnnotation]; ok {
		return nil
	}
	raw, err := json.Marshal(originalTimings{MinReadySeconds: d.Spec.MinReadySeconds, ProgressDeadlineSeconds: d.Spec.ProgressDeadlineSeconds})
	if err != nil {
		return err
	}
	metav1.SetMetaDataAnnotation(&d.ObjectMeta, OriginalDeploymentStrategyAnnotation, string(raw))
	forever := int32(math.MaxInt32)
	d.Spec.MinReadySeconds = forever - 1 // must stay below progressDeadlineSeconds
	d.Spec.ProgressDeadlineSeconds = &forever
	return nil
}

func defaultRollingUpdate() *appsv1.RollingUpdateDeployment {
	q := intstr.FromString("25%")
	return &appsv1.RollingUpdateDeployment{MaxSurge: &q, MaxUnavailable: &q}
}

func controlInfo(rollout string) string {
	raw, _ := json.Marshal(metav1.OwnerReference{APIVersion: "rollouts.kruise.io/v1beta1", Kind: "Rollout", Name: rollout})
	return string(raw)
}

// Release scales the ReplicaSets one move towards b: first the new one up
// within maxSurge, then the old ones down within maxUnavailable, the way a
// rolling update does, but never past b.Updated new pods, and never below
// the new pods running unless b.Shrink. Every write carries the
// resourceVersion it was computed from: a stale cache fails it
// (a conflict) instead of undoing a later batch.
func (a *Deployment) Release(ctx context.Context, b Batch) error {
	s, err := a.load(ctx)
	if err != nil {
		return err
	}
	if err := s.check(b); err != nil {
		return err
	}
	if s.newRS == nil {
		if s.newRS, err = a.createNewReplicaSet(ctx, s); err != nil {
			return err
		}
	}
	replicas := replicasOf(s.d.Spec.Replicas)
	surge, unavailable, err := a.limits(s.d, replicas)
	if err != nil {
		return err
	}
	stable, others := s.splitOld(s.d.Labels[StableRevisionLabel])
	if a.BlueGreen {
		return a.releaseBesideStable(ctx, s, stable, others, b)
	}
	plan := planScale(scaleInput{
		replicas: replicas, target: min(b.Updated, replicas), shrink: b.Shrink, surge: surge, unavailable: unavailable,
		newSpec: replicasOf(s.newRS.Spec.Replicas), newAvailable: s.newRS.Status.AvailableReplicas,
		stable: stable, others: others,
	})
	if plan.newReplicas != replicasOf(s.newRS.Spec.Replicas) {
		if err := scaleReplicaSet(ctx, a.Client, s.newRS, plan.newReplicas); err != nil {
			return err
		}
	}
	for i, rs := range plan.old {
		if plan.oldReplicas[i] != replicasOf(rs.Spec.Replicas) {
			if err := scaleReplicaSet(ctx, a.Client, rs, plan.oldReplicas[i]); err != nil {
				return err
			}
		}
	}
	return labelPods(ctx, a.Client, s.d.Namespace, map[string]string{appsv1.DefaultDeploymentUniqueLabelKey: s.newHash}, b)
}

// check refuses a batch decided for another template than the
// Deployment's (or before its controller has seen its latest spec).
func (s *deploymentState) check(b Batch) error {
	if s.d.Status.ObservedGeneration < s.d.Generation || (b.Revision != "" && b.Revision != s.newHash) {
		return fmt.Errorf("%w: batch for %s, Deployment %s at %s (generation %d observed %d)",
			ErrRevisionChanged, b.Revision, s.d.Name, s.newHash, s.d.Generation, s.d.Status.ObservedGeneration)
	}
	return nil
}

// releaseBesideStable is Release for blue-green: the new ReplicaSet goes
// straight to the batch (the step's pods are the surge), the stable one
// stays whole, intermediate ones go.
func (a *Deployment) releaseBesideStable(ctx context.Context, s *deploymentState, stable *appsv1.ReplicaSet, others []*appsv1.ReplicaSet, b Batch) error {
	replicas := replicasOf(s.d.Spec.Replicas)
	n := min(b.Updated, replicas)
	if !b.Shrink {
		n = max(n, replicasOf(s.newRS.Spec.Replicas))
	}
	want := map[*appsv1.ReplicaSet]int32{s.newRS: n}
	if stable != nil {
		want[stable] = replicas
	}
	for _, rs := range others {
		want[rs] = 0
	}
	for rs, n := range want {
		if replicasOf(rs.Spec.Replicas) != n {
			if err := scaleReplicaSet(ctx, a.Client, rs, n); err != nil {
				return err
			}
		}
	}
	return labelPods(ctx, a.Client, s.d.Namespace, map[string]string{appsv1.DefaultDeploymentUniqueLabelKey: s.newHash}, b)
}

// splitOld tells the stable ReplicaSet from those of intermediate
// revisions (replaced before their release finished).
func (s *deploymentState) splitOld(stableHash string) (stable *appsv1.ReplicaSet, others []*appsv1.ReplicaSet) {
	for _, rs := range s.oldRSs {
		if stable == nil && rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey] == stableHash {
			stable = rs
			continue
		}
		others = append(others, rs)
	}
	return stable, others
}

func (a *Deployment) limits(d *appsv1.Deployment, replicas int32) (surge, unavailable int32, err error) {
	ru := defaultRollingUpdate()
	if raw := d.Annotations[DeploymentStrategyAnnotation]; raw != "" {
		var saved savedStrategy
		if err := json.Unmarshal([]byte(raw), &saved); err != nil {
			return 0, 0, fmt.Errorf("annotation %s: %w", DeploymentStrategyAnnotation, err)
		}
		if saved.RollingUpdate != nil {
			ru = saved.RollingUpdate
		}
	}
	return resolveSurgeUnavailable(ru, replicas)
}

// resolveSurgeUnavailable turns maxSurge (rounded up) and maxUnavailable
// (rounded down) into numbers, as the Deployment controller does; when both
// are zero one pod may be unavailable, or nothing could ever move.
func resolveSurgeUnavailable(ru *appsv1.RollingUpdateDeployment, replicas int32) (int32, int32, error) {
	zero := intstr.FromInt32(0)
	ms, mu := ru.MaxSurge, ru.MaxUnavailable
	if ms == nil {
		ms = &zero
	}
	if mu == nil {
		mu = &zero
	}
	surge, err := intstr.GetScaledValueFromIntOrPercent(ms, int(replicas), true)
	if err != nil {
		return 0, 0, err
	}
	unavailable, err := intstr.GetScaledValueFromIntOrPercent(mu, int(replicas), false)
	if err != nil {
		return 0, 0, err
	}
	if surge == 0 && unavailable == 0 {
		unavailable = 1
	}
	return int32(surge), int32(unavailable), nil
}

func (a *Deployment) createNewReplicaSet(ctx context.Context, s *deploymentState) (*appsv1.ReplicaSet, error) {
	d := s.d
	template := d.Spec.Template.DeepCopy()
	if template.Labels == nil {
		template.Labels = map[string]string{}
	}
	template.Labels[appsv1.DefaultDeploymentUniqueLabelKey] = s.newHash
	selector := d.Spec.Selector.DeepCopy()
	if selector.MatchLabels == nil {
		selector.MatchLabels = map[string]string{}
	}
	selector.MatchLabels[appsv1.DefaultDeploymentUniqueLabelKey] = s.newHash
	revision := 0
	for _, rs := range s.oldRSs {
		if r, _ := strconv.Atoi(rs.Annotations["deployment.kubernetes.io/revision"]); r > revision {
			revision = r
		}
	}
	zero := int32(0)
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name:      d.Name + "-" + s.newHash,
			Namespace: d.Namespace,
			Labels:    template.Labels,
			Annotations: map[string]string{
				"deployment.kubernetes.io/revision":         strconv.Itoa(revision + 1),
				"deployment.kubernetes.io/desired-replicas": strconv.Itoa(int(replicasOf(d.Spec.Replicas))),
			},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(d, appsv1.SchemeGroupVersion.WithKind("Deployment"))},
		},
		Spec: appsv1.ReplicaSetSpec{
			Replicas:        &zero,
			MinReadySeconds: d.Spec.MinReadySeconds,
			Selector:        selector,
			Template:        *template,
		},
	}
	if err := a.Client.Create(ctx, rs); err != nil {
		return nil, fmt.Errorf("creating ReplicaSet %s: %w", rs.Name, err)
	}
	return rs, nil
}

// Finalise restores the rolling update, removes Sluice's marks and
// resumes the Deployment, in one write.
func (a *Deployment) Finalise(ctx context.Context) error {
	d := &appsv1.Deployment{}
	if err := a.Client.Get(ctx, a.Key, d); err != nil {
		return client.IgnoreNotFound(err)
	}
	changed := false
	if raw, ok := d.Annotations[DeploymentStrategyAnnotation]; ok {
		var saved savedStrategy
		if err := json.Unmarshal([]byte(raw), &saved); err != nil {
			return fmt.Errorf("annotation %s: %w", DeploymentStrategyAnnotation, err)
		}
		d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: saved.RollingUpdate}
		delete(d.Annotations, DeploymentStrategyAnnotation)
		changed = true
	}
	if raw, ok := d.Annotations[OriginalDeploymentStrategyAnnotation]; ok {
		var saved originalTimings
		if err := json.Unmarshal([]byte(raw), &saved); err != nil {
			return fmt.Errorf("annotation %s: %w", OriginalDeploymentStrategyAnnotation, err)
		}
		d.Spec.MinReadySeconds, d.Spec.ProgressDeadlineSeconds = saved.MinReadySeconds, saved.ProgressDeadlineSeconds
		delete(d.Annotations, OriginalDeploymentStrategyAnnotation)
		changed = true
	}
	for _, k := range []string{InProgressingAnnotation, ControlInfoAnnotation} {
		if _, ok := d.Annotations[k]; ok {
			delete(d.Annotations, k)
			changed = true
		}
	}
	if _, ok := d.Labels[StableRevisionLabel]; ok {
		delete(d.Labels, StableRevisionLabel)
		changed = true
	}
	if d.Spec.Paused && !a.KeepPaused {
		d.Spec.Paused = false
		changed = true
	}
	if !changed {
		return nil
	}
	return a.Client.Update(ctx, d)
}

// HandOver makes revision (a ReplicaSet's pod-template-hash) the stable
// one: the next release scales it as the stable version.
func (a *Deployment) HandOver(ctx context.Context, revision string) error {
	d := &appsv1.Deployment{}
	if err := a.Client.Get(ctx, a.Key, d); err != nil {
		return err
	}
	if d.Labels[StableRevisionLabel] == revision {
		return nil
	}
	patch := client.MergeFromWithOptions(d.DeepCopy(), client.MergeFromWithOptimisticLock{})
	metav1.SetMetaDataLabel(&d.ObjectMeta, StableRevisionLabel, revision)
	return a.Client.Patch(ctx, d, patch)
}

// scaleReplicaSet sets a ReplicaSet's replicas if it is still the version
// read (optimistic lock).
func scaleReplicaSet(ctx context.Context, c client.Client, rs *appsv1.ReplicaSet, n int32) error {
	patch := client.MergeFromWithOptions(rs.DeepCopy(), client.MergeFromWithOptimisticLock{})
	rs.Spec.Replicas = &n
	return c.Patch(ctx, rs, patch)
}

// labelPods stamps the batch (and release id) on pods of the new version
// that do not carry it yet. The patches go out a few at a time: one after
// the other, a batch of a hundred pods held its reconcile, and the work
// queue behind it, for a hundred round trips.
func labelPods(ctx context.Context, c client.Client, namespace string, selector map[string]string, b Batch) error {
	var pods corev1.PodList
	if err := c.List(ctx, &pods, client.InNamespace(namespace), client.MatchingLabelsSelector{Selector: labels.SelectorFromSet(selector)}); err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(labelConcurrency)
	for i := range pods.Items {
		p := &pods.Items[i]
		// A pod labelled by an earlier release (another rollout id) is
		// labelled again, as Kruise does.
		if p.DeletionTimestamp != nil || (p.Labels[BatchIDLabel] != "" && (b.RolloutID == "" || p.Labels[RolloutIDLabel] == b.RolloutID)) {
			continue
		}
		g.Go(func() error {
			patch := client.MergeFrom(p.DeepCopy())
			p.Labels[BatchIDLabel] = strconv.Itoa(int(b.Index))
			if b.RolloutID != "" {
				p.Labels[RolloutIDLabel] = b.RolloutID
			}
			if err := c.Patch(ctx, p, patch); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
			return nil
		})
	}
	return g.Wait()
}

// labelConcurrency is how many pod label patches one reconcile has in
// flight.
const labelConcurrency = 8

func replicasOf(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}
