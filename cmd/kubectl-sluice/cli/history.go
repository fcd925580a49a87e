package cli

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	eventsv1 "k8s.io/api/events/v1"

	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

// renderHistory lists a Rollout's past releases: its AnalysisRuns grouped
// by the revision they judged (oldest first), then its Events.
func renderHistory(w io.Writer, r *v1beta1.Rollout, runs []analysisv1alpha1.AnalysisRun, events []eventsv1.Event, now time.Time) error {
	s := stateOf(r)
	groups := map[string][]analysisv1alpha1.AnalysisRun{}
	first := map[string]time.Time{}
	for _, ar := range runs {
		rev := ar.Spec.Revision
		groups[rev] = append(groups[rev], ar)
		if t := ar.CreationTimestamp.Time; first[rev].IsZero() || t.Before(first[rev]) {
			first[rev] = t
		}
	}
	revs := make([]string, 0, len(groups))
	for rev := range groups {
		revs = append(revs, rev)
	}
	sort.Slice(revs, func(i, j int) bool {
		if !first[revs[i]].Equal(first[revs[j]]) {
			return first[revs[i]].Before(first[revs[j]])
		}
		return revs[i] < revs[j]
	})

	fmt.Fprintf(w, "Rollout %s (namespace %s)\n", r.Name, r.Namespace)
	if len(revs) == 0 {
		fmt.Fprintln(w, "\nNo AnalysisRuns: no release of this Rollout has been analysed (or its runs were pruned).")
	}
	for _, rev := range revs {
		fmt.Fprintf(w, "\nRevision %s%s\n", dash(rev), revisionNote(s, rev))
		list := groups[rev]
		sort.Slice(list, func(i, j int) bool {
			ti, tj := list[i].CreationTimestamp.Time, list[j].CreationTimestamp.Time
			if !ti.Equal(tj) {
				return ti.Before(tj)
			}
			return list[i].Name < list[j].Name
		})
		tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "  RUN\tSTEP\tPHASE\tSTARTED\tTOOK\tMESSAGE")
		for _, ar := range list {
			step := "background"
			if ar.Spec.StepIndex > 0 {
				step = fmt.Sprint(ar.Spec.StepIndex)
			}
			started, took := "-", "-"
			if t := ar.Status.StartedAt; t != nil {
				started = age(t.Time, now) + " ago"
				switch {
				case ar.Status.CompletedAt != nil:
					took = ar.Status.CompletedAt.Sub(t.Time).Round(time.Second).String()
				case !ar.Status.Phase.Completed():
					took = "running"
				}
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", ar.Name, step, dash(string(ar.Status.Phase)), started, took, dash(oneLine(ar.Status.Message)))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	if a := r.Status.Analysis; a != nil && len(a.Overrides) > 0 {
		fmt.Fprintln(w, "\nOverrides")
		tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "  WHEN\tACTION\tSTEP\tRUN\tVERDICT")
		for _, o := range a.Overrides {
			fmt.Fprintf(tw, "  %s ago\t%s\t%d\t%s\t%s\n", age(o.Time.Time, now), o.Action, o.Step, dash(o.Run), dash(string(o.Verdict)))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	fmt.Fprintln(w, "\nEvents")
	if len(events) == 0 {
		fmt.Fprintln(w, "  none (the API server keeps Events for an hour by default)")
		return nil
	}
	sorted := append([]eventsv1.Event(nil), events...)
	sort.SliceStable(sorted, func(i, j int) bool { return eventTime(sorted[i]).Before(eventTime(sorted[j])) })
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  LAST SEEN\tTYPE\tREASON\tCOUNT\tMESSAGE")
	for _, e := range sorted {
		fmt.Fprintf(tw, "  %s ago\t%s\t%s\t%d\t%s\n", age(eventTime(e), now), e.Type, e.Reason, eventCount(e), oneLine(e.Note))
	}
	return tw.Flush()
}

// revisionNote says what a revision is to the Rollout now.
func revisionNote(s state, rev string) string {
	c := s.common
	switch {
	case c == nil || rev == "":
		return ""
	case s.progressing() && rev == c.PodTemplateHash && s.aborted():
		return " (being released, aborted)"
	case s.progressing() && rev == c.PodTemplateHash:
		return " (being released)"
	case rev == c.StableRevision:
		return " (stable)"
	}
	return ""
}

func eventTime(e eventsv1.Event) time.Time {
	switch {
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return e.Series.LastObservedTime.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.DeprecatedLastTimestamp.IsZero():
		return e.DeprecatedLastTimestamp.Time
	}
	return e.CreationTimestamp.Time
}

func eventCount(e eventsv1.Event) int32 {
	switch {
	case e.Series != nil:
		return e.Series.Count
	case e.DeprecatedCount > 0:
		return e.DeprecatedCount
	}
	return 1
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
