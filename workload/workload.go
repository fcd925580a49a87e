// Package workload holds one adapter per workload kind behind one small
// interface. An adapter reads a workload's release progress and moves it
// one idempotent step at a time: take control, release a batch, give
// control back. It never writes the Rollout; the reconciler does.
package workload

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

// Labels and annotations shared with Kruise Rollout.
const (
	// InProgressingAnnotation marks a workload frozen for a release:
	// {"rolloutName":"<name>"}.
	InProgressingAnnotation = "rollouts.kruise.io/in-progressing"
	// WorkloadTypeLabel makes the freeze webhook see a workload; the
	// reconciler puts it on every workload a Rollout references.
	WorkloadTypeLabel = "rollouts.kruise.io/workload-type"
	// RolloutIDLabel is the release id a user or a PaaS sets on the workload.
	RolloutIDLabel = "rollouts.kruise.io/rollout-id"
	// BatchIDLabel is the 1-based batch a pod was released in.
	BatchIDLabel = "rollouts.kruise.io/rollout-batch-id"
	// StableRevisionLabel is the pod-template-hash of the revision released
	// before (partition-style Deployments).
	StableRevisionLabel = "rollouts.kruise.io/stable-revision"
	// DeploymentStrategyAnnotation keeps a partition-style Deployment's
	// original rolling update while Sluice drives its ReplicaSets.
	DeploymentStrategyAnnotation = "rollouts.kruise.io/deployment-strategy"
	// ControlInfoAnnotation says which Rollout controls the workload.
	ControlInfoAnnotation = "batchrelease.rollouts.kruise.io/control-info"
)

// Info is what a release needs to know about a workload, read fresh on
// every reconcile.
type Info struct {
	// Replicas is the desired number of pods.
	Replicas int32
	// Frozen is true while the workload carries InProgressingAnnotation.
	Frozen bool
	// StableRevision identifies the pods of the version released before.
	StableRevision string
	// UpdateRevision identifies the pods of the workload's current template.
	UpdateRevision string
	// PodRevision is the RevisionLabel value of the new version's pods, which
	// the canary Service selects. It is UpdateRevision, except for a
	// canary-style Deployment, whose canary pods carry their own hash (and
	// none until the canary Deployment has its ReplicaSet).
	PodRevision string
	// RolloutID is the workload's rollouts.kruise.io/rollout-id label.
	RolloutID string
	// Updated and UpdatedReady count the pods of UpdateRevision.
	Updated, UpdatedReady int32
	// Others counts the pods of every other revision.
	Others int32
	// Intermediate counts, of Others, the pods of neither the stable nor
	// the update revision (a version replaced mid-release) that Release
	// removes; a batch is in place once they are gone. Adapters that
	// leave such pods to the workload's own controller report 0.
	Intermediate int32
	// Settled is false while the workload's own controller has not yet
	// observed its latest spec.
	Settled bool
	// Released is true once control is given back and the workload's own
	// controller has finished rolling (every pod updated and ready).
	Released bool
	// Unready names the new-version pods that are not ready, with the
	// reason (at most a few), for a stuck batch's message.
	Unready []string
	// RevisionLabel is the pod label that carries revisions
	// (pod-template-hash or controller-revision-hash).
	RevisionLabel string
	// Controlled is true once Prepare has taken control (the workload
	// carries ControlInfoAnnotation).
	Controlled bool
	// Labelled is true when the workload carries WorkloadTypeLabel, which
	// the freeze webhook and the manager's cache select by.
	Labelled bool
	// CanHandOver is true when HandOver can make the released revision
	// the stable one while the workload stays frozen: its new pods are
	// the workload's own (partition-style and blue-green Deployments);
	// StatefulSets and OpenKruise kinds report it in StableRevision once
	// every pod runs it.
	CanHandOver bool
	// KeepsNewPods is true for a workload whose new pods a shrinking batch
	// cannot remove: a DaemonSet's controller recreates a deleted pod from
	// the current template, so only re-applying the old one takes them back.
	KeepsNewPods bool
}

// Batch is the target of one step.
type Batch struct {
	// Index is the 1-based step, written to pods as BatchIDLabel.
	Index int32
	// Updated is the number of pods of the new version the step wants.
	Updated int32
	// RolloutID is written to pods as RolloutIDLabel when set.
	RolloutID string
	// Revision is the revision the batch releases (Info.UpdateRevision
	// when it was decided). An adapter that finds another update revision
	// does nothing and returns ErrRevisionChanged: the batch was decided
	// for a template that has since been replaced.
	Revision string
	// Shrink allows fewer new pods than run now (a step jump back, an
	// abort). Without it a batch never removes a new pod: a decision
	// replayed from an earlier step cannot undo a later one.
	Shrink bool
}

