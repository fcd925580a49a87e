package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/traffic/preview"
)

// planView is everything plan shows; renderPlan and planWarnings are pure
// functions of it.
type planView struct {
	rollout *v1beta1.Rollout
	// replicas is the workload's size, -1 when unknown.
	replicas int32
	// stable and next are the revisions; next is "" when it is the next
	// template, not known yet.
	stable, next string
	// inProgress: the plan is of the release under way, at currentStep.
	inProgress  bool
	currentStep int32
	dryRun      *dryRunView
	// routing is nil when the Rollout routes no traffic (or the workload's
	// size is unknown); routingErr when the routing could not be read.
	routing     *preview.Plan
	routingErr  error
	scriptsNote string
	analyses    []analysisView
	// prometheus is the address of metrics that name none, and
	// prometheusFrom where it comes from ("" when there is none).
	prometheus, prometheusFrom string
}

// analysisView is one analysis: the steps it runs after (none for the
// background analysis) and its metrics.
type analysisView struct {
	steps     []int32
	templates []string
	// err: the run cannot be built (a template or an arg is missing).
	err     error
	metrics []metricView
	// policy says what each verdict does to the release.
	policy *analysisv1alpha1.RolloutAnalysis
}

// consequence says what a verdict does to the release, by the analysis'
// policy (Failed rolls back, Error and Inconclusive pause, by default).
func (a analysisView) consequence(phase analysisv1alpha1.AnalysisPhase) string {
	var p analysisv1alpha1.VerdictPolicy
	if a.policy != nil {
		switch phase {
		case analysisv1alpha1.AnalysisFailed:
			p = a.policy.OnFailed
		case analysisv1alpha1.AnalysisError:
			p = a.policy.OnError
		case analysisv1alpha1.AnalysisInconclusive:
			p = a.policy.OnInconclusive
		}
	}
	if p == "" {
		p = analysisv1alpha1.PolicyPause
		if phase == analysisv1alpha1.AnalysisFailed {
			p = analysisv1alpha1.PolicyRollback
		}
	}
	switch p {
	case analysisv1alpha1.PolicyRollback:
		return "the release would be rolled back"
	case analysisv1alpha1.PolicyContinue:
		return "the release would go on (" + string(p) + ")"
	}
	return "the release would pause"
}

func (a analysisView) label() string {
	if len(a.steps) == 0 {
		return "the whole release (background)"
	}
	return "after " + stepsText(a.steps)
}

// stepsText is "step 2", "steps 1, 2 and 3".
func stepsText(steps []int32) string {
	if len(steps) == 1 {
		return fmt.Sprintf("step %d", steps[0])
	}
	parts := make([]string, len(steps))
	for i, s := range steps {
		parts[i] = fmt.Sprint(s)
	}
	return "steps " + strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}

// renderPlan is plan's output.
func renderPlan(v planView) string {
	r := v.rollout
	var b strings.Builder
	field := func(name, format string, args ...any) {
		fmt.Fprintf(&b, "%-10s%s\n", name, fmt.Sprintf(format, args...))
	}
	strategy := "canary"
	if r.Spec.Strategy.IsBlueGreen() {
		strategy = "blue-green"
	}
	size := "size unknown"
	if v.replicas >= 0 {
		size = fmt.Sprintf("%d replicas", v.replicas)
	}
	field("Plan", "%s (namespace %s): %s/%s, %s, %s", r.Name, r.Namespace, r.Spec.WorkloadRef.Kind, r.Spec.WorkloadRef.Name, size, strategy)
	field("Release", "%s", releaseText(v))
	if d := v.dryRun; d != nil {
		field("Dry run", "%s", dryRunText(d))
	}
	if route := routingText(r); route != "" {
		field("Routing", "%s", route)
	}
	if len(v.analyses) > 0 {
		if v.prometheus != "" {
			field("Queries", "%s for metrics that name no address (%s)", v.prometheus, v.prometheusFrom)
		} else {
			field("Queries", "no Prometheus for metrics that name no address: give --prometheus-address (no manager Deployment with one was found in --sluice-namespace)")
		}
	}

	b.WriteString("\nSteps\n")
	writePlanSteps(&b, v)

	if v.routing != nil {
		b.WriteString("\nTraffic, step by step (Sluice's routing code on a copy of the objects: nothing in the cluster changes)\n")
		writeRouting(&b, v)
	}
	if len(v.analyses) > 0 {
		writePlanAnalysis(&b, v)
	}
	warnings := planWarnings(v)
	b.WriteString("\n")
	if len(warnings) == 0 {
		b.WriteString("No warnings: nothing found that would stop this release.\n")
		return b.String()
	}
	fmt.Fprintf(&b, "Warnings (%d)\n", len(warnings))
	for _, w := range warnings {
		fmt.Fprintf(&b, "  ⚠ %s\n", w)
	}
	return b.String()
}

