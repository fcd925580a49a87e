//go:build e2e

package bench_test

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicehq/sluice/cmd/sluice-controller/app"
)

// event is one change to an object, stamped with the time this process
// received it from its watch.
type event struct {
	at  time.Time
	typ watch.EventType
	obj client.Object
}

// recorder keeps every change to the watched kinds in a namespace, in the
// order received. The controller's informers and these watches are fed by
// the same API server watch cache, so the time between two events seen here
// is the time between the two writes, give or take the delivery jitter.
type recorder struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	events  []event
	changed chan struct{} // closed and replaced on every event
	err     error
}

// record lists each kind in ns and watches it from there; the listed
// objects are the first events (ADDED).
func record(ctx context.Context, ns string, lists ...client.ObjectList) (*recorder, error) {
	c, err := client.NewWithWatch(env.ControlPlane.RESTConfig(), client.Options{Scheme: app.Scheme()})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	r := &recorder{cancel: cancel, changed: make(chan struct{})}
	for _, list := range lists {
		if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
			r.stop()
			return nil, err
		}
		items, err := meta.ExtractList(list)
		if err != nil {
			r.stop()
			return nil, err
		}
		for _, o := range items {
			r.add(watch.Added, o.(client.Object))
		}
		watchFrom := func(rv string) (watch.Interface, error) {
			return c.Watch(ctx, list, client.InNamespace(ns), &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true}})
		}
		rv := list.GetResourceVersion()
		w, err := watchFrom(rv)
		if err != nil {
			r.stop()
			return nil, err
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer func() { w.Stop() }()
			for {
				select {
				case <-ctx.Done():
					return
				case ev, ok := <-w.ResultChan():
					if !ok {
						// The API server closes a watch that falls behind (a
						// loaded machine, a fleet's burst of events): go on
						// from the last version seen, losing nothing.
						if w, err = watchFrom(rv); err != nil {
							r.fail(fmt.Errorf("the watch of %T ended and could not resume from %s: %w", list, rv, err))
							return
						}
						continue
					}
					if o, isObj := ev.Object.(client.Object); isObj && ev.Type != watch.Error {
						rv = o.GetResourceVersion()
						if ev.Type != watch.Bookmark {
							r.add(ev.Type, o)
						}
					} else if ev.Type == watch.Error {
						r.fail(fmt.Errorf("watch of %T: %v", list, ev.Object))
					}
				}
			}
		}()
	}
	return r, nil
}

func (r *recorder) add(typ watch.EventType, o client.Object) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, event{at: time.Now(), typ: typ, obj: o})
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *recorder) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil {
		r.err = err
	}
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *recorder) stop() {
	r.cancel()
	r.wg.Wait()
}

// mark is the index the next event will have.
func (r *recorder) mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// failed is the error that stopped a watch, if any.
func (r *recorder) failed() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// since returns the events from index from on.
func (r *recorder) since(from int) []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event(nil), r.events[from:]...)
}

// wait returns the index of the first event at or after from for which
// pred holds, waiting up to timeout for it.
func (r *recorder) wait(ctx context.Context, from int, timeout time.Duration, what string, pred func(event) bool) (int, event, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for i := from; ; {
		r.mu.Lock()
		for ; i < len(r.events); i++ {
			if pred(r.events[i]) {
				e := r.events[i]
				r.mu.Unlock()
				return i, e, nil
			}
		}
		err, changed := r.err, r.changed
		r.mu.Unlock()
		if err != nil {
			return 0, event{}, fmt.Errorf("waiting for %s: %w", what, err)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return 0, event{}, fmt.Errorf("waiting for %s: not seen within %s", what, timeout)
		}
	}
}

// rv is the object's resourceVersion: the etcd revision of the write,
// which orders every write to every kind.
func rv(e event) (uint64, error) {
	v, err := strconv.ParseUint(e.obj.GetResourceVersion(), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%T %s: resourceVersion %q is not a number", e.obj, e.obj.GetName(), e.obj.GetResourceVersion())
	}
	return v, nil
}

// committed returns the events in the order they were written (by
// resourceVersion), each dated when it was seen or, if earlier, when any
// later write was seen: a write is committed before every later one, so
// this removes the jitter between the watch streams of different kinds.
func committed(events []event) ([]event, error) {
	type ranked struct {
		e  event
		rv uint64
	}
	rs := make([]ranked, len(events))
	for i, e := range events {
		v, err := rv(e)
		if err != nil {
			return nil, err
		}
		rs[i] = ranked{e, v}
	}
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].rv < rs[j].rv })
	out := make([]event, len(rs))
	for i := len(rs) - 1; i >= 0; i-- {
		out[i] = rs[i].e
		if i+1 < len(rs) && out[i+1].at.Before(out[i].at) {
			out[i].at = out[i+1].at
		}
	}
	return out, nil
}

// committedAt is when e was committed, by the events since from (see
// committed).
func (r *recorder) committedAt(from int, e event) (time.Time, error) {
	v, err := rv(e)
	if err != nil {
		return time.Time{}, err
	}
	at := e.at
	for _, o := range r.since(from) {
		if ov, err := rv(o); err == nil && ov >= v && o.at.Before(at) {
			at = o.at
		}
	}
	return at, nil
}

// stateAt is the state made by the events before index mark.
func (r *recorder) stateAt(mark int) (state, error) {
	r.mu.Lock()
	events := append([]event(nil), r.events[:mark]...)
	r.mu.Unlock()
	events, err := committed(events)
	if err != nil {
		return nil, err
	}
	s := state{}
	for _, e := range events {
		s.apply(e)
	}
	return s, nil
}

// replayFrom is what a replay from mark starts from: the state made by the
// events before it, and the events since, in the order they were written.
func (r *recorder) replayFrom(mark int) (state, []event, error) {
	s, err := r.stateAt(mark)
	if err != nil {
		return nil, nil, err
	}
	events, err := committed(r.since(mark))
	return s, events, err
}

// state is the latest version of every object, replayed from events.
type state map[string]client.Object

func key(o client.Object) string { return fmt.Sprintf("%T/%s", o, o.GetName()) }

func (s state) apply(e event) {
	if e.typ == watch.Deleted {
		delete(s, key(e.obj))
		return
	}
	s[key(e.obj)] = e.obj
}

// all returns the objects of type T.
func all[T client.Object](s state) []T {
	var out []T
	for _, o := range s {
		if t, ok := o.(T); ok {
			out = append(out, t)
		}
	}
	return out
}

// is reports whether e is about an object of type T named name (any name
// when name is empty), and returns it.
func is[T client.Object](e event, name string) (T, bool) {
	t, ok := e.obj.(T)
	if !ok || (name != "" && e.obj.GetName() != name) {
		var zero T
		return zero, false
	}
	return t, true
}
