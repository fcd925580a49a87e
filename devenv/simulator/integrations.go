package simulator

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// The exporters people already run, as they would report the simulated
// pods' traffic (Options.Integrations). Names, labels and buckets are the
// exporters' own defaults:
//
//   - ingress-nginx: nginx_ingress_controller_requests and
//     nginx_ingress_controller_request_duration_seconds (status, method,
//     path, namespace, ingress, service, canary, host; the controller's
//     controller_namespace, controller_class, controller_pod). A canary
//     Ingress (nginx.ingress.kubernetes.io/canary) is merged into the main
//     Ingress of its host, as the controller does: its requests carry the
//     main Ingress and Service, and canary is the canary upstream,
//     <namespace>-<service>-<port>; the others have canary="".
//   - Istio's sidecars (reporter="destination"): istio_requests_total and
//     istio_request_duration_milliseconds, with the standard labels, and
//     namespace, pod and pod_template_hash as Istio's Prometheus scrape
//     config maps them from the pod.
//   - Envoy Gateway: envoy_cluster_upstream_rq_xx, _rq_total, _rq and
//     envoy_cluster_upstream_rq_time (ms) per cluster
//     httproute/<namespace>/<route>/rule/<index>, one per route rule with
//     every backend of the rule in it (a backend of weight 0 gets none).
//   - OpenTelemetry's HTTP server semantic conventions, as the Prometheus
//     exporter names them: http_server_request_duration_seconds
//     (http_request_method, http_response_status_code, http_route,
//     url_scheme, network_protocol_version, otel_scope_name), with
//     namespace, pod and pod_template_hash from the scrape.
//   - kube-state-metrics: kube_pod_owner, kube_pod_status_ready and
//     kube_pod_container_status_restarts_total, from the pods' status.

// fineBounds holds every bound of the exporters' histograms, in seconds:
// Prometheus' defaults (ingress-nginx), OpenTelemetry's advisory bounds,
// and Envoy's (Istio, Envoy Gateway) in milliseconds.
var fineBounds = []float64{0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 30, 60, 300, 600, 1800, 3600}

// The exporters' bucket bounds, in their units.
var (
	nginxBounds = prometheus.DefBuckets
	otelBounds  = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}
	envoyBounds = []float64{0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000}
)

// fineHist is a latency histogram at fineBounds.
type fineHist struct {
	count   uint64
	sum     float64
	buckets []uint64 // cumulative
}

func newFineHist() *fineHist { return &fineHist{buckets: make([]uint64, len(fineBounds))} }

func (h *fineHist) observe(v float64) {
	h.count++
	h.sum += v
	for i, b := range fineBounds {
		if v <= b {
			h.buckets[i]++
		}
	}
}

func (h *fineHist) add(o *fineHist) {
	h.count += o.count
	h.sum += o.sum
	for i := range h.buckets {
		h.buckets[i] += o.buckets[i]
	}
}

// at returns the cumulative counts at bounds given in seconds×scale (1 for
// seconds, 1000 for milliseconds), and the sum in the same unit. Every
// bound is one of fineBounds.
func (h *fineHist) at(bounds []float64, scale float64) (map[float64]uint64, float64) {
	out := make(map[float64]uint64, len(bounds))
	for _, b := range bounds {
		for i, f := range fineBounds {
			if math.Abs(f*scale-b) <= 1e-9*b {
				out[b] = h.buckets[i]
				break
			}
		}
	}
	return out, h.sum * scale
}

// livePod is a running pod whose traffic was advanced to now.
type livePod struct {
	pod  *corev1.Pod
	st   *podState
	hash string
}

// codes are the status codes the simulated pods answer with.
var codes = []string{"200", "500"}

