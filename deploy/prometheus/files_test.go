// Package prometheus_test checks the files of deploy/prometheus without a
// Prometheus: the rule file decodes strictly, its expressions are PromQL and
// its templates parse; the monitors decode strictly and set the job the
// rules watch. e2e/operability proves the rules against a real Prometheus.
package prometheus_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"text/template"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"
)

// ruleFile is Prometheus's rule file format (rule_files), field for field.
type ruleFile struct {
	Groups []struct {
		Name     string `json:"name"`
		Interval string `json:"interval,omitempty"`
		Rules    []struct {
			Alert         string            `json:"alert,omitempty"`
			Record        string            `json:"record,omitempty"`
			Expr          string            `json:"expr"`
			For           string            `json:"for,omitempty"`
			KeepFiringFor string            `json:"keep_firing_for,omitempty"`
			Labels        map[string]string `json:"labels,omitempty"`
			Annotations   map[string]string `json:"annotations,omitempty"`
		} `json:"rules"`
	} `json:"groups"`
}

func TestAlertRules(t *testing.T) {
	var f ruleFile
	decodeStrict(t, "alerts.yaml", &f)
	seen := map[string]bool{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || seen[r.Alert] {
				t.Errorf("group %s: a rule without an alert name, or a second %q", g.Name, r.Alert)
			}
			seen[r.Alert] = true
			if _, err := parser.NewParser(parser.Options{}).ParseExpr(r.Expr); err != nil {
				t.Errorf("%s: expr: %v", r.Alert, err)
			}
			if r.For != "" {
				if _, err := model.ParseDuration(r.For); err != nil {
					t.Errorf("%s: for: %v", r.Alert, err)
				}
			}
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: wants a severity label, a summary and a description", r.Alert)
			}
			for k, text := range r.Annotations {
				// Prometheus defines these before expanding a template.
				defs := "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}"
				if _, err := template.New(k).Option("missingkey=zero").Parse(defs + text); err != nil {
					t.Errorf("%s: annotation %s: %v", r.Alert, k, err)
				}
			}
		}
	}
	for _, want := range []string{"SluiceReleaseAbortedByAnalysis", "SluiceReleasePausedTooLong", "SluiceAnalysisErroring", "SluiceControllerDown",
		"SluiceReleaseProgressDeadlineExceeded", "SluiceTrafficRoutingFailing", "SluiceWorkloadFailing"} {
		if !seen[want] {
			t.Errorf("no alert %s", want)
		}
	}
}

// The alerts on what a release waits for select reasons of the closed set
// of status.release.hold.reason (the CRD's enum), as the manager exports
// them in sluice_rollout_waiting{reason}: a misspelt or renamed reason
// would never fire.
func TestAlertsSelectHoldReasons(t *testing.T) {
	reasons := holdReasons(t)
	var f ruleFile
	decodeStrict(t, "alerts.yaml", &f)
	selected := 0
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			expr, err := parser.NewParser(parser.Options{}).ParseExpr(r.Expr)
			if err != nil {
				t.Fatal(err)
			}
			parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
				vs, ok := n.(*parser.VectorSelector)
				if !ok || !strings.HasPrefix(vs.Name, "sluice_rollout_waiting") {
					return nil
				}
				for _, m := range vs.LabelMatchers {
					if m.Name != "reason" {
						continue
					}
					selected++
					matched := 0
					for _, reason := range reasons {
						if m.Matches(reason) {
							matched++
						}
					}
					// Every alternative of the matcher must be a reason.
					for _, alt := range strings.Split(m.Value, "|") {
						if !slices.Contains(reasons, alt) {
							t.Errorf("%s: selects reason %q, not one of %v", r.Alert, alt, reasons)
						}
					}
					if matched == 0 {
						t.Errorf("%s: %s matches no hold reason", r.Alert, m)
					}
				}
				return nil
			})
		}
	}
	if selected < 3 {
		t.Errorf("%d reason matchers in the alerts, want those of the progress deadline, traffic and workload alerts", selected)
	}
}

