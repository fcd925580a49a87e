//go:build e2e

// Package install_test installs Sluice with its Helm chart
// (deploy/helm/sluice, by the helm binary `make tools` builds) on a real
// control plane and runs sluice-controller out of the cluster as the chart
// runs it in a Pod: with the arguments of the chart's Deployment and the
// token of the chart's ServiceAccount, not as admin. Its webhooks are
// registered as in a cluster (the chart's Service, its certificate in a
// Secret), the Service made to lead to 127.0.0.1 (ExternalName localhost,
// which the API server resolves for webhooks).
//
// The chart's kwok-run Deployment does nothing: kwok pods run no code.
//
// The default Prometheus is reached through a proxy that demands a bearer
// token, so an analysis passes only with the credentials the chart's
// values and a template's authentication name.
package install_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/devenv/controlplane"
	"github.com/sluicehq/sluice/devenv/manager"
	"github.com/sluicehq/sluice/devenv/manifest"
	"github.com/sluicehq/sluice/e2e/framework"
)

// The release as the test installs it.
const (
	release        = "sluice"
	namespace      = "sluice-system"
	serviceAccount = "sluice-controller"
	webhookService = "sluice-webhook"
	configName     = "sluice"
	// The default Prometheus' credentials (prometheus.authentication).
	managerSecret = "prometheus-auth"
	managerToken  = "token-of-the-manager"
	// The Secret templates name (rbac.templateSecrets.names).
	templateSecret = "prometheus-token"
	templateToken  = "token-of-the-team"
)

var (
	env     *framework.Env
	metrics *framework.Metrics
	inst    installation
)

// installation is what install did, for the tests.
type installation struct {
	helm, helmHome, kubeconfig string
	// manifest is `helm get manifest`: what the chart installed.
	manifest []*unstructured.Unstructured
	// The webhook configurations as Helm created them, read back before
	// the manager started.
	validating *admissionregistrationv1.ValidatingWebhookConfiguration
	mutating   *admissionregistrationv1.MutatingWebhookConfiguration
	proxy      *authProxy
}

func TestMain(m *testing.M) {
	framework.MainWithOptions(m, framework.Options{Metrics: true, Install: install}, &env, &metrics)
}

// helmValues are the non-default values the test installs with.
func helmValues(proxyURL string, webhookPort int) []string {
	return []string{
		"--set", fmt.Sprintf("service.port=%d", webhookPort),
		"--set", "prometheus.address=" + proxyURL,
		"--set", "prometheus.authentication.secretName=" + managerSecret,
		"--set", "prometheus.authentication.bearerTokenKey=token",
		"--set", "rbac.templateSecrets.names={" + templateSecret + "}",
		"--set", "notifications.enabled=true",
		"--set", "analysisTemplates.enabled=true",
	}
}

func install(ctx context.Context, e *framework.Env, mt *framework.Metrics) (manager.Options, error) {
	var o manager.Options
	inst.helm = filepath.Join(controlplane.BinDir(), "helm")
	if _, err := os.Stat(inst.helm); err != nil {
		return o, fmt.Errorf("no helm binary (run make tools): %w", err)
	}
	inst.kubeconfig, inst.helmHome = e.ControlPlane.KubeconfigPath(), filepath.Join(e.Dir(), "helm")
	var err error
	if inst.proxy, err = startAuthProxy(mt.Prometheus.URL(), managerToken, templateToken); err != nil {
		return o, err
	}
	port, err := freePort()
	if err != nil {
		return o, err
	}

	args := append([]string{"install", release, filepath.Join(framework.RepoRoot(), "deploy/helm/sluice"),
		"--namespace", namespace, "--create-namespace"}, helmValues(inst.proxy.URL, port)...)
	if _, err := runHelm(ctx, args...); err != nil {
		return o, err
	}
	out, err := runHelm(ctx, "get", "manifest", release, "--namespace", namespace)
	if err != nil {
		return o, err
	}
	if inst.manifest, err = manifest.Objects(out); err != nil {
		return o, err
	}
	c := e.Client
	inst.validating = &admissionregistrationv1.ValidatingWebhookConfiguration{}
	inst.mutating = &admissionregistrationv1.MutatingWebhookConfiguration{}
	for _, obj := range []client.Object{inst.validating, inst.mutating} {
		if err := c.Get(ctx, client.ObjectKey{Name: configName}, obj); err != nil {
			return o, fmt.Errorf("the chart's webhook configuration: %w", err)
		}
	}

	// The default Prometheus' credentials, which the operator creates.
	if err := c.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: managerSecret},
		StringData: map[string]string{"token": managerToken},
	}); err != nil {
		return o, err
	}
	// The API server reaches the webhooks on 127.0.0.1 through the
	// chart's Service, made an ExternalName of localhost on the port.
	svc := &corev1.Service{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: webhookService}, svc); err != nil {
		return o, fmt.Errorf("the chart's webhook Service: %w", err)
	}
	if err := c.Delete(ctx, svc); err != nil {
		return o, err
	}
	if err := c.Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: webhookService, Labels: svc.Labels},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "localhost",
			Ports: []corev1.ServicePort{{Name: "webhook", Port: int32(port), TargetPort: intstr.FromInt(port)}}},
	}); err != nil {
		return o, err
	}

	if o.Kubeconfig, err = serviceAccountKubeconfig(ctx, e, filepath.Join(e.Dir(), "sluice-controller.kubeconfig")); err != nil {
		return o, err
	}
	if o.Args, err = chartArgs(inst.manifest); err != nil {
		return o, err
	}
	o.WebhookPort, o.ServiceWebhooks, o.WebhookConfigurationName = port, true, configName
	return o, nil
}

