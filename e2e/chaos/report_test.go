//go:build e2e

package chaos_test

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/e2e/invariants"
)

// releaseRecord is one release a lane followed (with the versions that
// replaced it mid-release).
type releaseRecord struct {
	lane, kind                    string
	versions                      []int
	started, ended                time.Time
	outcome                       string
	reapplies, approvals, retries int
	// holds counts what the release waited for that needed a person.
	holds map[string]int
	err   error
}

// stats collects what the run did and what went wrong.
type stats struct {
	mu          sync.Mutex
	releases    []releaseRecord
	disruptions []disruption
	violations  []ownViolation
	writes      int
	failed      map[string]int // failed writes by who and why
	// refused counts the webhook connections no replica took, by mode.
	refused map[string]int
	// mode names the managers' mode now.
	mode func() string
}

// ownViolation is a failed assertion of the suite itself (beside the
// invariant checker's).
type ownViolation struct{ what, message string }

func newStats() *stats {
	return &stats{failed: map[string]int{}, refused: map[string]int{}, mode: func() string { return "" }}
}

// refusedConn counts a webhook connection that found no replica alive.
func (s *stats) refusedConn() {
	m := s.mode()
	s.mu.Lock()
	s.refused[m]++
	s.mu.Unlock()
}

func (s *stats) release(r releaseRecord) {
	s.mu.Lock()
	s.releases = append(s.releases, r)
	s.mu.Unlock()
}

func (s *stats) disrupted(d disruption) {
	s.mu.Lock()
	s.disruptions = append(s.disruptions, d)
	s.mu.Unlock()
}

func (s *stats) count(what string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, d := range s.disruptions {
		if d.what == what {
			n++
		}
	}
	return n
}

func (s *stats) violation(what, message string) {
	s.mu.Lock()
	s.violations = append(s.violations, ownViolation{what, message})
	s.mu.Unlock()
}

func (s *stats) wrote() {
	s.mu.Lock()
	s.writes++
	s.mu.Unlock()
}

// writeFailed counts a write that failed, by its cause: a conflict (the
// object moved on: expected), a webhook the API server could not call, or
// anything else.
func (s *stats) writeFailed(who string, err error) {
	why := "other"
	switch msg := err.Error(); {
	case strings.Contains(msg, "the object has been modified"), strings.Contains(msg, "Operation cannot be fulfilled"):
		why = "conflict"
	case strings.Contains(msg, "failed calling webhook"), strings.Contains(msg, "conversion webhook"):
		why = "webhook unreachable, " + s.mode() + " mode"
	case strings.Contains(msg, "connection refused"), strings.Contains(msg, "EOF"), strings.Contains(msg, "connection reset"),
		strings.Contains(msg, "ServiceUnavailable"), strings.Contains(msg, "the server is currently unable"):
		why = "API server unreachable"
	}
	s.mu.Lock()
	s.failed[who+": "+why]++
	s.mu.Unlock()
}

// laneResult is what the end of a lane leaves for the report.
type laneResult struct {
	spec          laneSpec
	ns            string
	opened, ended int
	// inPart: releases judged in part (a watch listed again mid-release),
	// unjudged the violations found in them.
	inPart, unjudged int
	violations       []invariants.Violation
	err              error
}

// costs are the measured costs of the disruptions of one kind.
type costs struct {
	what     string
	n        int
	measured []time.Duration
	takeover []time.Duration
	back     []time.Duration
}

// killCost is the time from a disruption to the controller's next status
// write of a release in progress then (not before another replica took
// over, or 250ms, for a request the dead process sent just before dying),
// unless the manager was disrupted again before it.
func killCost(o *observer, ds []disruption, i int) (time.Duration, bool) {
	d := ds[i]
	from := d.at.Add(250 * time.Millisecond)
	if d.takeover.After(from) {
		from = d.takeover
	}
	var until time.Time
	if i+1 < len(ds) {
		until = ds[i+1].at
	}
	at, ok := o.firstWriteAfter(from, until, d.affected)
	if !ok {
		return 0, false
	}
	return at.Sub(d.at), true
}

