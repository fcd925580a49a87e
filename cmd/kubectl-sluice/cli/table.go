package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	analysisv1alpha1 "github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
)

// snapshot is a Rollout with what the plugin reads beside it.
type snapshot struct {
	rollout *v1beta1.Rollout
	// replicas is the workload's spec.replicas, -1 when unknown.
	replicas int32
	// stepRun and backgroundRun are the AnalysisRuns the status names
	// (nil when there is none or it is gone).
	stepRun, backgroundRun *analysisv1alpha1.AnalysisRun
}

// row is one line of `kubectl sluice get`.
type row struct {
	namespace, name, phase, step, state, waiting, traffic, canary, verdict, age, message string
}

func rowOf(sn snapshot, now time.Time) row {
	r := sn.rollout
	s := stateOf(r)
	out := row{
		namespace: r.Namespace, name: r.Name, phase: string(r.Status.Phase),
		state: stateText(s), waiting: string(s.waiting()), traffic: currentRoute(s), verdict: verdict(r),
		age: age(r.CreationTimestamp.Time, now), message: r.Status.Message,
	}
	if i := s.stepIndex(); i > 0 {
		out.step = fmt.Sprintf("%d/%d", i, len(s.steps))
	}
	if s.progressing() {
		out.canary = fmt.Sprintf("%d/%d", s.newReady, desired(s))
	}
	return out
}

// desired is the number of new pods the workload is held to: the batch
// in force (status.release.batch), or the new pods there are once the
// workload is given back.
func desired(s state) int32 {
	if s.batch != nil {
		return s.batch.Replicas
	}
	return s.newPods
}

// renderTable writes the rows as `kubectl get` does: upper-case headers,
// columns aligned, "-" for nothing; NAMESPACE first with -A, MESSAGE last
// with -o wide. WAITING is the hold reason (status.release.hold.reason).
func renderTable(w io.Writer, rows []row, allNamespaces, wide bool) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	header := []string{"NAME", "PHASE", "STEP", "STATE", "WAITING", "TRAFFIC", "CANARY", "VERDICT", "AGE"}
	if allNamespaces {
		header = append([]string{"NAMESPACE"}, header...)
	}
	if wide {
		header = append(header, "MESSAGE")
	}
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		cells := []string{r.name, dash(r.phase), dash(r.step), dash(r.state), dash(r.waiting), dash(r.traffic), dash(r.canary), dash(r.verdict), r.age}
		if allNamespaces {
			cells = append([]string{r.namespace}, cells...)
		}
		if wide {
			cells = append(cells, dash(r.message))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}
