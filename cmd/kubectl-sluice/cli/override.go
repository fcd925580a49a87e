package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

// conflictRetries is how often an override re-reads the Rollout and
// checks again when it changed between the read and the patch.
const conflictRetries = 3

// override reads the Rollout, checks that its state allows a, and sends
// the patch body(r) returns (a merge patch that carries the Rollout's
// resourceVersion, so that a state that changed meanwhile is checked
// again instead of being overridden blindly).
func (o *options) override(ctx context.Context, name string, a action, status bool, body func(*v1beta1.Rollout, state) map[string]any) (*v1beta1.Rollout, state, error) {
	s, err := o.connect()
	if err != nil {
		return nil, state{}, err
	}
	for attempt := 0; ; attempt++ {
		r, err := s.getRollout(ctx, name)
		if err != nil {
			return nil, state{}, err
		}
		st := stateOf(r)
		if rf := check(a, st); rf != nil {
			return nil, st, rf
		}
		patch := body(r, st)
		meta, _ := patch["metadata"].(map[string]any)
		if meta == nil {
			meta = map[string]any{}
			patch["metadata"] = meta
		}
		meta["resourceVersion"] = r.ResourceVersion
		raw, err := json.Marshal(patch)
		if err != nil {
			return nil, st, err
		}
		target := &v1beta1.Rollout{}
		target.Namespace, target.Name = r.Namespace, r.Name
		p := client.RawPatch(types.MergePatchType, raw)
		if status {
			err = s.c.Status().Patch(ctx, target, p)
		} else {
			err = s.c.Patch(ctx, target, p)
		}
		if apierrors.IsConflict(err) && attempt < conflictRetries {
			continue
		}
		if err != nil {
			return nil, st, apiError(err, fmt.Sprintf("patching rollout %s/%s", r.Namespace, r.Name))
		}
		return target, st, nil
	}
}

func (o *options) say(format string, args ...any) {
	fmt.Fprintf(o.streams.Out, format+"\n", args...)
}

func follow(name string) string {
	return "follow it with `kubectl sluice status " + name + " -w`"
}

func newApproveCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "approve NAME",
		Short: "Go on past a step's pause or an analysis hold (the status patch kubectl-kruise sends)",
		Long: `Go on past a step that waits for approval (pause: {}), a timed pause, or a step
held by its analysis (an Error, Inconclusive or, with onFailed: Pause, Failed
verdict, whose override is recorded in status.analysis.overrides).

It sends what kubectl-kruise rollout approve sends, a merge patch of the status
subresource setting currentStepState to StepReady (in blueGreenStatus for a
blue-green release), so both tools work on the same Rollouts.`,
		Args:              oneName,
		ValidArgsFunction: completeRollouts(o),
		RunE: func(c *cobra.Command, args []string) error {
			_, st, err := o.override(c.Context(), args[0], actApprove, true, func(_ *v1beta1.Rollout, st state) map[string]any { return approvePatch(st) })
			if err != nil {
				return err
			}
			what := fmt.Sprintf("step %d/%d approved", st.stepIndex(), len(st.steps))
			if st.heldByAnalysis() {
				what += " past its analysis verdict (recorded as an override)"
			}
			o.say("rollout/%s: %s; %s", args[0], what, follow(args[0]))
			return nil
		},
	}
}

func newPauseCmd(o *options, pause bool) *cobra.Command {
	a, short := actPause, "Hold the release where it is (spec.strategy.paused: true)"
	if !pause {
		a, short = actResume, "Let a paused release go on (spec.strategy.paused: false)"
	}
	return &cobra.Command{
		Use:               string(a) + " NAME",
		Short:             short,
		Args:              oneName,
		ValidArgsFunction: completeRollouts(o),
		RunE: func(c *cobra.Command, args []string) error {
			_, st, err := o.override(c.Context(), args[0], a, false, func(*v1beta1.Rollout, state) map[string]any {
				return map[string]any{"spec": map[string]any{"strategy": map[string]any{"paused": pause}}}
			})
			if err != nil {
				return err
			}
			if pause {
				o.say("rollout/%s paused at step %d/%d; resume it with `kubectl sluice resume %s`", args[0], st.stepIndex(), len(st.steps), args[0])
			} else {
				o.say("rollout/%s resumed; %s", args[0], follow(args[0]))
			}
			return nil
		},
	}
}

// annotationOf is the override annotation of abort, retry and promote.
var annotationOf = map[action]string{
	actAbort:   analysisv1alpha1.AbortAnnotation,
	actRetry:   analysisv1alpha1.RetryAnnotation,
	actPromote: analysisv1alpha1.PromoteAnnotation,
}

