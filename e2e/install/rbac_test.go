//go:build e2e

package install_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluicehq/sluice/devenv/manifest"
	"github.com/sluicehq/sluice/e2e/framework"
)

// access is one request a ServiceAccount may or may not make.
type access struct {
	verb, group, resource, namespace, name string
	allowed                                bool
}

func (a access) String() string {
	where := "every namespace"
	if a.namespace != "" {
		where = "namespace " + a.namespace
	}
	return fmt.Sprintf("%s %s %q in %s", a.verb, a.resource, a.name, where)
}

// checkAccess asks the API server's authorizer (SubjectAccessReview)
// about each request of the ServiceAccount. The allowed ones are asked
// first, for a few seconds, since the authorizer sees new bindings a
// moment after they are made.
func checkAccess(ctx context.Context, t *testing.T, sa string, want []access) {
	t.Helper()
	user := "system:serviceaccount:" + namespace + ":" + sa
	ask := func(a access) (*authorizationv1.SubjectAccessReview, error) {
		return env.ControlPlane.Client().AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
			Spec: authorizationv1.SubjectAccessReviewSpec{
				User:   user,
				Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
				ResourceAttributes: &authorizationv1.ResourceAttributes{
					Verb: a.verb, Group: a.group, Resource: a.resource, Namespace: a.namespace, Name: a.name,
				},
			}}, metav1.CreateOptions{})
	}
	for _, allowedFirst := range []bool{true, false} {
		for _, a := range want {
			if a.allowed != allowedFirst {
				continue
			}
			var got *authorizationv1.SubjectAccessReview
			timeout := 10 * time.Second
			if !a.allowed {
				timeout = 0
			}
			_ = framework.Poll(ctx, timeout, func() (bool, error) {
				var err error
				got, err = ask(a)
				return err == nil && got.Status.Allowed == a.allowed, nil
			})
			if got == nil {
				t.Fatalf("SubjectAccessReview for %s failed", a)
			}
			if got.Status.Allowed != a.allowed {
				t.Errorf("%s may %s: allowed=%v, want %v (%s)", sa, a, got.Status.Allowed, a.allowed, got.Status.Reason)
			}
		}
	}
}

