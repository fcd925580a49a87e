package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	eventsv1 "k8s.io/api/events/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/printers"
	"sigs.k8s.io/controller-runtime/pkg/client"

	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

func newGetCmd(o *options) *cobra.Command {
	var allNamespaces bool
	var output string
	c := &cobra.Command{
		Use:     "get [NAME]",
		Aliases: []string{"list", "ls"},
		Short:   "List rollouts: phase, step, state, traffic, new pods ready/desired, last analysis verdict",
		Example: `  kubectl sluice get
  kubectl sluice get rollouts-demo -o wide
  kubectl sluice list -A`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: completeRollouts(o),
		RunE: func(c *cobra.Command, args []string) error {
			switch output {
			case "", "wide", "json", "yaml", "name":
			default:
				return withCode(ExitUsage, "unknown output format %q: use wide, json, yaml or name", output)
			}
			if allNamespaces && len(args) == 1 {
				return withCode(ExitUsage, "a rollout NAME and -A do not go together: a name is looked up in one namespace (-n)")
			}
			s, err := o.connect()
			if err != nil {
				return err
			}
			ctx := c.Context()
			var items []v1beta1.Rollout
			if len(args) == 1 {
				r, err := s.getRollout(ctx, args[0])
				if err != nil {
					return err
				}
				items = []v1beta1.Rollout{*r}
			} else {
				list := &v1beta1.RolloutList{}
				opts := []client.ListOption{}
				if !allNamespaces {
					opts = append(opts, client.InNamespace(s.namespace))
				}
				if err := s.c.List(ctx, list, opts...); err != nil {
					return apiError(err, "listing rollouts")
				}
				items = list.Items
				sort.Slice(items, func(i, j int) bool {
					if items[i].Namespace != items[j].Namespace {
						return items[i].Namespace < items[j].Namespace
					}
					return items[i].Name < items[j].Name
				})
			}
			out := o.streams.Out
			if len(items) == 0 {
				if allNamespaces {
					fmt.Fprintln(o.streams.ErrOut, "No rollouts found.")
				} else {
					fmt.Fprintf(o.streams.ErrOut, "No rollouts found in namespace %s.\n", s.namespace)
				}
				return nil
			}
			switch output {
			case "json", "yaml", "name":
				return printObjects(out, output, items)
			}
			now := o.now()
			rows := make([]row, 0, len(items))
			for i := range items {
				rows = append(rows, rowOf(snapshot{rollout: &items[i], replicas: -1}, now))
			}
			return renderTable(out, rows, allNamespaces, output == "wide")
		},
	}
	c.Flags().BoolVarP(&allNamespaces, "all-namespaces", "A", false, "list the rollouts of every namespace")
	c.Flags().StringVarP(&output, "output", "o", "", "output format: wide (adds MESSAGE), json, yaml or name")
	return c
}

func printObjects(w io.Writer, format string, items []v1beta1.Rollout) error {
	var p printers.ResourcePrinter
	switch format {
	case "json":
		p = &printers.JSONPrinter{}
	case "yaml":
		p = &printers.YAMLPrinter{}
	default:
		p = &printers.NamePrinter{}
	}
	gvk := v1beta1.GroupVersion.WithKind("Rollout")
	items = append([]v1beta1.Rollout(nil), items...)
	for i := range items {
		items[i].ManagedFields = nil // as kubectl get, without --show-managed-fields
	}
	var obj kruntime.Object
	if len(items) == 1 && format != "name" {
		r := items[0].DeepCopy()
		r.SetGroupVersionKind(gvk)
		obj = r
	} else {
		list := &v1beta1.RolloutList{Items: items}
		list.SetGroupVersionKind(v1beta1.GroupVersion.WithKind("RolloutList"))
		for i := range list.Items {
			list.Items[i].SetGroupVersionKind(gvk)
		}
		if format == "name" {
			for i := range list.Items {
				if err := p.PrintObj(&list.Items[i], w); err != nil {
					return err
				}
			}
			return nil
		}
		obj = list
	}
	return p.PrintObj(obj, w)
}