func (s *stats) costs(o *observer) []costs {
	s.mu.Lock()
	ds := slices.Clone(s.disruptions)
	s.mu.Unlock()
	sort.Slice(ds, func(i, j int) bool { return ds[i].at.Before(ds[j].at) })
	by := map[string]*costs{}
	var order []string
	for i, d := range ds {
		c := by[d.what]
		if c == nil {
			c = &costs{what: d.what}
			by[d.what] = c
			order = append(order, d.what)
		}
		c.n++
		if cost, ok := killCost(o, ds, i); ok {
			c.measured = append(c.measured, cost)
		}
		if !d.takeover.IsZero() {
			c.takeover = append(c.takeover, d.takeover.Sub(d.at))
		}
		if !d.back.IsZero() {
			c.back = append(c.back, d.back.Sub(d.at))
		}
	}
	var out []costs
	for _, w := range []string{soloKill, leaderKill, leaderStop, defaultKill, apiServerReset} {
		if c := by[w]; c != nil {
			out = append(out, *c)
		}
	}
	return out
}

// summary is "median m, p90 p, max x (n measured)" of ds.
func summary(ds []time.Duration) string {
	if len(ds) == 0 {
		return "–"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	q := func(p float64) time.Duration { return s[min(len(s)-1, int(p*float64(len(s))))] }
	return fmt.Sprintf("median %s, p90 %s, max %s", round(q(0.5)), round(q(0.9)), round(s[len(s)-1]))
}

func round(d time.Duration) time.Duration { return d.Round(100 * time.Millisecond) }

// report is the run's report, as make chaos prints it and
// docs/reliability.md records it.
type report struct {
	sz        size
	took      time.Duration
	seed      uint64
	lanes     []laneResult
	st        *stats
	obs       *observer
	f         *fleet
	prom      *promFaults
	violation int // the checker's, all lanes
}

func (r *report) String() string {
	var b strings.Builder
	st := r.st
	st.mu.Lock()
	releases := slices.Clone(st.releases)
	own := slices.Clone(st.violations)
	writes, failed, refused := st.writes, maps.Clone(st.failed), maps.Clone(st.refused)
	st.mu.Unlock()

	fmt.Fprintf(&b, "Chaos run (%s), %s, seed %d\n\n", r.sz.name, r.took.Round(time.Second), r.seed)

	// Releases by lane.
	begun, replaced, reapplies, approvals, retries := 0, 0, 0, 0, 0
	var slowest *releaseRecord
	fmt.Fprintf(&b, "Releases, by workload (each in its own namespace, all at once):\n\n")
	fmt.Fprintf(&b, "| workload | releases | replaced mid-release | re-applied mid-release | approvals | analysis retries | median | slowest |\n|---|---|---|---|---|---|---|---|\n")
	for _, l := range r.lanes {
		var n, rep, re, ap, rt int
		var took []time.Duration
		for i := range releases {
			rec := &releases[i]
			if rec.lane != l.spec.name {
				continue
			}
			n += len(rec.versions)
			rep += len(rec.versions) - 1
			re += rec.reapplies
			ap += rec.approvals
			rt += rec.retries
			if !rec.ended.IsZero() {
				d := rec.ended.Sub(rec.started)
				took = append(took, d)
				if slowest == nil || d > slowest.ended.Sub(slowest.started) {
					slowest = rec
				}
			}
		}
		begun, replaced, reapplies, approvals, retries = begun+n, replaced+rep, reapplies+re, approvals+ap, retries+rt
		maxTook := time.Duration(0)
		for _, d := range took {
			maxTook = max(maxTook, d)
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %s | %s |\n", l.spec.kindName(), n, rep, re, ap, rt, medianOf(took), round(maxTook))
	}
	failedReleases := 0
	for _, rec := range releases {
		if rec.err != nil {
			failedReleases++
		}
	}
	fmt.Fprintf(&b, "\n%d releases begun (%d of them replaced mid-release by a newer version), %d unchanged re-applies, %d approvals, %d analysis retries; %d did not end within %s.\n",
		begun, replaced, reapplies, approvals, retries, failedReleases, r.sz.releaseBound)
	if slowest != nil {
		fmt.Fprintf(&b, "Slowest release: %s, version %v, %s.\n", slowest.lane, slowest.versions, round(slowest.ended.Sub(slowest.started)))
	}
	opened, ended := 0, 0
	for _, l := range r.lanes {
		opened, ended = opened+l.opened, ended+l.ended
	}
	fmt.Fprintf(&b, "The invariant checker followed %d releases (%d ended at rest).\n\n", opened, ended)

	// Disruptions.
	fmt.Fprintf(&b, "Disruptions, and what each cost (from the disruption to the controller's next status write of a release in progress then):\n\n")
	fmt.Fprintf(&b, "| disruption | count | cost | another replica took over after | API server back after |\n|---|---|---|---|---|\n")
	kills, failovers := 0, 0
	for _, c := range r.st.costs(r.obs) {
		fmt.Fprintf(&b, "| %s | %d | %s (%d measured) | %s | %s |\n", c.what, c.n, summary(c.measured), len(c.measured), summary(c.takeover), summary(c.back))
		switch c.what {
		case soloKill:
			kills += c.n
		case leaderKill, defaultKill:
			kills += c.n
			failovers += c.n
		case leaderStop:
			failovers += c.n
		}
	}
	fmt.Fprintf(&b, "\n%d SIGKILLs of the manager, %d failovers.\n", kills, failovers)
	r.f.mu.Lock()
	fmt.Fprintf(&b, "Manager processes started: %d (start to ready: %s); failed starts (the API server away): %d; exits nobody asked for: %d",
		r.f.starts, summary(r.f.readyTimes), r.f.startFailures, len(r.f.exits))
	whys := map[string]int{}
	for _, e := range r.f.exits {
		whys[exitReason(e.why)]++
	}
	for _, k := range slices.Sorted(maps.Keys(whys)) {
		fmt.Fprintf(&b, "; %d %s", whys[k], k)
	}
	r.f.mu.Unlock()
	fmt.Fprintf(&b, ".\nWebhook proxy: connections that found no replica alive:")
	if len(refused) == 0 {
		b.WriteString(" none")
	}
	for _, k := range slices.Sorted(maps.Keys(refused)) {
		fmt.Fprintf(&b, " %d in %s mode;", refused[k], k)
	}
	b.WriteString("\n\n")

	// The other client.
	fmt.Fprintf(&b, "The other client: %d writes (labels, annotations, unchanged replicas, no-op status patches); failed writes (its and the lanes' approvals):", writes)
	if len(failed) == 0 {
		b.WriteString(" none")
	}
	for _, k := range slices.Sorted(maps.Keys(failed)) {
		fmt.Fprintf(&b, " %s %d;", k, failed[k])
	}
	b.WriteString("\n\n")

	// Prometheus faults.
	windows, answered := r.prom.snapshot()
	perFault := map[fault]map[v1alpha1.AnalysisPhase]int{}
	for _, m := range r.obs.faultMeasurements() {
		if perFault[m.fault] == nil {
			perFault[m.fault] = map[v1alpha1.AnalysisPhase]int{}
		}
		perFault[m.fault][m.phase]++
	}
	nWindows := map[fault]int{}
	for _, w := range windows {
		nWindows[w.fault]++
	}
	fmt.Fprintf(&b, "Prometheus faults (the analyses query it through a fault proxy):\n\n| fault | windows | queries it answered | measurements it produced |\n|---|---|---|---|\n")
	for _, f := range allFaults {
		produced := "(no value to judge: Error)"
		if pf := perFault[f]; pf != nil {
			var parts []string
			for _, p := range slices.Sorted(maps.Keys(pf)) {
				parts = append(parts, fmt.Sprintf("%d %s", pf[p], p))
			}
			produced = strings.Join(parts, ", ")
		} else if f == faultNaN || f == faultInf || f == faultNegInf || f == faultEmpty || f == faultMatrix {
			produced = "none seen"
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %s |\n", f, nWindows[f], answered[f], produced)
	}
	meas, verdicts := r.obs.counts()
	fmt.Fprintf(&b, "\nAll measurements: %s. Analysis runs: %s.\n\n", phaseCounts(meas), phaseCounts(verdicts))

	// Violations.
	byInv := map[invariants.Invariant]int{}
	for _, l := range r.lanes {
		for _, v := range l.violations {
			byInv[v.Invariant]++
		}
	}
	fmt.Fprintf(&b, "Invariant violations: %d", r.violation)
	for _, k := range slices.Sorted(maps.Keys(byInv)) {
		fmt.Fprintf(&b, ", %s %d", k, byInv[k])
	}
	inPart, unjudged := 0, 0
	for _, l := range r.lanes {
		inPart += l.inPart
		unjudged += l.unjudged
	}
	fmt.Fprintf(&b, ".\nReleases judged in part (a watch of the checker listed again mid-release, so part of their history was never seen): %d, with %d candidate violations not judged", inPart, unjudged)
	fmt.Fprintf(&b, ".\nThe suite's own assertions (no rollback or promotion on a fault's answer, no lost write, every release completed): %d violations.\n", len(own))
	for _, g := range groupViolations(own) {
		fmt.Fprintf(&b, "  - %s, %d times, e.g. %s\n", g.what, len(g.messages), g.messages[0])
		for _, m := range g.messages[1:min(3, len(g.messages))] {
			fmt.Fprintf(&b, "    and %s\n", m)
		}
	}
	for _, l := range r.lanes {
		if l.err != nil {
			fmt.Fprintf(&b, "Lane %s failed: %v\n", l.spec.name, l.err)
		}
	}
	// The first violation of each invariant, with the checker's timeline.
	shown := map[invariants.Invariant]bool{}
	for _, l := range r.lanes {
		for _, v := range l.violations {
			if !shown[v.Invariant] {
				shown[v.Invariant] = true
				fmt.Fprintf(&b, "\nIn namespace %s (%s): %s\n", l.ns, l.spec.name, v.Report())
				b.WriteString(deletionsBefore(l.ns, v))
			}
		}
	}
	return b.String()
}

func medianOf(ds []time.Duration) string {
	if len(ds) == 0 {
		return "–"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return round(s[len(s)/2]).String()
}

func phaseCounts(m map[v1alpha1.AnalysisPhase]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, p := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%d %s", m[p], p))
	}
	return strings.Join(parts, ", ")
}

// exitReason names why a manager exited by itself, from its log's end.
func exitReason(why string) string {
	switch {
	case strings.Contains(why, "leader election lost"):
		return "lost the leader election"
	case strings.Contains(why, "connection refused"), strings.Contains(why, "apiserver"):
		return "could not reach the API server"
	}
	return "other (" + firstLine(why) + ")"
}

// violationGroup is the suite's own violations of one kind.
type violationGroup struct {
	what     string
	messages []string
}

// groupViolations groups by kind, in the order of the first of each.
func groupViolations(vs []ownViolation) []violationGroup {
	var out []violationGroup
	at := map[string]int{}
	for _, v := range vs {
		i, ok := at[v.what]
		if !ok {
			i = len(out)
			at[v.what] = i
			out = append(out, violationGroup{what: v.what})
		}
		out[i].messages = append(out[i].messages, v.message)
	}
	return out
}

// deletionsBefore lists, from the API server's audit log, who deleted pods
// and workloads in namespace in the seconds before a violation (the
// checker cannot tell who took a pod away; the audit log can).
func deletionsBefore(namespace string, v invariants.Violation) string {
	ds, err := env.ControlPlane.Deletions(namespace, v.Time.Add(-5*time.Second), v.Time.Add(time.Second))
	if err != nil {
		return fmt.Sprintf("(the audit log: %v)\n", err)
	}
	if len(ds) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("deletions in the 5s before it (the API server's audit log):\n")
	for _, d := range ds {
		fmt.Fprintf(&b, "  %s %s %s → %d by %s\n", d.Time.Local().Format("15:04:05.000"), d.Resource, d.Name, d.Code, d.UserAgent)
	}
	return b.String()
}
