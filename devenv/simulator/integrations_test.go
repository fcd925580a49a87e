package simulator

import (
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
)

func ingressTo(name, service string, canary bool) *networkingv1.Ingress {
	ing := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, Annotations: map[string]string{}},
		Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
			Paths: []networkingv1.HTTPIngressPath{{Path: "/api", Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
				Name: service, Port: networkingv1.ServiceBackendPort{Number: 80},
			}}}},
		}}}}},
	}
	if canary {
		ing.Annotations["nginx.ingress.kubernetes.io/canary"] = "true"
	}
	return ing
}

func service(name string, selector map[string]string) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}, Spec: corev1.ServiceSpec{Selector: selector}}
}

// series is every sample of a family, by its labels (name=value,...).
func series(t *testing.T, s *Simulator, now time.Time, family string) []*dto.Metric {
	t.Helper()
	s.o.Now = func() time.Time { return now }
	mfs, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == family {
			return mf.GetMetric()
		}
	}
	return nil
}

func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// ingress-nginx reports a canary Ingress's requests under the Ingress it
// copies, with canary set to the canary upstream; the stable pods' under
// the same Ingress with canary="". Istio, OpenTelemetry and
// kube-state-metrics report per pod.
func TestIntegrations(t *testing.T) {
	stable := pod("stable", "app:v1", map[string]string{"app": "web"})
	canary := pod("canary", "app:v2-errors", map[string]string{"app": "web"})
	canary.Labels["pod-template-hash"] = "new"
	ctrl := true
	canary.OwnerReferences = []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "web-new", Controller: &ctrl}}
	canary.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	canary.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", RestartCount: 2}}
	objs := []runtime.Object{stable, canary,
		service("web", map[string]string{"app": "web"}), service("web-canary", map[string]string{"app": "web", "pod-template-hash": "new"}),
		ingressTo("web", "web", false), ingressTo("web-canary", "web-canary", true)}
	s := New(fake.NewClientset(objs...), Options{Integrations: true})
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(100 * time.Second)

	byCanary := map[string]map[string]float64{}
	for _, m := range series(t, s, now, "nginx_ingress_controller_requests") {
		l := labelsOf(m)
		if l["ingress"] != "web" || l["service"] != "web" || l["namespace"] != "ns" || l["path"] != "/api" || l["controller_class"] != "k8s.io/ingress-nginx" {
			t.Errorf("nginx series %v", l)
		}
		if byCanary[l["canary"]] == nil {
			byCanary[l["canary"]] = map[string]float64{}
		}
		byCanary[l["canary"]][l["status"]] = m.GetCounter().GetValue()
	}
	if st, c := byCanary[""], byCanary["ns-web-canary-80"]; st["200"] == 0 || st["500"] != 0 || c["500"] == 0 || c["500"]/(c["200"]+c["500"]) < 0.15 {
		t.Errorf("nginx requests by canary and status: %v", byCanary)
	}
	if n := len(series(t, s, now, "nginx_ingress_controller_request_duration_seconds")); n != 4 {
		t.Errorf("%d nginx duration histograms, want 2 routes × 2 codes", n)
	}

	for _, m := range series(t, s, now, "istio_requests_total") {
		l := labelsOf(m)
		if l["reporter"] != "destination" || l["destination_workload_namespace"] != "ns" || l["destination_canonical_service"] != "web" || l["pod_template_hash"] == "" {
			t.Errorf("istio series %v", l)
		}
		if l["pod"] == "canary" && l["destination_workload"] != "web" {
			t.Errorf("the canary's destination_workload is %q, want the Deployment web", l["destination_workload"])
		}
	}
	for _, m := range series(t, s, now, "istio_request_duration_milliseconds") {
		h := m.GetHistogram()
		if b := h.GetBucket(); len(b) != len(envoyBounds) || h.GetSampleSum()/float64(h.GetSampleCount()) < 40 {
			t.Errorf("istio duration in ms: %d buckets, mean %.1f", len(b), h.GetSampleSum()/float64(h.GetSampleCount()))
		}
	}
	otel := series(t, s, now, "http_server_request_duration_seconds")
	if len(otel) != 4 || len(otel[0].GetHistogram().GetBucket()) != len(otelBounds) || labelsOf(otel[0])["http_request_method"] != "GET" {
		t.Errorf("OpenTelemetry series %v", otel)
	}

	var restarts, owner, ready bool
	for _, m := range series(t, s, now, "kube_pod_container_status_restarts_total") {
		restarts = restarts || labelsOf(m)["pod"] == "canary" && m.GetCounter().GetValue() == 2
	}
	for _, m := range series(t, s, now, "kube_pod_owner") {
		l := labelsOf(m)
		owner = owner || l["pod"] == "canary" && l["owner_kind"] == "ReplicaSet" && l["owner_name"] == "web-new" && l["owner_is_controller"] == "true"
	}
	for _, m := range series(t, s, now, "kube_pod_status_ready") {
		l := labelsOf(m)
		ready = ready || l["pod"] == "canary" && l["condition"] == "true" && m.GetGauge().GetValue() == 1
	}
	if !restarts || !owner || !ready {
		t.Errorf("kube-state-metrics: restarts %v owner %v ready %v", restarts, owner, ready)
	}
}