func completeRollouts(o *options) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(c *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		s, err := o.connect()
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		list := &v1beta1.RolloutList{}
		if err := s.c.List(c.Context(), list, client.InNamespace(s.namespace)); err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		var names []string
		for _, r := range list.Items {
			names = append(names, r.Name)
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}

func newStatusCmd(o *options) *cobra.Command {
	var watch bool
	var timeout, interval time.Duration
	c := &cobra.Command{
		Use:   "status NAME",
		Short: "Show one release: steps, new pods per batch, traffic, analysis metrics, why it waits, what to do next",
		Long: `Show one release: its steps with the current one marked, a bar of the new version's
pods per batch, the traffic the new version gets, each analysis metric with its
last values, condition and verdict, why the release waits, and what you can do.

With -w the view follows the release until it ends: redrawn in place on a
terminal, one line per change otherwise (for logs and CI). It exits 0 once the
release completed, 5 if it was aborted or cancelled, 6 when --timeout runs out.`,
		Example: `  kubectl sluice status rollouts-demo
  kubectl sluice status rollouts-demo -w --timeout 10m`,
		Args:              oneName,
		ValidArgsFunction: completeRollouts(o),
		RunE: func(c *cobra.Command, args []string) error {
			s, err := o.connect()
			if err != nil {
				return err
			}
			if !watch {
				r, err := s.getRollout(c.Context(), args[0])
				if err != nil {
					return err
				}
				_, err = io.WriteString(o.streams.Out, renderStatus(s.snapshot(c.Context(), r, true), o.now()))
				return err
			}
			return o.watch(c.Context(), s, args[0], timeout, interval)
		},
	}
	c.Flags().BoolVarP(&watch, "watch", "w", false, "follow the release until it ends")
	c.Flags().DurationVar(&timeout, "timeout", 0, "with -w: give up after this long (exit code 6); 0 waits forever")
	c.Flags().DurationVar(&interval, "interval", time.Second, "with -w: how often to read the release")
	_ = c.Flags().MarkHidden("interval")
	return c
}

// outcome tells whether a release has ended and how, from
// status.lastRelease: 0 completed or promoted, ExitNotPromoted rolled
// back, aborted or cancelled, -1 still going.
func outcome(r *v1beta1.Rollout) (int, string) {
	s := stateOf(r)
	switch {
	case s.aborted():
		return ExitNotPromoted, "the release " + endedText(s.last)
	case s.phase == v1beta1.RolloutPhaseHealthy:
		if !succeeded(s.last) {
			return ExitNotPromoted, "the release " + endedText(s.last)
		}
		return ExitOK, ""
	case s.phase == v1beta1.RolloutPhaseDisabled:
		return ExitOK, ""
	}
	return -1, ""
}

func (o *options) watch(ctx context.Context, s *session, name string, timeout, interval time.Duration) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	out := o.streams.Out
	f, isFile := out.(*os.File)
	tty := isFile && term.IsTerminal(int(f.Fd()))
	var drawn int
	last := ""
	var seen *v1beta1.Rollout
	timedOut := func() error {
		if seen == nil {
			return withCode(ExitTimeout, "timed out after %s waiting for rollout %s to end", timeout, name)
		}
		st := stateOf(seen)
		return withCode(ExitTimeout, "timed out after %s waiting for rollout %s to end: it is at step %d/%d %s", timeout, name, st.stepIndex(), len(st.steps), dash(stateText(st)))
	}
	for {
		r, err := s.getRollout(ctx, name)
		if err != nil {
			// The deadline can fall in a slow read: say where the
			// release was when last seen.
			if ctx.Err() == context.DeadlineExceeded {
				return timedOut()
			}
			return err
		}
		seen = r
		sn := s.snapshot(ctx, r, tty || last == "")
		now := o.now()
		code, why := outcome(r)
		switch {
		case tty:
			width := 0
			if w, _, err := term.GetSize(int(f.Fd())); err == nil {
				width = w
			}
			view := fmt.Sprintf("Every %s: kubectl sluice status %s -w    %s\n\n", interval, name, now.Format("15:04:05")) + renderStatus(sn, now)
			drawn = redraw(out, drawn, view, width)
		case last == "":
			fmt.Fprint(out, renderStatus(sn, now))
			fmt.Fprintln(out)
			line := progressLine(sn)
			fmt.Fprintf(out, "%s  %s\n", now.Format("15:04:05"), line)
			last = line
		default:
			if line := progressLine(sn); line != last {
				fmt.Fprintf(out, "%s  %s\n", now.Format("15:04:05"), line)
				last = line
			}
		}
		if code >= 0 {
			if code != ExitOK {
				return withCode(code, "%s", why)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				return timedOut()
			}
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

// redraw replaces the previous drawing (drawn lines high) with view, each
// line cut to width (0: no limit) so that none wraps, and returns the
// number of lines drawn.
func redraw(w io.Writer, drawn int, view string, width int) int {
	var b strings.Builder
	if drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dF\x1b[J", drawn)
	}
	lines := strings.Split(strings.TrimRight(view, "\n"), "\n")
	for _, l := range lines {
		if width > 0 {
			if rs := []rune(l); len(rs) >= width {
				l = string(rs[:width-1])
			}
		}
		b.WriteString(l + "\n")
	}
	_, _ = io.WriteString(w, b.String())
	return len(lines)
}

func newHistoryCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:               "history NAME",
		Short:             "Past releases: AnalysisRuns by revision, overrides and the Rollout's Events",
		Args:              oneName,
		ValidArgsFunction: completeRollouts(o),
		RunE: func(c *cobra.Command, args []string) error {
			s, err := o.connect()
			if err != nil {
				return err
			}
			ctx := c.Context()
			r, err := s.getRollout(ctx, args[0])
			if err != nil {
				return err
			}
			runs, err := s.runsOf(ctx, r)
			if err != nil {
				return err
			}
			events, err := s.eventsOf(ctx, r)
			if err != nil {
				return err
			}
			return renderHistory(o.streams.Out, r, runs, events, o.now())
		},
	}
}

// runsOf lists the Rollout's AnalysisRuns (label sluice.dev/rollout, which
// analysis/run shortens beyond 63 characters: then all are read).
func (s *session) runsOf(ctx context.Context, r *v1beta1.Rollout) ([]analysisv1alpha1.AnalysisRun, error) {
	opts := []client.ListOption{client.InNamespace(r.Namespace)}
	if len(r.Name) <= 63 {
		opts = append(opts, client.MatchingLabels{labelRollout: r.Name})
	}
	list := &analysisv1alpha1.AnalysisRunList{}
	if err := s.c.List(ctx, list, opts...); err != nil {
		return nil, apiError(err, "listing the AnalysisRuns of rollout "+r.Name)
	}
	var out []analysisv1alpha1.AnalysisRun
	for _, ar := range list.Items {
		if ar.Spec.Rollout == r.Name {
			out = append(out, ar)
		}
	}
	return out, nil
}

// eventsOf lists the Events regarding the Rollout (this object, not an
// earlier one of the same name).
func (s *session) eventsOf(ctx context.Context, r *v1beta1.Rollout) ([]eventsv1.Event, error) {
	list := &eventsv1.EventList{}
	if err := s.c.List(ctx, list, client.InNamespace(r.Namespace)); err != nil {
		return nil, apiError(err, "listing the Events of rollout "+r.Name)
	}
	var out []eventsv1.Event
	for _, e := range list.Items {
		ref := e.Regarding
		if ref.Kind == "Rollout" && ref.Name == r.Name && (ref.UID == "" || ref.UID == r.UID) {
			out = append(out, e)
		}
	}
	return out, nil
}
