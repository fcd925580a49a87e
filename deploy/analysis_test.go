package deploy

import (
	"regexp"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/sluicehq/sluice/analysis/admission"
)

// The ready-made templates pass admission as written, each integration
// ships a pair (error rate and latency, or restarts and readiness), and
// each queries the metrics its exporter serves, by their exact names.
func TestAnalysisTemplates(t *testing.T) {
	files, err := AnalysisTemplates()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"ingress-nginx.yaml":      {"nginx_ingress_controller_requests", "nginx_ingress_controller_request_duration_seconds_bucket"},
		"istio.yaml":              {"istio_requests_total", "istio_request_duration_milliseconds_bucket"},
		"envoy-gateway.yaml":      {"envoy_cluster_upstream_rq_xx", "envoy_cluster_upstream_rq_time_bucket"},
		"opentelemetry.yaml":      {"http_server_request_duration_seconds_count", "http_server_request_duration_seconds_bucket"},
		"kube-state-metrics.yaml": {"kube_pod_container_status_restarts_total", "kube_pod_status_ready"},
	}
	if len(files) != len(want) {
		t.Errorf("files %v, want %v", keys(files), keys(want))
	}
	seen := map[string]bool{}
	metricName := regexp.MustCompile(`[a-z_]+\{`)
	for file, metrics := range want {
		ts := files[file]
		if len(ts) != 2 {
			t.Errorf("%s: %d templates, want 2", file, len(ts))
			continue
		}
		var queries []string
		for _, tpl := range ts {
			if seen[tpl.Name] {
				t.Errorf("%s: template %s twice", file, tpl.Name)
			}
			seen[tpl.Name] = true
			if errs := admission.ValidateTemplateSpec(&tpl.Spec, field.NewPath("spec")); len(errs) > 0 {
				t.Errorf("%s %s: %v", file, tpl.Name, errs.ToAggregate())
			}
			if len(tpl.Spec.Metrics) != 1 || tpl.Spec.Metrics[0].Name != tpl.Name {
				t.Errorf("%s %s: want one metric named like the template", file, tpl.Name)
			}
			for _, m := range tpl.Spec.Metrics {
				queries = append(queries, m.Provider.Prometheus.Query)
				// Every template reads the canary, not the whole workload: by
				// its revision, or through the canary's own route.
				q := m.Provider.Prometheus.Query
				if !strings.Contains(q, "{{ .canaryRevision }}") && !strings.Contains(q, `canary!=""`) && !strings.Contains(q, "{{ .args.httpRoute }}") {
					t.Errorf("%s %s: the query does not select the canary: %s", file, tpl.Name, q)
				}
			}
		}
		all := strings.Join(queries, "\n")
		for _, metric := range metrics {
			if !strings.Contains(all, metric+"{") {
				t.Errorf("%s: no query reads %s", file, metric)
			}
		}
		for _, used := range metricName.FindAllString(all, -1) {
			if !strings.HasPrefix(used, strings.SplitN(metrics[0], "_", 2)[0]) && !strings.HasPrefix(used, "kube_pod_owner") {
				t.Errorf("%s: reads %s, another exporter's metric", file, strings.TrimSuffix(used, "{"))
			}
		}
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
