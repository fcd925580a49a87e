package notify

import (
	"fmt"
	"strconv"
	"time"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

// Trigger names a kind of event people subscribe to (Argo Rollouts' on-*
// naming).
type Trigger string

// The triggers.
const (
	// OnWaitingForPerson: the release waits for a person (approve, or a
	// look at an inconclusive or failed-but-paused analysis, a template
	// that cannot start, a new version a blue-green release refuses).
	OnWaitingForPerson Trigger = "on-waiting-for-person"
	// OnAnalysisError: an analysis erred (e.g. Prometheus unreachable) and
	// its policy holds the release.
	OnAnalysisError Trigger = "on-analysis-error"
	// OnProgressDeadlineExceeded: a batch was not ready in time.
	OnProgressDeadlineExceeded Trigger = "on-progress-deadline-exceeded"
	// OnRolledBack: the analysis failed the release and it was rolled back.
	OnRolledBack Trigger = "on-rolled-back"
	// OnAborted: a person aborted the release.
	OnAborted Trigger = "on-aborted"
	// OnCompleted: the new version is stable (every step passed, or a
	// person promoted it).
	OnCompleted Trigger = "on-completed"
)

// Triggers lists every trigger, in the order the docs give them.
var Triggers = []Trigger{OnWaitingForPerson, OnAnalysisError, OnProgressDeadlineExceeded, OnRolledBack, OnAborted, OnCompleted}

// Known reports whether t is one of Triggers.
func (t Trigger) Known() bool {
	for _, k := range Triggers {
		if t == k {
			return true
		}
	}
	return false
}

// Event is one moment of a release that a trigger fires on, read from the
// Rollout's status.
type Event struct {
	Trigger Trigger
	// Key identifies the event among all of the Rollout's: the same moment
	// read again (another reconcile, a restarted controller) has the same
	// key; a new one (a later release, the same hold at another step or
	// after it cleared) has another. Built from the release's start and
	// the state's own timestamps, e.g.
	// "on-waiting-for-person/1700000000/2/WaitingForApproval/1700000090".
	Key string
	// At is when it happened (the hold's since, the release's end).
	At time.Time
	// Reason is the hold reason or the outcome.
	Reason string
	// Step is the 1-based step the release is (or ended) at; Steps their number.
	Step, Steps int32
	// Revision is the new version's revision, StableRevision the one it replaces.
	Revision, StableRevision string
	// Started is when the release began.
	Started time.Time
	// Run and Metric name the analysis concerned, if any.
	Run, Metric string
	// Detail is the status' message about it (a verdict, an error).
	Detail string
}

// holdTrigger is the trigger a hold reason fires, or "" for a hold that
// moves on by itself, is a person's own doing (PausedBySpec) or is told
// by the outcome (Aborted: on-rolled-back or on-aborted).
func holdTrigger(r v1beta1.HoldReason) Trigger {
	switch r {
	case v1beta1.HoldWaitingForApproval, v1beta1.HoldAnalysisInconclusive, v1beta1.HoldAnalysisFailedPaused,
		v1beta1.HoldAnalysisNotStarted, v1beta1.HoldNewRevisionRefused:
		return OnWaitingForPerson
	case v1beta1.HoldAnalysisError:
		return OnAnalysisError
	case v1beta1.HoldProgressDeadlineExceeded:
		return OnProgressDeadlineExceeded
	}
	return ""
}

// outcomeTrigger is the trigger an ended release fires, or "" (Cancelled:
// the person who re-applied the stable template knows).
func outcomeTrigger(o v1beta1.ReleaseOutcome) Trigger {
	switch o {
	case v1beta1.OutcomeCompleted, v1beta1.OutcomePromoted:
		return OnCompleted
	case v1beta1.OutcomeRolledBack:
		return OnRolledBack
	case v1beta1.OutcomeAborted:
		return OnAborted
	}
	return ""
}

// EventsOf returns the events the Rollout's status shows now: at most one
// for the hold of the release in progress and one for how the last
// release ended. Pure: a function of the status alone, so any reader
// (after a restart too) derives the same events with the same keys.
func EventsOf(ro *v1beta1.Rollout) []Event {
	st := &ro.Status
	steps := int32(len(ro.Spec.Strategy.Steps()))
	var out []Event
	if rel := st.Release; rel != nil && rel.Hold != nil {
		h := rel.Hold
		if t := holdTrigger(h.Reason); t != "" {
			out = append(out, Event{
				Trigger: t,
				Key:     fmt.Sprintf("%s/%d/%d/%s/%d", t, rel.Started.Unix(), h.Step, h.Reason, h.Since.Unix()),
				At:      h.Since.Time, Reason: string(h.Reason), Step: h.Step, Steps: steps,
				Revision: st.NewRevision(), StableRevision: stableRevision(st),
				Started: rel.Started.Time, Run: h.Run, Metric: h.Metric, Detail: h.Message,
			})
		}
	}
	if last := st.LastRelease; last != nil {
		if t := outcomeTrigger(last.Outcome); t != "" {
			started := last.Ended.Time
			if last.Started != nil {
				started = last.Started.Time
			}
			out = append(out, Event{
				Trigger: t,
				Key:     t.String() + "/" + strconv.FormatInt(started.Unix(), 10) + "/" + last.Revision,
				At:      last.Ended.Time, Reason: string(last.Outcome), Step: last.Step, Steps: steps,
				Revision: last.Revision, StableRevision: last.StableRevision,
				Started: started, Run: last.Run, Metric: last.Metric, Detail: last.Message,
			})
		}
	}
	return out
}

func (t Trigger) String() string { return string(t) }

func stableRevision(st *v1beta1.RolloutStatus) string {
	if p := st.Progress(); p != nil {
		return p.StableRevision
	}
	return ""
}
