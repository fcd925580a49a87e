//go:build e2e

package integrations_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/devenv/manifest"
	"github.com/sluicehq/sluice/e2e/framework"
	"github.com/sluicehq/sluice/e2e/invariants"
)

const imageRepo = "openkruise-registry.cn-shanghai.cr.aliyuncs.com/openkruise/demo:"

const app = `apiVersion: apps/v1
kind: Deployment
metadata: {name: echoserver, labels: {app: echoserver}}
spec:
  replicas: 2
  selector: {matchLabels: {app: echoserver}}
  template:
    metadata: {labels: {app: echoserver}}
    spec:
      containers:
      - {name: echoserver, image: "` + imageRepo + `1.10.2", ports: [{containerPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: echoserver}
spec:
  selector: {app: echoserver}
  ports: [{name: http, port: 80, targetPort: 8080}]
`

const ingress = `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: echoserver
  annotations: {kubernetes.io/ingress.class: nginx}
spec:
  rules:
  - http:
      paths:
      - {path: /apis/echo, pathType: Exact, backend: {service: {name: echoserver, port: {number: 80}}}}
`

const httpRoute = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: echoserver}
spec:
  parentRefs: [{name: public}]
  hostnames: [echoserver.example.com]
  rules:
  - matches: [{path: {type: PathPrefix, value: /apis/echo}}]
    backendRefs: [{name: echoserver, port: 80}]