// ErrRevisionChanged: the workload's update revision is not the batch's.
var ErrRevisionChanged = errors.New("the workload's update revision is not the batch's")

// Adapter drives one kind of workload through a release.
type Adapter interface {
	// Observe reads the workload. It returns nil Info when it is gone.
	Observe(ctx context.Context) (*Info, error)
	// Prepare takes control at the start of a release. Idempotent.
	Prepare(ctx context.Context) error
	// Release moves the workload towards b, one idempotent write at a time.
	Release(ctx context.Context, b Batch) error
	// Finalise gives control back: the workload then completes the release
	// by itself (or, after a rollback, returns to its stable version).
	// Idempotent; the reconciler waits for Info.Released.
	Finalise(ctx context.Context) error
	// HandOver makes revision the workload's stable revision and keeps
	// the workload frozen, for the release of a newer template pushed
	// while the last one was finalising. Idempotent; a no-op where the
	// workload does not support it (Info.CanHandOver).
	HandOver(ctx context.Context, revision string) error
}

// Options are the manager's choices that change how adapters give a
// workload back.
type Options struct {
	// KeepPausedOnRolloutDeletion is Kruise's KeepWorkloadPausedOnRolloutDeletion
	// gate: a Rollout deleted mid-release leaves its workload held where
	// the release left it (partition kept, Deployment paused, DaemonSet on
	// OnDelete), so that the team can roll back, instead of letting it
	// finish rolling out.
	KeepPausedOnRolloutDeletion bool
}

// For returns the adapter for the workload a Rollout references, or an
// error naming the kinds Sluice supports. live reads without the cache
// where an adapter must not act on a stale view (nil: through c).
func For(c client.Client, live client.Reader, r *v1beta1.Rollout, o Options) (Adapter, error) {
	ref := r.Spec.WorkloadRef
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return nil, err
	}
	key := client.ObjectKey{Namespace: r.Namespace, Name: ref.Name}
	keep := o.KeepPausedOnRolloutDeletion && r.DeletionTimestamp != nil
	switch (schema.GroupKind{Group: gv.Group, Kind: ref.Kind}) {
	case schema.GroupKind{Group: "apps", Kind: "Deployment"}:
		if cs := r.Spec.Strategy.Canary; cs != nil && cs.EnableExtraWorkloadForCanary {
			return &CanaryDeployment{Client: c, Key: key, Rollout: r, Metadata: cs.PatchPodTemplateMetadata}, nil
		}
		bg := r.Spec.Strategy.BlueGreen != nil
		return &Deployment{Client: c, Key: key, RolloutName: r.Name, BlueGreen: bg, KeepPaused: keep && !bg}, nil
	case schema.GroupKind{Group: "apps", Kind: "StatefulSet"}:
		if r.Spec.Strategy.BlueGreen != nil {
			return nil, fmt.Errorf("apps/v1 StatefulSet: blue-green releases are for Deployments; use strategy.canary")
		}
		return &StatefulSet{Client: c, Live: live, Key: key, RolloutName: r.Name, KeepPaused: keep}, nil
	case CloneSetKind.GroupKind(), AdvancedStatefulSetKind.GroupKind():
		if r.Spec.Strategy.BlueGreen != nil {
			return nil, fmt.Errorf("%s %s: blue-green releases are for Deployments; use strategy.canary", ref.APIVersion, ref.Kind)
		}
		return &Partitioned{Client: c, Live: live, Key: key, GVK: gv.WithKind(ref.Kind), RolloutName: r.Name, KeepPaused: keep}, nil
	case schema.GroupKind{Group: "apps", Kind: "DaemonSet"}, AdvancedDaemonSetKind.GroupKind():
		if r.Spec.Strategy.BlueGreen != nil {
			return nil, fmt.Errorf("%s %s: blue-green releases are for Deployments; use strategy.canary", ref.APIVersion, ref.Kind)
		}
		if gv.Group == "apps" {
			return &DaemonSet{Client: c, Live: live, Key: key, RolloutName: r.Name, KeepPaused: keep}, nil
		}
		return &AdvancedDaemonSet{Client: c, Key: key, RolloutName: r.Name, KeepPaused: keep}, nil
	}
	return nil, fmt.Errorf("%s %s: releasing this kind is not supported yet (supported: apps/v1 Deployment, partition or canary style or blue-green; apps/v1 StatefulSet and DaemonSet; apps.kruise.io CloneSet, StatefulSet and DaemonSet)", ref.APIVersion, ref.Kind)
}

// TypeLabelValue is the WorkloadTypeLabel value for a kind.
func TypeLabelValue(kind string) string {
	switch kind {
	case "Deployment":
		return "deployment"
	case "StatefulSet":
		return "statefulset"
	case "CloneSet":
		return "cloneset"
	case "DaemonSet":
		return "daemonset"
	}
	return ""
}
