//go:build e2e

package chaos_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/sluicehq/sluice/devenv/controlplane"
)

// What a disruption was.
const (
	soloKill       = "SIGKILL, one manager (restarted by the supervisor)"
	leaderKill     = "SIGKILL of the leader (lease 6s)"
	leaderStop     = "SIGTERM of the leader (graceful)"
	defaultKill    = "SIGKILL of the leader (default lease 15s)"
	apiServerReset = "kube-apiserver restart"
)

// disruption is one thing done to the manager or the control plane.
type disruption struct {
	what string
	// at is when the manager was gone (a SIGKILL returns once the process
	// is reaped), the SIGTERM was sent, or the API server was stopped.
	at time.Time
	// affected are the Rollouts whose release was in progress at that
	// moment: the cost is the time until the controller wrote one of
	// their statuses again.
	affected map[string]bool
	// takeover is when another replica acquired the Lease (pair modes);
	// back is when the API server was ready again.
	takeover, back time.Time
}

// disruptor kills, stops and restarts: solo eras (one manager SIGKILLed
// 1–6s after each start) and pair eras (two replicas, the leader killed
// or stopped 1–6s after it took over, mid-release), until the targets are
// met.
type disruptor struct {
	f   *fleet
	cp  *controlplane.ControlPlane
	obs *observer
	st  *stats
	sz  size
	rng *rand.Rand
}

// run runs eras until done says so, then leaves the pair running.
func (d *disruptor) run(ctx context.Context, done func() bool) error {
	for !done() {
		if err := d.soloEra(ctx, done); err != nil {
			return err
		}
		if done() {
			break
		}
		if err := d.pairEra(ctx, pairMode, d.sz.pairEra, done); err != nil {
			return err
		}
		if d.st.count(defaultKill) < d.sz.defaultLeaseFailovers {
			if err := d.pairEra(ctx, pairDefaultLeaseMode, 1, done); err != nil {
				return err
			}
		}
	}
	return d.f.setMode(ctx, pairMode)
}

// targetsMet reports whether every disruption target is reached.
func (d *disruptor) targetsMet() bool {
	st, sz := d.st, d.sz
	kills := st.count(soloKill) + st.count(leaderKill) + st.count(defaultKill)
	failovers := st.count(leaderKill) + st.count(leaderStop) + st.count(defaultKill)
	return kills >= sz.kills && failovers >= sz.failovers && st.count(leaderStop) >= sz.stops &&
		st.count(apiServerReset) >= sz.apiServerRestarts && st.count(defaultKill) >= sz.defaultLeaseFailovers
}

func (d *disruptor) soloEra(ctx context.Context, done func() bool) error {
	if err := d.f.setMode(ctx, soloMode); err != nil {
		return err
	}
	r := d.f.replicas[0]
	end := time.Now().Add(d.sz.soloEra)
	for time.Now().Before(end) && !done() {
		if err := d.f.waitRunning(ctx, 2*time.Minute); err != nil {
			return fmt.Errorf("the solo manager did not come back: %w", err)
		}
		if !sleep(ctx, between(d.rng, [2]time.Duration{time.Second, 6 * time.Second})) {
			return ctx.Err()
		}
		affected := d.obs.inProgress()
		if r.kill() {
			d.st.disrupted(disruption{what: soloKill, at: time.Now(), affected: affected})
		}
	}
	return nil
}

// pairEra runs two replicas electing a leader and disrupts the leader n
// times: SIGKILL, or SIGTERM until the stops target is met; once per era,
// until that target is met, the API server is restarted too.
func (d *disruptor) pairEra(ctx context.Context, m mode, n int, done func() bool) error {
	if err := d.f.setMode(ctx, m); err != nil {
		return err
	}
	restarted := false
	for i := 0; i < n && !done(); i++ {
		leader, holder, acquired, err := d.waitLeader(ctx)
		if err != nil {
			return err
		}
		// Mid-release: wait (a while) for a release in progress.
		_ = controlplane.WaitFor(ctx, 30*time.Second, func() (bool, error) { return len(d.obs.inProgress()) > 0, nil })
		at := acquired.Add(between(d.rng, [2]time.Duration{time.Second, 6 * time.Second}))
		if wait := time.Until(at); wait > 0 && !sleep(ctx, wait) {
			return ctx.Err()
		}
		what := leaderKill
		switch {
		case m.name == pairDefaultLeaseMode.name:
			what = defaultKill
		case d.st.count(leaderStop) < d.sz.stops && d.rng.Float64() < 0.35:
			what = leaderStop
		}
		affected := d.obs.inProgress()
		ev := disruption{what: what, affected: affected}
		if what == leaderStop {
			ev.at = time.Now()
			if !leader.stop() {
				continue
			}
		} else {
			if !leader.kill() {
				continue
			}
			ev.at = time.Now()
		}
		if ev.takeover, err = d.f.waitTakeover(ctx, holder, 2*time.Minute); err != nil {
			return fmt.Errorf("no replica took over from %s after %s: %w", holder, what, err)
		}
		d.st.disrupted(ev)
		if !restarted && d.st.count(apiServerReset) < d.sz.apiServerRestarts {
			restarted = true
			if err := d.restartAPIServer(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// waitLeader waits until one replica leads and returns it with the
// Lease's holder and acquire time.
func (d *disruptor) waitLeader(ctx context.Context) (*replica, string, time.Time, error) {
	var (
		leader   *replica
		holder   string
		acquired time.Time
	)
	err := controlplane.WaitFor(ctx, 2*time.Minute, func() (bool, error) {
		if leader = d.f.leader(ctx); leader == nil {
			return false, nil
		}
		var err error
		holder, acquired, err = d.f.lease(ctx)
		return err == nil && holder != "", nil
	})
	if err != nil {
		return nil, "", time.Time{}, fmt.Errorf("no leader: %w", err)
	}
	return leader, holder, acquired, nil
}

func (d *disruptor) restartAPIServer(ctx context.Context) error {
	// Mid-release, a moment after the takeover.
	if !sleep(ctx, between(d.rng, [2]time.Duration{time.Second, 6 * time.Second})) {
		return ctx.Err()
	}
	ev := disruption{what: apiServerReset, affected: d.obs.inProgress(), at: time.Now()}
	if err := d.cp.RestartAPIServer(ctx); err != nil {
		return fmt.Errorf("restarting kube-apiserver: %w", err)
	}
	ev.back = time.Now()
	d.st.disrupted(ev)
	// Let the controller write again before the next disruption, so that
	// what the restart cost is measured.
	_ = controlplane.WaitFor(ctx, time.Minute, func() (bool, error) {
		_, ok := d.obs.firstWriteAfter(ev.at, time.Time{}, ev.affected)
		return ok, nil
	})
	return d.f.waitRunning(ctx, 2*time.Minute)
}
