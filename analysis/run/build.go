package run

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/analysis/query"
	"github.com/sluicehq/sluice/api/analysis/v1alpha1"
)

// Labels set on every AnalysisRun Build makes, so a Rollout finds its runs
// (and prunes old ones) with a label selector.
const (
	LabelRollout  = "sluice.dev/rollout"
	LabelRevision = "sluice.dev/revision"
	// LabelStep is the 1-based step index, or "background".
	LabelStep = "sluice.dev/step"
)

// Target is what a run judges: a Rollout, its revisions and its step.
// The release engine fills it from the Rollout and the workload.
type Target struct {
	Namespace string
	Rollout   string
	// Owner is the Rollout, set as the run's controller owner so the run
	// is deleted with it.
	Owner *metav1.OwnerReference
	// Workload, Service and Ingress are the names the built-in args
	// {{ .workload }}, {{ .service }} and {{ .ingress }} stand for.
	Workload, Service, Ingress string
	// StableRevision and CanaryRevision are pod-template-hash (Deployment)
	// or controller-revision-hash (StatefulSet, ...) values.
	StableRevision, CanaryRevision string
	// StepIndex is the 1-based step; 0 means background analysis, which
	// lasts the whole release and ends with spec.terminate.
	StepIndex int32
	// Attempt counts retries of the same step and revision (0 = first),
	// so that a retry creates a fresh run.
	Attempt int32
}

// Name is the run's name: <rollout>-<canary revision>-<step>, with "bg"
// for background analysis and -r<attempt> for retries. One name per
// (rollout, revision, step, attempt) makes creation idempotent: a
// reconciler that crashed after creating it finds it again.
func Name(t Target) string {
	step := "bg"
	if t.StepIndex > 0 {
		step = strconv.Itoa(int(t.StepIndex))
	}
	suffix := "-" + t.CanaryRevision + "-" + step
	if t.Attempt > 0 {
		suffix += "-r" + strconv.Itoa(int(t.Attempt))
	}
	return shorten(t.Rollout, 253-len(suffix)) + suffix
}

// Labels are the run's labels.
func Labels(t Target) map[string]string {
	step := "background"
	if t.StepIndex > 0 {
		step = strconv.Itoa(int(t.StepIndex))
	}
	return map[string]string{
		LabelRollout:  shorten(t.Rollout, 63),
		LabelRevision: shorten(t.CanaryRevision, 63),
		LabelStep:     step,
	}
}

// Builtins are the built-in args of a target.
func Builtins(t Target) map[string]string {
	return map[string]string{
		query.Namespace:      t.Namespace,
		query.Rollout:        t.Rollout,
		query.Workload:       t.Workload,
		query.Service:        t.Service,
		query.Ingress:        t.Ingress,
		query.StableRevision: t.StableRevision,
		query.CanaryRevision: t.CanaryRevision,
		query.Step:           strconv.Itoa(int(t.StepIndex)),
	}
}