`

// integration is one exporter's pair of templates and how a Rollout uses
// them.
type integration struct {
	name string
	// objects beside the Deployment and Service (an Ingress, an HTTPRoute).
	objects []string
	// step is what the analysed step adds (traffic), routing the
	// strategy's trafficRoutings, args the analysis' args, background the
	// strategy's background analysis.
	step, routing, args, background string
	// templates analyse the step.
	templates []string
	// bad are the versions each template rolls back: the metric (named
	// like its template) that fails.
	bad []badVersion
	// series are selectors Prometheus must have scraped during the good
	// release (NS is the test's namespace): the exporter's names and labels.
	series []string
}

type badVersion struct {
	metric, image string
	label         string // a pod-template label for a kwok stage
	opts          []invariants.Option
}

var integrations = []integration{
	{
		name: "ingress-nginx", objects: []string{ingress},
		step:      "traffic: 50%, ",
		routing:   "      trafficRoutings: [{service: echoserver, gracePeriodSeconds: 1, ingress: {name: echoserver}}]\n",
		args:      `[{name: window, value: 10s}, {name: maxP99Latency, value: "0.2"}]`,
		templates: []string{"nginx-error-rate", "nginx-latency"},
		bad:       []badVersion{{metric: "nginx-error-rate", image: "1.10.3-errors"}, {metric: "nginx-latency", image: "1.10.3-slow"}},
		series: []string{
			`nginx_ingress_controller_requests{namespace="NS",ingress="echoserver",service="echoserver",canary="NS-echoserver-canary-80",status="200",method="GET",path="/apis/echo",host="",controller_namespace="ingress-nginx",controller_class="k8s.io/ingress-nginx",controller_pod!=""}`,
			`nginx_ingress_controller_requests{namespace="NS",ingress="echoserver",service="echoserver",canary="",status="500"}`,
			`nginx_ingress_controller_request_duration_seconds_bucket{namespace="NS",ingress="echoserver",canary="NS-echoserver-canary-80",status="200",le="0.25"}`,
		},
	},
	{
		name:      "istio",
		args:      `[{name: window, value: 10s}, {name: maxP99Latency, value: "0.2"}]`,
		templates: []string{"istio-error-rate", "istio-latency"},
		bad:       []badVersion{{metric: "istio-error-rate", image: "1.10.3-errors"}, {metric: "istio-latency", image: "1.10.3-slow"}},
		series: []string{
			`istio_requests_total{reporter="destination",destination_workload="echoserver",destination_workload_namespace="NS",destination_service="echoserver.NS.svc.cluster.local",destination_service_name="echoserver",destination_canonical_service="echoserver",response_code="200",request_protocol="http",pod_template_hash!=""}`,
			`istio_request_duration_milliseconds_bucket{destination_workload_namespace="NS",response_code="200",le=~"250(\\.0)?"}`,
		},
	},
	{
		name: "envoy-gateway", objects: []string{httpRoute},
		step:      "traffic: 50%, ",
		routing:   "      trafficRoutings: [{service: echoserver, gracePeriodSeconds: 1, gateway: {httpRouteName: echoserver}}]\n",
		args:      `[{name: httpRoute, value: echoserver}, {name: window, value: 10s}, {name: maxP99Latency, value: "0.2"}]`,
		templates: []string{"envoy-gateway-error-rate", "envoy-gateway-latency"},
		bad:       []badVersion{{metric: "envoy-gateway-error-rate", image: "1.10.3-errors"}, {metric: "envoy-gateway-latency", image: "1.10.3-slow"}},
		series: []string{
			`envoy_cluster_upstream_rq_xx{envoy_cluster_name="httproute/NS/echoserver/rule/0",envoy_response_code_class="2"}`,
			`envoy_cluster_upstream_rq_total{envoy_cluster_name="httproute/NS/echoserver/rule/0"}`,
			`envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="httproute/NS/echoserver/rule/0",le=~"100(\\.0)?"}`,
		},
	},
	{
		name:      "opentelemetry",
		args:      `[{name: window, value: 10s}, {name: maxP99Latency, value: "0.2"}]`,
		templates: []string{"otel-http-error-rate", "otel-http-latency"},
		bad:       []badVersion{{metric: "otel-http-error-rate", image: "1.10.3-errors"}, {metric: "otel-http-latency", image: "1.10.3-slow"}},
		series: []string{
			`http_server_request_duration_seconds_bucket{namespace="NS",http_request_method="GET",http_response_status_code="200",http_route="/",url_scheme="http",le="0.075"}`,
			`http_server_request_duration_seconds_count{namespace="NS",pod_template_hash!=""}`,
		},
	},
	{
		name:       "kube-state-metrics",
		args:       `[]`,
		templates:  []string{"kube-pod-restarts"},
		background: "kube-pod-ready",
		bad: []badVersion{
			{metric: "kube-pod-restarts", image: "1.10.3", label: framework.RestartingLabel},
			// Ready, then not: the background analysis, which runs from the
			// first ready batch on, sees it.
			{metric: "kube-pod-ready", image: "1.10.3", label: framework.UnreadyAfterLabel,
				opts: []invariants.Option{invariants.Allowing(invariants.Availability, "the bad version's pod loses its readiness on purpose")}},
		},
		series: []string{
			`kube_pod_owner{namespace="NS",owner_kind="ReplicaSet",owner_name=~"echoserver-.+",owner_is_controller="true",uid!=""}`,
			`kube_pod_status_ready{namespace="NS",condition="true"}`,
			`kube_pod_container_status_restarts_total{namespace="NS",container="echoserver"}`,
		},
	},
}

func (in integration) rollout() string {
	var refs []string
	for _, t := range in.templates {
		refs = append(refs, fmt.Sprintf("{templateName: %s, clusterScope: true}", t))
	}
	last := ""
	if in.routing != "" {
		last = "traffic: 100%, "
	}
	bg := ""
	if in.background != "" {
		bg = fmt.Sprintf("    analysis: {templates: [{templateName: %s, clusterScope: true}]}\n", in.background)
	}
	return fmt.Sprintf(`apiVersion: rollouts.kruise.io/v1beta1
kind: Rollout
metadata: {name: app}
spec:
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: echoserver}
  strategy:
    progressDeadlineSeconds: 600
%s    canary:
      steps:
      - {%sreplicas: 1, pause: {duration: 0}, analysis: {templates: [%s], args: %s}}
      - {%sreplicas: 100%%}