var (
	nginxLabels   = []string{"status", "method", "path", "namespace", "ingress", "service", "canary", "host"}
	nginxConst    = prometheus.Labels{"controller_namespace": "ingress-nginx", "controller_class": "k8s.io/ingress-nginx", "controller_pod": "ingress-nginx-controller-0"}
	nginxRequests = prometheus.NewDesc("nginx_ingress_controller_requests", "The total number of client requests", nginxLabels, nginxConst)
	nginxDuration = prometheus.NewDesc("nginx_ingress_controller_request_duration_seconds", "The request processing time in milliseconds", nginxLabels, nginxConst)
	istioLabels   = []string{"reporter", "source_workload", "source_workload_namespace", "destination_workload", "destination_workload_namespace", "destination_service", "destination_service_name", "destination_service_namespace", "destination_canonical_service", "destination_canonical_revision", "request_protocol", "response_code", "response_flags", "connection_security_policy", "namespace", "pod", "pod_template_hash"}
	istioRequests = prometheus.NewDesc("istio_requests_total", "Total requests.", istioLabels, nil)
	istioDuration = prometheus.NewDesc("istio_request_duration_milliseconds", "Request duration.", istioLabels, nil)
	envoyXX       = prometheus.NewDesc("envoy_cluster_upstream_rq_xx", "", []string{"envoy_response_code_class", "envoy_cluster_name"}, nil)
	envoyRq       = prometheus.NewDesc("envoy_cluster_upstream_rq", "", []string{"envoy_response_code", "envoy_cluster_name"}, nil)
	envoyTotal    = prometheus.NewDesc("envoy_cluster_upstream_rq_total", "", []string{"envoy_cluster_name"}, nil)
	envoyTime     = prometheus.NewDesc("envoy_cluster_upstream_rq_time", "", []string{"envoy_cluster_name"}, nil)
	otelLabels    = []string{"http_request_method", "http_response_status_code", "http_route", "url_scheme", "network_protocol_version", "otel_scope_name", "namespace", "pod", "pod_template_hash"}
	otelDuration  = prometheus.NewDesc("http_server_request_duration_seconds", "Duration of HTTP server requests.", otelLabels, nil)
	ksmOwner      = prometheus.NewDesc("kube_pod_owner", "Information about the Pod's owner.", []string{"namespace", "pod", "uid", "owner_kind", "owner_name", "owner_is_controller"}, nil)
	ksmReady      = prometheus.NewDesc("kube_pod_status_ready", "Describes whether the pod is ready to serve requests.", []string{"namespace", "pod", "uid", "condition"}, nil)
	ksmRestarts   = prometheus.NewDesc("kube_pod_container_status_restarts_total", "The number of container restarts per container.", []string{"namespace", "pod", "uid", "container"}, nil)
)

const (
	// otelScope is the instrumentation scope of Go's net/http instrumentation.
	otelScope = "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	// routeListLimit bounds the HTTPRoute list of one scrape.
	routeListLimit = 2 * time.Second
)

func (s *Simulator) collectIntegrations(ch chan<- prometheus.Metric, live []livePod) {
	services := s.servicesByNamespace()
	for _, lp := range live {
		s.collectPodExporters(ch, lp, services)
	}
	s.collectNginx(ch, live, services)
	s.collectEnvoy(ch, live, services)
	for _, obj := range s.pods.GetStore().List() {
		if pod, ok := obj.(*corev1.Pod); ok && pod.DeletionTimestamp == nil {
			collectKSM(ch, pod)
		}
	}
}

func (s *Simulator) servicesByNamespace() map[string][]*corev1.Service {
	out := map[string][]*corev1.Service{}
	for _, obj := range s.services.GetStore().List() {
		if svc, ok := obj.(*corev1.Service); ok && len(svc.Spec.Selector) > 0 {
			out[svc.Namespace] = append(out[svc.Namespace], svc)
		}
	}
	for _, list := range out {
		sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	}
	return out
}

func selects(svc *corev1.Service, pod *corev1.Pod) bool {
	return svc != nil && svc.Namespace == pod.Namespace && len(svc.Spec.Selector) > 0 &&
		labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(pod.Labels))
}

func findService(services []*corev1.Service, name string) *corev1.Service {
	for _, svc := range services {
		if svc.Name == name {
			return svc
		}
	}
	return nil
}

