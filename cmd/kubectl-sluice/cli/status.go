package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

// lastWords says how the last release ended, after "last release ".
var lastWords = map[v1beta1.ReleaseOutcome]string{
	v1beta1.OutcomeCompleted:  "completed",
	v1beta1.OutcomePromoted:   "promoted",
	v1beta1.OutcomeRolledBack: "rolled back by its analysis",
	v1beta1.OutcomeAborted:    "aborted",
	v1beta1.OutcomeCancelled:  "cancelled",
}

// barWidth is the width of a step's pod bar: the workload's replicas.
const barWidth = 20

// renderStatus is the live view of one release: what the release is,
// its steps with the current one marked and a bar of its new pods, the
// traffic, each analysis metric, why it waits and what can be done.
func renderStatus(sn snapshot, now time.Time) string {
	r := sn.rollout
	s := stateOf(r)
	var b strings.Builder
	field := func(name, format string, args ...any) {
		fmt.Fprintf(&b, "%-10s%s\n", name, fmt.Sprintf(format, args...))
	}

	field("Rollout", "%s (namespace %s)", r.Name, r.Namespace)
	wl := fmt.Sprintf("%s/%s", r.Spec.WorkloadRef.Kind, r.Spec.WorkloadRef.Name)
	if sn.replicas >= 0 {
		wl += fmt.Sprintf(", %d replicas", sn.replicas)
	}
	strategy := "canary"
	if s.blueGreen {
		strategy = "blue-green"
	}
	field("Workload", "%s (%s)", wl, strategy)
	phase := dash(string(r.Status.Phase))
	if s.progressing() {
		phase += fmt.Sprintf(": step %d/%d", s.stepIndex(), len(s.steps))
		if st := stateText(s); st != "" {
			phase += " " + st
		}
	} else if s.last != nil {
		phase += ", last release " + lastWords[s.last.Outcome]
	}
	field("Phase", "%s", phase)
	if c := s.common; c != nil && c.StableRevision != "" {
		if s.progressing() && c.PodTemplateHash != "" && c.PodTemplateHash != c.StableRevision {
			field("Revision", "%s (stable) -> %s (new)", c.StableRevision, c.PodTemplateHash)
		} else {
			field("Revision", "%s (stable)", c.StableRevision)
		}
	}
	if r.Status.Message != "" {
		field("Message", "%s", r.Status.Message)
	}

	b.WriteString("\nSteps\n")
	writeSteps(&b, sn, s)

	if route := currentRoute(s); route != "" {
		b.WriteString("\n")
		switch t := s.traffic; {
		case t == nil && s.reason == v1beta1.ProgressingReasonFinalising:
			// The stable Service may select the new pods by now.
			field("Traffic", "all through the stable Service")
		case t == nil:
			field("Traffic", "all to the stable version")
		case t.Step > 0 && t.Step != s.stepIndex():
			field("Traffic", "%s to the new version (step %d's route)", route, t.Step)
		default:
			field("Traffic", "%s to the new version", route)
		}
	}
	if sn.stepRun != nil || sn.backgroundRun != nil || r.Status.Analysis != nil {
		writeAnalysis(&b, sn)
	}

	why := waitingText(s, now)
	next := allowed(s)
	if why != "" || len(next) > 0 {
		b.WriteString("\n")
	}
	if why != "" {
		field("Waiting", "%s for %s: %s", s.hold.Reason, age(s.hold.Since.Time, now), why)
	}
	for i, a := range next {
		label := ""
		if i == 0 {
			label = "Next"
		}
		field(label, "%-*s  %s", nextWidth(s.name), command(a, s.name), explain(a, s))
	}
	return b.String()
}