func releaseText(v planView) string {
	stable := v.stable
	if stable == "" {
		stable = "unknown"
	}
	switch {
	case v.inProgress:
		steps := len(v.rollout.Spec.Strategy.Steps())
		return fmt.Sprintf("%s (stable) -> %s (new), in progress at step %d/%d: the plan of this release", stable, dash(v.next), v.currentStep, steps)
	case v.next != "":
		return fmt.Sprintf("%s (stable) -> %s (new)", stable, v.next)
	}
	return fmt.Sprintf("%s (stable) -> the next change of the pod template", stable)
}

func dryRunText(d *dryRunView) string {
	var parts []string
	switch {
	case d.workload && d.templateChanged && d.revision != "":
		parts = append(parts, fmt.Sprintf("%s changes the pod template: applying it starts a release of revision %s", d.source, d.revision))
	case d.workload && d.templateChanged:
		parts = append(parts, fmt.Sprintf("%s changes the pod template: applying it starts a release", d.source))
	case d.workload:
		parts = append(parts, fmt.Sprintf("%s leaves the pod template as it is: applying it starts no release", d.source))
	}
	if d.rollout {
		parts = append(parts, "the Rollout's new spec is planned")
	}
	if len(d.ignored) > 0 {
		parts = append(parts, "ignored: "+strings.Join(d.ignored, ", "))
	}
	return strings.Join(parts, "; ") + " (a server-side dry run: nothing was stored)"
}

// routingText names the routing objects of the Rollout.
func routingText(r *v1beta1.Rollout) string {
	s := &r.Spec.Strategy
	if !s.RoutesTraffic() {
		if name := s.TrafficRoutingName(); name != "" {
			return fmt.Sprintf("trafficRoutingRef %s (not acted on: no traffic is routed)", name)
		}
		return "none: every pod of either version gets the stable Service's traffic"
	}
	ref := s.Routings()[0]
	var parts []string
	if ing := ref.Ingress; ing != nil {
		class := ing.ClassType
		if class == "" {
			class = "nginx"
		}
		parts = append(parts, fmt.Sprintf("Ingress %s (%s)", ing.Name, class))
	}
	if gw := ref.Gateway; gw != nil && gw.HTTPRouteName != nil {
		parts = append(parts, "HTTPRoute "+*gw.HTTPRouteName)
	}
	for _, c := range ref.CustomNetworkRefs {
		parts = append(parts, fmt.Sprintf("%s %s", c.Kind, c.Name))
	}
	svc := "Service " + ref.Service
	if !s.CanaryServiceDisabled() {
		svc += ", canary Service " + ref.Service + "-canary"
	}
	parts = append(parts, svc)
	return strings.Join(parts, ", ") + fmt.Sprintf("; %ds grace period after each change", ref.GracePeriodSeconds)
}

func writePlanSteps(b *strings.Builder, v planView) {
	tw := tabwriter.NewWriter(b, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "   \tSTEP\tNEW PODS\tTRAFFIC\tPAUSE\tANALYSIS")
	steps := v.rollout.Spec.Strategy.Steps()
	for i, st := range steps {
		n := int32(i + 1)
		mark := " "
		if v.inProgress && n == v.currentStep {
			mark = "▶"
		} else if v.inProgress && n < v.currentStep {
			mark = "✔"
		}
		repl := replicasText(st)
		if v.replicas >= 0 {
			if got := st.ReplicasFor(v.replicas); st.Replicas == nil || st.Replicas.StrVal != "" {
				repl += fmt.Sprintf(" (%d)", got)
			} else if got < st.Replicas.IntVal {
				repl += fmt.Sprintf(" (%d: the workload has no more)", got)
			}
		}
		pause := pauseText(st)
		if int(n) == len(steps) && st.IsFullRelease() {
			pause = "-"
		}
		analysis := "-"
		if st.Analysis != nil {
			var names []string
			for _, t := range st.Analysis.Templates {
				names = append(names, t.TemplateName)
			}
			analysis = strings.Join(names, ",")
		}
		traffic := routeOf(st)
		if traffic == "" && v.rollout.Spec.Strategy.RoutesTraffic() {
			traffic = "none (all to stable)"
		}
		fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\t%s\t%s\n", mark, n, repl, dash(traffic), pause, analysis)
	}
	_ = tw.Flush()
}