// annotate sets a's annotation to a new value (the time), which the
// controller acts on once. A release paused by spec is resumed in the same
// patch for abort and promote, so that they act now rather than on resume.
func (o *options) annotate(ctx context.Context, name string, a action) (string, state, error) {
	value := o.now().UTC().Format(time.RFC3339Nano)
	_, st, err := o.override(ctx, name, a, false, func(_ *v1beta1.Rollout, st state) map[string]any { return annotationPatch(a, value, st) })
	return value, st, err
}

// approvePatch is kubectl-kruise rollout approve's status patch (without
// the resourceVersion override adds).
func approvePatch(st state) map[string]any {
	key := "canaryStatus"
	if st.blueGreen {
		key = "blueGreenStatus"
	}
	return map[string]any{"status": map[string]any{key: map[string]any{"currentStepState": string(v1beta1.CanaryStepStateReady)}}}
}

// annotationPatch sets a's annotation to value; abort and promote also
// resume a release paused by spec, since the controller acts on them only
// while the release is not paused.
func annotationPatch(a action, value string, st state) map[string]any {
	p := map[string]any{"metadata": map[string]any{"annotations": map[string]any{annotationOf[a]: value}}}
	if st.specPaused && (a == actAbort || a == actPromote) {
		p["spec"] = map[string]any{"strategy": map[string]any{"paused": false}}
	}
	return p
}

func newAnnotateCmd(o *options, a action) *cobra.Command {
	short := map[action]string{
		actAbort: "Roll back now: traffic to stable, the new pods scaled to zero, the workload held at its stable revision",
		actRetry: "Re-run the analysis that holds the release, or restart an aborted release at step 1",
	}[a]
	return &cobra.Command{
		Use:   string(a) + " NAME",
		Short: short,
		Long: short + `.

Sets the annotation ` + annotationOf[a] + ` to the current time; the controller acts once per new value.`,
		Args:              oneName,
		ValidArgsFunction: completeRollouts(o),
		RunE: func(c *cobra.Command, args []string) error {
			value, st, err := o.annotate(c.Context(), args[0], a)
			if err != nil {
				return err
			}
			switch a {
			case actAbort:
				note := ""
				if st.specPaused {
					note = " (and resumed, so that the abort acts now)"
				}
				o.say("rollout/%s: abort requested at step %d/%d%s (%s=%s); %s", args[0], st.stepIndex(), len(st.steps), note, annotationOf[a], value, follow(args[0]))
			case actRetry:
				what := "the analysis of step " + fmt.Sprint(st.stepIndex()) + " runs again"
				if st.aborted() {
					what = "the release starts again at step 1"
					if st.specPaused {
						what += " and pauses there (spec.strategy.paused is true)"
					}
				}
				o.say("rollout/%s: retry requested: %s (%s=%s); %s", args[0], what, annotationOf[a], value, follow(args[0]))
			}
			return nil
		},
	}
}

func newPromoteCmd(o *options) *cobra.Command {
	var full bool
	c := &cobra.Command{
		Use:   "promote NAME --full",
		Short: "Release the new version to all now, skipping the remaining steps and analyses (recorded as an override)",
		Long: `Release the new version to all now: the remaining steps and their analyses are
skipped, the running analysis is stopped, and the override is recorded in
status.analysis.overrides. Sets the annotation ` + analysisv1alpha1.PromoteAnnotation + ` to the current time.

--full is required, to say that every remaining step is skipped; to go on by
one step, use kubectl sluice approve.`,
		Args:              oneName,
		ValidArgsFunction: completeRollouts(o),
		RunE: func(c *cobra.Command, args []string) error {
			if !full {
				return withCode(ExitUsage, "promote skips every remaining step and analysis: say so with --full (to go on by one step, run `kubectl sluice approve %s`)", args[0])
			}
			value, st, err := o.annotate(c.Context(), args[0], actPromote)
			if err != nil {
				return err
			}
			note := ""
			if st.specPaused {
				note = " (and resumed, so that the promotion acts now)"
			}
			o.say("rollout/%s: full promotion requested at step %d/%d%s: the remaining steps and analyses are skipped (%s=%s); %s",
				args[0], st.stepIndex(), len(st.steps), note, analysisv1alpha1.PromoteAnnotation, value, follow(args[0]))
			return nil
		},
	}
	c.Flags().BoolVar(&full, "full", false, "skip every remaining step and analysis")
	return c
}
