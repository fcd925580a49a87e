package traffic

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Services handles the Services of a release: the canary Service that
// selects the new revision and the stable Service pinned to the stable
// revision while traffic is split. Each method is idempotent and returns
// done=false when it changed something (the caller then waits the grace
// period before the next action).
type Services struct {
	Client    client.Client
	Namespace string
	// Stable is the Service of trafficRoutings[].service.
	Stable string
	// Canary is CanaryServiceName(Stable, disableGenerateCanaryService);
	// when it equals Stable nothing is created or pinned.
	Canary string
	// RevisionLabel is PodTemplateHashLabel or ControllerRevisionHashLabel.
	RevisionLabel string
	// Owner owns the canary Service (the Rollout).
	Owner *metav1.OwnerReference
	// Endpoints, when set, reads EndpointSlices live (not from a cache):
	// EnsureCanary is done only once the canary Service has a ready
	// endpoint, so no traffic is routed to a Service that cannot serve it.
	Endpoints client.Reader
}

// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=list

func (s Services) generated() bool { return s.Canary != s.Stable }

// EnsureCanary creates the canary Service selecting revision, or corrects
// its selector.
func (s Services) EnsureCanary(ctx context.Context, revision string) (bool, error) {
	if !s.generated() {
		return true, nil
	}
	if revision == "" {
		return false, fmt.Errorf("canary service %s: the canary revision is not known yet", s.Canary)
	}
	canary := &corev1.Service{}
	err := s.Client.Get(ctx, s.key(s.Canary), canary)
	if apierrors.IsNotFound(err) {
		stable := &corev1.Service{}
		if err := s.Client.Get(ctx, s.key(s.Stable), stable); err != nil {
			return false, fmt.Errorf("reading stable service %s: %w", s.Stable, err)
		}
		canary = NewCanaryService(stable, s.Canary, s.RevisionLabel, revision, s.Owner)
		if err := s.Client.Create(ctx, canary); err != nil && !apierrors.IsAlreadyExists(err) {
			return false, fmt.Errorf("creating canary service %s: %w", s.Canary, err)
		}
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if canary.DeletionTimestamp != nil {
		return false, nil // left from a reset release: wait until it is gone, then create it anew
	}
	if canary.Spec.Selector[s.RevisionLabel] != revision {
		return false, s.patchSelector(ctx, canary, &revision)
	}
	return s.hasReadyEndpoint(ctx, s.Canary)
}

// hasReadyEndpoint reports whether a Service's EndpointSlices hold a ready
// endpoint (always true without an Endpoints reader).
func (s Services) hasReadyEndpoint(ctx context.Context, service string) (bool, error) {
	if s.Endpoints == nil {
		return true, nil
	}
	var slices discoveryv1.EndpointSliceList
	if err := s.Endpoints.List(ctx, &slices, client.InNamespace(s.Namespace), client.MatchingLabels{discoveryv1.LabelServiceName: service}); err != nil {
		return false, fmt.Errorf("reading the endpoints of service %s: %w", service, err)
	}
	for _, sl := range slices.Items {
		for _, e := range sl.Endpoints {
			if e.Conditions.Ready == nil || *e.Conditions.Ready {
				return true, nil
			}
		}
	}
	return false, nil
}

// PinStable makes the stable Service select only the stable revision, so
// new pods never receive stable traffic. Kruise does it before the first
// traffic step.
func (s Services) PinStable(ctx context.Context, revision string) (bool, error) {
	if !s.generated() {
		return true, nil
	}
	if revision == "" {
		return false, fmt.Errorf("stable service %s: the stable revision is not known", s.Stable)
	}
	stable := &corev1.Service{}
	if err := s.Client.Get(ctx, s.key(s.Stable), stable); err != nil {
		return false, fmt.Errorf("reading stable service %s: %w", s.Stable, err)
	}
	if stable.Spec.Selector[s.RevisionLabel] == revision {
		return true, nil
	}
	return false, s.patchSelector(ctx, stable, &revision)
}

// RestoreStable removes the revision key from the stable Service selector.
func (s Services) RestoreStable(ctx context.Context) (bool, error) {
	stable := &corev1.Service{}
	err := s.Client.Get(ctx, s.key(s.Stable), stable)
	if apierrors.IsNotFound(err) {
		return true, nil // nothing to restore; the user deleted it
	}
	if err != nil {
		return false, err
	}
	if _, ok := stable.Spec.Selector[s.RevisionLabel]; !ok {
		return true, nil
	}
	return false, s.patchSelector(ctx, stable, nil)
}

// RemoveCanary deletes the canary Service; done once it is gone.
func (s Services) RemoveCanary(ctx context.Context) (bool, error) {
	if !s.generated() {
		return true, nil
	}
	canary := &corev1.Service{}
	err := s.Client.Get(ctx, s.key(s.Canary), canary)
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	if canary.DeletionTimestamp == nil {
		if err := s.Client.Delete(ctx, canary); client.IgnoreNotFound(err) != nil {
			return false, fmt.Errorf("deleting canary service %s: %w", s.Canary, err)
		}
	}
	return false, nil
}

func (s Services) patchSelector(ctx context.Context, svc *corev1.Service, value *string) error {
	if err := s.Client.Patch(ctx, svc, client.RawPatch(types.MergePatchType, selectorPatch(s.RevisionLabel, value))); err != nil {
		return fmt.Errorf("patching the selector of service %s: %w", svc.Name, err)
	}
	return nil
}

func (s Services) key(name string) client.ObjectKey {
	return client.ObjectKey{Namespace: s.Namespace, Name: name}
}
