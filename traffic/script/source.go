package script

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ConfigMap names the scripts' configuration may live in.
const (
	// DefaultConfigMap is Sluice's configuration ConfigMap, in the manager's namespace.
	DefaultConfigMap = "sluice-configuration"
	// KruiseConfigMap is Kruise Rollout's, accepted so its scripts work unchanged.
	KruiseConfigMap = "kruise-rollout-configuration"
)

// Source finds a script by its configuration key
// (lua.traffic.routing.ingress.<classType>, lua.traffic.routing.<Kind>.<group>).
type Source interface {
	// Script returns the script and a name for it in messages; ok=false when
	// there is none.
	Script(ctx context.Context, key string) (source, name string, ok bool, err error)
}

// The manager reads its scripts' ConfigMaps, by name, in its own namespace.
// +kubebuilder:rbac:groups="",namespace=sluice-system,resources=configmaps,resourceNames=sluice-configuration;kruise-rollout-configuration,verbs=get

// ConfigMaps reads scripts from ConfigMaps in one namespace; the first
// ConfigMap (in Names order) holding the key wins.
type ConfigMaps struct {
	Reader    client.Reader
	Namespace string
	// Names defaults to [DefaultConfigMap].
	Names []string
}

// Script implements Source.
func (c ConfigMaps) Script(ctx context.Context, key string) (string, string, bool, error) {
	names := c.Names
	if len(names) == 0 {
		names = []string{DefaultConfigMap}
	}
	for _, n := range names {
		cm := &corev1.ConfigMap{}
		err := c.Reader.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: n}, cm)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return "", "", false, fmt.Errorf("reading ConfigMap %s/%s: %w", c.Namespace, n, err)
		}
		if src, ok := cm.Data[key]; ok {
			return src, fmt.Sprintf("configmap %s/%s key %s", c.Namespace, n, key), true, nil
		}
	}
	return "", "", false, nil
}

// Map is a Source from memory (built-in scripts, tests).
type Map map[string]string

// Script implements Source.
func (m Map) Script(_ context.Context, key string) (string, string, bool, error) {
	src, ok := m[key]
	return src, "built-in " + key, ok, nil
}

// Chain looks in each Source in turn.
type Chain []Source

// Script implements Source.
func (c Chain) Script(ctx context.Context, key string) (string, string, bool, error) {
	for _, s := range c {
		if s == nil {
			continue
		}
		src, name, ok, err := s.Script(ctx, key)
		if err != nil || ok {
			return src, name, ok, err
		}
	}
	return "", "", false, nil
}
