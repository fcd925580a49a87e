//go:build e2e

package bench_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/api/rollouts/v1beta1"
	"github.com/sluicehq/sluice/cmd/sluice-controller/app"
	"github.com/sluicehq/sluice/e2e/framework"
)

// BenchmarkPlot draws the fleet plot again from the results in
// SLUICE_BENCH_FLEET_OUT, next to it, and runs nothing else; with -bench
// Plot exactly, no environment is started either:
//
//	SLUICE_BENCH_FLEET_OUT=$PWD/bin/bench-fleet.jsonl go test -tags e2e -run '^$' -bench Plot ./e2e/bench
func BenchmarkPlot(b *testing.B) {
	in := os.Getenv("SLUICE_BENCH_FLEET_OUT")
	if in == "" {
		b.Skip("SLUICE_BENCH_FLEET_OUT names no results to plot")
	}
	for b.Loop() {
		if err := plotFleet(in, strings.TrimSuffix(in, ".jsonl")+".png"); err != nil {
			b.Fatal(err)
		}
	}
}

// fleetConfig is the fleet benchmark's size, from the environment (make
// bench-fleet runs one size per test binary, so that each size has a
// control plane and a manager process of its own).
type fleetConfig struct {
	// Rollouts, each on a Deployment of replicas pods
	// (SLUICE_BENCH_FLEET, default 100).
	rollouts, replicas int
	// Unrelated Deployments without a Rollout, one pod each: what the
	// controller should not pay for (SLUICE_BENCH_FLEET_UNRELATED, default
	// twice the Rollouts).
	unrelated int
	// Idle is how long the Rollouts are left at rest while the manager's
	// requests are counted (SLUICE_BENCH_FLEET_IDLE, default 30s).
	idle time.Duration
	// Timeout bounds each wave of releases (SLUICE_BENCH_FLEET_TIMEOUT,
	// default 30m): what did not complete by then is reported as such.
	timeout time.Duration
	// Out, when set, is a JSON-lines file the result is appended to; the
	// plot of every result in it is drawn next to it, as .png
	// (SLUICE_BENCH_FLEET_OUT).
	out string
	// SkipNative leaves out the native wave (SLUICE_BENCH_FLEET_NATIVE=0):
	// a large fleet reaches its releases sooner, without the comparison.
	skipNative bool
	// Budget, when set, bounds the whole run (SLUICE_BENCH_FLEET_BUDGET):
	// a phase still running when it is spent ends the run, which reports
	// what it measured up to there (a size this machine cannot finish).
	budget time.Duration
	// ManagerArgs are added to the manager's command line for this run
	// (SLUICE_BENCH_MANAGER_ARGS, space-separated), e.g. to try worker
	// counts or client QPS.
	managerArgs []string
}

func fleetFromEnv() (fleetConfig, error) {
	c := fleetConfig{rollouts: 100, replicas: releaseReplicas, idle: 30 * time.Second, timeout: 30 * time.Minute}
	var err error
	num := func(key string, into *int) {
		if v := os.Getenv(key); v != "" && err == nil {
			if *into, err = strconv.Atoi(v); err == nil && *into < 0 {
				err = fmt.Errorf("%s=%s: must not be negative", key, v)
			} else if err != nil {
				err = fmt.Errorf("%s=%s: %w", key, v, err)
			}
		}
	}
	dur := func(key string, into *time.Duration) {
		if v := os.Getenv(key); v != "" && err == nil {
			if *into, err = time.ParseDuration(v); err != nil {
				err = fmt.Errorf("%s=%s: %w", key, v, err)
			}
		}
	}
	num("SLUICE_BENCH_FLEET", &c.rollouts)
	c.unrelated = 2 * c.rollouts
	num("SLUICE_BENCH_FLEET_UNRELATED", &c.unrelated)
	dur("SLUICE_BENCH_FLEET_IDLE", &c.idle)
	dur("SLUICE_BENCH_FLEET_TIMEOUT", &c.timeout)
	dur("SLUICE_BENCH_FLEET_BUDGET", &c.budget)
	c.out = os.Getenv("SLUICE_BENCH_FLEET_OUT")
	c.skipNative = os.Getenv("SLUICE_BENCH_FLEET_NATIVE") == "0"
	c.managerArgs = strings.Fields(os.Getenv("SLUICE_BENCH_MANAGER_ARGS"))
	return c, err
}

// nodes is how many kwok nodes (110 pods each) the fleet needs: every
// pod, a rolling update's surge, and room to spare.
func (c fleetConfig) nodes() int {
	pods := c.rollouts*c.replicas*13/10 + c.unrelated
	return pods/100 + 3
}

