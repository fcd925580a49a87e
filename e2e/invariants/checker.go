package invariants

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// Checker watches one namespace and checks every invariant on every event
// (see the package documentation). It fails its test on the first
// violation of each invariant, with the timeline that led to it; later
// ones are logged. Close (registered with t.Cleanup by Start) drains the
// last events and runs the end-of-test checks.
type Checker struct {
	t         testing.TB
	namespace string
	opts      options
	model     *Model
	merge     *merger
	confirmer *confirmer
	disco     discovery.DiscoveryInterface
	dyn       dynamic.Interface
	streams   *streams
	informers []cache.SharedIndexInformer
	watching  [numKinds]bool
	stopWatch chan struct{}
	stopLoop  chan struct{}
	loopDone  chan struct{}
	wake      chan struct{}
	closeOnce sync.Once

	mu         sync.Mutex
	pending    []Event
	violations []Violation
	allowed    map[Invariant]string
	reported   map[Invariant]bool
	events     int
	opened     int
	ended      int
	evaluated  time.Time // the events received before it are evaluated
	discarded  int
	// gaps are the Gaps streams found, for the loop to give the model;
	// waiting the violations found while a watch was not settled.
	gaps             []Gap
	waiting          []deferred
	unseen, unjudged int
	errors           []string
	faults           int
}

type options struct {
	bounds       Bounds
	watermark    time.Duration
	reportOnly   bool
	requireEnded bool
	allowed      map[Invariant]string
	handle       **Checker
	writers      []string
}

// Option tunes a Checker.
type Option func(*options)

// WithLagBound sets how long pods or weight may run ahead of the Rollout's
// status step (one reconcile with margin; default 5s).
func WithLagBound(d time.Duration) Option { return func(o *options) { o.bounds.Lag = d } }

// WithReleaseBound sets how long a release may take to complete, roll back
// or be cancelled (default 10m).
func WithReleaseBound(d time.Duration) Option { return func(o *options) { o.bounds.Release = d } }

// WithWatermark sets how long an event is held before it is evaluated, so
// that events of other kinds with lower revisions can arrive (default 1s).
func WithWatermark(d time.Duration) Option { return func(o *options) { o.watermark = d } }

// WithTimeline sets how many events a violation's timeline shows (default 60).
func WithTimeline(n int) Option { return func(o *options) { o.bounds.Timeline = n } }

// ReportOnly records violations without failing the test, for tests that
// break the rules on purpose, chaos runs and benchmarks: read them with
// Violations.
func ReportOnly() Option { return func(o *options) { o.reportOnly = true } }

// RequireReleasesEnded makes a release still open at the end of the test a
// ReleaseEnds violation (by default it is only logged: many tests stop
// mid-release on purpose).
func RequireReleasesEnded() Option { return func(o *options) { o.requireEnded = true } }

// Allowing declares that the test breaks an invariant on purpose (e.g. it
// scales a ReplicaSet by hand): its violations are logged, not counted.
func Allowing(inv Invariant, reason string) Option {
	return func(o *options) { o.allowed[inv] = reason }
}

// Handle stores the started Checker in *c, for a test that starts it
// through a helper (the e2e framework's Namespace) and needs it later.
func Handle(c **Checker) Option { return func(o *options) { o.handle = c } }

// Start starts a Checker on namespace and registers its Close with
// t.Cleanup. ctx bounds only the start (discovery and the initial lists);
// the watches run until Close. It fails the test if it cannot start.
func Start(ctx context.Context, t testing.TB, cfg *rest.Config, namespace string, opts ...Option) *Checker {
	t.Helper()
	o := options{
		bounds:    Bounds{Lag: 5 * time.Second, Release: 10 * time.Minute, Timeline: 60},
		watermark: time.Second, allowed: map[Invariant]string{},
	}
	for _, opt := range opts {
		opt(&o)
	}
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = 50, 100
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("invariants: %v", err)
	}
	disco, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatalf("invariants: %v", err)
	}
	c := &Checker{
		t: t, namespace: namespace, opts: o, model: NewModel(o.bounds), merge: newMerger(o.watermark),
		confirmer: &confirmer{dyn: dyn, namespace: namespace}, disco: disco, dyn: dyn,
		stopWatch: make(chan struct{}), stopLoop: make(chan struct{}), loopDone: make(chan struct{}),
		wake: make(chan struct{}, 1), allowed: o.allowed, reported: map[Invariant]bool{},
	}
	c.model.SetConcurrentWriters(o.writers)
	c.streams = newStreams(2*time.Second, func(g Gap) {
		c.mu.Lock()
		c.gaps = append(c.gaps, g)
		c.mu.Unlock()
	})
	if o.handle != nil {
		*o.handle = c
	}
	if err := c.watchServedKinds(); err != nil {
		t.Fatalf("invariants: %v", err)
	}
	synced := make(chan struct{})
	go func() {
		cache.WaitForCacheSync(c.stopWatch, c.synced()...)
		close(synced)
	}()
	select {
	case <-synced:
	case <-ctx.Done():
		close(c.stopWatch)
		t.Fatalf("invariants: the initial lists of namespace %s did not complete: %v", namespace, ctx.Err())
	}
	// What the initial lists returned is the state the checker starts
	// from, not history to judge.
	c.mu.Lock()
	initial := uint64(0)
	for _, e := range c.pending {
		initial = max(initial, e.RV)
	}
	c.mu.Unlock()
	c.model.CatchUp(initial)
	go c.loop()
	t.Cleanup(c.Close)
	return c
}

