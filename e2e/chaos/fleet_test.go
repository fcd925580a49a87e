//go:build e2e

package chaos_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/sluicehq/sluice/devenv/controlplane"
	"github.com/sluicehq/sluice/devenv/manager"
)

// mode is how the fleet runs sluice-controller.
type mode struct {
	name     string
	replicas int
	args     []string
}

// The lease timings of the pair mode: a killed leader's Lease expires
// after 6s, so a failover costs about that (controller-runtime's defaults,
// 15s/10s/2s, cost 15–17s; the default-lease mode measures them).
var (
	soloMode = mode{name: "solo", replicas: 1, args: []string{"--leader-elect=false"}}
	pairMode = mode{name: "pair", replicas: 2, args: []string{
		"--leader-elect=true", "--leader-election-namespace=" + managerNamespace,
		"--leader-election-lease-duration=6s", "--leader-election-renew-deadline=4s", "--leader-election-retry-period=1s",
	}}
	pairDefaultLeaseMode = mode{name: "pair, default lease", replicas: 2, args: []string{
		"--leader-elect=true", "--leader-election-namespace=" + managerNamespace,
	}}
)

// fleet is two sluice-controller replicas under a supervisor that starts
// again whichever should run and does not (killed, crashed, or exited on
// losing its leader election), as a Deployment's ReplicaSet would.
type fleet struct {
	cp       *controlplane.ControlPlane
	base     manager.Options
	kube     kubernetes.Interface
	replicas []*replica
	log      func(format string, args ...any)

	mu   sync.Mutex
	mode mode
	// exits are the exits nobody asked for, with the end of the log.
	exits []exitRecord
	// starts counts the processes started, startFailures the failed starts.
	starts, startFailures int
	// readyTimes are the times from a start to ready (webhooks served and
	// registered), the part of a solo kill's cost spent starting.
	readyTimes []time.Duration
}

type exitRecord struct {
	replica string
	at      time.Time
	why     string
}

// replica is one sluice-controller process slot. Its webhook port is
// fixed, so that the webhook proxy reaches a process from the moment it
// serves, before the supervisor knows it started (a solo manager's
// controllers write through its own webhooks at once).
type replica struct {
	name        string
	dir         string
	webhookPort int

	mu       sync.Mutex
	m        *manager.Manager // nil while stopped or starting
	want     bool
	starting bool
	stopping bool
	args     []string
}

func newFleet(cp *controlplane.ControlPlane, base manager.Options, dir string, log func(string, ...any)) (*fleet, error) {
	kube, err := kubernetes.NewForConfig(cp.RESTConfig())
	if err != nil {
		return nil, err
	}
	f := &fleet{cp: cp, base: base, kube: kube, log: log}
	for _, name := range []string{"a", "b"} {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		f.replicas = append(f.replicas, &replica{name: name, dir: filepath.Join(dir, "replica-"+name), webhookPort: port})
	}
	return f, nil
}

// supervise runs until ctx ends, starting every replica that should run
// and does not.
func (f *fleet) supervise(ctx context.Context) {
	var wg sync.WaitGroup
	for _, r := range f.replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.superviseOne(ctx, r)
		}()
	}
	wg.Wait()
}

func (f *fleet) superviseOne(ctx context.Context, r *replica) {
	backoff := time.Duration(0)
	for sleep(ctx, 100*time.Millisecond+backoff) {
		r.mu.Lock()
		if r.m != nil {
			if done, err := r.m.Exited(); done {
				f.recordExit(r.name, err)
				r.m = nil
			}
		}
		need := r.want && !r.starting && !r.stopping && r.m == nil
		args := r.args
		if need {
			r.starting = true
		}
		r.mu.Unlock()
		if !need {
			continue
		}
		o := f.base
		o.WebhookPort = r.webhookPort
		o.Args = append(append([]string(nil), f.base.Args...), args...)
		began := time.Now()
		m, err := manager.Start(ctx, f.cp, r.dir, o)
		r.mu.Lock()
		r.starting = false
		switch {
		case err != nil:
			r.mu.Unlock()
			f.mu.Lock()
			f.startFailures++
			f.mu.Unlock()
			if ctx.Err() == nil {
				f.log("replica %s did not start (retrying): %v", r.name, firstLine(err.Error()))
			}
			backoff = min(2*backoff+500*time.Millisecond, 5*time.Second)
			continue
		case !r.want:
			// The mode changed while it started.
			r.mu.Unlock()
			m.Stop()
			continue
		}
		backoff = 0
		r.m = m
		r.mu.Unlock()
		f.mu.Lock()
		f.starts++
		f.readyTimes = append(f.readyTimes, time.Since(began))
		f.mu.Unlock()
	}
	// The end of the run: stop what runs.
	r.mu.Lock()
	m := r.m
	r.m, r.want = nil, false
	r.mu.Unlock()
	if m != nil {
		m.Stop()
	}
}

func (f *fleet) recordExit(name string, err error) {
	why := "exited"
	if err != nil {
		why = err.Error()
	}
	f.mu.Lock()
	f.exits = append(f.exits, exitRecord{replica: name, at: time.Now(), why: why})
	f.mu.Unlock()
	f.log("replica %s exited by itself: %s", name, firstLine(why))
}