// fleetResult is one size's measurements (a line of SLUICE_BENCH_FLEET_OUT).
type fleetResult struct {
	Rollouts    int      `json:"rollouts"`
	Replicas    int      `json:"replicas"`
	Unrelated   int      `json:"unrelated"`
	ManagerArgs []string `json:"managerArgs,omitempty"`
	// Completed is how many releases completed within the timeout.
	Completed int `json:"completed"`
	// NativeLast and ReleaseLast are the times from the first write of a
	// wave to its last Deployment done: native rolling updates, then
	// releases by the Rollouts.
	NativeLast  float64 `json:"nativeLastSeconds"`
	ReleaseLast float64 `json:"releaseLastSeconds"`
	// StartSpread is how long this process took to write every release's
	// new template (the releases start over that time).
	StartSpread float64 `json:"startSpreadSeconds"`
	// Transition quantiles: a batch ready in the API to the controller's
	// next write, over every batch of every release.
	TransitionP50 float64 `json:"transitionP50Seconds"`
	TransitionP99 float64 `json:"transitionP99Seconds"`
	Transitions   int     `json:"transitions"`
	// The manager process: peak and idle resident memory, CPU seconds in
	// all and during the releases.
	PeakRSSMiB    float64 `json:"peakRSSMiB"`
	IdleRSSMiB    float64 `json:"idleRSSMiB"`
	CPUSeconds    float64 `json:"cpuSeconds"`
	CPUReleases   float64 `json:"cpuSecondsDuringReleases"`
	RequestsPer   float64 `json:"requestsPerRelease"`
	WritesPer     float64 `json:"writesPerRelease"`
	IdleRequests  float64 `json:"idleRequestsPerSecond"`
	IdleSeconds   float64 `json:"idleSeconds"`
	When          string  `json:"when"`
	LoadAverage   string  `json:"loadAverage"`
	ReachedPhases string  `json:"lastPhase"`
	// WriteRetries counts the new templates written again after an error.
	WriteRetries int `json:"writeRetries,omitempty"`
}

// BenchmarkFleet creates a fleet (fleetConfig), updates every Rollout's
// Deployment natively at once, then puts each under a zero-pause 3-step
// Rollout, leaves them at rest (counting the manager's requests), and
// releases every one at once. It prints completion, the time to the last
// release against the native wave, step-transition p50/p99, the manager's
// peak RSS and CPU seconds, its API requests per release and while idle.
// Run with -benchtime 1x: one fleet per binary.
func BenchmarkFleet(b *testing.B) {
	cfg, err := fleetFromEnv()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		res := runFleet(b, cfg)
		res.print()
		if cfg.out != "" {
			if err := res.append(cfg.out); err != nil {
				b.Fatal(err)
			}
			png := strings.TrimSuffix(cfg.out, ".jsonl") + ".png"
			if err := plotFleet(cfg.out, png); err != nil {
				b.Fatal(err)
			}
			fmt.Printf("   results appended to %s, plot of every result there: %s\n", cfg.out, png)
		}
		b.ReportMetric(res.PeakRSSMiB, "peak-RSS-MiB")
		b.ReportMetric(res.TransitionP99*1000, "transition-p99-ms")
		if res.NativeLast > 0 {
			b.ReportMetric(res.ReleaseLast/res.NativeLast, "x-native")
		}
	}
}

// fleet is one run's namespace, clients and recorder.
type fleet struct {
	b   *testing.B
	ctx context.Context
	cfg fleetConfig
	ns  string
	c   client.Client // a fast client: the fleet is written at hundreds of requests/s
	rec *recorder
	res fleetResult
	// end is when the budget is spent (zero: no budget).
	end time.Time
}

// deadline is when a phase that starts now must end: its timeout, or the
// end of the budget if sooner.
func (f *fleet) deadline() time.Time {
	d := time.Now().Add(f.cfg.timeout)
	if !f.end.IsZero() && f.end.Before(d) {
		d = f.end
	}
	return d
}

func appName(i int) string { return fmt.Sprintf("app-%04d", i) }