// Build makes the AnalysisRun for a target from the templates a Rollout's
// analysis references (in the order of a.Templates; see Templates) and
// the args it gives. Args resolve as: the Rollout's value, else the
// template's default, else an error. Queries and conditions are rendered
// with the args and the built-ins, so the run holds exactly what is sent
// and evaluated. A metric name used by two templates is an error.
func Build(t Target, templates []v1alpha1.AnalysisTemplateSpec, a *v1alpha1.RolloutAnalysis) (*v1alpha1.AnalysisRun, error) {
	given := map[string]string{}
	for _, arg := range a.Args {
		if arg.Value != nil {
			given[arg.Name] = *arg.Value
		}
	}
	builtins := Builtins(t)
	resolved := map[string]string{}
	seen := map[string]bool{}
	var metrics []v1alpha1.Metric
	for i, tmpl := range templates {
		name := fmt.Sprintf("template %d", i)
		if i < len(a.Templates) {
			name = fmt.Sprintf("template %q", a.Templates[i].TemplateName)
		}
		args := map[string]string{}
		for _, d := range tmpl.Args {
			v, ok := given[d.Name]
			if !ok && d.Value != nil {
				v, ok = *d.Value, true
			}
			if !ok {
				return nil, fmt.Errorf("%s: arg %q has no value: give it in the Rollout's analysis args or a default in the template", name, d.Name)
			}
			if prev, dup := resolved[d.Name]; dup && prev != v {
				return nil, fmt.Errorf("%s: arg %q resolves to %q here and %q in another template", name, d.Name, v, prev)
			}
			args[d.Name], resolved[d.Name] = v, v
		}
		for _, m := range tmpl.Metrics {
			if seen[m.Name] {
				return nil, fmt.Errorf("%s: metric %q is also defined by another template", name, m.Name)
			}
			seen[m.Name] = true
			r, err := render(m, builtins, args)
			if err != nil {
				return nil, fmt.Errorf("%s: metric %q: %w", name, m.Name, err)
			}
			metrics = append(metrics, r)
		}
	}
	for n := range given {
		if _, used := resolved[n]; !used {
			return nil, fmt.Errorf("arg %q is not declared by any referenced template", n)
		}
	}

	var all []v1alpha1.Argument
	for _, set := range []map[string]string{builtins, resolved} {
		for k, v := range set {
			all = append(all, v1alpha1.Argument{Name: k, Value: &v})
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })

	run := &v1alpha1.AnalysisRun{
		ObjectMeta: metav1.ObjectMeta{Namespace: t.Namespace, Name: Name(t), Labels: Labels(t)},
		Spec: v1alpha1.AnalysisRunSpec{
			Rollout: t.Rollout, Revision: t.CanaryRevision, StepIndex: t.StepIndex,
			Args: all, Metrics: metrics,
		},
	}
	if t.Owner != nil {
		run.OwnerReferences = []metav1.OwnerReference{*t.Owner}
	}
	return run, nil
}

// render fills a metric's templated fields: the queries and conditions.
func render(m v1alpha1.Metric, builtins, args map[string]string) (v1alpha1.Metric, error) {
	out := *m.DeepCopy()
	type field struct {
		name   string
		s      *string
		render func(string, map[string]string, map[string]string) (string, error)
	}
	fields := []field{{"successCondition", &out.SuccessCondition, query.RenderCondition}, {"failureCondition", &out.FailureCondition, query.RenderCondition}}
	if out.Provider.Prometheus != nil {
		fields = append(fields, field{"provider.prometheus.query", &out.Provider.Prometheus.Query, query.Render})
	}
	if out.Baseline != nil {
		fields = append(fields, field{"baseline.query", &out.Baseline.Query, query.Render})
	}
	for _, f := range fields {
		if *f.s == "" {
			continue
		}
		r, err := f.render(*f.s, builtins, args)
		if err != nil {
			return out, fmt.Errorf("%s: %w", f.name, err)
		}
		*f.s = r
	}
	return out, nil
}

// Templates fetches the specs a Rollout's analysis references, in order:
// AnalysisTemplates from namespace, ClusterAnalysisTemplates with
// clusterScope. A missing template is an error that names it.
func Templates(ctx context.Context, c client.Reader, namespace string, refs []v1alpha1.AnalysisTemplateRef) ([]v1alpha1.AnalysisTemplateSpec, error) {
	out := make([]v1alpha1.AnalysisTemplateSpec, 0, len(refs))
	for _, ref := range refs {
		if ref.ClusterScope {
			t := &v1alpha1.ClusterAnalysisTemplate{}
			if err := c.Get(ctx, client.ObjectKey{Name: ref.TemplateName}, t); err != nil {
				return nil, fmt.Errorf("ClusterAnalysisTemplate %q: %w", ref.TemplateName, err)
			}
			out = append(out, t.Spec)
			continue
		}
		t := &v1alpha1.AnalysisTemplate{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: ref.TemplateName}, t); err != nil {
			return nil, fmt.Errorf("AnalysisTemplate %s/%s: %w", namespace, ref.TemplateName, err)
		}
		out = append(out, t.Spec)
	}
	return out, nil
}

// shorten keeps s within n characters, replacing the end with a hash so
// that distinct long names stay distinct.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	h := hex.EncodeToString(sum[:])[:8]
	return s[:n-9] + "-" + h
}
