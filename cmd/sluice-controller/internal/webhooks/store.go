package webhooks

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Store keeps the Bundle across restarts and, in a cluster, shares it
// between replicas.
type Store interface {
	// Load returns the stored bundle, or nil when there is none yet.
	Load(ctx context.Context) (*Bundle, error)
	// Save stores b; it fails on a concurrent change, and the caller
	// loads again.
	Save(ctx context.Context, b *Bundle) error
}

var bundleKeys = []string{"ca.crt", "ca.key", "tls.crt", "tls.key", "ca-previous.crt"}

func (b *Bundle) fields() []*[]byte {
	return []*[]byte{&b.CACert, &b.CAKey, &b.ServeCert, &b.ServeKey, &b.PreviousCACert}
}

// SecretStore keeps the bundle in a Secret, so every replica of the manager
// serves with the same certificate.
type SecretStore struct {
	Client client.Client
	Key    types.NamespacedName

	resourceVersion string
}

// The certificate Secret, in the manager's namespace: <service>-cert for
// the default --webhook-service-name.
// +kubebuilder:rbac:groups="",namespace=sluice-system,resources=secrets,verbs=create
// +kubebuilder:rbac:groups="",namespace=sluice-system,resources=secrets,resourceNames=sluice-webhook-cert,verbs=get;update

// Load reads the Secret.
func (s *SecretStore) Load(ctx context.Context) (*Bundle, error) {
	sec := &corev1.Secret{}
	if err := s.Client.Get(ctx, s.Key, sec); apierrors.IsNotFound(err) {
		s.resourceVersion = ""
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	s.resourceVersion = sec.ResourceVersion
	b := &Bundle{}
	for i, f := range b.fields() {
		*f = sec.Data[bundleKeys[i]]
	}
	return b, nil
}

// Save creates or updates the Secret, with optimistic concurrency.
func (s *SecretStore) Save(ctx context.Context, b *Bundle) error {
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: s.Key.Name, Namespace: s.Key.Namespace, ResourceVersion: s.resourceVersion},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{},
	}
	for i, f := range b.fields() {
		if len(*f) > 0 {
			sec.Data[bundleKeys[i]] = *f
		}
	}
	if s.resourceVersion == "" {
		return s.Client.Create(ctx, sec)
	}
	return s.Client.Update(ctx, sec)
}

// DirStore keeps the bundle in files, for a manager running outside the
// cluster (development mode).
type DirStore struct {
	Dir string
}

// Load reads the files; missing files mean no bundle yet.
func (d DirStore) Load(context.Context) (*Bundle, error) {
	b := &Bundle{}
	found := false
	for i, f := range b.fields() {
		data, err := os.ReadFile(filepath.Join(d.Dir, bundleKeys[i]))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		*f, found = data, true
	}
	if !found {
		return nil, nil
	}
	return b, nil
}

// Save writes the files.
func (d DirStore) Save(_ context.Context, b *Bundle) error {
	if err := os.MkdirAll(d.Dir, 0o700); err != nil {
		return err
	}
	for i, f := range b.fields() {
		p := filepath.Join(d.Dir, bundleKeys[i])
		if len(*f) == 0 {
			_ = os.Remove(p)
			continue
		}
		if err := os.WriteFile(p, *f, 0o600); err != nil {
			return err
		}
	}
	return nil
}
