//go:build e2e

package install_test

import (
	"context"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/sluicehq/sluice/devenv/manifest"
	"github.com/sluicehq/sluice/e2e/framework"
)

// waitRegistered waits until the manager has registered everything: the
// Validating configuration (which manager.Start waits for), then the
// Mutating one, then the conversion of Rollouts, which it returns.
func waitRegistered(ctx context.Context, t *testing.T) *apiextensionsv1.CustomResourceConversion {
	t.Helper()
	crd := &apiextensionsv1.CustomResourceDefinition{}
	var conv *apiextensionsv1.CustomResourceConversion
	if err := framework.Poll(ctx, 30*time.Second, func() (bool, error) {
		if err := env.Client.Get(ctx, client.ObjectKey{Name: "rollouts.rollouts.kruise.io"}, crd); err != nil {
			return false, err
		}
		conv = crd.Spec.Conversion
		return conv != nil && conv.Webhook != nil && conv.Webhook.ClientConfig != nil && conv.Webhook.ClientConfig.Service != nil, nil
	}); err != nil {
		t.Fatalf("the manager has not registered the conversion of Rollouts: %v (%+v)", err, conv)
	}
	return conv
}

func withTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// What the chart installs runs, and the manager, with the chart's
// ServiceAccount, keeps its certificate in the release's Secret and leads
// through the release's Lease.
func TestChartInstalled(t *testing.T) {
	ctx := withTimeout(t, 2*time.Minute)
	c := env.Client

	// kwok runs the chart's pods (they run no code): the Deployment and
	// PodDisruptionBudget are valid and select them.
	d := &appsv1.Deployment{}
	if err := framework.Poll(ctx, time.Minute, func() (bool, error) {
		if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "sluice-controller"}, d); err != nil {
			return false, err
		}
		return d.Status.AvailableReplicas == 2, nil
	}); err != nil {
		t.Fatalf("the chart's Deployment: %v (status %+v)", err, d.Status)
	}
	// (The control plane runs no disruption controller: the budget's
	// selector is checked against the pods instead.)
	pdb := &policyv1.PodDisruptionBudget{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "sluice-controller"}, pdb); err != nil {
		t.Fatalf("the chart's PodDisruptionBudget: %v", err)
	}
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	pods := &corev1.PodList{}
	if err := c.List(ctx, pods, client.InNamespace(namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 2 || pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 1 {
		t.Errorf("the PodDisruptionBudget keeps %v of %d pods, want 1 of the 2", pdb.Spec.MinAvailable, len(pods.Items))
	}

	sec := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: webhookService + "-cert"}, sec); err != nil {
		t.Fatalf("the manager's certificate Secret: %v", err)
	}
	for _, k := range []string{"ca.crt", "ca.key", "tls.crt", "tls.key"} {
		if len(sec.Data[k]) == 0 {
			t.Errorf("the certificate Secret lacks %s", k)
		}
	}
	lease := &coordinationv1.Lease{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "sluice-controller.sluice.dev"}, lease); err != nil {
		t.Fatalf("the leader-election Lease: %v", err)
	}
	if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
		t.Errorf("nobody holds the Lease: %+v", lease.Spec)
	}

	// The conversion of Rollouts goes through the chart's Service.
	conv := waitRegistered(ctx, t)
	if s := conv.Webhook.ClientConfig.Service; s.Namespace != namespace || s.Name != webhookService || s.Path == nil || *s.Path != "/convert" ||
		len(conv.Webhook.ClientConfig.CABundle) == 0 || string(conv.Webhook.ClientConfig.CABundle) != string(sec.Data["ca.crt"]) {
		t.Errorf("conversion webhook %+v, caBundle of %d bytes", s, len(conv.Webhook.ClientConfig.CABundle))
	}
}

// The chart ships the webhook configurations; the manager only adds its
// CA to them, and re-applying the chart (as helm upgrade does, by
// server-side apply without forcing) neither conflicts with the manager
// nor changes anything.
func TestWebhookConfigurationsNotFought(t *testing.T) {
	ctx := withTimeout(t, time.Minute)
	c := env.Client
	waitRegistered(ctx, t)
	sec := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: webhookService + "-cert"}, sec); err != nil {
		t.Fatal(err)
	}
	validating := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	mutating := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := c.Get(ctx, client.ObjectKey{Name: configName}, validating); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, client.ObjectKey{Name: configName}, mutating); err != nil {
		t.Fatal(err)
	}

	v := validating.DeepCopy()
	for i := range v.Webhooks {
		if string(v.Webhooks[i].ClientConfig.CABundle) != string(sec.Data["ca.crt"]) {
			t.Errorf("webhook %s does not trust the manager's CA", v.Webhooks[i].Name)
		}
		v.Webhooks[i].ClientConfig.CABundle = nil
	}
	if !equality.Semantic.DeepEqual(v.Webhooks, inst.validating.Webhooks) {
		t.Errorf("the manager changed more than the caBundle of the validating webhooks:\nchart:   %+v\nmanager: %+v", inst.validating.Webhooks, v.Webhooks)
	}
	m := mutating.DeepCopy()
	for i := range m.Webhooks {
		if string(m.Webhooks[i].ClientConfig.CABundle) != string(sec.Data["ca.crt"]) {
			t.Errorf("webhook %s does not trust the manager's CA", m.Webhooks[i].Name)
		}
		m.Webhooks[i].ClientConfig.CABundle = nil
	}
	if !equality.Semantic.DeepEqual(m.Webhooks, inst.mutating.Webhooks) {
		t.Errorf("the manager changed more than the caBundle of the mutating webhooks:\nchart:   %+v\nmanager: %+v", inst.mutating.Webhooks, m.Webhooks)
	}

	// helm upgrade: a server-side apply of the chart's objects by "helm",
	// which adds its release annotations.
	for _, u := range inst.manifest {
		if !strings.HasSuffix(u.GetKind(), "WebhookConfiguration") {
			continue
		}
		u = u.DeepCopy()
		u.SetAnnotations(map[string]string{"meta.helm.sh/release-name": release, "meta.helm.sh/release-namespace": namespace})
		if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner("helm")); err != nil {
			t.Errorf("re-applying the chart's %s: %v", u.GetKind(), err)
		}
	}
	for _, before := range []client.Object{validating, mutating} {
		after := before.DeepCopyObject().(client.Object)
		if err := c.Get(ctx, client.ObjectKey{Name: configName}, after); err != nil {
			t.Fatal(err)
		}
		if after.GetResourceVersion() != before.GetResourceVersion() {
			t.Errorf("re-applying the chart changed the %T (resourceVersion %s -> %s)", after, before.GetResourceVersion(), after.GetResourceVersion())
			bb, _ := yaml.Marshal(before)
			ab, _ := yaml.Marshal(after)
			t.Logf("before:\n%s\nafter:\n%s", bb, ab)
		}
	}

	// The API server calls the webhooks through the chart's Service: a
	// query that is not PromQL is refused by the manager.
	ns := env.Namespace(t)
	_, err := manifest.Create(ctx, c, ns, []byte(`apiVersion: analysis.sluice.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: broken}
spec:
  metrics:
  - name: m
    successCondition: result[0] < 1
    provider: {prometheus: {query: "sum(rate(x[1m]"}}
`))
	if err == nil || !strings.Contains(err.Error(), `admission webhook "analysistemplates.validate.sluice.dev" denied the request`) {
		t.Errorf("creating a template whose query is not PromQL: %v", err)
	}
}