// watchServedKinds starts an informer for every kind the API server serves
// that is not watched yet (OpenKruise's, the Gateway API's and Sluice's
// kinds appear with their CRDs).
func (c *Checker) watchServedKinds() error {
	served := map[string]map[string]bool{}
	for _, k := range allKinds() {
		if c.watching[k] {
			continue
		}
		gvr := k.GVR()
		gv := gvr.GroupVersion().String()
		if served[gv] == nil {
			served[gv] = map[string]bool{}
			list, err := c.disco.ServerResourcesForGroupVersion(gv)
			if err != nil && !k.info().optional {
				return fmt.Errorf("discovering %s: %w", gv, err)
			}
			if list != nil {
				for _, r := range list.APIResources {
					served[gv][r.Name] = true
				}
			}
		}
		if !served[gv][gvr.Resource] {
			continue
		}
		inf := cache.NewSharedIndexInformer(c.streams.listWatch(c.dyn, k, c.namespace), &unstructured.Unstructured{}, 0, cache.Indexers{})
		if _, err := inf.AddEventHandler(c.handler(k)); err != nil {
			return err
		}
		c.informers = append(c.informers, inf)
		c.watching[k] = true
		go inf.Run(c.stopWatch)
	}
	return nil
}

func (c *Checker) synced() []cache.InformerSynced {
	var out []cache.InformerSynced
	for _, inf := range c.informers {
		out = append(out, inf.HasSynced)
	}
	return out
}

func (c *Checker) handler(k Kind) cache.ResourceEventHandlerFuncs {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { c.receive(k, Added, obj) },
		UpdateFunc: func(old, cur any) {
			o, _ := old.(*unstructured.Unstructured)
			n, _ := cur.(*unstructured.Unstructured)
			if o != nil && n != nil && o.GetResourceVersion() == n.GetResourceVersion() {
				return // a relist's echo, not a change
			}
			c.receive(k, Modified, cur)
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			c.receive(k, Deleted, obj)
		},
	}
}

func (c *Checker) receive(k Kind, typ EventType, obj any) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return
	}
	rv, err := parseRV(u.GetResourceVersion())
	if err != nil {
		c.fault(fmt.Sprintf("%s %s: %v", k, u.GetName(), err))
		return
	}
	c.streams.delivered(k, u.GetName(), rv, typ == Deleted)
	c.mu.Lock()
	c.pending = append(c.pending, Event{Kind: k, Type: typ, Object: u, RV: rv, Time: time.Now()})
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// fault records an error of the checker itself (not a violation), shown
// when it closes; the first few are kept.
func (c *Checker) fault(msg string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.faults++; len(c.errors) < 10 {
		c.errors = append(c.errors, msg)
	}
}

func (c *Checker) loop() {
	defer close(c.loopDone)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	discover := time.NewTicker(2 * time.Second)
	defer discover.Stop()
	for {
		select {
		case <-c.stopLoop:
			return
		case <-discover.C:
			if err := c.watchServedKinds(); err != nil {
				c.fault(err.Error())
			}
		case <-c.wake:
		case <-tick.C:
		}
		c.step(time.Now(), false)
	}
}

// step evaluates what the watermark releases at now (everything, when
// flushing) and the timed invariants.
func (c *Checker) step(now time.Time, flush bool) {
	c.mu.Lock()
	// A gap is known before the events of the list that found it.
	gaps, in := c.gaps, c.pending
	c.gaps, c.pending = nil, nil
	c.events += len(in)
	c.mu.Unlock()
	for _, g := range gaps {
		c.model.Gap(g)
	}
	for _, e := range in {
		c.merge.push(e)
	}
	var evs []Event
	if flush {
		evs = c.merge.flush()
	} else {
		evs = c.merge.pop(now)
	}
	for _, e := range evs {
		vs, err := c.model.Apply(e)
		if err != nil {
			c.fault(err.Error())
		}
		c.handle(vs)
	}
	watermark := now.Add(-c.opts.watermark)
	if flush {
		watermark = now
	}
	c.handle(c.model.Tick(watermark))
	c.judgeDeferred(now, flush)
	c.mu.Lock()
	c.evaluated = watermark
	c.opened, c.ended = c.model.Releases()
	c.unseen = c.model.Unseen()
	c.mu.Unlock()
}

// handle confirms each violation against etcd and reports it, or, if the
// model was behind, retracts it. A violation of a release's history found
// while a watch is not settled waits (see judgeDeferred): the watch may be
// about to report a gap in that history.
func (c *Checker) handle(vs []Violation) {
	for _, v := range vs {
		if v.Note != "" {
			c.report(v)
			continue
		}
		d := deferred{v: v, digest: c.model.Digest()}
		if v.release != nil && !c.streams.settled(time.Now()) {
			c.waiting = append(c.waiting, d)
			continue
		}
		c.judge(d)
	}
}