// The chart's RBAC as installed (rbac.templateSecrets.names limited to
// prometheus-token): Secrets are read with get only, where a template's
// authentication or the chart's prometheus.authentication points, and
// the manager's own objects are reachable by name only.
func TestChartRBAC(t *testing.T) {
	ctx := withTimeout(t, time.Minute)
	team := env.Namespace(t)
	checkAccess(ctx, t, serviceAccount, []access{
		// Secrets: never a list or a watch, anywhere.
		{"list", "", "secrets", "", "", false},
		{"watch", "", "secrets", "", "", false},
		{"list", "", "secrets", team, "", false},
		{"list", "", "secrets", namespace, "", false},
		{"watch", "", "secrets", namespace, "", false},
		// get: the Secret templates name, in any namespace, and nothing else.
		{"get", "", "secrets", team, templateSecret, true},
		{"get", "", "secrets", team, "database-password", false},
		{"update", "", "secrets", team, templateSecret, false},
		// In the release namespace: the webhook certificate and the default
		// Prometheus' credentials, not Helm's release records.
		{"get", "", "secrets", namespace, webhookService + "-cert", true},
		{"update", "", "secrets", namespace, webhookService + "-cert", true},
		{"get", "", "secrets", namespace, managerSecret, true},
		{"update", "", "secrets", namespace, managerSecret, false},
		{"get", "", "secrets", namespace, "sh.helm.release.v1.sluice.v1", false},
		// ConfigMaps: the scripts' two, by name, in the release namespace.
		{"get", "", "configmaps", namespace, "sluice-configuration", true},
		{"get", "", "configmaps", namespace, "kube-root-ca.crt", false},
		{"list", "", "configmaps", "", "", false},
		{"get", "", "configmaps", team, "sluice-configuration", false},
		// Notifications: their ConfigMap and Secret by name, in any namespace.
		{"get", "", "configmaps", team, "sluice-notifications-cm", true},
		{"get", "", "secrets", team, "sluice-notifications-secret", true},
		{"update", "", "secrets", team, "sluice-notifications-secret", false},
		// The ready-made ClusterAnalysisTemplates, applied by the manager.
		{"patch", "analysis.sluice.dev", "clusteranalysistemplates", "", "nginx-error-rate", true},
		{"delete", "analysis.sluice.dev", "clusteranalysistemplates", "", "nginx-error-rate", false},
		// Its own webhook configurations and the Rollout CRD, not others'.
		{"update", "admissionregistration.k8s.io", "validatingwebhookconfigurations", "", configName, true},
		{"update", "admissionregistration.k8s.io", "validatingwebhookconfigurations", "", "another-webhook", false},
		{"update", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "", "another-webhook", false},
		{"list", "admissionregistration.k8s.io", "validatingwebhookconfigurations", "", "", false},
		{"update", "apiextensions.k8s.io", "customresourcedefinitions", "", "rollouts.rollouts.kruise.io", true},
		{"update", "apiextensions.k8s.io", "customresourcedefinitions", "", "analysisruns.analysis.sluice.dev", false},
		{"create", "apiextensions.k8s.io", "customresourcedefinitions", "", "", false},
		// Leader election in the release namespace only.
		{"update", "coordination.k8s.io", "leases", namespace, "sluice-controller.sluice.dev", true},
		{"update", "coordination.k8s.io", "leases", team, "sluice-controller.sluice.dev", false},
		// What a release needs, in the Rollouts' namespaces.
		{"patch", "apps", "deployments", team, "", true},
		{"update", "networking.k8s.io", "ingresses", team, "", true},
		{"delete", "apps", "statefulsets", team, "", false},
		// Pods are deleted one by one where a workload's controller
		// would not replace them: a StatefulSet's or an OpenKruise
		// kind's rolled-back pods, a DaemonSet's batch (OnDelete).
		{"delete", "", "pods", team, "", true},
		{"deletecollection", "", "pods", team, "", false},
	})
}

// rbac.templateSecrets scopes the get on templates' Secrets to namespaces,
// or to nothing.
func TestTemplateSecretsScope(t *testing.T) {
	ctx := withTimeout(t, 2*time.Minute)
	allowed, other := env.Namespace(t), env.Namespace(t)
	for _, tc := range []struct {
		release string
		set     string
		want    func(sa string) []access
	}{
		{"scoped", "rbac.templateSecrets.namespaces={" + allowed + "}", func(sa string) []access {
			return []access{
				{"get", "", "secrets", allowed, "any-secret", true},
				{"get", "", "secrets", other, "any-secret", false},
				{"list", "", "secrets", allowed, "", false},
				{"watch", "", "secrets", allowed, "", false},
			}
		}},
		{"nosecrets", "rbac.templateSecrets.namespaces=null", func(sa string) []access {
			return []access{
				{"get", "", "secrets", namespace, "nosecrets-sluice-webhook-cert", true},
				{"get", "", "secrets", allowed, "any-secret", false},
				{"get", "", "secrets", namespace, webhookService + "-cert", false},
			}
		}},
	} {
		t.Run(tc.release, func(t *testing.T) {
			out, err := runHelm(ctx, "template", tc.release, filepath.Join(framework.RepoRoot(), "deploy/helm/sluice"),
				"--namespace", namespace, "--set", tc.set)
			if err != nil {
				t.Fatal(err)
			}
			objs, err := manifest.Objects(out)
			if err != nil {
				t.Fatal(err)
			}
			sa := ""
			for _, o := range objs {
				switch o.GetKind() {
				case "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
				default:
					continue
				}
				if o.GetKind() == "ServiceAccount" {
					sa = o.GetName()
				}
				if err := env.Client.Create(ctx, o); err != nil {
					t.Fatalf("%s %s: %v", o.GetKind(), o.GetName(), err)
				}
				t.Cleanup(func() { _ = env.Client.Delete(context.Background(), o) })
			}
			checkAccess(ctx, t, sa, tc.want(sa))
		})
	}
}
