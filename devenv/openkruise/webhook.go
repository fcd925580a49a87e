package openkruise

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	certutil "k8s.io/client-go/util/cert"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// The defaulting webhooks, registered as OpenKruise registers them
// (config/webhook/manifests.yaml; the configuration's name is the one its
// chart installs): failurePolicy Fail, CREATE and UPDATE. The API server
// calls mutating webhooks in the order of their configurations' names, so
// this one runs before a release controller's ("kruise-..." sorts before
// "kruise-rollout-..." and "sluice").
const (
	WebhookConfigurationName = "kruise-mutating-webhook-configuration"
	cloneSetWebhookPath      = "/mutate-apps-kruise-io-v1alpha1-cloneset"
	statefulSetWebhookPath   = "/mutate-apps-kruise-io-statefulset"
	daemonSetWebhookPath     = "/mutate-apps-kruise-io-daemonset"
)

// defaulter serves both webhooks.
type defaulter struct {
	// client makes the dry-run PodTemplate that defaults templates.
	client client.Client
}

func (d *defaulter) Handle(ctx context.Context, req admission.Request) admission.Response {
	if req.SubResource != "" || (req.Operation != admissionv1.Create && req.Operation != admissionv1.Update) {
		return admission.Allowed("")
	}
	var obj, old map[string]any
	if err := utiljson.Unmarshal(req.Object.Raw, &obj); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	if req.Operation == admissionv1.Update {
		if err := utiljson.Unmarshal(req.OldObject.Raw, &old); err != nil {
			return admission.Errored(http.StatusBadRequest, err)
		}
	}
	switch req.Kind.Kind {
	case CloneSetKind.Kind:
		defaultCloneSet(obj)
	case AdvancedStatefulSetKind.Kind:
		defaultAdvancedStatefulSet(obj)
	case AdvancedDaemonSetKind.Kind:
		// Its webhook defaults no template.
		defaultAdvancedDaemonSet(obj)
		return patched(req, obj)
	default:
		return admission.Allowed("")
	}
	changed, err := templateChanged(obj, old)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	if changed {
		if err := defaultTemplate(ctx, d.client, req.Namespace, obj); err != nil {
			return admission.Errored(http.StatusInternalServerError, err)
		}
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	return admission.PatchResponseFromRaw(req.Object.Raw, raw)
}

func patched(req admission.Request, obj map[string]any) admission.Response {
	raw, err := json.Marshal(obj)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	return admission.PatchResponseFromRaw(req.Object.Raw, raw)
}

// webhookServer serves the webhooks over HTTPS on 127.0.0.1, with a
// self-signed certificate the configuration's caBundle trusts.
type webhookServer struct {
	server   *http.Server
	url      string
	caBundle []byte
	done     chan error
}

func startWebhookServer(handler admission.Handler) (*webhookServer, error) {
	// The certificate's PEM holds the serving certificate and the CA that
	// signed it: as caBundle it lets the API server verify the server.
	certPEM, keyPEM, err := certutil.GenerateSelfSignedCertKey("127.0.0.1", []net.IP{net.ParseIP("127.0.0.1")}, []string{"localhost"})
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	wh := &admission.Webhook{Handler: handler}
	mux.Handle(cloneSetWebhookPath, wh)
	mux.Handle(statefulSetWebhookPath, wh)
	mux.Handle(daemonSetWebhookPath, wh)
	s := &webhookServer{
		server: &http.Server{
			Handler:           mux,
			TLSConfig:         &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12},
			ReadHeaderTimeout: 10 * time.Second,
		},
		url:      "https://" + ln.Addr().String(),
		caBundle: certPEM,
		done:     make(chan error, 1),
	}
	go func() { s.done <- s.server.ServeTLS(ln, "", "") }()
	return s, nil
}

func (s *webhookServer) stop(ctx context.Context) error {
	err := s.server.Shutdown(ctx)
	if serveErr := <-s.done; !errors.Is(serveErr, http.ErrServerClosed) && err == nil {
		err = serveErr
	}
	return err
}

// configuration is the MutatingWebhookConfiguration leading to s.
func (s *webhookServer) configuration() *admissionregistrationv1.MutatingWebhookConfiguration {
	fail, none := admissionregistrationv1.Fail, admissionregistrationv1.SideEffectClassNone
	hook := func(name, path, resource, version string) admissionregistrationv1.MutatingWebhook {
		url := s.url + path
		return admissionregistrationv1.MutatingWebhook{
			Name:                    name,
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: s.caBundle},
			FailurePolicy:           &fail,
			SideEffects:             &none,
			AdmissionReviewVersions: []string{"v1", "v1beta1"},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
				Rule: admissionregistrationv1.Rule{
					APIGroups: []string{CloneSetKind.Group}, APIVersions: []string{version}, Resources: []string{resource},
				},
			}},
		}
	}
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: WebhookConfigurationName},
		Webhooks: []admissionregistrationv1.MutatingWebhook{
			hook("mcloneset.kb.io", cloneSetWebhookPath, "clonesets", CloneSetKind.Version),
			hook("mstatefulset.kb.io", statefulSetWebhookPath, "statefulsets", AdvancedStatefulSetKind.Version),
			hook("mdaemonset.kb.io", daemonSetWebhookPath, "daemonsets", AdvancedDaemonSetKind.Version),
		},
	}
}

// register creates or replaces the configuration.
func register(ctx context.Context, c client.Client, cfg *admissionregistrationv1.MutatingWebhookConfiguration) error {
	err := c.Create(ctx, cfg)
	if !apierrors.IsAlreadyExists(err) {
		return err
	}
	cur := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(cfg), cur); err != nil {
		return err
	}
	cur.Webhooks = cfg.Webhooks
	if err := c.Update(ctx, cur); err != nil {
		return fmt.Errorf("registering the webhooks: %w", err)
	}
	return nil
}
