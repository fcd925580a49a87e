package prometheus

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	promapi "github.com/prometheus/client_golang/api"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/api/analysis/v1alpha1"
)

// +kubebuilder:rbac:groups="",resources=secrets,verbs=get

// httpConfig is how requests to one Prometheus are made: headers, TLS
// and credentials, read from the Secret at every measurement so that a
// rotated credential is picked up.
type httpConfig struct {
	Headers            http.Header
	InsecureSkipVerify bool
	CA                 string
	BearerToken        string
	Username, Password string
}

// httpConfig reads a provider's settings and its Secret.
func (p *Provider) httpConfig(ctx context.Context, namespace string, spec *v1alpha1.PrometheusProvider) (httpConfig, error) {
	cfg := httpConfig{InsecureSkipVerify: spec.InsecureSkipVerify, Headers: http.Header{}}
	for _, h := range spec.Headers {
		if k := http.CanonicalHeaderKey(h.Key); k == "Authorization" || k == "Host" {
			return cfg, fmt.Errorf("header %q cannot be set in headers: use authentication", k)
		}
		cfg.Headers.Add(h.Key, h.Value)
	}
	a := spec.Authentication
	if a == nil {
		return cfg, nil
	}
	if p.Secrets == nil {
		return cfg, fmt.Errorf("credentials from Secret %s/%s cannot be read: no Secret reader configured", namespace, a.SecretName)
	}
	s := &corev1.Secret{}
	if err := p.Secrets.Get(ctx, client.ObjectKey{Namespace: namespace, Name: a.SecretName}, s); err != nil {
		return cfg, fmt.Errorf("reading credentials from Secret %s/%s: %w", namespace, a.SecretName, err)
	}
	var missing []string
	read := func(k string, into *string) {
		if k == "" {
			return
		}
		v, ok := s.Data[k]
		if !ok {
			missing = append(missing, k)
		}
		*into = string(v)
	}
	read(a.BearerTokenKey, &cfg.BearerToken)
	read(a.UsernameKey, &cfg.Username)
	read(a.PasswordKey, &cfg.Password)
	read(a.CAKey, &cfg.CA)
	if len(missing) > 0 {
		return cfg, fmt.Errorf("Secret %s/%s has no key %s", namespace, a.SecretName, strings.Join(missing, ", "))
	}
	return cfg, nil
}

// roundTripper adds a provider's headers and credentials to every
// request.
type roundTripper struct {
	cfg  httpConfig
	next http.RoundTripper
}

func (r *roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	for k, vs := range r.cfg.Headers {
		req.Header[k] = vs
	}
	switch {
	case r.cfg.BearerToken != "":
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(r.cfg.BearerToken))
	case r.cfg.Username != "" || r.cfg.Password != "":
		req.SetBasicAuth(r.cfg.Username, r.cfg.Password)
	}
	return r.next.RoundTrip(req)
}

// newTransport sends with base when set (its own TLS settings then
// apply), else a transport of cfg's TLS settings.
func newTransport(cfg httpConfig, base http.RoundTripper) (http.RoundTripper, error) {
	if base != nil {
		return &roundTripper{cfg: cfg, next: base}, nil
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{InsecureSkipVerify: cfg.InsecureSkipVerify} //nolint:gosec // the user asked for it
	if cfg.CA != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(cfg.CA)) {
			return nil, errors.New("the CA bundle holds no PEM certificate")
		}
		t.TLSClientConfig.RootCAs = pool
	}
	return &roundTripper{cfg: cfg, next: t}, nil
}

// maxClients bounds the cache; rotated credentials make new entries.
const maxClients = 256

// clientCache keeps one client per address and HTTP configuration, so
// connections are reused between measurements.
type clientCache struct {
	mu      sync.Mutex
	clients map[[32]byte]promapi.Client
}

func (c *clientCache) get(address string, cfg httpConfig, base http.RoundTripper) (promapi.Client, error) {
	b, err := json.Marshal(struct {
		Address string
		Config  httpConfig
		Via     string
	}{address, cfg, fmt.Sprintf("%p", base)})
	if err != nil {
		return nil, err
	}
	key := sha256.Sum256(b)
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.clients[key]; ok {
		return cl, nil
	}
	rt, err := newTransport(cfg, base)
	if err != nil {
		return nil, err
	}
	cl, err := promapi.NewClient(promapi.Config{Address: address, RoundTripper: rt})
	if err != nil {
		return nil, err
	}
	if c.clients == nil || len(c.clients) >= maxClients {
		c.clients = map[[32]byte]promapi.Client{}
	}
	c.clients[key] = cl
	return cl, nil
}
