package ingress

import (
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/sluicehq/sluice/traffic/internal/golden"
)

// Only the paths to the stable Service are copied; a rule left without
// paths is dropped; class, TLS, labels and annotations come along.
func TestNewCanaryGolden(t *testing.T) {
	var stable networkingv1.Ingress
	if err := yaml.Unmarshal([]byte(`
metadata:
  name: echoserver
  namespace: ns
  labels: {app: echoserver}
  annotations: {kubernetes.io/ingress.class: nginx, nginx.ingress.kubernetes.io/rewrite-target: /}
  resourceVersion: "12"
spec:
  ingressClassName: nginx
  tls: [{hosts: [echo.example.com], secretName: echo-tls}]
  defaultBackend: {service: {name: echoserver, port: {number: 80}}}
  rules:
  - host: echo.example.com
    http:
      paths:
      - {path: /apis/echo, pathType: Exact, backend: {service: {name: echoserver, port: {number: 80}}}}
      - {path: /static, pathType: Prefix, backend: {service: {name: static, port: {number: 80}}}}
  - host: admin.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: admin, port: {name: http}}}}
  - host: other.example.com
`), &stable); err != nil {
		t.Fatal(err)
	}
	owner := &metav1.OwnerReference{APIVersion: "rollouts.kruise.io/v1beta1", Kind: "Rollout", Name: "rollouts-demo", UID: "r-1"}
	c, err := NewCanary(&stable, "echoserver", "echoserver-canary", owner)
	if err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, "canary-ingress", c)

	if _, err := NewCanary(&stable, "nobody", "nobody-canary", owner); err == nil {
		t.Error("an Ingress without a path to the stable Service must be an error")
	}
}