%s`, bg, in.step, strings.Join(refs, ", "), in.args, last, in.routing)
}

// TestReadyMadeTemplates releases, for each integration, a good version
// that its templates pass and, for each template, a bad version it rolls
// back (the Rollout names that template's metric).
func TestReadyMadeTemplates(t *testing.T) {
	for _, in := range integrations {
		t.Run(in.name+"/good", func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, in, nil)
			f.release("1.10.3", "")
			r := f.wait("the release to complete", func(r *v1beta1.Rollout) bool {
				return r.Status.LastRelease != nil && r.Status.LastRelease.Outcome != "" || waitsForPerson(r)
			})
			if h := r.Status.HoldOf(); h != nil && h.Reason.NeedsPerson() {
				t.Fatalf("a good version is held: %s %s (metric %s)", h.Reason, h.Message, h.Metric)
			}
			if l := r.Status.LastRelease; l.Outcome != v1beta1.OutcomeCompleted {
				t.Fatalf("a good version ended %s: %s (metric %s)", l.Outcome, l.Message, l.Metric)
			}
			for _, sel := range in.series {
				f.expectScraped(strings.ReplaceAll(sel, "NS", f.ns))
			}
		})
		for _, bad := range in.bad {
			t.Run(in.name+"/"+bad.metric, func(t *testing.T) {
				t.Parallel()
				f := newFixture(t, in, bad.opts)
				f.release(bad.image, bad.label)
				r := f.wait("the release to end", func(r *v1beta1.Rollout) bool {
					return r.Status.LastRelease != nil && r.Status.LastRelease.Outcome != "" || waitsForPerson(r)
				})
				if h := r.Status.HoldOf(); r.Status.LastRelease == nil && h != nil {
					t.Fatalf("held %s: %s (metric %s), want rolled back by %s", h.Reason, h.Message, h.Metric, bad.metric)
				}
				if l := r.Status.LastRelease; l.Outcome != v1beta1.OutcomeRolledBack || l.Metric != bad.metric {
					t.Fatalf("ended %s by metric %q (%s), want rolled back by %s", l.Outcome, l.Metric, l.Message, bad.metric)
				}
			})
		}
	}
}

func waitsForPerson(r *v1beta1.Rollout) bool {
	h := r.Status.HoldOf()
	return h != nil && h.Reason.NeedsPerson()
}

type fixture struct {
	t   *testing.T
	ctx context.Context
	ns  string
	c   client.Client
}

func newFixture(t *testing.T, in integration, opts []invariants.Option) *fixture {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	f := &fixture{t: t, ctx: ctx, ns: env.Namespace(t, opts...), c: env.Client}
	for _, d := range append(append([]string{app}, in.objects...), in.rollout()) {
		if _, err := manifest.Create(ctx, f.c, f.ns, []byte(d)); err != nil {
			t.Fatal(err)
		}
	}
	f.wait("Healthy", func(r *v1beta1.Rollout) bool { return r.Status.Phase == v1beta1.RolloutPhaseHealthy })
	return f
}

// release gives the Deployment image (its tag's last word is the
// simulator's scenario), with label set on its pods when given.
func (f *fixture) release(image, label string) {
	f.t.Helper()
	d := &appsv1.Deployment{}
	if err := f.c.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: "echoserver"}, d); err != nil {
		f.t.Fatal(err)
	}
	patch := client.MergeFrom(d.DeepCopy())
	d.Spec.Template.Spec.Containers[0].Image = imageRepo + image
	if label != "" {
		d.Spec.Template.Labels[label] = "true"
	}
	if err := f.c.Patch(f.ctx, d, patch); err != nil {
		f.t.Fatal(err)
	}
}

// expectScraped checks that Prometheus scraped a series sel selects
// during the last ten minutes.
func (f *fixture) expectScraped(sel string) {
	f.t.Helper()
	c, err := promapi.NewClient(promapi.Config{Address: metrics.Prometheus.URL()})
	if err != nil {
		f.t.Fatal(err)
	}
	v, _, _, err := promv1.NewAPI(c).Query(f.ctx, "count(last_over_time("+sel+"[10m]))", time.Now())
	if err != nil {
		f.t.Fatalf("%s: %v", sel, err)
	}
	if vec, ok := v.(model.Vector); !ok || len(vec) == 0 || vec[0].Value < 1 {
		f.t.Errorf("Prometheus scraped no series %s", sel)
	}
}

func (f *fixture) wait(what string, cond func(*v1beta1.Rollout) bool) *v1beta1.Rollout {
	f.t.Helper()
	r, err := framework.WaitRollout(f.ctx, f.c, client.ObjectKey{Namespace: f.ns, Name: "app"}, 3*time.Minute, cond)
	if err != nil {
		f.t.Fatalf("waiting for %s: %v\nstatus %+v\nanalysis %+v", what, err, r.Status.Release, r.Status.Analysis)
	}
	return r
}
