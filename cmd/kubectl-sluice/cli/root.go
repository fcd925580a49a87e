// Package cli is kubectl-sluice: the kubectl plugin that shows Sluice
// releases and overrides them. Rendering and the rules of what each state
// allows are pure functions (state.go, table.go, status.go, history.go);
// the commands read the cluster, check the rules and write one patch.
package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// Exit codes a script can rely on.
const (
	ExitOK = 0
	// ExitError: the API server could not be reached or refused the request.
	ExitError = 1
	// ExitUsage: unknown command, wrong arguments or flags.
	ExitUsage = 2
	// ExitRefused: the Rollout's state does not allow the action; the
	// message says why and what to do instead.
	ExitRefused = 3
	// ExitNotFound: no such Rollout (or workload).
	ExitNotFound = 4
	// ExitNotPromoted: status --watch saw the release aborted or cancelled.
	ExitNotPromoted = 5
	// ExitTimeout: status --watch --timeout ran out before the release ended.
	ExitTimeout = 6
	// ExitPlanWarnings: plan --exit-code found something that would stop
	// or surprise the release (the warnings are in its output).
	ExitPlanWarnings = 7
	// ExitInterrupted: stopped by a signal.
	ExitInterrupted = 130
)

const exitCodesHelp = `Exit codes:
  0  done
  1  the API server could not be reached or refused the request
  2  wrong command, arguments or flags
  3  refused: the Rollout's state does not allow this (the message says why and what to do)
  4  the Rollout (or its workload) was not found
  5  status --watch: the release was aborted or cancelled
  6  status --watch: --timeout ran out before the release ended
  7  plan --exit-code: the plan has warnings`

// exitError carries an exit code with the message.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func withCode(code int, format string, args ...any) error {
	return &exitError{code: code, err: fmt.Errorf(format, args...)}
}

// options are what every command shares.
type options struct {
	streams genericiooptions.IOStreams
	config  *genericclioptions.ConfigFlags
	now     func() time.Time
	session *session
}

// Run runs kubectl-sluice with args (without the program name) and
// returns its exit code; errors are written to streams.ErrOut.
func Run(ctx context.Context, args []string, streams genericiooptions.IOStreams) int {
	root, started := NewRoot(streams)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	code := ExitError
	var ee *exitError
	var rf *refusal
	switch {
	case errors.As(err, &rf):
		code = ExitRefused
	case errors.As(err, &ee):
		code = ee.code
	case !*started:
		code = ExitUsage
	case errors.Is(err, context.Canceled):
		code = ExitInterrupted
	}
	if code == ExitInterrupted {
		return code
	}
	fmt.Fprintln(streams.ErrOut, "error:", err)
	if code == ExitUsage {
		name := "kubectl sluice"
		if c, _, ferr := root.Find(args); ferr == nil && c != root {
			name += " " + c.Name()
		}
		fmt.Fprintf(streams.ErrOut, "Run '%s --help' for usage.\n", name)
	}
	return code
}

// NewRoot builds the command tree. started becomes true once a command
// begins to run (past flag and argument checks), which tells usage
// errors from the others.
func NewRoot(streams genericiooptions.IOStreams) (*cobra.Command, *bool) {
	started := false
	o := &options{
		streams: streams,
		config:  genericclioptions.NewConfigFlags(true),
		now:     time.Now,
	}
	root := &cobra.Command{
		Use:   "kubectl-sluice",
		Short: "Show and steer Sluice releases (Kruise Rollout API, with analysis)",
		Long: `kubectl sluice shows the releases Sluice runs and lets a person override them.

  get [NAME]                 rollouts: phase, step, state, traffic, new pods, last verdict
  status NAME [-w]           one release: steps, pods, traffic, analysis, why it waits, what to do
  history NAME               past releases: AnalysisRuns by revision, overrides, Events
  approve NAME               go on past a pause or an analysis hold (same patch as kubectl-kruise)
  pause NAME / resume NAME   hold the release where it is / let it go on
  abort NAME                 roll back now: traffic to stable, the new pods scaled to zero
  retry NAME                 re-run a holding analysis, or restart an aborted release
  promote NAME --full        skip the remaining steps and analyses (recorded as an override)
  undo NAME                  put the stable template back on the workload: the release is cancelled
  plan NAME                  preflight: each step's pods, traffic and routing objects, and every
                             analysis query run now against Prometheus, with what would fail
                             (--image C=IMG or -f FILE: of that change, as a server-side dry run)

Each override is refused, with the reason, when the release's state does not allow it.

` + exitCodesHelp,
		SilenceErrors: true,
		SilenceUsage:  true,
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl sluice"},
		PersistentPreRunE: func(*cobra.Command, []string) error {
			started = true
			return nil
		},
	}
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	root.SetIn(streams.In)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return err })
	o.config.AddFlags(root.PersistentFlags())

	root.AddCommand(
		newGetCmd(o),
		newStatusCmd(o),
		newHistoryCmd(o),
		newApproveCmd(o),
		newPauseCmd(o, true),
		newPauseCmd(o, false),
		newAnnotateCmd(o, actAbort),
		newAnnotateCmd(o, actRetry),
		newPromoteCmd(o),
		newUndoCmd(o),
		newPlanCmd(o),
	)
	return root, &started
}

// oneName is cobra.Args for commands that take one Rollout name.
func oneName(c *cobra.Command, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("%s needs exactly one Rollout name, got %d arguments", c.Name(), len(args))
	}
	return nil
}
