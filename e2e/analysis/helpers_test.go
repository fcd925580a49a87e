//go:build e2e

package analysis_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/analysis/run"
	"github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/devenv/manifest"
	"github.com/sluicehq/sluice/e2e/framework"
)

type fixture struct {
	t   *testing.T
	ctx context.Context
	ns  string
	c   client.Client
}

func newFixture(t *testing.T) *fixture {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return &fixture{t: t, ctx: ctx, ns: env.Namespace(t), c: env.Client}
}

// deploy creates a Deployment of image and returns its pods'
// pod-template-hash once they are all running.
func (f *fixture) deploy(name, image string, replicas int32) string {
	f.t.Helper()
	d := framework.Deployment(f.ns, name, replicas, image)
	labels := d.Spec.Selector.MatchLabels
	if err := f.c.Create(f.ctx, d); err != nil {
		f.t.Fatal(err)
	}
	var hash string
	if err := framework.Poll(f.ctx, time.Minute, func() (bool, error) {
		pods := &corev1.PodList{}
		if err := f.c.List(f.ctx, pods, client.InNamespace(f.ns), client.MatchingLabels(labels)); err != nil {
			return false, err
		}
		running := 0
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning {
				running++
				hash = p.Labels["pod-template-hash"]
			}
		}
		return running == int(replicas) && hash != "", nil
	}); err != nil {
		f.t.Fatalf("deployment %s: %v", name, err)
	}
	return hash
}

// template creates an AnalysisTemplate from YAML (its metadata.name is
// given), through admission.
func (f *fixture) template(yaml string) {
	f.t.Helper()
	if _, err := manifest.Create(f.ctx, f.c, f.ns, []byte(yaml)); err != nil {
		f.t.Fatal(err)
	}
}

// startRun builds the run of step 1 for the canary (and stable) revision
// from the named templates, as the release engine does, and creates it.
func (f *fixture) startRun(canary, stable string, templates ...string) string {
	f.t.Helper()
	a := &v1alpha1.RolloutAnalysis{}
	for _, name := range templates {
		a.Templates = append(a.Templates, v1alpha1.AnalysisTemplateRef{TemplateName: name})
	}
	specs, err := run.Templates(f.ctx, f.c, f.ns, a.Templates)
	if err != nil {
		f.t.Fatal(err)
	}
	r, err := run.Build(run.Target{Namespace: f.ns, Rollout: "web", Workload: "web", StableRevision: stable, CanaryRevision: canary, StepIndex: 1}, specs, a)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.c.Create(f.ctx, r); err != nil {
		f.t.Fatal(err)
	}
	return r.Name
}

func (f *fixture) get(name string) *v1alpha1.AnalysisRun {
	r := &v1alpha1.AnalysisRun{}
	if err := f.c.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: name}, r); err != nil {
		f.t.Fatal(err)
	}
	return r
}

// wait polls the run until cond holds.
func (f *fixture) wait(name, what string, timeout time.Duration, cond func(*v1alpha1.AnalysisRun) bool) *v1alpha1.AnalysisRun {
	f.t.Helper()
	var last *v1alpha1.AnalysisRun
	if err := framework.Poll(f.ctx, timeout, func() (bool, error) {
		last = &v1alpha1.AnalysisRun{}
		if err := f.c.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: name}, last); err != nil {
			return false, err
		}
		return cond(last), nil
	}); err != nil {
		f.t.Fatalf("run %s: %s: %v\nstatus: %s\nmanager log:\n%s", name, what, err, describe(last), env.Manager.LogTail())
	}
	return last
}

// waitDone waits for the run to complete and checks its phase and that
// its message contains each of msgs.
func (f *fixture) waitDone(name string, phase v1alpha1.AnalysisPhase, msgs ...string) *v1alpha1.AnalysisRun {
	f.t.Helper()
	r := f.wait(name, "complete", time.Minute, func(r *v1alpha1.AnalysisRun) bool { return r.Status.Phase.Completed() })
	if r.Status.Phase != phase {
		f.t.Fatalf("run %s is %s, want %s\nstatus: %s", name, r.Status.Phase, phase, describe(r))
	}
	for _, m := range msgs {
		if !strings.Contains(r.Status.Message, m) {
			f.t.Errorf("message %q lacks %q", r.Status.Message, m)
		}
	}
	return r
}

// event waits for an Event of reason about the run.
func (f *fixture) event(name, reason string) *eventsv1.Event {
	f.t.Helper()
	var found *eventsv1.Event
	if err := framework.Poll(f.ctx, 20*time.Second, func() (bool, error) {
		list := &eventsv1.EventList{}
		if err := f.c.List(f.ctx, list, client.InNamespace(f.ns)); err != nil {
			return false, err
		}
		for i, e := range list.Items {
			if e.Regarding.Name == name && e.Reason == reason {
				found = &list.Items[i]
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		f.t.Fatalf("no %s event for %s: %v", reason, name, err)
	}
	return found
}

func describe(r *v1alpha1.AnalysisRun) string {
	if r == nil {
		return "<none>"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "phase=%s summary=%q message=%q", r.Status.Phase, r.Status.Summary, r.Status.Message)
	for _, m := range r.Status.MetricResults {
		fmt.Fprintf(&b, "\n  %s %s count=%d ok=%d failed=%d inconclusive=%d error=%d lastError=%q query=%s",
			m.Name, m.Phase, m.Count, m.Successful, m.Failed, m.Inconclusive, m.Error, m.LastError, m.Query)
		for _, ms := range m.Measurements {
			fmt.Fprintf(&b, "\n    %s %s %s", ms.Phase, ms.Value, ms.Message)
		}
	}
	return b.String()
}
