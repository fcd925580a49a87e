// Package gateway routes a release through a Gateway API HTTPRoute
// (gateway.networking.k8s.io/v1): backendRef weights for weight steps,
// extra rules for A/B steps. The original rules are kept in an annotation
// on the HTTPRoute until the end, so every step is rendered from them and
// Finalise restores them exactly, even after a controller restart.
package gateway

import (
	"context"
	"encoding/json"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluicehq/sluice/traffic/route"
)

// OriginalRulesAnnotation holds the HTTPRoute's spec.rules (JSON) as they
// were before the release.
const OriginalRulesAnnotation = "sluice.dev/original-httproute-rules"

// Config says which HTTPRoute to route and between which Services.
type Config struct {
	Namespace     string
	HTTPRouteName string
	StableService string
	CanaryService string
}

// Provider is the Gateway API traffic provider. It reads and writes the
// HTTPRoute as unstructured, so the caller's scheme needs no Gateway API
// types and fields this version does not know survive the restore.
type Provider struct {
	client client.Client
	cfg    Config
}

var _ route.Provider = (*Provider)(nil)

// New returns the provider of cfg.
func New(c client.Client, cfg Config) *Provider { return &Provider{client: c, cfg: cfg} }

// Initialize checks that the HTTPRoute exists and routes to the stable Service.
func (p *Provider) Initialize(ctx context.Context) error {
	u, err := p.get(ctx)
	if err != nil {
		return err
	}
	rules, _, err := p.originalRules(u)
	if err != nil {
		return err
	}
	for _, r := range rules {
		if len(p.backends().stableRefs(r.BackendRefs)) > 0 {
			return nil
		}
	}
	return fmt.Errorf("httproute %s has no rule with a backendRef to the stable service %s", p.cfg.HTTPRouteName, p.cfg.StableService)
}

// EnsureRoutes sets the rules of r (rendered from the original rules),
// recording the original rules with the first change. A write that loses a
// race with another writer is redone on the fresh object.
func (p *Provider) EnsureRoutes(ctx context.Context, r route.Route) (done bool, err error) {
	err = retry.RetryOnConflict(retry.DefaultRetry, func() (err error) {
		done, err = p.ensureRoutes(ctx, r)
		return err
	})
	return done, err
}

func (p *Provider) ensureRoutes(ctx context.Context, r route.Route) (bool, error) {
	u, err := p.get(ctx)
	if err != nil {
		return false, err
	}
	original, raw, err := p.originalRules(u)
	if err != nil {
		return false, err
	}
	want, err := Render(original, r, p.backends())
	if err != nil {
		return false, fmt.Errorf("httproute %s: %w", p.cfg.HTTPRouteName, err)
	}
	_, snapshotted := u.GetAnnotations()[OriginalRulesAnnotation]
	current, err := rulesOf(u)
	if err != nil {
		return false, err
	}
	if snapshotted && Equal(current, want) {
		return true, nil
	}
	if !snapshotted {
		setAnnotation(u, OriginalRulesAnnotation, string(raw))
	}
	if err := setRules(u, want); err != nil {
		return false, err
	}
	if err := p.client.Update(ctx, u); err != nil {
		return false, fmt.Errorf("updating httproute %s: %w", p.cfg.HTTPRouteName, err)
	}
	return false, nil
}

// Finalise puts the original rules back, byte for byte, and drops the
// annotation; done when there was nothing to restore.
func (p *Provider) Finalise(ctx context.Context) (done bool, err error) {
	err = retry.RetryOnConflict(retry.DefaultRetry, func() (err error) {
		done, err = p.finalise(ctx)
		return err
	})
	return done, err
}

func (p *Provider) finalise(ctx context.Context) (bool, error) {
	u, err := p.get(ctx)
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	raw, ok := u.GetAnnotations()[OriginalRulesAnnotation]
	if !ok {
		return true, nil
	}
	var rules []any
	if err := json.Unmarshal([]byte(raw), &rules); err != nil {
		return false, fmt.Errorf("httproute %s: annotation %s: %w", p.cfg.HTTPRouteName, OriginalRulesAnnotation, err)
	}
	if rules == nil {
		unstructured.RemoveNestedField(u.Object, "spec", "rules")
	} else if err := unstructured.SetNestedSlice(u.Object, rules, "spec", "rules"); err != nil {
		return false, err
	}
	a := u.GetAnnotations()
	delete(a, OriginalRulesAnnotation)
	u.SetAnnotations(a)
	if err := p.client.Update(ctx, u); err != nil {
		return false, fmt.Errorf("restoring httproute %s: %w", p.cfg.HTTPRouteName, err)
	}
	return false, nil
}

func (p *Provider) backends() Backends {
	return Backends{Namespace: p.cfg.Namespace, Stable: p.cfg.StableService, Canary: p.cfg.CanaryService}
}

func (p *Provider) get(ctx context.Context) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gatewayv1.SchemeGroupVersion.WithKind("HTTPRoute"))
	if err := p.client.Get(ctx, client.ObjectKey{Namespace: p.cfg.Namespace, Name: p.cfg.HTTPRouteName}, u); err != nil {
		return nil, fmt.Errorf("reading httproute %s: %w", p.cfg.HTTPRouteName, err)
	}
	return u, nil
}

// originalRules are the rules before the release: from the annotation
// when a step already changed them, else the live ones. raw is their JSON.
func (p *Provider) originalRules(u *unstructured.Unstructured) ([]gatewayv1.HTTPRouteRule, []byte, error) {
	raw, ok := u.GetAnnotations()[OriginalRulesAnnotation]
	if !ok {
		live, _, err := unstructured.NestedFieldNoCopy(u.Object, "spec", "rules")
		if err != nil {
			return nil, nil, err
		}
		b, err := json.Marshal(live)
		if err != nil {
			return nil, nil, err
		}
		raw = string(b)
	}
	var rules []gatewayv1.HTTPRouteRule
	if err := json.Unmarshal([]byte(raw), &rules); err != nil {
		return nil, nil, fmt.Errorf("httproute %s: reading its rules: %w", p.cfg.HTTPRouteName, err)
	}
	return rules, []byte(raw), nil
}

func rulesOf(u *unstructured.Unstructured) ([]gatewayv1.HTTPRouteRule, error) {
	live, _, err := unstructured.NestedFieldNoCopy(u.Object, "spec", "rules")
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(live)
	if err != nil {
		return nil, err
	}
	var rules []gatewayv1.HTTPRouteRule
	return rules, json.Unmarshal(b, &rules)
}

func setRules(u *unstructured.Unstructured, rules []gatewayv1.HTTPRouteRule) error {
	list := make([]any, 0, len(rules))
	for i := range rules {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&rules[i])
		if err != nil {
			return err
		}
		list = append(list, m)
	}
	return unstructured.SetNestedSlice(u.Object, list, "spec", "rules")
}

func setAnnotation(u *unstructured.Unstructured, k, v string) {
	a := u.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[k] = v
	u.SetAnnotations(a)
}