// workloadOf is the Deployment (the ReplicaSet's name less the hash) or
// other owner of a pod, as Istio names destination_workload.
func workloadOf(pod *corev1.Pod) (kind, name string) {
	for _, o := range pod.OwnerReferences {
		if o.Controller != nil && *o.Controller {
			if o.Kind == "ReplicaSet" {
				if h := pod.Labels["pod-template-hash"]; h != "" {
					return "Deployment", strings.TrimSuffix(o.Name, "-"+h)
				}
			}
			return o.Kind, o.Name
		}
	}
	return "", pod.Name
}

// collectPodExporters sends what a pod's own sidecar (Istio) and
// instrumentation (OpenTelemetry) report.
func (s *Simulator) collectPodExporters(ch chan<- prometheus.Metric, lp livePod, services map[string][]*corev1.Service) {
	pod := lp.pod
	_, workload := workloadOf(pod)
	svcName := "unknown"
	for _, svc := range services[pod.Namespace] {
		if selects(svc, pod) {
			svcName = svc.Name
			break
		}
	}
	canonical := pod.Labels["app"]
	if canonical == "" {
		canonical = workload
	}
	revision := pod.Labels["version"]
	if revision == "" {
		revision = "latest"
	}
	for _, code := range codes {
		h := lp.st.byCode[code]
		values := []string{"destination", "unknown", "unknown", workload, pod.Namespace,
			svcName + "." + pod.Namespace + ".svc.cluster.local", svcName, pod.Namespace, canonical, revision,
			"http", code, "-", "mutual_tls", pod.Namespace, pod.Name, lp.hash}
		ch <- prometheus.MustNewConstMetric(istioRequests, prometheus.CounterValue, float64(h.count), values...)
		b, sum := h.at(envoyBounds, 1000)
		ch <- prometheus.MustNewConstHistogram(istioDuration, h.count, sum, b, values...)
		b, sum = h.at(otelBounds, 1)
		ch <- prometheus.MustNewConstHistogram(otelDuration, h.count, sum, b,
			"GET", code, "/", "http", "1.1", otelScope, pod.Namespace, pod.Name, lp.hash)
	}
}

// collectNginx sends what ingress-nginx reports for the Ingresses that
// route to the pods.
func (s *Simulator) collectNginx(ch chan<- prometheus.Metric, live []livePod, services map[string][]*corev1.Service) {
	type key struct{ namespace, ingress, service, canary, host, path string }
	type route struct {
		key
		svc *corev1.Service
	}
	var main, canary []route
	for _, obj := range s.ingresses.GetStore().List() {
		ing, ok := obj.(*networkingv1.Ingress)
		if !ok {
			continue
		}
		host, path, backend, port := firstPath(ing)
		if backend == "" {
			continue
		}
		r := route{key: key{namespace: ing.Namespace, ingress: ing.Name, service: backend, host: host, path: path}, svc: findService(services[ing.Namespace], backend)}
		if ing.Annotations["nginx.ingress.kubernetes.io/canary"] == "true" {
			r.canary = fmt.Sprintf("%s-%s-%s", ing.Namespace, backend, port)
			canary = append(canary, r)
		} else {
			main = append(main, r)
		}
	}
	// A canary Ingress's requests go through the main Ingress of its host.
	for i, c := range canary {
		for _, m := range main {
			if m.namespace == c.namespace && m.host == c.host {
				canary[i].ingress, canary[i].service, canary[i].path = m.ingress, m.service, m.path
				break
			}
		}
	}
	sums := map[key]map[string]*fineHist{}
	add := func(k key, st *podState) {
		if sums[k] == nil {
			sums[k] = map[string]*fineHist{"200": newFineHist(), "500": newFineHist()}
		}
		for _, code := range codes {
			sums[k][code].add(st.byCode[code])
		}
	}
	for _, lp := range live {
		done := false
		for _, c := range canary {
			if selects(c.svc, lp.pod) {
				add(c.key, lp.st)
				done = true
				break
			}
		}
		if done {
			continue
		}
		for _, m := range main {
			if selects(m.svc, lp.pod) {
				add(m.key, lp.st)
				break
			}
		}
	}
	for k, byCode := range sums {
		for _, code := range codes {
			h := byCode[code]
			values := []string{code, "GET", k.path, k.namespace, k.ingress, k.service, k.canary, k.host}
			ch <- prometheus.MustNewConstMetric(nginxRequests, prometheus.CounterValue, float64(h.count), values...)
			b, sum := h.at(nginxBounds, 1)
			ch <- prometheus.MustNewConstHistogram(nginxDuration, h.count, sum, b, values...)
		}
	}
}