// holdReasons reads the enum of status.release.hold.reason from the
// Rollout CRD (both versions must agree).
func holdReasons(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "crds", "rollouts.kruise.io_rollouts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var crd struct {
		Spec struct {
			Versions []struct {
				Name   string
				Schema struct {
					OpenAPIV3Schema schema `json:"openAPIV3Schema"`
				}
			}
		}
	}
	if err := yaml.Unmarshal(raw, &crd); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, v := range crd.Spec.Versions {
		s := v.Schema.OpenAPIV3Schema
		for _, field := range []string{"status", "release", "hold", "reason"} {
			s = s.Properties[field]
		}
		if len(s.Enum) == 0 {
			t.Fatalf("version %s: no enum at status.release.hold.reason", v.Name)
		}
		if out != nil && !slices.Equal(out, s.Enum) {
			t.Fatalf("version %s: hold reasons %v, another version %v", v.Name, s.Enum, out)
		}
		out = s.Enum
	}
	return out
}

type schema struct {
	Properties map[string]schema `json:"properties"`
	Enum       []string          `json:"enum"`
}

// monitor is what the ServiceMonitor and PodMonitor use of the Prometheus
// Operator's CRDs (monitoring.coreos.com/v1); a field not here fails.
type monitor struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace"`
		Labels    map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		NamespaceSelector   *struct{ MatchNames []string } `json:"namespaceSelector,omitempty"`
		Endpoints           []endpoint                     `json:"endpoints,omitempty"`
		PodMetricsEndpoints []endpoint                     `json:"podMetricsEndpoints,omitempty"`
	} `json:"spec"`
}

type endpoint struct {
	Port        string `json:"port"`
	Path        string `json:"path"`
	Interval    string `json:"interval"`
	Relabelings []struct {
		Action       string   `json:"action"`
		SourceLabels []string `json:"sourceLabels,omitempty"`
		TargetLabel  string   `json:"targetLabel"`
		Replacement  string   `json:"replacement"`
	} `json:"relabelings"`
}

// The monitors scrape the metrics port and name the job the
// controller-down alert watches.
func TestMonitors(t *testing.T) {
	job := controllerJob(t)
	for file, kind := range map[string]string{"servicemonitor.yaml": "ServiceMonitor", "podmonitor.yaml": "PodMonitor"} {
		var m monitor
		decodeStrict(t, file, &m)
		if m.APIVersion != "monitoring.coreos.com/v1" || m.Kind != kind {
			t.Errorf("%s: %s %s, want monitoring.coreos.com/v1 %s", file, m.APIVersion, m.Kind, kind)
		}
		if m.Spec.Selector.MatchLabels["app.kubernetes.io/name"] != "sluice" {
			t.Errorf("%s: selects %v, not the chart's app.kubernetes.io/name=sluice", file, m.Spec.Selector.MatchLabels)
		}
		eps := append(m.Spec.Endpoints, m.Spec.PodMetricsEndpoints...)
		if len(eps) != 1 {
			t.Fatalf("%s: %d endpoints, want 1", file, len(eps))
		}
		ep := eps[0]
		if ep.Port != "metrics" || ep.Path != "/metrics" {
			t.Errorf("%s: scrapes %s%s, want the metrics port's /metrics", file, ep.Port, ep.Path)
		}
		if _, err := model.ParseDuration(ep.Interval); err != nil {
			t.Errorf("%s: interval: %v", file, err)
		}
		named := false
		for _, r := range ep.Relabelings {
			named = named || r.TargetLabel == "job" && r.Replacement == job && (r.Action == "" || r.Action == "replace") && len(r.SourceLabels) == 0
		}
		if !named {
			t.Errorf("%s: does not set job=%q, which SluiceControllerDown watches", file, job)
		}
	}
}

// controllerJob is the job SluiceControllerDown's expression selects.
func controllerJob(t *testing.T) string {
	t.Helper()
	var f ruleFile
	decodeStrict(t, "alerts.yaml", &f)
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Alert != "SluiceControllerDown" {
				continue
			}
			expr, err := parser.NewParser(parser.Options{}).ParseExpr(r.Expr)
			if err != nil {
				t.Fatal(err)
			}
			job := ""
			parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
				if vs, ok := n.(*parser.VectorSelector); ok && vs.Name == "up" {
					for _, m := range vs.LabelMatchers {
						if m.Name == "job" && m.Type == labels.MatchEqual {
							job = m.Value
						}
					}
				}
				return nil
			})
			if job == "" {
				t.Fatalf("SluiceControllerDown selects no job: %s", r.Expr)
			}
			return job
		}
	}
	t.Fatal("no SluiceControllerDown")
	return ""
}

func decodeStrict(t *testing.T, file string, into any) {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "\t") {
		t.Errorf("%s: tabs", file)
	}
	if err := yaml.UnmarshalStrict(raw, into); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}