// deferred is a violation with the model's state when it was found.
type deferred struct {
	v      Violation
	digest map[Kind]map[string]uint64
}

// judgeDeferred judges the deferred violations once every watch is settled
// (at the end of the test, whatever the watches): those of a release found
// since to have a gap in its history are not judged.
func (c *Checker) judgeDeferred(now time.Time, flush bool) {
	if len(c.waiting) == 0 || !flush && !c.streams.settled(now) {
		return
	}
	ds := c.waiting
	c.waiting = nil
	for _, d := range ds {
		if why := d.v.Unseen(); why != "" {
			c.mu.Lock()
			c.unjudged++
			c.mu.Unlock()
			c.t.Logf("invariants: not judged, %s: %s", why, d.v)
			continue
		}
		c.judge(d)
	}
}

func (c *Checker) judge(d deferred) {
	v := d.v
	var kinds []Kind
	for _, k := range allKinds() {
		if c.watching[k] {
			kinds = append(kinds, k)
		}
	}
	var res confirmation
	// An API server restarting (chaos) answers nothing for a few seconds:
	// try again before reporting unconfirmed.
	for attempt := 0; attempt < 5; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res = c.confirmer.confirm(ctx, v.RV, kinds, d.digest)
		cancel()
		if !res.retry {
			break
		}
		time.Sleep(time.Second)
	}
	v.Note = res.note
	if !res.ok {
		c.model.Retract(v)
		c.mu.Lock()
		c.discarded++
		c.mu.Unlock()
		return
	}
	c.report(v)
}

func (c *Checker) report(v Violation) {
	c.mu.Lock()
	reason, allowed := c.allowed[v.Invariant]
	first := false
	if !allowed {
		if len(c.violations) < 1000 {
			c.violations = append(c.violations, v)
		}
		first = !c.reported[v.Invariant]
		c.reported[v.Invariant] = true
	}
	c.mu.Unlock()
	switch {
	case allowed:
		c.t.Logf("invariants: allowed by the test (%s): %s", reason, v)
	case first && !c.opts.reportOnly:
		c.t.Errorf("invariants: %s", v.Report())
	case first:
		c.t.Logf("invariants (report only): %s", v.Report())
	default:
		c.t.Logf("invariants: again: %s", v)
	}
}

// Allow declares, from now on, that the test breaks inv on purpose: its
// violations are logged, not counted. Call it before the action.
func (c *Checker) Allow(inv Invariant, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.allowed[inv] = reason
}

// Violations returns the violations confirmed so far (not the allowed
// ones), oldest first.
func (c *Checker) Violations() []Violation {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.violations)
}

// Releases counts the releases the checker followed so far: opened
// (including ones replaced mid-way) and ended with the workload at rest.
func (c *Checker) Releases() (opened, ended int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.opened, c.ended
}

// JudgedInPart counts the releases the checker judged in part, because a
// watch listed again mid-release (see Gap), and the violations found in
// them it therefore did not judge.
func (c *Checker) JudgedInPart() (releases, unjudged int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.unseen, c.unjudged
}

// Settle waits until every event received before the call has been
// evaluated (the watermark has passed it), or ctx ends. A test asserting
// on Violations calls it first.
func (c *Checker) Settle(ctx context.Context) error {
	since := time.Now()
	for {
		c.mu.Lock()
		done := !c.evaluated.Before(since)
		c.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Close stops watching, evaluates the last events, and runs the end-of-test
// checks: releases still open are logged (violations with
// RequireReleasesEnded). It is idempotent; Start registers it with
// t.Cleanup.
func (c *Checker) Close() {
	c.closeOnce.Do(func() {
		// Events written just before the end are still on their way.
		time.Sleep(c.opts.watermark)
		close(c.stopLoop)
		<-c.loopDone
		close(c.stopWatch)
		c.step(time.Now(), true)
		for _, open := range c.model.Open() {
			if c.opts.requireEnded {
				c.report(Violation{Invariant: ReleaseEnds, Subject: c.namespace, Message: open + " when the test ended", RV: c.model.LastRV(), Time: time.Now(), Note: "at the end of the test"})
			} else {
				c.t.Logf("invariants: the test ended mid-release: %s", open)
			}
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		c.t.Logf("invariants: namespace %s: %d events, %d releases followed (%d ended at rest), %d violations", c.namespace, c.events, c.opened, c.ended, len(c.violations))
		if c.unseen > 0 {
			c.t.Logf("invariants: %d releases judged in part: a watch listed again mid-release, so part of their history was never seen (%d violations found in it not judged)", c.unseen, c.unjudged)
		}
		if c.discarded > 0 {
			c.t.Logf("invariants: %d candidate violations were discarded: a watch was behind etcd when they were evaluated", c.discarded)
		}
		for _, e := range c.errors {
			c.t.Logf("invariants: checker error: %s", e)
		}
		if c.faults > len(c.errors) {
			c.t.Logf("invariants: and %d more checker errors", c.faults-len(c.errors))
		}
	})
}
