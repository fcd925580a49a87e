// Package ingress routes a release through a copy of the stable Ingress,
// <ingress>-canary, whose annotations tell the ingress controller how much
// (canary-weight) and which (canary-by-header, canary-by-cookie, ...)
// traffic goes to the canary Service. The annotations depend on the
// controller (classType): nginx, higress, aliyun-alb and mse are built in,
// any other classType is a Lua script in the configuration ConfigMap.
package ingress

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/traffic/route"
	"github.com/sluicehq/sluice/traffic/script"
)

// DefaultClassType is the classType of an Ingress that names none.
const DefaultClassType = "nginx"

// Config says which Ingress to route and between which Services.
type Config struct {
	Namespace string
	// Name of the stable Ingress.
	Name string
	// ClassType selects the annotations; empty means nginx.
	ClassType     string
	StableService string
	CanaryService string
	// Owner owns the canary Ingress (the Rollout), so it goes with it.
	Owner *metav1.OwnerReference
	// Scripts holds user scripts; a script for a built-in classType
	// replaces the built-in annotations, as in Kruise.
	Scripts script.Source
}

// Provider is the Ingress traffic provider.
type Provider struct {
	client client.Client
	cfg    Config
}

var _ route.Provider = (*Provider)(nil)

// New returns the provider of cfg.
func New(c client.Client, cfg Config) *Provider {
	if cfg.ClassType == "" {
		cfg.ClassType = DefaultClassType
	}
	return &Provider{client: c, cfg: cfg}
}

// Annotator returns the annotations of the classType: a configured script
// first, then the built-in ones; an unknown classType is an error.
func (p *Provider) Annotator(ctx context.Context) (Annotator, error) {
	if p.cfg.Scripts != nil {
		src, name, ok, err := p.cfg.Scripts.Script(ctx, ScriptKey(p.cfg.ClassType))
		if err != nil {
			return nil, err
		}
		if ok {
			return luaClass(ctx, name, src, p.cfg.CanaryService), nil
		}
	}
	if a, ok := BuiltinClass(p.cfg.ClassType); ok {
		return a, nil
	}
	return nil, fmt.Errorf("ingress classType %q is not built in (nginx, higress, aliyun-alb, mse) and no script %s is configured",
		p.cfg.ClassType, ScriptKey(p.cfg.ClassType))
}

// Initialize checks that the stable Ingress exists, leads to the stable
// Service and that its classType is known.
func (p *Provider) Initialize(ctx context.Context) error {
	if _, err := p.Annotator(ctx); err != nil {
		return err
	}
	stable, err := p.stable(ctx)
	if err != nil {
		return err
	}
	_, err = NewCanary(stable, p.cfg.StableService, p.cfg.CanaryService, p.cfg.Owner)
	return err
}

// EnsureRoutes creates the canary Ingress at weight 0 on the first call
// (so the ingress controller knows it before any traffic moves), then sets
// the step's annotations with one merge patch.
func (p *Provider) EnsureRoutes(ctx context.Context, r route.Route) (bool, error) {
	annotate, err := p.Annotator(ctx)
	if err != nil {
		return false, err
	}
	// Reject what the class cannot express before touching anything.
	if _, err := annotate(nil, r); err != nil {
		return false, fmt.Errorf("ingress %s: %w", p.cfg.Name, err)
	}
	canary := &networkingv1.Ingress{}
	err = p.client.Get(ctx, p.key(CanaryName(p.cfg.Name)), canary)
	if apierrors.IsNotFound(err) {
		return false, p.createCanary(ctx, annotate)
	}
	if err != nil {
		return false, err
	}
	if canary.DeletionTimestamp != nil {
		return false, nil // left from a reset release: wait until it is gone, then create it anew
	}
	want, err := annotate(canary.Annotations, r)
	if err != nil {
		return false, err
	}
	if maps.Equal(want, canary.Annotations) {
		return true, nil
	}
	patch, err := annotationsPatch(canary.Annotations, want)
	if err != nil {
		return false, err
	}
	return false, p.client.Patch(ctx, canary, client.RawPatch(types.MergePatchType, patch))
}

func (p *Provider) createCanary(ctx context.Context, annotate Annotator) error {
	stable, err := p.stable(ctx)
	if err != nil {
		return err
	}
	canary, err := NewCanary(stable, p.cfg.StableService, p.cfg.CanaryService, p.cfg.Owner)
	if err != nil {
		return err
	}
	if canary.Annotations, err = annotate(canary.Annotations, route.Route{Weight: route.Weight(0)}); err != nil {
		return err
	}
	if err := p.client.Create(ctx, canary); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating canary ingress %s: %w", canary.Name, err)
	}
	return nil
}

// Finalise deletes the canary Ingress; done once it is gone.
func (p *Provider) Finalise(ctx context.Context) (bool, error) {
	canary := &networkingv1.Ingress{}
	err := p.client.Get(ctx, p.key(CanaryName(p.cfg.Name)), canary)
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	if canary.DeletionTimestamp == nil {
		if err := p.client.Delete(ctx, canary); client.IgnoreNotFound(err) != nil {
			return false, fmt.Errorf("deleting canary ingress %s: %w", canary.Name, err)
		}
	}
	return false, nil
}

func (p *Provider) stable(ctx context.Context) (*networkingv1.Ingress, error) {
	stable := &networkingv1.Ingress{}
	if err := p.client.Get(ctx, p.key(p.cfg.Name), stable); err != nil {
		return nil, fmt.Errorf("reading ingress %s: %w", p.cfg.Name, err)
	}
	return stable, nil
}

func (p *Provider) key(name string) client.ObjectKey {
	return client.ObjectKey{Namespace: p.cfg.Namespace, Name: name}
}

// annotationsPatch is a merge patch from have to want: keys that are gone
// are sent as null, which is how a merge patch removes them.
func annotationsPatch(have, want map[string]string) ([]byte, error) {
	a := map[string]any{}
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			a[k] = v
		}
	}
	for k := range have {
		if _, ok := want[k]; !ok {
			a[k] = nil
		}
	}
	return json.Marshal(map[string]any{"metadata": map[string]any{"annotations": a}})
}
