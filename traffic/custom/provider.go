// Package custom routes a release through any object (an Istio
// VirtualService, an APISIX route, ...) by a Lua script that rewrites its
// spec for each step, Kruise's custom network providers. The object's
// original spec, labels and annotations are kept in the annotation
// rollouts.kruise.io/original-spec-configuration: every step is rendered
// from them and Finalise puts them back.
package custom

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/traffic/route"
	"github.com/sluicehq/sluice/traffic/script"
)

// OriginalSpecAnnotation is Kruise's snapshot annotation, JSON Data.
const OriginalSpecAnnotation = "rollouts.kruise.io/original-spec-configuration"

// Config says which objects to route and between which Services.
type Config struct {
	Namespace     string
	Refs          []v1beta1.ObjectRef
	StableService string
	CanaryService string
	// Scripts holds user scripts; they win over the built-in ones.
	Scripts script.Source
}

// Provider is the custom (Lua) traffic provider.
type Provider struct {
	client client.Client
	cfg    Config
}

var _ route.Provider = (*Provider)(nil)

// New returns the provider of cfg.
func New(c client.Client, cfg Config) *Provider { return &Provider{client: c, cfg: cfg} }

// scriptFor finds the script of a ref: the configured one, else a built-in.
func (p *Provider) scriptFor(ctx context.Context, ref v1beta1.ObjectRef) (src, name string, err error) {
	key := ScriptKey(ref.APIVersion, ref.Kind)
	src, name, ok, err := script.Chain{p.cfg.Scripts, Builtin}.Script(ctx, key)
	if err != nil {
		return "", "", err
	}
	if !ok {
		return "", "", fmt.Errorf("no traffic routing script for %s %s: configure %s", ref.Kind, ref.Name, key)
	}
	return src, name, nil
}

// Initialize checks that every object exists and has a script.
func (p *Provider) Initialize(ctx context.Context) error {
	for _, ref := range p.cfg.Refs {
		if _, _, err := p.scriptFor(ctx, ref); err != nil {
			return err
		}
		if _, err := p.get(ctx, ref); err != nil {
			return err
		}
	}
	return nil
}

// EnsureRoutes renders every object for r; done when none changed.
func (p *Provider) EnsureRoutes(ctx context.Context, r route.Route) (bool, error) {
	done := true
	for _, ref := range p.cfg.Refs {
		changed, err := p.ensure(ctx, ref, r)
		if err != nil {
			return false, err
		}
		done = done && !changed
	}
	return done, nil
}

// ensure renders one object; changed when it had to be written. A write
// that loses a race with another writer is redone on the fresh object.
func (p *Provider) ensure(ctx context.Context, ref v1beta1.ObjectRef, r route.Route) (changed bool, err error) {
	err = retry.RetryOnConflict(retry.DefaultRetry, func() (err error) {
		changed, err = p.ensureOnce(ctx, ref, r)
		return err
	})
	return changed, err
}

func (p *Provider) ensureOnce(ctx context.Context, ref v1beta1.ObjectRef, r route.Route) (bool, error) {
	src, name, err := p.scriptFor(ctx, ref)
	if err != nil {
		return false, err
	}
	u, err := p.get(ctx, ref)
	if err != nil {
		return false, err
	}
	original, raw, err := snapshot(u)
	if err != nil {
		return false, fmt.Errorf("%s %s: %w", ref.Kind, ref.Name, err)
	}
	want, err := Render(ctx, name, src, original, r, p.cfg.StableService, p.cfg.CanaryService)
	if err != nil {
		return false, fmt.Errorf("%s %s: %w", ref.Kind, ref.Name, err)
	}
	annotations := maps.Clone(want.Annotations)
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[OriginalSpecAnnotation] = raw
	if sameJSON(u.Object["spec"], want.Spec) && maps.Equal(u.GetLabels(), want.Labels) && maps.Equal(u.GetAnnotations(), annotations) {
		return false, nil
	}
	u.Object["spec"] = want.Spec
	u.SetLabels(want.Labels)
	u.SetAnnotations(annotations)
	if err := p.client.Update(ctx, u); err != nil {
		return false, fmt.Errorf("updating %s %s: %w", ref.Kind, ref.Name, err)
	}
	return true, nil
}

// Finalise restores every object from its snapshot; done when none had one.
func (p *Provider) Finalise(ctx context.Context) (done bool, err error) {
	err = retry.RetryOnConflict(retry.DefaultRetry, func() (err error) {
		done, err = p.finalise(ctx)
		return err
	})
	return done, err
}

func (p *Provider) finalise(ctx context.Context) (bool, error) {
	done := true
	for _, ref := range p.cfg.Refs {
		u, err := p.get(ctx, ref)
		if client.IgnoreNotFound(err) != nil {
			return false, err
		}
		if err != nil {
			continue // gone: nothing to restore
		}
		raw, ok := u.GetAnnotations()[OriginalSpecAnnotation]
		if !ok {
			continue
		}
		original, err := decode(raw)
		if err != nil {
			return false, fmt.Errorf("%s %s: %w", ref.Kind, ref.Name, err)
		}
		u.Object["spec"] = original.Spec
		u.SetLabels(original.Labels)
		u.SetAnnotations(original.Annotations)
		if err := p.client.Update(ctx, u); err != nil {
			return false, fmt.Errorf("restoring %s %s: %w", ref.Kind, ref.Name, err)
		}
		done = false
	}
	return done, nil
}

func (p *Provider) get(ctx context.Context, ref v1beta1.ObjectRef) (*unstructured.Unstructured, error) {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return nil, fmt.Errorf("customNetworkRef %s: %w", ref.Name, err)
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gv.WithKind(ref.Kind))
	if err := p.client.Get(ctx, client.ObjectKey{Namespace: p.cfg.Namespace, Name: ref.Name}, u); err != nil {
		return nil, fmt.Errorf("reading %s %s: %w", ref.Kind, ref.Name, err)
	}
	return u, nil
}

// snapshot returns the object's original data: from the annotation when a
// step already took it, else from the live object. raw is its JSON.
func snapshot(u *unstructured.Unstructured) (Data, string, error) {
	if raw, ok := u.GetAnnotations()[OriginalSpecAnnotation]; ok {
		d, err := decode(raw)
		return d, raw, err
	}
	d := Data{Spec: u.Object["spec"], Labels: u.GetLabels(), Annotations: u.GetAnnotations()}
	b, err := json.Marshal(d)
	if err != nil {
		return Data{}, "", err
	}
	return d, string(b), nil
}

func decode(raw string) (Data, error) {
	var d struct {
		Spec        json.RawMessage   `json:"spec"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal([]byte(raw), &d); err != nil {
		return Data{}, fmt.Errorf("annotation %s: %w", OriginalSpecAnnotation, err)
	}
	out := Data{Labels: d.Labels, Annotations: d.Annotations}
	if len(d.Spec) > 0 {
		// utiljson keeps integers as int64, as the API server's objects have them.
		if err := utiljson.Unmarshal(d.Spec, &out.Spec); err != nil {
			return Data{}, fmt.Errorf("annotation %s: %w", OriginalSpecAnnotation, err)
		}
	}
	return out, nil
}

// sameJSON compares two JSON values by their encoding, so 80 and 80.0
// (float64 from one decoder, int64 from another) are equal.
func sameJSON(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}