// firstPath is an Ingress's first rule: host, path, backend Service and port.
func firstPath(ing *networkingv1.Ingress) (host, path, service, port string) {
	for _, r := range ing.Spec.Rules {
		if r.HTTP == nil {
			continue
		}
		for _, p := range r.HTTP.Paths {
			if p.Backend.Service == nil {
				continue
			}
			port = p.Backend.Service.Port.Name
			if p.Backend.Service.Port.Number != 0 {
				port = strconv.Itoa(int(p.Backend.Service.Port.Number))
			}
			return r.Host, p.Path, p.Backend.Service.Name, port
		}
	}
	return "", "", "", ""
}

// collectEnvoy sends Envoy Gateway's cluster stats of the HTTPRoutes that
// route to the pods.
func (s *Simulator) collectEnvoy(ch chan<- prometheus.Metric, live []livePod, services map[string][]*corev1.Service) {
	if s.o.Routes == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), routeListLimit)
	defer cancel()
	list := &unstructured.UnstructuredList{}
	list.SetAPIVersion(gatewayv1.GroupVersion.String())
	list.SetKind("HTTPRouteList")
	if err := s.o.Routes.List(ctx, list); err != nil {
		return // no Gateway API here
	}
	for _, u := range list.Items {
		var hr gatewayv1.HTTPRoute
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &hr); err != nil {
			continue
		}
		for i, rule := range hr.Spec.Rules {
			byCode := map[string]*fineHist{"200": newFineHist(), "500": newFineHist()}
			for _, lp := range live {
				for _, ref := range rule.BackendRefs {
					if ref.Kind != nil && *ref.Kind != "Service" || ref.Weight != nil && *ref.Weight == 0 {
						continue
					}
					if selects(findService(services[hr.Namespace], string(ref.Name)), lp.pod) {
						for _, code := range codes {
							byCode[code].add(lp.st.byCode[code])
						}
						break
					}
				}
			}
			cluster := fmt.Sprintf("httproute/%s/%s/rule/%d", hr.Namespace, hr.Name, i)
			all := newFineHist()
			for _, code := range codes {
				h := byCode[code]
				all.add(h)
				ch <- prometheus.MustNewConstMetric(envoyXX, prometheus.CounterValue, float64(h.count), code[:1], cluster)
				ch <- prometheus.MustNewConstMetric(envoyRq, prometheus.CounterValue, float64(h.count), code, cluster)
			}
			ch <- prometheus.MustNewConstMetric(envoyTotal, prometheus.CounterValue, float64(all.count), cluster)
			b, sum := all.at(envoyBounds, 1000)
			ch <- prometheus.MustNewConstHistogram(envoyTime, all.count, sum, b, cluster)
		}
	}
}

// collectKSM sends kube-state-metrics' series of a pod, from its status.
func collectKSM(ch chan<- prometheus.Metric, pod *corev1.Pod) {
	uid := string(pod.UID)
	for _, o := range pod.OwnerReferences {
		ctrl := "false"
		if o.Controller != nil && *o.Controller {
			ctrl = "true"
		}
		ch <- prometheus.MustNewConstMetric(ksmOwner, prometheus.GaugeValue, 1, pod.Namespace, pod.Name, uid, o.Kind, o.Name, ctrl)
	}
	ready := "unknown"
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			ready = strings.ToLower(string(c.Status))
		}
	}
	for _, c := range []string{"true", "false", "unknown"} {
		v := 0.0
		if c == ready {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(ksmReady, prometheus.GaugeValue, v, pod.Namespace, pod.Name, uid, c)
	}
	for _, cs := range pod.Status.ContainerStatuses {
		ch <- prometheus.MustNewConstMetric(ksmRestarts, prometheus.CounterValue, float64(cs.RestartCount), pod.Namespace, pod.Name, uid, cs.Name)
	}
}
