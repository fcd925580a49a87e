package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const roles = `---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: sluice-controller
rules:
- apiGroups: [""]
  resources: [secrets]
  verbs: [%s]
- apiGroups: [admissionregistration.k8s.io]
  resourceNames: [sluice]
  resources: [validatingwebhookconfigurations]
  verbs: [get, update]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: sluice-controller
  namespace: %s
rules:
- apiGroups: [""]
  resourceNames: [sluice-webhook-cert]
  resources: [secrets]
  verbs: [get, update]
`

func rolesYAML(secretVerbs, namespace string) []byte {
	return []byte(strings.Replace(strings.Replace(roles, "%s", secretVerbs, 1), "%s", namespace, 1))
}

// The chart leaves cluster-wide Secret access to rbac.templateSecrets and
// renames the default names; markers asking for more than get on Secrets
// everywhere, or for a Role elsewhere, stop make generate.
func TestRBACTemplate(t *testing.T) {
	out, err := RBACTemplate(rolesYAML("get", "sluice-system"))
	if err != nil {
		t.Fatal(err)
	}
	cluster, namespaced, _ := strings.Cut(string(out), `{{- define "sluice.rbac.namespaceRules" -}}`)
	if strings.Contains(cluster, "secrets") {
		t.Errorf("cluster rules grant Secrets:\n%s", cluster)
	}
	if !strings.Contains(cluster, `- {{ include "sluice.fullname" . }}`) || strings.Contains(cluster, "- sluice\n") {
		t.Errorf("the webhook configuration is not named after the release:\n%s", cluster)
	}
	if !strings.Contains(namespaced, `- {{ include "sluice.webhookServiceName" . }}-cert`) {
		t.Errorf("the certificate Secret is not named after the release:\n%s", namespaced)
	}

	for _, verbs := range []string{"get, list", "get, watch", "create, get"} {
		if _, err := RBACTemplate(rolesYAML(verbs, "sluice-system")); err == nil || !strings.Contains(err.Error(), "Secrets in every namespace") {
			t.Errorf("secrets [%s] everywhere: %v", verbs, err)
		}
	}
	if _, err := RBACTemplate(rolesYAML("get", "kube-system")); err == nil || !strings.Contains(err.Error(), "kube-system") {
		t.Errorf("a Role outside the manager's namespace: %v", err)
	}
}

// The committed chart is what Sync writes from the committed deploy/
// (make verify checks the same after make generate).
func TestChartInSync(t *testing.T) {
	root := filepath.Join("..", "..", "..")
	tmp := t.TempDir()
	for _, dir := range []string{"deploy/crds", "deploy/rbac", "deploy/webhook", "deploy/grafana"} {
		copyDir(t, filepath.Join(root, dir), filepath.Join(tmp, dir))
	}
	if err := Sync(tmp); err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{"templates/_rbac.generated.tpl", "templates/webhookconfigurations.yaml", "crds/rollouts.kruise.io_rollouts.yaml", "dashboards/sluice.json"} {
		want, werr := os.ReadFile(filepath.Join(tmp, Chart, rel))
		got, gerr := os.ReadFile(filepath.Join(root, Chart, rel))
		if os.IsNotExist(werr) && os.IsNotExist(gerr) {
			continue
		}
		if string(want) != string(got) {
			t.Errorf("%s/%s is stale: run make generate", Chart, rel)
		}
	}
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	entries, err := os.ReadDir(src)
	if os.IsNotExist(err) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestWebhookTemplate(t *testing.T) {
	out, err := WebhookTemplate([]byte(`---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: mutating-webhook-configuration
webhooks:
- admissionReviewVersions: [v1]
  clientConfig:
    service: {name: webhook-service, namespace: system, path: /freeze-workload}
  failurePolicy: Fail
  name: workloads.freeze.sluice.dev
  sideEffects: None
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"kind: MutatingWebhookConfiguration",
		`name: {{ include "sluice.webhookServiceName" . }}`,
		"namespace: {{ .Release.Namespace }}",
		"path: /freeze-workload",
		"port: {{ .Values.service.port }}",
		"- key: rollouts.kruise.io/workload-type\n      operator: Exists",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("lacks %q:\n%s", want, out)
		}
	}
}
