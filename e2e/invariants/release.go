package invariants

import (
	"fmt"
	"maps"
	"slices"
	"time"

	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

// tracker follows one Rollout: its last view (kept after it is deleted,
// until its release ends), the snapshot of its objects at rest, and the
// release in progress.
type tracker struct {
	name    string
	ro      *rolloutView
	deleted bool
	snap    *snapshot
	rel     *release
}

func (t *tracker) subject() string { return "Rollout " + t.name }

func (t *tracker) workloadName() string {
	return t.ro.Spec.WorkloadRef.Kind + "/" + t.ro.Spec.WorkloadRef.Name
}

// release is one release as seen from outside: from the write that gave
// the workload a template other than the one it rested at, to the
// workload at rest again.
type release struct {
	start   uint64
	started time.Time
	// template and stable are the keys of the template being released and
	// of the one the workload rested at before.
	template, stable string
	// startWrite is the workload as the write that began the release left
	// it: the user's intended spec, apart from what a release may change.
	startWrite *workloadView
	// replaced: the release began by replacing another one mid-way, so the
	// status first shows the replaced release's step.
	replaced bool
	// ack: the status has shown this release (Progressing, and for a
	// replacement, back at step 1).
	ack      bool
	lastStep int32

	cancelled bool   // the template went back to the stable one
	finishing bool   // promoted, or the Rollout disabled or deleted
	aborted   bool   // an abort: by annotation or by an analysis verdict
	ended     bool   // rolled back after an abort: nothing left to do
	restart   bool   // retried after an abort: the status goes back to step 1
	suspended string // why ForwardOnly is suspended until the step index goes up
	unseen    string // a Gap it overlaps: judged in part from then on (Model.Gap)
	suspendAt int32
	maxNew    int // -1: not counted yet
	replicas  int32

	ann      map[string]string // the override annotations' last values
	runs     map[string]bool   // AnalysisRuns created during the release
	verdicts []*verdict
}

// verdict is an AnalysisRun's final phase and what its policy allows.
type verdict struct {
	run    string
	step   int32 // the run's step, 0 for background analysis
	phase  analysisv1alpha1.AnalysisPhase
	policy analysisv1alpha1.VerdictPolicy
	// atStep and completed are the release's step when the verdict came;
	// weight the canary weight then.
	atStep    int32
	completed bool
	weight    float64
	approved  bool // a person approved the step after the verdict
	active    bool
}

var overrideAnnotations = []string{analysisv1alpha1.AbortAnnotation, analysisv1alpha1.RetryAnnotation, analysisv1alpha1.PromoteAnnotation}

func (m *Model) sortedTrackers() []*tracker {
	out := make([]*tracker, 0, len(m.trackers))
	for _, name := range slices.Sorted(maps.Keys(m.trackers)) {
		out = append(out, m.trackers[name])
	}
	return out
}

// evaluate brings every tracker up to date with the world and checks.
func (m *Model) evaluate() {
	for _, ro := range m.world.rollouts() {
		t := m.trackers[ro.Name]
		if t == nil {
			t = &tracker{name: ro.Name}
			m.trackers[ro.Name] = t
		}
		t.ro, t.deleted = ro, false
	}
	for _, t := range m.sortedTrackers() {
		if m.world.rollout(t.name) == nil {
			t.deleted = true
		}
		m.evaluateRollout(t)
		if t.deleted && t.rel == nil {
			delete(m.trackers, t.name)
		}
	}
}

func (m *Model) evaluateRollout(t *tracker) {
	ro := t.ro
	kind, ok := workloadKind(ro.Spec.WorkloadRef.APIVersion, ro.Spec.WorkloadRef.Kind)
	if !ok {
		return
	}
	var tf trafficFacts
	if !t.deleted {
		tf = m.traffic(ro)
		m.checkTrafficReady(tf)
	}
	w := m.world.workload(kind, ro.Spec.WorkloadRef.Name)
	if w == nil {
		if t.rel != nil {
			m.note(fmt.Sprintf("%s is gone: its release is no longer followed", t.workloadName()))
		}
		t.rel, t.snap = nil, nil
		return
	}
	f := m.facts(ro, w)
	m.checkAvailability(w, f)
	m.lifecycle(t, w, f, tf)
	if t.rel != nil {
		m.checkRelease(t, f, tf)
	}
}

func (t *tracker) releasable() bool {
	return !t.deleted && !t.ro.Deleting && !t.ro.Spec.Disabled && len(t.ro.steps()) > 0
}

func (t *tracker) rolloutAtRest() bool {
	if t.deleted {
		return true
	}
	switch v1beta1.RolloutPhase(t.ro.Status.Phase) {
	case v1beta1.RolloutPhaseProgressing, v1beta1.RolloutPhaseTerminating, v1beta1.RolloutPhaseDisabling:
		return false
	}
	return true
}

// lifecycle opens, replaces, cancels and closes releases. The workload is
// at rest when its controller reports every pod updated and ready, no
// release mark is on it and the Rollout is not progressing; at rest the
// checker takes the snapshot the next release is compared with. A
// template other than the one at rest begins a release; the template put
// back cancels it; yet another template replaces it.
func (m *Model) lifecycle(t *tracker, w *workloadView, f workloadFacts, tf trafficFacts) {
	rest := f.rolled && t.rolloutAtRest()
	r := t.rel
	if r == nil {
		switch {
		case rest:
			m.snapshot(t, w, tf)
		case t.snap != nil && w.TemplateKey != t.snap.template && t.releasable():
			t.rel = m.openRelease(t, w, f, t.snap.template, false)
		}
		return
	}
	switch {
	case w.TemplateKey != r.template && w.TemplateKey != r.stable && t.releasable(),
		w.TemplateKey == r.template && r.cancelled && t.releasable():
		stable, replaced := r.stable, true
		if w.TemplateKey != r.template && r.completed(t) {
			// It completed, though its workload was never seen at rest
			// (its status still catching up): what it put in place is
			// the stable version now.
			stable, replaced = r.template, false
			m.note(fmt.Sprintf("release of %s completed, then template %s", t.workloadName(), shortKey(w.TemplateKey)))
		} else {
			m.note(fmt.Sprintf("release of %s replaced: template %s", t.workloadName(), shortKey(w.TemplateKey)))
		}
		t.rel = m.openRelease(t, w, f, stable, replaced)
	case w.TemplateKey == r.stable && !r.cancelled:
		// The user's revert is now the write the workload should be left as.
		r.cancelled, r.startWrite = true, w
		m.note(fmt.Sprintf("release of %s cancelled: the template is back at %s", t.workloadName(), shortKey(r.stable)))
	}
	if rest {
		m.closeRelease(t, w, tf)
		m.snapshot(t, w, tf)
	}
}

// completed tells a release the Rollout reports done, with every replica
// of the new version counted, from one replaced mid-way.
func (r *release) completed(t *tracker) bool {
	return r.ack && !r.cancelled && !r.aborted && t.rolloutAtRest() && r.maxNew >= int(r.replicas) && r.maxNew > 0
}

func (m *Model) openRelease(t *tracker, w *workloadView, f workloadFacts, stable string, replaced bool) *release {
	r := &release{
		start: m.last, started: m.now, template: w.TemplateKey, stable: stable, startWrite: w,
		replaced: replaced, replicas: w.Replicas, maxNew: f.baseline(),
		ann: map[string]string{}, runs: map[string]bool{},
	}

	for _, k := range overrideAnnotations {
		r.ann[k] = t.ro.Annotations[k]
	}
	m.opened++
	m.note(fmt.Sprintf("release of %s opened: template %s → %s", t.workloadName(), shortKey(stable), shortKey(w.TemplateKey)))
	// A release opening now has its start no lower than any to come: the
	// gaps ending before it concern no release any more.
	m.gaps = slices.DeleteFunc(m.gaps, func(g Gap) bool { return g.Listed < r.start })
	if len(m.gaps) > 0 {
		m.unsee(t, r, m.gaps[len(m.gaps)-1])
	}
	return r
}

// suspend stops ForwardOnly until the status step index goes above step.
func (m *Model) suspend(r *release, step int32, why string) {
	if r.suspended == "" {
		m.note("forward-only suspended: " + why)
	}
	r.suspended, r.suspendAt = why, step
}

// signals reads what the Rollout says about the release: acknowledgement,
// step moves, jumps, overrides, scaling.
func (m *Model) signals(t *tracker, f workloadFacts) {
	r, ro := t.rel, t.ro
	st := ro.Status
	if (t.deleted || ro.Deleting || ro.Spec.Disabled) && !r.finishing {
		r.finishing = true
		m.note("release finishing: the Rollout is deleted or disabled")
	}
	if t.deleted {
		return
	}
	for _, k := range overrideAnnotations {
		v := ro.Annotations[k]
		if v == r.ann[k] {
			continue
		}
		r.ann[k] = v
		if v == "" {
			continue
		}
		switch k {
		case analysisv1alpha1.AbortAnnotation:
			r.aborted = true
			m.deactivate(r, func(v *verdict) bool { return v.policy != analysisv1alpha1.PolicyRollback })
			m.note("release aborted by " + k)
		case analysisv1alpha1.RetryAnnotation:
			if r.aborted {
				// A retried release starts over at step 1: that step down
				// is the restart, not a jump back.
				r.aborted, r.ended, r.started, r.restart = false, false, m.now, true
				r.maxNew = f.baseline()
				m.note("release retried after an abort: forward again from " + fmt.Sprint(f.newPods) + " new pods")
			}
			m.deactivate(r, func(*verdict) bool { return true })
		case analysisv1alpha1.PromoteAnnotation:
			r.finishing = true
			m.deactivate(r, func(*verdict) bool { return true })
			m.note("release promoted by " + k)
		}
	}
	if !r.ack && st.Phase == string(v1beta1.RolloutPhaseProgressing) && (!r.replaced || st.Step == 1) {
		r.ack, r.lastStep = true, st.Step
		m.note(fmt.Sprintf("release acknowledged by the Rollout at step %d", st.Step))
	}
	if r.ack {
		switch {
		case st.Step < r.lastStep && r.restart && st.Step == 1:
			r.restart = false
		case st.Step < r.lastStep:
			m.suspend(r, st.Step, fmt.Sprintf("the step index went down from %d to %d", r.lastStep, st.Step))
			m.deactivate(r, func(v *verdict) bool { return v.policy != analysisv1alpha1.PolicyRollback })
		case st.Step > r.lastStep && r.suspended != "" && st.Step > r.suspendAt:
			r.suspended, r.maxNew = "", f.baseline()
			m.note(fmt.Sprintf("forward-only resumed at step %d from %d new pods", st.Step, f.newPods))
		}
		if st.Next > 0 && st.Next < st.Step {
			m.suspend(r, st.Next, fmt.Sprintf("nextStepIndex %d was set below step %d (a jump back)", st.Next, st.Step))
		}
		r.lastStep = st.Step
		if st.State == string(v1beta1.CanaryStepStateReady) {
			for _, v := range r.verdicts {
				if v.atStep == st.Step {
					v.approved = true
				}
			}
		}
	}
	if f.replicas != r.replicas {
		m.suspend(r, max(st.Step, 0), fmt.Sprintf("the workload was scaled from %d to %d replicas", r.replicas, f.replicas))
		r.replicas = f.replicas
	}
}

func (m *Model) deactivate(r *release, which func(*verdict) bool) {
	for _, v := range r.verdicts {
		if v.active && which(v) {
			v.active = false
		}
	}
}

// observeRun records the verdict of an AnalysisRun of the open release
// when it first reaches a final phase other than Successful. A run that
// was terminated, or that judged a step the release has left, decides
// nothing.
func (m *Model) observeRun(prev, cur any, e Event) {
	ar, _ := cur.(*analysisRunView)
	if ar == nil {
		return
	}
	t := m.trackers[ar.Rollout]
	if t == nil || t.rel == nil {
		return
	}
	r := t.rel
	if e.Type == Added && e.RV > r.start {
		r.runs[ar.Name] = true
	}
	if !r.runs[ar.Name] {
		return
	}
	if old, _ := prev.(*analysisRunView); old != nil && old.Phase.Completed() {
		return
	}
	if !ar.Phase.Completed() || ar.Phase == analysisv1alpha1.AnalysisSuccessful || ar.Terminate {
		return
	}
	st := t.ro.Status
	if ar.Step > 0 && r.ack && ar.Step != st.Step {
		m.note(fmt.Sprintf("AnalysisRun %s of step %d ended %s after the release left the step: no effect expected", ar.Name, ar.Step, ar.Phase))
		return
	}
	policy := policyFor(t.ro, ar.Step, ar.Phase)
	v := &verdict{
		run: ar.Name, step: ar.Step, phase: ar.Phase, policy: policy, atStep: st.Step,
		completed: r.ack && st.State == string(v1beta1.CanaryStepStateCompleted),
		weight:    m.traffic(t.ro).canaryWeight, active: true,
	}
	r.verdicts = append(r.verdicts, v)
	if policy == analysisv1alpha1.PolicyRollback {
		r.aborted = true
	}
	m.note(fmt.Sprintf("AnalysisRun %s (step %d) ended %s: policy %s", ar.Name, ar.Step, ar.Phase, policy))
}

// policyFor is what the Rollout says a verdict does, with the API's
// defaults (Failed → Rollback, Error and Inconclusive → Pause).
func policyFor(ro *rolloutView, step int32, phase analysisv1alpha1.AnalysisPhase) analysisv1alpha1.VerdictPolicy {
	a := &analysisv1alpha1.RolloutAnalysis{}
	if step == 0 {
		if ro.Spec.Strategy.Analysis != nil {
			a = ro.Spec.Strategy.Analysis
		}
	} else if steps := ro.steps(); int(step) <= len(steps) && steps[step-1].Analysis != nil {
		a = steps[step-1].Analysis
	}
	switch phase {
	case analysisv1alpha1.AnalysisFailed:
		return a.FailedPolicy()
	case analysisv1alpha1.AnalysisError:
		return a.ErrorPolicy()
	}
	return a.InconclusivePolicy()
}
