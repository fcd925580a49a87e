//go:build e2e

package chaos_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	"github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/cmd/sluice-controller/app"
)

// observer watches every namespace's Rollouts and AnalysisRuns for what
// the report measures: when the controller wrote a Rollout's status (the
// cost of a kill is the time to the next such write), and what became of
// every measurement a Prometheus fault produced.
type observer struct {
	mu sync.Mutex
	// writes are the controller's status writes, in the order seen.
	writes []statusWrite
	// ours are the resourceVersions of the status writes the test made
	// itself (approvals), which are not the controller's.
	ours map[string]bool
	// progressing are the Rollouts whose release is in progress.
	progressing map[string]bool
	// measured holds every measurement the fault proxy's warnings mark,
	// by run, metric and start.
	measured map[string]faultMeasurement
	// phases counts every measurement seen, by phase (once each).
	phases   map[v1alpha1.AnalysisPhase]int
	seenMeas map[string]bool
	// verdicts counts the runs' final phases.
	verdicts map[v1alpha1.AnalysisPhase]int
	seenRun  map[string]bool
}

type statusWrite struct {
	at      time.Time
	rollout string // namespace/name
}

// faultMeasurement is a measurement taken on a fault's garbage answer.
type faultMeasurement struct {
	fault   fault
	run     string
	metric  string
	phase   v1alpha1.AnalysisPhase
	value   string
	message string
}

func startObserver(ctx context.Context) (*observer, error) {
	o := &observer{
		ours: map[string]bool{}, progressing: map[string]bool{}, measured: map[string]faultMeasurement{},
		phases: map[v1alpha1.AnalysisPhase]int{}, seenMeas: map[string]bool{},
		verdicts: map[v1alpha1.AnalysisPhase]int{}, seenRun: map[string]bool{},
	}
	c, err := cache.New(env.ControlPlane.RESTConfig(), cache.Options{Scheme: app.Scheme()})
	if err != nil {
		return nil, err
	}
	ri, err := c.GetInformer(ctx, &v1beta1.Rollout{})
	if err != nil {
		return nil, err
	}
	if _, err := ri.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if r, ok := obj.(*v1beta1.Rollout); ok {
				o.rollout(nil, r)
			}
		},
		UpdateFunc: func(old, cur any) {
			a, _ := old.(*v1beta1.Rollout)
			b, _ := cur.(*v1beta1.Rollout)
			if a != nil && b != nil {
				o.rollout(a, b)
			}
		},
	}); err != nil {
		return nil, err
	}
	ai, err := c.GetInformer(ctx, &v1alpha1.AnalysisRun{})
	if err != nil {
		return nil, err
	}
	if _, err := ai.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { o.run(obj) },
		UpdateFunc: func(_, cur any) { o.run(cur) },
	}); err != nil {
		return nil, err
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		return nil, fmt.Errorf("the observer's caches did not sync")
	}
	return o, nil
}

func rolloutKey(namespace, name string) string { return namespace + "/" + name }

func (o *observer) rollout(old, cur *v1beta1.Rollout) {
	now := time.Now()
	key := rolloutKey(cur.Namespace, cur.Name)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.progressing[key] = cur.Status.Phase == v1beta1.RolloutPhaseProgressing
	if old == nil || equality.Semantic.DeepEqual(old.Status, cur.Status) || o.ours[cur.ResourceVersion] {
		return
	}
	o.writes = append(o.writes, statusWrite{at: now, rollout: key})
}

// ourWrite records a status write of the test (an approval).
func (o *observer) ourWrite(resourceVersion string) {
	o.mu.Lock()
	o.ours[resourceVersion] = true
	o.mu.Unlock()
}

// inProgress returns the Rollouts whose release is in progress.
func (o *observer) inProgress() map[string]bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[string]bool{}
	for k, p := range o.progressing {
		if p {
			out[k] = true
		}
	}
	return out
}

func (o *observer) run(obj any) {
	ar, ok := obj.(*v1alpha1.AnalysisRun)
	if !ok {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	runKey := string(ar.UID)
	if ar.Status.Phase.Completed() && !o.seenRun[runKey] {
		o.seenRun[runKey] = true
		o.verdicts[ar.Status.Phase]++
	}
	for _, mr := range ar.Status.MetricResults {
		for _, m := range mr.Measurements {
			if !m.Phase.Completed() {
				continue
			}
			key := fmt.Sprintf("%s/%s/%s/%s", ar.UID, mr.Name, timeOf(m.StartedAt), timeOf(m.FinishedAt))
			if !o.seenMeas[key] {
				o.seenMeas[key] = true
				o.phases[m.Phase]++
			}
			for _, w := range m.Warnings {
				if f, ok := strings.CutPrefix(w, faultWarning); ok {
					o.measured[key] = faultMeasurement{
						fault: fault(f), run: ar.Namespace + "/" + ar.Name, metric: mr.Name,
						phase: m.Phase, value: m.Value, message: m.Message,
					}
				}
			}
		}
	}
}

func timeOf(t *metav1.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// firstWriteAfter is the first controller status write, after t, of one
// of the Rollouts in affected; ok is false when there is none before
// until.
func (o *observer) firstWriteAfter(t, until time.Time, affected map[string]bool) (time.Time, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, w := range o.writes {
		if w.at.After(t) && affected[w.rollout] {
			if !until.IsZero() && w.at.After(until) {
				return time.Time{}, false
			}
			return w.at, true
		}
	}
	return time.Time{}, false
}

// faultMeasurements returns what the faults produced.
func (o *observer) faultMeasurements() []faultMeasurement {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []faultMeasurement
	for _, m := range o.measured {
		out = append(out, m)
	}
	return out
}

// counts returns the measurements and the run verdicts by phase.
func (o *observer) counts() (measurements, verdicts map[v1alpha1.AnalysisPhase]int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	measurements, verdicts = map[v1alpha1.AnalysisPhase]int{}, map[v1alpha1.AnalysisPhase]int{}
	for k, v := range o.phases {
		measurements[k] = v
	}
	for k, v := range o.verdicts {
		verdicts[k] = v
	}
	return measurements, verdicts
}