func writeSteps(b *strings.Builder, sn snapshot, s state) {
	tw := tabwriter.NewWriter(b, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "   \tSTEP\tREPLICAS\tTRAFFIC\tPAUSE\tANALYSIS\tNEW PODS")
	cur := s.stepIndex()
	for i, st := range s.steps {
		n := int32(i + 1)
		mark, done, active := " ", false, false
		switch {
		case s.progressing() && n < cur:
			mark, done = "✔", true
		case s.progressing() && n == cur:
			mark, active = "▶", true
			if s.aborted() {
				mark = "✖"
			}
		}
		analysis := "-"
		if st.Analysis != nil {
			var names []string
			for _, t := range st.Analysis.Templates {
				names = append(names, t.TemplateName)
			}
			analysis = strings.Join(names, ",")
		}
		tgt := int32(-1) // the plan's batch; unknown without the workload's size
		if sn.replicas >= 0 {
			tgt = st.ReplicasFor(sn.replicas)
		}
		repl := replicasText(st)
		if tgt >= 0 && st.Replicas != nil && st.Replicas.StrVal != "" {
			repl += fmt.Sprintf(" (%d)", tgt)
		}
		if active && s.batch != nil && s.batch.Step == n {
			tgt = s.batch.Replicas // the batch in force, as the controller holds the workload to it
		}
		var pods string
		switch {
		case !s.progressing():
			// Between releases the plan is shown with its batch sizes.
			pods = count(tgt)
		case active && s.aborted():
			pods = fmt.Sprintf("%s%d/0 (aborted)", bar(0, 0, sn.replicas), s.newReady)
		case active:
			pods = fmt.Sprintf("%s%d/%s ready", bar(min(s.newReady, max(tgt, 0)), tgt, sn.replicas), s.newReady, count(tgt))
		case done:
			pods = fmt.Sprintf("%s%s/%s", bar(tgt, tgt, sn.replicas), count(tgt), count(tgt))
		default:
			pods = fmt.Sprintf("%s0/%s", bar(0, tgt, sn.replicas), count(tgt))
		}
		pause := pauseText(st)
		if int(n) == len(s.steps) && st.IsFullRelease() {
			pause = "-" // the last step at 100% does not pause
		}
		fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\t%s\t%s\t%s\n", mark, n, repl, dash(routeOf(st)), pause, analysis, pods)
	}
	_ = tw.Flush()
}

func count(n int32) string {
	if n < 0 {
		return "?"
	}
	return fmt.Sprint(n)
}

// bar draws the workload's replicas barWidth wide, followed by a space:
// '#' for the new pods that are ready, '-' for the rest of the step's
// batch, '.' beyond it. Nothing when the size is unknown.
func bar(ready, batch, replicas int32) string {
	if replicas <= 0 || batch < 0 {
		return ""
	}
	cells := func(n int32) int { return int((n*barWidth + replicas - 1) / replicas) }
	r, t := cells(min(ready, batch)), cells(batch)
	return "[" + strings.Repeat("#", r) + strings.Repeat("-", t-r) + strings.Repeat(".", barWidth-t) + "] "
}

// runView is one of the release's runs: as the Rollout mirrors it, and
// the AnalysisRun itself when it could be read.
type runView struct {
	label string
	rs    *analysisv1alpha1.RunStatus
	run   *analysisv1alpha1.AnalysisRun
}

func writeAnalysis(b *strings.Builder, sn snapshot) {
	a := sn.rollout.Status.Analysis
	var runs []runView
	if a != nil && a.StepRun != nil {
		label := fmt.Sprintf("step %d", stateOf(sn.rollout).stepIndex())
		if sn.stepRun != nil {
			label = fmt.Sprintf("step %d", sn.stepRun.Spec.StepIndex)
		}
		runs = append(runs, runView{label, a.StepRun, sn.stepRun})
	}
	if a != nil && a.BackgroundRun != nil {
		runs = append(runs, runView{"background", a.BackgroundRun, sn.backgroundRun})
	}
	if len(runs) == 0 {
		return
	}
	b.WriteString("\nAnalysis\n")
	defer func() {
		if n := len(a.Overrides); n > 0 {
			o := a.Overrides[n-1]
			line := fmt.Sprintf("  last override: %s at step %d", o.Action, o.Step)
			if o.Run != "" {
				line += fmt.Sprintf(", over %s (%s)", o.Run, dash(string(o.Verdict)))
			}
			b.WriteString(line + "\n")
		}
	}()
	for _, x := range runs {
		phase := string(x.rs.Phase)
		if x.run != nil && x.run.Status.Phase != "" {
			phase = string(x.run.Status.Phase)
		}
		if phase == "" {
			phase = "Pending"
		}
		line := fmt.Sprintf("  %s: %s %s", x.label, x.rs.Name, phase)
		if x.run != nil && x.run.Status.Summary != "" {
			line += " (" + x.run.Status.Summary + ")"
		}
		if x.rs.Overridden {
			line += ", approved past its verdict"
		}
		b.WriteString(line + "\n")
		if x.run == nil {
			if x.rs.Message != "" {
				fmt.Fprintf(b, "    %s\n", x.rs.Message)
			}
			continue
		}
		writeMetrics(b, x.run)
	}
}