// phaseLabel names a phase of the routing.
func phaseLabel(step int32, steps int) string {
	switch {
	case step == 0:
		return "before step 1"
	case int(step) > steps:
		return fmt.Sprintf("after step %d", steps)
	}
	return fmt.Sprintf("step %d", step)
}

var actionMark = map[preview.Action]string{preview.Created: "+", preview.Changed: "~", preview.Deleted: "-"}

func writeRouting(b *strings.Builder, v planView) {
	steps := len(v.rollout.Spec.Strategy.Steps())
	for _, ph := range v.routing.Phases {
		if len(ph.Changes) == 0 && ph.Err == nil {
			if ph.Step > 0 && int(ph.Step) <= steps {
				fmt.Fprintf(b, "  %s: no change\n", phaseLabel(ph.Step, steps))
			}
			continue
		}
		fmt.Fprintf(b, "  %s\n", phaseLabel(ph.Step, steps))
		for _, c := range ph.Changes {
			line := fmt.Sprintf("    %s %s %s", actionMark[c.Action], c.Kind, c.Name)
			switch {
			case c.CopyOf != "":
				line += fmt.Sprintf(" (created as a copy of %s %s, with)", c.Kind, c.CopyOf)
			default:
				line += " (" + string(c.Action) + ")"
			}
			b.WriteString(line + "\n")
			tw := tabwriter.NewWriter(b, 0, 8, 2, ' ', 0)
			for _, f := range c.Fields {
				fmt.Fprintf(tw, "        %s\t%s\n", fieldName(f.Path), fieldChange(f))
			}
			_ = tw.Flush()
		}
		if ph.Err != nil {
			fmt.Fprintf(b, "    ✖ stops here: %v\n", ph.Err)
		}
	}
}

// fieldName shortens the paths people read most: annotations, labels and
// the Service selector.
func fieldName(path string) string {
	for prefix, name := range map[string]string{
		`metadata.annotations[`: "annotation ", `metadata.labels[`: "label ", `spec.selector[`: "selector ",
	} {
		if rest, ok := strings.CutPrefix(path, prefix); ok && strings.HasSuffix(rest, "]") {
			return name + strings.Trim(strings.TrimSuffix(rest, "]"), `"`)
		}
	}
	return path
}

func fieldChange(f preview.Field) string {
	switch {
	case f.Before == nil:
		return "= " + *f.After
	case f.After == nil:
		return "removed (was " + *f.Before + ")"
	}
	return *f.Before + " -> " + *f.After
}

// verdictMark marks a measurement's phase.
func verdictMark(mv metricView) (mark, word string) {
	if !mv.measured {
		return "·", "not run"
	}
	switch mv.measurement.Phase {
	case analysisv1alpha1.AnalysisSuccessful:
		return "✔", "passes"
	case analysisv1alpha1.AnalysisFailed:
		return "✖", "FAILS"
	case analysisv1alpha1.AnalysisInconclusive:
		return "?", "inconclusive"
	}
	return "!", "error"
}

func writePlanAnalysis(b *strings.Builder, v planView) {
	fmt.Fprintf(b, "\nAnalysis, run once now for the stable revision %s, as its AnalysisRun would query it\n", dash(v.stable))
	for _, a := range v.analyses {
		fmt.Fprintf(b, "  %s: %s\n", a.label(), strings.Join(a.templates, ", "))
		if a.err != nil {
			fmt.Fprintf(b, "    ✖ cannot be built: %v\n", a.err)
			continue
		}
		for _, mv := range a.metrics {
			m := mv.metric
			mark, word := verdictMark(mv)
			value := mv.measurement.Value
			if !mv.measured || value == "" {
				value = "-"
			}
			dry := ""
			if m.DryRun {
				dry = " (dry run: never decides)"
			}
			fmt.Fprintf(b, "    %s %s  %s  %s%s  [%s]\n", mark, m.Name, value, conditionText(m), dry, word)
			if p := m.Provider.Prometheus; p != nil {
				writeQuery(b, "", p.Query)
				if m.Baseline != nil {
					writeQuery(b, "baseline: ", m.Baseline.Query)
				}
			}
			switch {
			case !mv.measured:
				b.WriteString("        not run: no Prometheus address (give --prometheus-address, the manager's, or set provider.prometheus.address)\n")
			case mv.measurement.Message != "" && mv.measurement.Phase != analysisv1alpha1.AnalysisSuccessful:
				fmt.Fprintf(b, "        %s\n", mv.measurement.Message)
			}
			if mv.measured {
				fmt.Fprintf(b, "        at %s\n", mv.address)
			}
		}
	}
}

