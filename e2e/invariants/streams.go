package invariants

import (
	"context"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/cache"
)

// streams follows the watch behind each kind's informer, because the model
// judges a release from its history and must know when history was lost.
// An informer hides it: when its watch breaks and cannot resume where it
// stopped (an API server restarted, a CRD's storage rebuilt after the CRD
// changed), it lists again and reports only the differences, as if the
// states in between never existed. streams sees that list and reports it
// as a Gap; and it tells when every watch is settled (running for a while:
// a watch that cannot resume fails at once), so that a violation found while
// one is not can wait until the gap, if any, is known.
type streams struct {
	settle time.Duration
	onGap  func(Gap)

	mu    sync.Mutex
	kinds map[Kind]*stream
}

type stream struct {
	listed bool      // the informer has listed once: a later list may find a gap
	up     bool      // a watch is running
	since  time.Time // since when
	last   uint64    // the highest revision delivered
	names  map[string]bool
}

func newStreams(settle time.Duration, onGap func(Gap)) *streams {
	return &streams{settle: settle, onGap: onGap, kinds: map[Kind]*stream{}}
}

func (s *streams) of(k Kind) *stream {
	if s.kinds[k] == nil {
		s.kinds[k] = &stream{names: map[string]bool{}}
	}
	return s.kinds[k]
}

// delivered records an event of kind k: the object's name, its revision,
// whether it was deleted.
func (s *streams) delivered(k Kind, name string, rv uint64, deleted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.of(k)
	st.last = max(st.last, rv)
	if deleted {
		delete(st.names, name)
	} else {
		st.names[name] = true
	}
}

// listed records a list of kind k at revision rv with the objects' names
// and revisions. A list after the first found a gap if an object changed,
// appeared or went since the last event delivered.
func (s *streams) listed(k Kind, rv uint64, items map[string]uint64, now time.Time) {
	s.mu.Lock()
	st := s.of(k)
	relist, after := st.listed, st.last
	lost := false
	for name, v := range items {
		lost = lost || v > after || !st.names[name]
	}
	for name := range st.names {
		_, listed := items[name]
		lost = lost || !listed
	}
	st.listed = true
	st.last = max(st.last, rv)
	s.mu.Unlock()
	if relist && lost {
		s.onGap(Gap{Kind: k, After: after, Listed: rv, Time: now})
	}
}

func (s *streams) watching(k Kind, up bool, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.of(k)
	st.up, st.since = up, now
}

// settled reports whether every watch has run for the settle time.
func (s *streams) settled(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.kinds {
		if !st.up || now.Sub(st.since) < s.settle {
			return false
		}
	}
	return true
}

// listWatch is the dynamic client's ListWatch for kind k in namespace,
// observed by s.
func (s *streams) listWatch(dyn dynamic.Interface, k Kind, namespace string) cache.ListerWatcher {
	res := dyn.Resource(k.GVR()).Namespace(namespace)
	return listsToResync{&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			list, err := res.List(ctx, o)
			if err != nil {
				return nil, err
			}
			rv, err := parseRV(list.GetResourceVersion())
			if err != nil {
				return nil, err
			}
			items := map[string]uint64{}
			for _, it := range list.Items {
				if items[it.GetName()], err = parseRV(it.GetResourceVersion()); err != nil {
					return nil, err
				}
			}
			s.listed(k, rv, items, time.Now())
			return list, nil
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			w, err := res.Watch(ctx, o)
			if err != nil {
				s.watching(k, false, time.Now())
				return nil, err
			}
			s.watching(k, true, time.Now())
			return s.observe(k, w), nil
		},
	}}
}

// listsToResync makes the reflector list to resync, as it did before
// client-go streamed its lists over a watch: a list is what streams
// recognises as a gap.
type listsToResync struct{ *cache.ListWatch }

func (listsToResync) IsWatchListSemanticsUnSupported() bool { return true }

// observe passes w's events on and marks the kind's watch down when w ends
// or reports an error (an expired revision: the informer lists again).
func (s *streams) observe(k Kind, w watch.Interface) watch.Interface {
	out := make(chan watch.Event)
	stop := make(chan struct{})
	go func() {
		defer close(out)
		defer s.watching(k, false, time.Now())
		for ev := range w.ResultChan() {
			if ev.Type == watch.Error {
				s.watching(k, false, time.Now())
			}
			select {
			case out <- ev:
			case <-stop:
				return
			}
		}
	}()
	return &observedWatch{Interface: w, out: out, stop: stop}
}

type observedWatch struct {
	watch.Interface
	out  chan watch.Event
	stop chan struct{}
	once sync.Once
}

func (w *observedWatch) ResultChan() <-chan watch.Event { return w.out }

func (w *observedWatch) Stop() {
	w.once.Do(func() { close(w.stop) })
	w.Interface.Stop()
}