func runFleet(b *testing.B, cfg fleetConfig) fleetResult {
	ctx := b.Context()
	rc := env.ControlPlane.RESTConfig()
	rc.QPS, rc.Burst = 500, 1000
	c, err := client.New(rc, client.Options{Scheme: app.Scheme()})
	if err != nil {
		b.Fatal(err)
	}
	if len(cfg.managerArgs) > 0 {
		if err := env.Manager.Restart(ctx, env.ControlPlane, cfg.managerArgs...); err != nil {
			b.Fatal(err)
		}
	}
	// No invariant checker here: it would watch every pod of the fleet
	// from this process; the releases' safety is e2e's and chaos's job.
	f := &fleet{b: b, ctx: ctx, cfg: cfg, ns: framework.NewNamespace(b, env.ControlPlane), c: c}
	if cfg.budget > 0 {
		f.end = time.Now().Add(cfg.budget)
	}
	f.res = fleetResult{Rollouts: cfg.rollouts, Replicas: cfg.replicas, Unrelated: cfg.unrelated, ManagerArgs: cfg.managerArgs, When: time.Now().UTC().Format(time.RFC3339)}
	if f.rec, err = record(ctx, f.ns, &v1beta1.RolloutList{}, &appsv1.DeploymentList{}, &appsv1.ReplicaSetList{}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(f.rec.stop)
	step := func(what string) {
		f.res.ReachedPhases = what // the last phase reached, should the run stop
		fmt.Printf("   [%s] %s\n", time.Now().Format("15:04:05"), what)
	}

	stopped := func(what string) fleetResult {
		fmt.Printf("   [%s] stopped: %s not reached within the time allowed\n", time.Now().Format("15:04:05"), what)
		f.res.PeakRSSMiB, _ = procPeakRSS(env.Manager.PID())
		f.res.CPUSeconds, _ = procCPU(env.Manager.PID())
		f.res.ReachedPhases += " (then stopped: " + what + " not reached in time)"
		return f.res
	}
	if !f.createDeployments() {
		return stopped("every Deployment available")
	}
	step(fmt.Sprintf("%d Deployments of %d pods and %d unrelated Deployments available", cfg.rollouts, cfg.replicas, cfg.unrelated))

	// The same change as the releases, natively, all at once.
	if !cfg.skipNative {
		last, _, done := f.wave(image(1), false)
		f.res.NativeLast = last.Seconds()
		step(fmt.Sprintf("native wave: %d/%d done, the last after %s", done, cfg.rollouts, ms(last)))
		if done < cfg.rollouts {
			return stopped("the native wave's end")
		}
	}
	if !f.createRollouts() {
		return stopped("every Rollout Healthy")
	}
	step("Rollouts Healthy")

	// At rest: what does the manager do with nothing to do?
	time.Sleep(5 * time.Second) // the set-up's last events
	before, err := scrapeRequests()
	if err != nil {
		b.Fatal(err)
	}
	idleStart := time.Now()
	time.Sleep(cfg.idle)
	after, err := scrapeRequests()
	if err != nil {
		b.Fatal(err)
	}
	f.res.IdleSeconds = time.Since(idleStart).Seconds()
	f.res.IdleRequests = after.sub(before).total() / f.res.IdleSeconds
	f.res.IdleRSSMiB, _ = procRSS(env.Manager.PID())
	step(fmt.Sprintf("idle for %s: %.2f requests/s", ms(time.Since(idleStart)), f.res.IdleRequests))

	cpu0, _ := procCPU(env.Manager.PID())
	before, err = scrapeRequests()
	if err != nil {
		b.Fatal(err)
	}
	from := f.rec.mark()
	last, spread, done := f.wave(image(2), true)
	f.res.ReleaseLast, f.res.StartSpread, f.res.Completed = last.Seconds(), spread.Seconds(), done
	step(fmt.Sprintf("release wave: %d/%d completed, the last after %s", done, cfg.rollouts, ms(last)))
	time.Sleep(2 * time.Second) // the last Events are sent asynchronously
	if after, err = scrapeRequests(); err != nil {
		b.Fatal(err)
	}
	cpu1, _ := procCPU(env.Manager.PID())
	f.res.CPUReleases, f.res.CPUSeconds = cpu1-cpu0, cpu1
	f.res.PeakRSSMiB, _ = procPeakRSS(env.Manager.PID())
	// Per release started, not completed: a wave cut short by its timeout
	// has every release in flight, and dividing by the completed ones
	// would charge them the others' requests.
	d := after.sub(before)
	f.res.RequestsPer, f.res.WritesPer = d.total()/float64(cfg.rollouts), d.writes()/float64(cfg.rollouts)

	ts, err := f.transitions(from, image(2))
	if err != nil {
		b.Logf("transitions: %v", err)
	}
	f.res.Transitions = len(ts)
	f.res.TransitionP50, f.res.TransitionP99 = ts.quantile(0.5).Seconds(), ts.quantile(0.99).Seconds()
	if l, err := os.ReadFile("/proc/loadavg"); err == nil {
		f.res.LoadAverage = strings.Join(strings.Fields(string(l))[:3], " ")
	}
	return f.res
}

// parallel runs do(i) for i in [0, n) on 32 workers and returns the first
// error.
func parallel(n int, do func(i int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  = make(chan int)
	)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := do(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

func (f *fleet) createDeployments() bool {
	n := f.cfg.rollouts + f.cfg.unrelated
	err := parallel(n, func(i int) error {
		d := framework.Deployment("", appName(i), int32(f.cfg.replicas), imageV1)
		if i >= f.cfg.rollouts {
			d = framework.Deployment("", fmt.Sprintf("other-%04d", i-f.cfg.rollouts), 1, imageV1)
		}
		d.Namespace = f.ns
		return f.c.Create(f.ctx, d)
	})
	if err != nil {
		f.b.Fatal(err)
	}
	return f.poll("every Deployment available", func() (bool, error) {
		var list appsv1.DeploymentList
		if err := f.c.List(f.ctx, &list, client.InNamespace(f.ns)); err != nil {
			return false, err
		}
		ready := 0
		for i := range list.Items {
			if deploymentDone(&list.Items[i], imageV1) {
				ready++
			}
		}
		return ready == n, nil
	})
}

func (f *fleet) createRollouts() bool {
	err := parallel(f.cfg.rollouts, func(i int) error {
		r := &v1beta1.Rollout{
			ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: appName(i)},
			Spec: v1beta1.RolloutSpec{
				WorkloadRef: v1beta1.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Name: appName(i)},
				Strategy:    zeroPauseStrategy(),
			},
		}
		// The admission webhook can time out on a loaded machine: retry.
		var err error
		for attempt := range 5 {
			if attempt > 0 {
				f.b.Logf("creating Rollout %s again: %v", r.Name, err)
				time.Sleep(time.Second)
			}
			if err = f.c.Create(f.ctx, r.DeepCopy()); err == nil || apierrors.IsAlreadyExists(err) {
				return nil
			}
		}
		return err
	})
	if err != nil {
		f.b.Fatal(err)
	}
	return f.poll("every Rollout Healthy", func() (bool, error) {
		var list v1beta1.RolloutList
		if err := f.c.List(f.ctx, &list, client.InNamespace(f.ns)); err != nil {
			return false, err
		}
		healthy := 0
		for _, r := range list.Items {
			if r.Status.Phase == v1beta1.RolloutPhaseHealthy {
				healthy++
			}
		}
		return healthy == f.cfg.rollouts, nil
	})
}

// poll waits for cond until the phase's deadline; false if it did not
// hold by then.
func (f *fleet) poll(what string, cond func() (bool, error)) bool {
	f.b.Helper()
	if err := framework.Poll(f.ctx, time.Until(f.deadline()), cond); err != nil {
		f.b.Logf("%s: %v", what, err)
		return false
	}
	return true
}

// wave writes img into every Rollout's Deployment at once and waits until
// each is done (with Rollouts, also its Rollout Completed), for at most the
// timeout. It returns the time from the first write to the last done, how
// long the writes took, and how many were done.
func (f *fleet) wave(img string, rollouts bool) (last, spread time.Duration, done int) {
	from := f.rec.mark()
	start := time.Now()
	var mu sync.Mutex
	err := parallel(f.cfg.rollouts, func(i int) error {
		// A write can fail on a loaded machine (the freeze webhook's 10 s
		// timeout): try again, as kubectl's user or a GitOps tool would,
		// and count it.
		var err error
		for attempt := range 5 {
			if attempt > 0 {
				mu.Lock()
				f.res.WriteRetries++
				mu.Unlock()
				f.b.Logf("writing %s's template again: %v", appName(i), err)
				time.Sleep(time.Second)
			}
			d := &appsv1.Deployment{}
			if err = f.c.Get(f.ctx, client.ObjectKey{Namespace: f.ns, Name: appName(i)}, d); err != nil {
				continue
			}
			patch := client.MergeFrom(d.DeepCopy())
			d.Spec.Template.Spec.Containers[0].Image = img
			if err = f.c.Patch(f.ctx, d, patch); err == nil {
				return nil
			}
		}
		return err
	})
	if err != nil {
		f.b.Fatal(err)
	}
	spread = time.Since(start)
	doneAt := map[string]time.Time{}
	deadline := f.deadline()
	seen := from
	deployed, finished, started := map[string]time.Time{}, map[string]time.Time{}, map[string]bool{}
	for len(doneAt) < f.cfg.rollouts && time.Now().Before(deadline) {
		if err := f.rec.failed(); err != nil {
			f.b.Fatal(err)
		}
		events := f.rec.since(seen)
		seen += len(events)
		for _, e := range events {
			switch o := e.obj.(type) {
			case *appsv1.Deployment:
				if _, ok := deployed[o.Name]; !ok && strings.HasPrefix(o.Name, "app-") && deploymentDone(o, img) {
					deployed[o.Name] = e.at
				}
			case *v1beta1.Rollout:
				// Completed once it has been seen Progressing: this wave's
				// release, not the status left by an earlier one.
				if progressing(o) {
					started[o.Name] = true
				} else if _, ok := finished[o.Name]; !ok && started[o.Name] && completed(o) {
					finished[o.Name] = e.at
				}
			}
		}
		for name, at := range deployed {
			if _, ok := doneAt[name]; ok {
				continue
			}
			if !rollouts {
				doneAt[name] = at
			} else if c, ok := finished[name]; ok {
				doneAt[name] = later(at, c)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, at := range doneAt {
		if at.Sub(start) > last {
			last = at.Sub(start)
		}
	}
	return last, spread, len(doneAt)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func zeroPauseStrategy() v1beta1.RolloutStrategy {
	zero := int32(0)
	return v1beta1.RolloutStrategy{Canary: &v1beta1.CanaryStrategy{Steps: []v1beta1.CanaryStep{
		{Replicas: ptr.To(intstr.FromInt32(1)), Pause: v1beta1.RolloutPause{Duration: &zero}},
		{Replicas: ptr.To(intstr.FromString("50%")), Pause: v1beta1.RolloutPause{Duration: &zero}},
		{Replicas: ptr.To(intstr.FromString("100%"))},
	}}}
}

func (r fleetResult) append(path string) error {
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	fh, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := fh.Write(append(line, '\n')); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}

func (r fleetResult) print() {
	fmt.Printf("\n== Fleet (issue 11): %d Rollouts on %d-replica Deployments, %d unrelated Deployments; releases started at once (3 steps, no pause)\n",
		r.Rollouts, r.Replicas, r.Unrelated)
	fmt.Println(machine())
	if len(r.ManagerArgs) > 0 {
		fmt.Printf("   manager flags: %s\n", strings.Join(r.ManagerArgs, " "))
	}
	fmt.Printf("   completed: %d of %d (last phase reached: %s)\n", r.Completed, r.Rollouts, r.ReachedPhases)
	if r.WriteRetries > 0 {
		fmt.Printf("   new templates written again after an error (e.g. the freeze webhook timing out): %d\n", r.WriteRetries)
	}
	if r.NativeLast > 0 {
		fmt.Printf("   time to the last: releases %.1f s, the same change as native rolling updates %.1f s: %.2fx (writing the %d new templates took %.1f s)\n",
			r.ReleaseLast, r.NativeLast, r.ReleaseLast/r.NativeLast, r.Rollouts, r.StartSpread)
	} else {
		fmt.Printf("   time to the last release: %.1f s (no native wave in this run; writing the %d new templates took %.1f s)\n", r.ReleaseLast, r.Rollouts, r.StartSpread)
	}
	fmt.Printf("   step transitions (batch ready in the API -> the controller's next write): p50 %s, p99 %s (n=%d); target p99 < 1 s at 100: %s\n",
		ms(time.Duration(r.TransitionP50*float64(time.Second))), ms(time.Duration(r.TransitionP99*float64(time.Second))), r.Transitions, verdict(r.TransitionP99 < 1))
	fmt.Printf("   manager: peak RSS %.0f MiB (idle %.0f MiB); target < 300 MiB at 1,000: %s; CPU %.1f s in all, %.1f s during the releases\n",
		r.PeakRSSMiB, r.IdleRSSMiB, verdict(r.PeakRSSMiB < 300), r.CPUSeconds, r.CPUReleases)
	perRelease := "API requests per release"
	if r.Completed < r.Rollouts {
		perRelease += " started (a lower bound: not all completed)"
	}
	fmt.Printf("   %s: %.1f (writes %.1f); while every Rollout is idle: %.3f requests/s over %.0f s (target 0: %s)\n",
		perRelease, r.RequestsPer, r.WritesPer, r.IdleRequests, r.IdleSeconds, verdict(r.IdleRequests == 0))
}