// writeQuery prints a rendered query, indented, one line per line.
func writeQuery(b *strings.Builder, label, q string) {
	for i, line := range strings.Split(strings.TrimSpace(q), "\n") {
		if i == 0 {
			line = label + line
		}
		fmt.Fprintf(b, "        %s\n", strings.TrimRight(line, " "))
	}
}

// planWarnings are what would stop or surprise the release, in the order
// it would meet them.
func planWarnings(v planView) []string {
	var w []string
	if d := v.dryRun; d != nil {
		for _, r := range d.refused {
			w = append(w, "the API server refuses "+r)
		}
	}
	if v.replicas < 0 {
		w = append(w, fmt.Sprintf("workload %s %s could not be read: the steps' pod counts and the routing are not shown", v.rollout.Spec.WorkloadRef.Kind, v.rollout.Spec.WorkloadRef.Name))
	}
	if v.routingErr != nil {
		w = append(w, fmt.Sprintf("the routing could not be planned: %v", v.routingErr))
	}
	if v.scriptsNote != "" {
		w = append(w, v.scriptsNote)
	}
	if v.routing != nil {
		steps := len(v.rollout.Spec.Strategy.Steps())
		for _, ph := range v.routing.Phases {
			if ph.Err == nil {
				continue
			}
			msg := fmt.Sprintf("%s: the routing fails: %v", phaseLabel(ph.Step, steps), ph.Err)
			if preview.Unsupported(ph.Err) {
				msg += " (change the step: retrying will not help)"
			}
			w = append(w, msg)
		}
	}
	for _, a := range v.analyses {
		if a.err != nil {
			w = append(w, fmt.Sprintf("the analysis %s cannot start: %v", a.label(), a.err))
			continue
		}
		for _, mv := range a.metrics {
			w = append(w, metricWarnings(a, mv)...)
		}
	}
	return dedupe(w)
}

func metricWarnings(a analysisView, mv metricView) []string {
	m := mv.metric
	who := fmt.Sprintf("metric %s (%s)", m.Name, a.label())
	var w []string
	if !mv.measured {
		return append(w, who+": not run: no Prometheus address")
	}
	if mv.credentialsProxied {
		w = append(w, fmt.Sprintf("%s: its Prometheus credentials do not pass the API server's service proxy, which %s is reached through: port-forward to that Service and give --service-proxy=false with the local address", who, mv.address))
	}
	ms := mv.measurement
	noData := ms.Value == "[]"
	switch {
	case m.DryRun && ms.Phase != analysisv1alpha1.AnalysisSuccessful:
		w = append(w, fmt.Sprintf("%s (dry run, it never decides) is %s today: %s", who, strings.ToLower(string(ms.Phase)), ms.Message))
	case noData:
		w = append(w, fmt.Sprintf("%s: no data for the stable revision; by its noData policy it is %s: %s", who, ms.Phase, a.consequence(ms.Phase)))
	case ms.Phase == analysisv1alpha1.AnalysisFailed:
		w = append(w, fmt.Sprintf("%s would fail today: %s: %s", who, ms.Message, a.consequence(ms.Phase)))
	case ms.Phase == analysisv1alpha1.AnalysisError:
		w = append(w, fmt.Sprintf("%s could not be measured: %s", who, ms.Message))
	case ms.Phase == analysisv1alpha1.AnalysisInconclusive:
		w = append(w, fmt.Sprintf("%s is inconclusive today: %s: %s", who, ms.Message, a.consequence(ms.Phase)))
	}
	for _, s := range mv.selectors {
		switch {
		case s.err != nil:
			w = append(w, fmt.Sprintf("%s: the series of %s could not be counted: %v", who, s.selector, s.err))
		case s.series != 0:
		case s.nameSeries == 0:
			w = append(w, fmt.Sprintf("%s: %s selects nothing: Prometheus has no series of that name in the last hour", who, s.selector))
		case len(s.lonely) > 0:
			w = append(w, fmt.Sprintf("%s: %s selects nothing in the last hour: no series of it has %s", who, s.selector, strings.Join(s.lonely, " nor ")))
		default:
			w = append(w, fmt.Sprintf("%s: %s selects nothing in the last hour: each of its label matchers selects series, but not all together", who, s.selector))
		}
	}
	return w
}

func dedupe(xs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