// setMode stops every replica, waits until none runs, starts the replicas
// of m and waits until they run: a solo manager and an elected one never
// run together. Meanwhile the mode is "switching".
func (f *fleet) setMode(ctx context.Context, m mode) error {
	f.mu.Lock()
	f.mode = mode{name: "switching"} // no replica runs for a moment
	f.mu.Unlock()
	for _, r := range f.replicas {
		r.mu.Lock()
		r.want = false
		old := r.m
		r.m = nil
		r.mu.Unlock()
		if old != nil {
			old.Stop()
		}
	}
	for _, r := range f.replicas {
		if err := controlplane.WaitFor(ctx, 2*time.Minute, func() (bool, error) {
			r.mu.Lock()
			defer r.mu.Unlock()
			return !r.starting, nil
		}); err != nil {
			return fmt.Errorf("replica %s still starting: %w", r.name, err)
		}
	}
	for i, r := range f.replicas {
		r.mu.Lock()
		r.want, r.args = i < m.replicas, m.args
		r.mu.Unlock()
	}
	f.log("managers: %s mode", m.name)
	if err := f.waitRunning(ctx, 2*time.Minute); err != nil {
		return fmt.Errorf("%s mode: %w", m.name, err)
	}
	f.mu.Lock()
	f.mode = m
	f.mu.Unlock()
	return nil
}

// modeName is the mode the fleet runs in.
func (f *fleet) modeName() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mode.name
}

// waitRunning waits until every replica of the mode runs (is ready).
func (f *fleet) waitRunning(ctx context.Context, timeout time.Duration) error {
	return controlplane.WaitFor(ctx, timeout, func() (bool, error) {
		for _, r := range f.replicas {
			r.mu.Lock()
			down := r.want && r.m == nil
			r.mu.Unlock()
			if down {
				return false, nil
			}
		}
		return true, nil
	})
}

// webhookAddresses are the replicas' webhook addresses (the webhook
// proxy's backends): one that is down refuses at once.
func (f *fleet) webhookAddresses() []string {
	var out []string
	for _, r := range f.replicas {
		out = append(out, fmt.Sprintf("127.0.0.1:%d", r.webhookPort))
	}
	return out
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// running returns the replica's process, or nil.
func (r *replica) running() *manager.Manager {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m
}

// kill SIGKILLs the replica's process (as a crash or an OOM kill would)
// and returns when it is gone; the supervisor starts it again.
func (r *replica) kill() bool {
	r.mu.Lock()
	m := r.m
	r.m = nil
	r.mu.Unlock()
	if m == nil {
		return false
	}
	m.Kill()
	return true
}

// stop stops the replica's process gracefully (SIGTERM, as a rolling
// update or a node drain does); once it has exited the supervisor starts
// it again, as a ReplicaSet starts a replacement.
func (r *replica) stop() bool {
	r.mu.Lock()
	m := r.m
	r.m, r.stopping = nil, m != nil
	r.mu.Unlock()
	if m == nil {
		return false
	}
	m.Stop()
	r.mu.Lock()
	r.stopping = false
	r.mu.Unlock()
	return true
}

// leader returns the replica whose process says it leads (controller-
// runtime's leader_election_master_status gauge), or nil.
func (f *fleet) leader(ctx context.Context) *replica {
	var found *replica
	for _, r := range f.replicas {
		m := r.running()
		if m == nil {
			continue
		}
		if leads, err := leads(ctx, m); err == nil && leads {
			if found != nil {
				return nil // a handover in progress
			}
			found = r
		}
	}
	return found
}

func leads(ctx context.Context, m *manager.Manager) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	metrics, err := m.Metrics(ctx)
	if err != nil {
		return false, err
	}
	want := fmt.Sprintf("leader_election_master_status{name=%q} 1", leaseName)
	return slices.Contains(strings.Split(metrics, "\n"), want), nil
}

// lease reads the leader-election Lease: its holder and when it was
// acquired.
func (f *fleet) lease(ctx context.Context) (holder string, acquired time.Time, err error) {
	l, err := f.kube.CoordinationV1().Leases(managerNamespace).Get(ctx, leaseName, metav1.GetOptions{})
	if err != nil {
		return "", time.Time{}, err
	}
	if l.Spec.HolderIdentity != nil {
		holder = *l.Spec.HolderIdentity
	}
	if l.Spec.AcquireTime != nil {
		acquired = l.Spec.AcquireTime.Time
	}
	return holder, acquired, nil
}

// waitTakeover waits until the Lease has a holder other than old, and
// returns when that holder acquired it.
func (f *fleet) waitTakeover(ctx context.Context, old string, timeout time.Duration) (time.Time, error) {
	var acquired time.Time
	err := controlplane.WaitFor(ctx, timeout, func() (bool, error) {
		holder, at, err := f.lease(ctx)
		if err != nil {
			return false, nil // the API server may be restarting
		}
		acquired = at
		return holder != "" && holder != old, nil
	})
	return acquired, err
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}