func writeMetrics(b *strings.Builder, run *analysisv1alpha1.AnalysisRun) {
	conds := map[string]string{}
	for _, m := range run.Spec.Metrics {
		conds[m.Name] = conditionText(m)
	}
	tw := tabwriter.NewWriter(b, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "    METRIC\tVERDICT\tLAST VALUES\tCONDITION")
	results := map[string]bool{}
	for _, m := range run.Status.MetricResults {
		results[m.Name] = true
		verdict := string(m.Phase)
		if m.DryRun {
			verdict += " (dry run)"
		}
		fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\n", m.Name, verdict, dash(lastValues(m, 3)), conds[m.Name])
	}
	for _, m := range run.Spec.Metrics {
		if !results[m.Name] {
			fmt.Fprintf(tw, "    %s\t%s\t-\t%s\n", m.Name, analysisv1alpha1.AnalysisPending, conds[m.Name])
		}
	}
	_ = tw.Flush()
	for _, m := range run.Status.MetricResults {
		switch {
		case m.Phase.Completed() && m.Phase != analysisv1alpha1.AnalysisSuccessful && m.Message != "":
			fmt.Fprintf(b, "    %s: %s\n", m.Name, m.Message)
		case m.LastError != "" && !m.Phase.Completed():
			fmt.Fprintf(b, "    %s: last error: %s\n", m.Name, m.LastError)
		}
	}
}

// lastValues are the values of a metric's last n measurements, oldest first.
func lastValues(m analysisv1alpha1.MetricResult, n int) string {
	ms := m.Measurements
	if len(ms) > n {
		ms = ms[len(ms)-n:]
	}
	var vals []string
	for _, x := range ms {
		v := x.Value
		if v == "" {
			v = strings.ToLower(string(x.Phase))
		}
		vals = append(vals, v)
	}
	return strings.Join(vals, " ")
}

func conditionText(m analysisv1alpha1.Metric) string {
	var parts []string
	if m.SuccessCondition != "" {
		parts = append(parts, "pass if "+m.SuccessCondition)
	}
	if m.FailureCondition != "" {
		parts = append(parts, "fail if "+m.FailureCondition)
	}
	if bl := m.Baseline; bl != nil {
		dir := string(bl.Direction)
		if dir == "" {
			dir = string(analysisv1alpha1.ChangeIncrease)
		}
		change, conf := int32(10), int32(95)
		if bl.AllowedChangePercent != nil {
			change = *bl.AllowedChangePercent
		}
		if bl.ConfidencePercent != nil {
			conf = *bl.ConfidencePercent
		}
		parts = append(parts, fmt.Sprintf("vs stable: fail on a significant %s over %d%% (%d%% confidence)", strings.ToLower(dir), change, conf))
	}
	return dash(strings.Join(parts, "; "))
}

func command(a action, name string) string {
	c := "kubectl sluice " + string(a) + " " + name
	if a == actPromote {
		c += " --full"
	}
	return c
}

func nextWidth(name string) int { return len(command(actPromote, name)) }

// explain says what an action would do now.
func explain(a action, s state) string {
	switch a {
	case actApprove:
		if s.heldByAnalysis() {
			return "go on despite the analysis verdict (recorded as an override)"
		}
		if int(s.stepIndex()) >= len(s.steps) {
			return "go on: complete the release"
		}
		return fmt.Sprintf("go on to step %d", s.stepIndex()+1)
	case actResume:
		return "let the release go on"
	case actRetry:
		if s.aborted() {
			return "start the release again at step 1, with fresh analysis"
		}
		return "run the analysis of this step again"
	case actPause:
		return "hold the release where it is"
	case actPromote:
		return "skip the remaining steps and analyses and release the new version to all (recorded as an override)"
	case actAbort:
		return "roll back now: traffic to stable, the new pods scaled to zero"
	case actUndo:
		return "put the stable template back on the workload: the release is cancelled"
	}
	return ""
}

// progressLine is one line for a log: phase, step, state, new pods,
// traffic, analysis and message, for `status -w` when the output is not
// a terminal.
func progressLine(sn snapshot) string {
	r := sn.rollout
	s := stateOf(r)
	parts := []string{dash(string(r.Status.Phase))}
	if s.progressing() {
		parts = append(parts, fmt.Sprintf("step %d/%d", s.stepIndex(), len(s.steps)), dash(stateText(s)))
		rw := rowOf(sn, time.Time{})
		parts = append(parts, "new pods "+rw.canary+" ready")
		if route := currentRoute(s); route != "" {
			parts = append(parts, "traffic "+route)
		}
	}
	if v := verdict(r); v != "" {
		parts = append(parts, "analysis "+v)
	}
	line := strings.Join(parts, "  ")
	if r.Status.Message != "" {
		line += "  | " + r.Status.Message
	}
	return line
}
