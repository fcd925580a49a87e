// Package freeze is the mutating webhook that freezes a workload the moment
// its pod template changes, before the workload's own controller acts: a
// Deployment is paused; a StatefulSet, CloneSet, Advanced StatefulSet or
// Advanced DaemonSet partitioned; a native DaemonSet put on OnDelete. The
// Rollout then releases it batch by batch.
package freeze

import (
	"context"
	"encoding/json"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/workload"
)

// Path is where the webhook is served.
const Path = "/freeze-workload"

// The webhook runs again after other mutating webhooks changed the object
// (reinvocationPolicy IfNeeded): OpenKruise's defaulting sets a removed
// partition to 0, which must not release a held batch.
// +kubebuilder:webhook:path=/freeze-workload,mutating=true,failurePolicy=fail,sideEffects=None,groups=apps,resources=deployments;statefulsets;daemonsets,verbs=update,versions=v1,name=workloads.freeze.sluice.dev,admissionReviewVersions=v1,reinvocationPolicy=IfNeeded
// +kubebuilder:webhook:path=/freeze-workload,mutating=true,failurePolicy=fail,sideEffects=None,groups=apps.kruise.io,resources=clonesets;statefulsets;daemonsets,verbs=update,versions=v1alpha1;v1beta1,name=kruise-workloads.freeze.sluice.dev,admissionReviewVersions=v1,reinvocationPolicy=IfNeeded
// +kubebuilder:rbac:groups=apps,resources=replicasets,verbs=get;list;watch

// Handler freezes workloads that a Rollout references.
type Handler struct {
	// Client reads Rollouts and ReplicaSets. It must read the API server,
	// not a cache: the batch a release holds its workload to is the
	// Rollout's committed status, and the webhook must see the latest.
	Client client.Reader
	// Cached, when set, is a cache with the workload.RolloutsByWorkload
	// index: it tells which Rollout releases a workload without listing
	// the namespace's Rollouts from the API server on every write (a
	// thousand Rollouts written at once made each write list them all,
	// past the webhook's timeout). The Rollout it names is then read
	// through Client; with none there (one created an instant ago,
	// another shard's), the namespace is listed through Client.
	Cached  client.Reader
	Decoder admission.Decoder
}

var _ admission.Handler = &Handler{}

// Handle freezes an updated Deployment or StatefulSet when it enters a
// release, and keeps it frozen while one is in progress.
func (h *Handler) Handle(ctx context.Context, req admission.Request) admission.Response {
	if req.Operation != admissionv1.Update || req.SubResource != "" {
		return admission.Allowed("")
	}
	if req.Kind.Group == workload.CloneSetKind.Group {
		u, old := &unstructured.Unstructured{}, &unstructured.Unstructured{}
		return handle(ctx, h, req, u, old, h.freezeKruise)
	}
	switch req.Kind.Kind {
	case "Deployment":
		return handle(ctx, h, req, &appsv1.Deployment{}, &appsv1.Deployment{}, h.freezeDeployment)
	case "StatefulSet":
		return handle(ctx, h, req, &appsv1.StatefulSet{}, &appsv1.StatefulSet{}, h.freezeStatefulSet)
	case "DaemonSet":
		return handle(ctx, h, req, &appsv1.DaemonSet{}, &appsv1.DaemonSet{}, h.freezeDaemonSet)
	}
	return admission.Allowed("")
}

func handle[T client.Object](ctx context.Context, h *Handler, req admission.Request, cur, old T, freeze func(context.Context, *v1beta1.Rollout, T, T) (bool, error)) admission.Response {
	if err := h.Decoder.DecodeRaw(req.Object, cur); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	if err := h.Decoder.DecodeRaw(req.OldObject, old); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	r, err := h.rolloutFor(ctx, cur.GetNamespace(), req.Kind.Group, req.Kind.Kind, cur.GetName())
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	if r == nil {
		return admission.Allowed("no Rollout")
	}
	changed, err := freeze(ctx, r, cur, old)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	if !changed {
		return admission.Allowed("")
	}
	raw, err := json.Marshal(cur)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	return admission.PatchResponseFromRaw(req.Object.Raw, raw)
}

// rolloutFor finds the active Rollout that releases the workload, as the
// API server has it.
func (h *Handler) rolloutFor(ctx context.Context, namespace, group, kind, name string) (*v1beta1.Rollout, error) {
	releases := func(r *v1beta1.Rollout) bool {
		gv, _ := schema.ParseGroupVersion(r.Spec.WorkloadRef.APIVersion)
		return gv.Group == group && r.Spec.WorkloadRef.Kind == kind && r.Spec.WorkloadRef.Name == name
	}
	active := func(r *v1beta1.Rollout) *v1beta1.Rollout {
		if r.DeletionTimestamp != nil || r.Spec.Disabled || r.Status.Phase == v1beta1.RolloutPhaseDisabled {
			return nil
		}
		return r
	}
	if h.Cached != nil {
		// An error (the index not registered) only costs the list below.
		if cached, err := workload.RolloutsOf(ctx, h.Cached, namespace, kind, name); err == nil {
			for i := range cached {
				r := &v1beta1.Rollout{}
				if err := h.Client.Get(ctx, client.ObjectKeyFromObject(&cached[i]), r); err != nil {
					if apierrors.IsNotFound(err) {
						continue
					}
					return nil, err
				}
				if releases(r) {
					return active(r), nil
				}
			}
		}
	}
	var list v1beta1.RolloutList
	if err := h.Client.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		return nil, err
	}
	for i := range list.Items {
		if r := &list.Items[i]; releases(r) {
			return active(r), nil
		}
	}
	return nil, nil
}

func inProgressing(r *v1beta1.Rollout) string {
	raw, _ := json.Marshal(map[string]string{"rolloutName": r.Name})
	return string(raw)
}