// chartArgs are the manager's arguments in the chart's Deployment, but for
// what runs it out of the cluster: addresses, ports and the certificate
// folder (manager.Start sets them).
func chartArgs(manifest []*unstructured.Unstructured) ([]string, error) {
	for _, u := range manifest {
		if u.GetKind() != "Deployment" {
			continue
		}
		d := &appsv1.Deployment{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, d); err != nil {
			return nil, err
		}
		var args []string
		for _, a := range d.Spec.Template.Spec.Containers[0].Args {
			name, _, _ := strings.Cut(a, "=")
			switch name {
			case "--webhook-port", "--metrics-bind-address", "--health-probe-bind-address", "--cert-dir":
				continue
			}
			args = append(args, a)
		}
		return args, nil
	}
	return nil, fmt.Errorf("the chart installed no Deployment")
}

// serviceAccountKubeconfig writes a kubeconfig with a token of the chart's
// ServiceAccount (TokenRequest), as a Pod of the Deployment would get.
func serviceAccountKubeconfig(ctx context.Context, e *framework.Env, path string) (string, error) {
	tr, err := e.ControlPlane.Client().CoreV1().ServiceAccounts(namespace).CreateToken(ctx, serviceAccount,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("a token of ServiceAccount %s/%s: %w", namespace, serviceAccount, err)
	}
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: %s
  user:
    token: %s
contexts:
- name: e2e
  context: {cluster: e2e, user: %s}
current-context: e2e
`, e.ControlPlane.APIServerURL(), base64.StdEncoding.EncodeToString(e.ControlPlane.CACertPEM()), serviceAccount, tr.Status.Token, serviceAccount)
	return path, os.WriteFile(path, []byte(kc), 0o600)
}

// runHelm runs helm as admin, with its own configuration folders.
func runHelm(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, inst.helm, append(args, "--kubeconfig", inst.kubeconfig)...)
	home := inst.helmHome
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+home+"/config", "HELM_CACHE_HOME="+home+"/cache", "HELM_DATA_HOME="+home+"/data")
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		return nil, fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, stderr)
	}
	return out, nil
}

// authProxy fronts Prometheus and answers 401 unless a request carries
// one of its bearer tokens; it counts the requests per token.
type authProxy struct {
	URL string

	mu           sync.Mutex
	byToken      map[string]int
	unauthorized []string
}

func startAuthProxy(target string, tokens ...string) (*authProxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	p := &authProxy{byToken: map[string]int{}}
	for _, t := range tokens {
		p.byToken[t] = 0
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p.URL = "http://" + l.Addr().String()
	go func() {
		_ = http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			p.mu.Lock()
			_, known := p.byToken[token]
			if ok && known {
				p.byToken[token]++
			} else {
				p.unauthorized = append(p.unauthorized, r.Method+" "+r.URL.Path+" Authorization="+r.Header.Get("Authorization"))
			}
			p.mu.Unlock()
			if !ok || !known {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			rp.ServeHTTP(w, r)
		}))
	}()
	return p, nil
}

// counts returns the requests seen per token and the refused ones.
func (p *authProxy) counts() (map[string]int, []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int{}
	for k, v := range p.byToken {
		out[k] = v
	}
	return out, append([]string(nil), p.unauthorized...)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
