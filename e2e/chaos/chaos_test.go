//go:build e2e

package chaos_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/api/analysis/v1alpha1"
	"github.com/sluicehq/sluice/e2e/invariants"
)

// TestChaos runs the lanes under every disruption until the size's
// targets are met, then lets the releases in progress finish and checks:
// no invariant violation in any namespace, no release that did not end
// (within the bound) or ended otherwise than completed, no measurement of
// a Prometheus fault's garbage judged Successful or Failed, no write of
// the other client lost, and every target reached.
func TestChaos(t *testing.T) {
	sz, err := chaosSize()
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), sz.timeout)
	defer cancel()
	seed := uint64(began.UnixNano())
	master := rand.New(rand.NewPCG(seed, seed>>7))
	newRng := func() *rand.Rand { return rand.New(rand.NewPCG(master.Uint64(), master.Uint64())) }
	log := &testLog{t: t}
	defer log.close()
	st := newStats()

	// Two replicas under a supervisor replace the framework's manager.
	env.Manager.Stop()
	f, err := newFleet(env.ControlPlane, env.ManagerOptions, env.Dir(), log.logf)
	if err != nil {
		t.Fatal(err)
	}
	st.mode = f.modeName
	webhooks.setBackends(f.webhookAddresses)
	webhooks.onRefused(st.refusedConn)
	supervise, stopSupervising := context.WithCancel(context.Background())
	supervised := make(chan struct{})
	go func() { f.supervise(supervise); close(supervised) }()
	defer func() { stopSupervising(); <-supervised }()
	if err := f.setMode(ctx, pairMode); err != nil {
		t.Fatal(err)
	}
	obs, err := startObserver(ctx)
	if err != nil {
		t.Fatal(err)
	}
	prom, err := startPromFaults(metrics.Prometheus)
	if err != nil {
		t.Fatal(err)
	}
	defer prom.stop()

	var started atomic.Int64
	lanes := make([]*lane, len(sz.lanes))
	for i, spec := range sz.lanes {
		var chk *invariants.Checker
		ns := env.Namespace(t, invariants.ReportOnly(), invariants.Handle(&chk), invariants.ConcurrentWriter(writerManager),
			invariants.WithReleaseBound(sz.releaseBound), invariants.RequireReleasesEnded())
		lanes[i] = &lane{spec: spec, ns: ns, c: env.Client, obs: obs, st: st, rng: newRng(), chk: chk,
			bound: sz.releaseBound, prom: prom.URL(), started: &started}
	}
	if err := each(lanes, func(l *lane) error {
		if err := l.setup(ctx); err != nil {
			return fmt.Errorf("%s: setup: %w", l.spec.name, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	log.logf("%d lanes ready after %s; chaos begins (%s run, seed %d)", len(lanes), time.Since(began).Round(time.Second), sz.name, seed)

	// The chaos, and the releases under it.
	chaos, stopChaos := context.WithCancel(ctx)
	defer stopChaos()
	writing, stopWriting := context.WithCancel(ctx)
	defer stopWriting()
	var stop atomic.Bool
	var wg sync.WaitGroup
	for _, l := range lanes {
		w := &writer{l: l, rng: newRng()}
		wg.Add(1)
		go func() { defer wg.Done(); w.run(writing) }()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		prom.run(chaos, newRng(), sz.promPass, sz.promFault, func(err error) { st.violation("prometheus fault proxy", err.Error()) })
	}()
	laneErrs := make([]error, len(lanes))
	var lanesLeft atomic.Int64
	lanesLeft.Store(int64(len(lanes)))
	var lanesWG sync.WaitGroup
	for i, l := range lanes {
		lanesWG.Add(1)
		go func() {
			defer lanesWG.Done()
			defer lanesLeft.Add(-1)
			laneErrs[i] = l.run(ctx, &stop)
		}()
	}
	d := &disruptor{f: f, cp: env.ControlPlane, obs: obs, st: st, sz: sz, rng: newRng()}
	// A lane that failed is reported; the others go on to the targets.
	targetsMet := func() bool {
		for _, l := range lanes {
			if !l.failed.Load() && l.completed.Load() < int64(sz.perLane) {
				return false
			}
		}
		return d.targetsMet() && int(started.Load()) >= sz.releases
	}
	over := func() bool { return targetsMet() || lanesLeft.Load() == 0 }
	disrupted := make(chan error, 1)
	go func() { disrupted <- d.run(chaos, over) }()
	progress := time.NewTicker(30 * time.Second)
	for !over() && ctx.Err() == nil {
		select {
		case <-progress.C:
			log.logf("%d releases begun, %d kills, %d failovers so far", started.Load(),
				st.count(soloKill)+st.count(leaderKill)+st.count(defaultKill), st.count(leaderKill)+st.count(leaderStop)+st.count(defaultKill))
		case <-time.After(time.Second):
		}
	}
	progress.Stop()
	stop.Store(true)
	if err := <-disrupted; err != nil {
		t.Errorf("disruptor: %v", err)
	}
	stopChaos()
	log.logf("chaos over after %s; the releases in progress finish", time.Since(began).Round(time.Second))
	lanesWG.Wait()
	stopWriting()
	wg.Wait()

	// What the checker saw, and the suite's own assertions.
	rep := &report{sz: sz, took: time.Since(began), seed: seed, st: st, obs: obs, f: f, prom: prom}
	for i, l := range lanes {
		settle, done := context.WithTimeout(context.Background(), time.Minute)
		_ = l.chk.Settle(settle)
		done()
		l.chk.Close()
		res := laneResult{spec: l.spec, ns: l.ns, violations: l.chk.Violations(), err: laneErrs[i]}
		res.opened, res.ended = l.chk.Releases()
		res.inPart, res.unjudged = l.chk.JudgedInPart()
		rep.violation += len(res.violations)
		rep.lanes = append(rep.lanes, res)
	}
	for _, m := range obs.faultMeasurements() {
		if m.phase == v1alpha1.AnalysisSuccessful || m.phase == v1alpha1.AnalysisFailed {
			st.violation("fault judged", fmt.Sprintf("%s metric %s: Prometheus' %s answer (value %s) was judged %s, which promotes or rolls back: %s",
				m.run, m.metric, m.fault, m.value, m.phase, m.message))
		}
	}
	text := rep.String()
	t.Log("\n" + text)
	if path := os.Getenv("SLUICE_CHAOS_REPORT"); path != "" {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Errorf("writing the report: %v", err)
		}
	}

	// The verdict.
	for _, l := range rep.lanes {
		if l.err != nil {
			t.Errorf("lane %s: %v", l.spec.name, l.err)
		}
		// The first of each invariant with its timeline (the report has
		// them too), the others in a line.
		shown := map[invariants.Invariant]bool{}
		for _, v := range l.violations {
			if shown[v.Invariant] {
				t.Errorf("namespace %s (%s): %s", l.ns, l.spec.name, v)
				continue
			}
			shown[v.Invariant] = true
			t.Errorf("namespace %s (%s): %s", l.ns, l.spec.name, v.Report())
		}
	}
	st.mu.Lock()
	for _, g := range groupViolations(st.violations) {
		t.Errorf("%s, %d times; the first: %s", g.what, len(g.messages), g.messages[0])
	}
	st.mu.Unlock()
	if !targetsMet() {
		t.Errorf("targets not met within %s (%d per lane): %d releases of %d, kills %d/%d, failovers %d/%d, graceful stops %d/%d, API server restarts %d/%d, default-lease failovers %d/%d",
			sz.timeout, sz.perLane, started.Load(), sz.releases,
			st.count(soloKill)+st.count(leaderKill)+st.count(defaultKill), sz.kills,
			st.count(leaderKill)+st.count(leaderStop)+st.count(defaultKill), sz.failovers,
			st.count(leaderStop), sz.stops, st.count(apiServerReset), sz.apiServerRestarts, st.count(defaultKill), sz.defaultLeaseFailovers)
	}
	if sz.name == "full" {
		checkFaultCoverage(t, prom, obs)
	}
}

// checkFaultCoverage fails the long run if a fault never reached an
// analysis: every fault had a window and answered queries, and each
// well-formed garbage answer produced measurements.
func checkFaultCoverage(t *testing.T, prom *promFaults, obs *observer) {
	_, answered := prom.snapshot()
	produced := map[fault]int{}
	for _, m := range obs.faultMeasurements() {
		produced[m.fault]++
	}
	for _, f := range allFaults {
		if answered[f] == 0 {
			t.Errorf("Prometheus fault %s never answered a query", f)
		}
		switch f {
		case faultNaN, faultInf, faultNegInf, faultEmpty, faultMatrix:
			if produced[f] == 0 {
				t.Errorf("Prometheus fault %s produced no measurement", f)
			}
		}
	}
}

// each runs f on every lane at once and returns the first error.
func each(lanes []*lane, f func(*lane) error) error {
	errs := make([]error, len(lanes))
	var wg sync.WaitGroup
	for i, l := range lanes {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = f(l) }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// testLog logs through t from any goroutine until the test ends.
type testLog struct {
	mu     sync.Mutex
	t      *testing.T
	closed bool
}

func (l *testLog) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.t.Logf("%s "+format, append([]any{time.Now().Format("15:04:05.000")}, args...)...)
	}
}

func (l *testLog) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
}
