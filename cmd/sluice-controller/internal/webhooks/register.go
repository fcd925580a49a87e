package webhooks

import (
	"context"
	"fmt"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/deploy"
)

// ConversionPath is where the conversion webhook is served.
const ConversionPath = "/convert"

// Registrar registers the manager's webhooks with the API server: the
// generated admission webhook configurations and the conversion of the
// CRDs that have several versions, each pointing at this manager and
// trusting its CA.
type Registrar struct {
	Client client.Client
	// ClientConfig says how the API server reaches path: a Service in a
	// cluster, an https://127.0.0.1 URL in development mode.
	ClientConfig func(path string) admissionregistrationv1.WebhookClientConfig
	// Name of the webhook configurations (validating and mutating).
	Name string
	// ConvertedCRDs are the CRDs whose conversion this manager serves.
	ConvertedCRDs []string
	// MutatingObjectSelector limits the mutating webhooks to the objects
	// that need them (the workloads a Rollout references), so that the
	// rest of the cluster never waits on this manager.
	MutatingObjectSelector *metav1.LabelSelector
}

// Only its own configurations and the converted CRDs, by name (a create
// cannot be limited by name). The names are the defaults of
// --webhook-configuration-name and of ConvertedCRDs; the chart renders its
// own.
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=validatingwebhookconfigurations;mutatingwebhookconfigurations,verbs=create
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=validatingwebhookconfigurations;mutatingwebhookconfigurations,resourceNames=sluice,verbs=get;update
// +kubebuilder:rbac:groups=apiextensions.k8s.io,resources=customresourcedefinitions,resourceNames=rollouts.rollouts.kruise.io,verbs=get;update

// Register creates or updates the configurations so that they carry
// caBundle. It changes nothing that is already right.
func (r *Registrar) Register(ctx context.Context, caBundle []byte) error {
	validating, mutating, err := deploy.WebhookConfigurations()
	if err != nil {
		return err
	}
	if len(validating.Webhooks) > 0 {
		for i := range validating.Webhooks {
			validating.Webhooks[i].ClientConfig = r.clientConfig(validating.Webhooks[i].ClientConfig, caBundle)
		}
		if err := upsert(ctx, r.Client, &admissionregistrationv1.ValidatingWebhookConfiguration{}, r.Name, func(o client.Object) bool {
			cfg := o.(*admissionregistrationv1.ValidatingWebhookConfiguration)
			if equality.Semantic.DeepEqual(cfg.Webhooks, validating.Webhooks) {
				return false
			}
			cfg.Webhooks = validating.Webhooks
			return true
		}); err != nil {
			return err
		}
	}
	if len(mutating.Webhooks) > 0 {
		for i := range mutating.Webhooks {
			mutating.Webhooks[i].ClientConfig = r.clientConfig(mutating.Webhooks[i].ClientConfig, caBundle)
			mutating.Webhooks[i].ObjectSelector = r.MutatingObjectSelector
		}
		if err := upsert(ctx, r.Client, &admissionregistrationv1.MutatingWebhookConfiguration{}, r.Name, func(o client.Object) bool {
			cfg := o.(*admissionregistrationv1.MutatingWebhookConfiguration)
			if equality.Semantic.DeepEqual(cfg.Webhooks, mutating.Webhooks) {
				return false
			}
			cfg.Webhooks = mutating.Webhooks
			return true
		}); err != nil {
			return err
		}
	}
	for _, name := range r.ConvertedCRDs {
		if err := r.registerConversion(ctx, name, caBundle); err != nil {
			return err
		}
	}
	return nil
}

func (r *Registrar) clientConfig(generated admissionregistrationv1.WebhookClientConfig, caBundle []byte) admissionregistrationv1.WebhookClientConfig {
	path := ""
	if generated.Service != nil && generated.Service.Path != nil {
		path = *generated.Service.Path
	}
	cc := r.ClientConfig(path)
	cc.CABundle = caBundle
	return cc
}

func (r *Registrar) registerConversion(ctx context.Context, name string, caBundle []byte) error {
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := r.Client.Get(ctx, client.ObjectKey{Name: name}, crd); err != nil {
		return fmt.Errorf("CRD %s: %w (install the CRDs first)", name, err)
	}
	cc := r.ClientConfig(ConversionPath)
	want := &apiextensionsv1.CustomResourceConversion{
		Strategy: apiextensionsv1.WebhookConverter,
		Webhook: &apiextensionsv1.WebhookConversion{
			ClientConfig:             &apiextensionsv1.WebhookClientConfig{URL: cc.URL, CABundle: caBundle},
			ConversionReviewVersions: []string{"v1"},
		},
	}
	if s := cc.Service; s != nil {
		want.Webhook.ClientConfig.Service = &apiextensionsv1.ServiceReference{Namespace: s.Namespace, Name: s.Name, Path: s.Path, Port: s.Port}
	}
	if equality.Semantic.DeepEqual(crd.Spec.Conversion, want) {
		return nil
	}
	crd.Spec.Conversion = want
	return r.Client.Update(ctx, crd)
}

// upsert creates the named cluster-scoped object, or lets mutate change the
// existing one and updates it when mutate reports a change.
func upsert(ctx context.Context, c client.Client, obj client.Object, name string, mutate func(client.Object) bool) error {
	err := c.Get(ctx, client.ObjectKey{Name: name}, obj)
	if apierrors.IsNotFound(err) {
		obj.SetName(name)
		mutate(obj)
		return c.Create(ctx, obj)
	}
	if err != nil {
		return err
	}
	if !mutate(obj) {
		return nil
	}
	return c.Update(ctx, obj)
}
