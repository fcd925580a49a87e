package invariants

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Invariant names one safety property (see the package documentation for
// the precise definitions).
type Invariant string

// The invariants. Numbers refer to the list in the package documentation.
const (
	// StepAllowance (1): new-version pods never above what the release's
	// next step allows plus the workload's surge.
	StepAllowance Invariant = "step-allowance"
	// ForwardOnly (2): during a forward release the new version's pod
	// count never goes down.
	ForwardOnly Invariant = "forward-only"
	// Availability (3): ready pods never below replicas − maxUnavailable.
	Availability Invariant = "availability"
	// StatusLag (4): the status never claims an earlier step than the pods
	// reached for longer than the lag bound.
	StatusLag Invariant = "status-lag"
	// TrafficReady (5): no traffic to a canary Service without a ready
	// endpoint; the stable Service selects ready pods while it serves.
	TrafficReady Invariant = "traffic-ready"
	// TrafficWithinStep (6a): the canary weight never above the step's.
	TrafficWithinStep Invariant = "traffic-within-step"
	// AnalysisVerdict (6b): a verdict causes only what its policy allows.
	AnalysisVerdict Invariant = "analysis-verdict"
	// ReleaseEnds (7a): every release ends within the release bound.
	ReleaseEnds Invariant = "release-ends"
	// Restoration (7b): a finished release leaves the workload, Services,
	// Ingresses and HTTPRoutes as they were, apart from the new template.
	Restoration Invariant = "restoration"
)

// Invariants lists every invariant.
func Invariants() []Invariant {
	return []Invariant{StepAllowance, ForwardOnly, Availability, StatusLag, TrafficReady, TrafficWithinStep, AnalysisVerdict, ReleaseEnds, Restoration}
}

// Violation is one violation of an invariant: the first evaluation at
// which it held (or, for a timed one, at which it had held too long).
type Violation struct {
	Invariant Invariant
	// Subject is the object it is about, e.g. "Rollout rollouts-demo".
	Subject string
	// Message says what happened, with the arithmetic.
	Message string
	// RV and Time are those of the event that completed the violation.
	RV   uint64
	Time time.Time
	// Timeline holds the events that led to it, oldest first.
	Timeline []Entry
	// Note qualifies the report, e.g. why it could not be confirmed.
	Note string

	key episodeKey
	// release is the release it judged, if it judged one.
	release *release
}

// Unseen says why the violation's release was judged without its whole
// history (a Gap), or "" when nothing of it was missed.
func (v Violation) Unseen() string {
	if v.release == nil {
		return ""
	}
	return v.release.unseen
}

func (v Violation) String() string {
	return fmt.Sprintf("invariant %s violated at rv=%d (%s) by %s: %s", v.Invariant, v.RV, v.Time.Format("15:04:05.000"), v.Subject, v.Message)
}

// Report is the violation with its timeline, as a test failure shows it.
func (v Violation) Report() string {
	var b strings.Builder
	b.WriteString(v.String())
	if v.Note != "" {
		fmt.Fprintf(&b, "\n(%s)", v.Note)
	}
	fmt.Fprintf(&b, "\ntimeline (the last %d events, oldest first):", len(v.Timeline))
	for _, e := range v.Timeline {
		b.WriteString("\n  " + e.String())
	}
	return b.String()
}

// Bounds are the model's time limits.
type Bounds struct {
	// Lag is how long the world may run ahead of the Rollout's status
	// (one reconcile, with margin): pods or weight above the status step's
	// allowance for longer is a StatusLag or TrafficWithinStep violation.
	Lag time.Duration
	// Release is how long a release may stay open (ReleaseEnds).
	Release time.Duration
	// Timeline is how many entries a violation's timeline shows.
	Timeline int
}

// Gap is a stretch of one kind's history the checker never saw: the kind's
// watch broke and could not resume where it stopped (the API server
// restarted, or a CRD's storage was rebuilt after the CRD changed), so the
// informer listed again and the changes in between are lost.
type Gap struct {
	Kind Kind
	// After is the last revision delivered for the kind before the gap;
	// Listed is the revision of the new list.
	After, Listed uint64
	Time          time.Time
}

func (g Gap) String() string {
	return fmt.Sprintf("the watch of %s listed again at rv %d: its changes after rv %d were never seen", g.Kind, g.Listed, g.After)
}

// EventType is what happened to an object.
type EventType string

// The event types.
const (
	Added    EventType = "ADDED"
	Modified EventType = "MODIFIED"
	Deleted  EventType = "DELETED"
)

// Event is one change of one watched object.
type Event struct {
	Kind   Kind
	Type   EventType
	Object *unstructured.Unstructured
	// RV is the object's resourceVersion (for a deletion, the revision of
	// the deletion).
	RV uint64
	// Time is when the checker received it.
	Time time.Time
	// Late marks an event applied after events of higher revisions.
	Late bool
}

type episodeKey struct {
	inv     Invariant
	subject string
}

// episode is a condition that holds: since when, and whether it was
// reported. It closes when the condition stops holding, so a later
// occurrence is a new violation.
type episode struct {
	since    time.Time
	reported bool
}

// Model is the pure part of the checker: it applies events in revision
// order and evaluates every invariant after each, and on Tick the timed
// ones. It does no I/O; the same events always give the same violations.
type Model struct {
	bounds   Bounds
	world    *world
	trackers map[string]*tracker
	armed    map[string]*availability
	served   map[string]bool
	episodes map[episodeKey]*episode
	timeline *timeline
	// catchUp: events up to this revision only build the initial state.
	catchUp uint64
	last    uint64
	now     time.Time
	out     []Violation
	// opened and ended count the releases followed; unseen the ones
	// judged in part, across a Gap.
	opened, ended, unseen int
	// gaps are the Gaps a release opening now could overlap.
	gaps []Gap
	// current is the release checkRelease is judging.
	current *release
	// writers are the field managers of ConcurrentWriter.
	writers []string
}

// NewModel returns an empty model.
func NewModel(b Bounds) *Model {
	if b.Timeline <= 0 {
		b.Timeline = 60
	}
	return &Model{
		bounds: b, world: newWorld(), trackers: map[string]*tracker{}, armed: map[string]*availability{},
		served: map[string]bool{}, episodes: map[episodeKey]*episode{}, timeline: newTimeline(max(4*b.Timeline, 256)),
	}
}

// CatchUp makes the events up to revision rv (the initial lists) build
// the state without being evaluated: a namespace observed mid-way has no
// history to judge.
func (m *Model) CatchUp(rv uint64) { m.catchUp = rv }

// Apply applies one event and returns the violations it completes.
func (m *Model) Apply(e Event) ([]Violation, error) {
	m.advance(e.Time)
	if e.RV > m.last {
		m.last = e.RV
	}
	name := e.Object.GetName()
	var prev any = m.world.objs[e.Kind][name]
	var v any
	if e.Type == Deleted {
		m.world.remove(e.Kind, name)
	} else {
		var err error
		if v, err = decode(e.Kind, e.Object); err != nil {
			return nil, fmt.Errorf("%s %s: %w", e.Kind, name, err)
		}
		m.markWritten(v, e.Object)
		m.world.set(e.Kind, name, v)
	}
	what := "gone"
	if v != nil {
		what = summary(v)
	}
	m.timeline.add(Entry{Time: e.Time, RV: e.RV, Type: string(e.Type), Kind: e.Kind.String(), Name: name, What: what, Late: e.Late})
	if e.RV <= m.catchUp {
		return nil, nil
	}
	if e.Kind == AnalysisRun {
		m.observeRun(prev, v, e)
	}
	m.evaluate()
	return m.take(), nil
}

// Gap records a stretch of history the checker never saw. A release open
// across it, or opening before its end, is judged in part from then on:
// what the model knows of its steps may be wrong (a step the status went
// through unseen), so the invariants that follow a release's history (1,
// 2, 4, 6a, 6b) are no longer evaluated for it; those about the present
// (3, 5) and its time bound (7a) still are.
func (m *Model) Gap(g Gap) {
	m.note(g.String())
	m.gaps = append(m.gaps, g)
	for _, t := range m.sortedTrackers() {
		if t.rel != nil {
			m.unsee(t, t.rel, g)
		}
	}
}

func (m *Model) unsee(t *tracker, r *release, g Gap) {
	if r.unseen != "" {
		return
	}
	r.unseen = g.String()
	m.unseen++
	for k := range m.episodes {
		if k.inv != ReleaseEnds && strings.HasPrefix(k.subject, t.subject()) {
			delete(m.episodes, k)
		}
	}
	m.note(fmt.Sprintf("the release of %s is judged in part from here: %s", t.workloadName(), g))
}

// Tick evaluates the timed invariants at now (the time up to which every
// event has been applied).
func (m *Model) Tick(now time.Time) []Violation {
	m.advance(now)
	if m.last > m.catchUp {
		m.evaluate()
	}
	return m.take()
}

// Retract reopens a violation's episode (after the shell could not
// confirm it), so the condition is reported again if it still holds.
func (m *Model) Retract(v Violation) {
	if ep := m.episodes[v.key]; ep != nil {
		ep.reported = false
	}
	m.note(fmt.Sprintf("discarded an unconfirmed %s candidate: %s", v.Invariant, v.Note))
}

// Open describes the releases still open, for the end of a test.
func (m *Model) Open() []string {
	var out []string
	for _, t := range m.sortedTrackers() {
		if r := t.rel; r != nil {
			st := t.ro.Status
			out = append(out, fmt.Sprintf("release of %s (Rollout %s) open since %s (rv %d): phase %s, step %d %s",
				t.workloadName(), t.name, r.started.Format("15:04:05.000"), r.start, st.Phase, st.Step, st.State))
		}
	}
	return out
}

// Releases counts the releases the model followed: opened (including
// replacements) and ended at rest.
func (m *Model) Releases() (opened, ended int) { return m.opened, m.ended }

// Unseen counts the releases judged in part, across a Gap.
func (m *Model) Unseen() int { return m.unseen }

// Digest is every object's resourceVersion by kind and name, as the model
// holds them now: an exact read at revision LastRV must return the same.
func (m *Model) Digest() map[Kind]map[string]uint64 { return m.world.digest() }

// LastRV is the highest revision applied.
func (m *Model) LastRV() uint64 { return m.last }

func (m *Model) advance(t time.Time) {
	if t.After(m.now) {
		m.now = t
	}
}

func (m *Model) take() []Violation {
	out := m.out
	m.out = nil
	return out
}

func (m *Model) note(what string) {
	m.timeline.add(Entry{Time: m.now, RV: m.last, Type: "NOTE", What: what})
}

// check records whether an invariant's condition holds for a subject.
// A condition that starts holding is a violation at once, or, with a
// grace > 0, once it has held for longer than grace.
func (m *Model) check(inv Invariant, subject string, holds bool, grace time.Duration, message func() string) {
	key := episodeKey{inv, subject}
	ep := m.episodes[key]
	if !holds {
		delete(m.episodes, key)
		return
	}
	if ep == nil {
		ep = &episode{since: m.now}
		m.episodes[key] = ep
	}
	if ep.reported || (grace > 0 && m.now.Sub(ep.since) <= grace) {
		return
	}
	ep.reported = true
	msg := message()
	if grace > 0 {
		msg += fmt.Sprintf(" (for %s, longer than %s)", m.now.Sub(ep.since).Round(time.Millisecond), grace)
	}
	m.out = append(m.out, Violation{
		Invariant: inv, Subject: subject, Message: msg, RV: m.last, Time: m.now,
		Timeline: m.timeline.last(m.bounds.Timeline), key: key, release: m.current,
	})
}

// violation records a one-off violation (one that is not a condition
// over time, like a release ending unrestored).
func (m *Model) violation(inv Invariant, subject, msg string) {
	m.out = append(m.out, Violation{
		Invariant: inv, Subject: subject, Message: msg, RV: m.last, Time: m.now,
		Timeline: m.timeline.last(m.bounds.Timeline), key: episodeKey{inv, subject + "#" + msg},
	})
}
