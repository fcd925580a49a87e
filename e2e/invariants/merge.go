package invariants

import (
	"container/heap"
	"time"
)

// merger turns the independent watch streams (one per kind) into one
// timeline ordered by resourceVersion.
//
// Why this is sound enough, and what makes it sound: every object's
// resourceVersion is the etcd revision of its last write, global across
// kinds on one kube-apiserver, and each watch stream delivers its kind's
// events in revision order; only the streams are independent of each other.
// The merger holds each event for a watermark delay after it arrived and
// releases events strictly in revision order, so an event is evaluated
// after every event of a lower revision that arrived no later than one
// delay after it. A stream lagging by more than the delay delivers a late
// event (a revision below one already released); it is applied at once and
// marked late. Such an inversion can make the model see a violation that
// never happened, so the Checker does not report what the model finds
// until an exact read of etcd at the violation's revision confirms that
// the model's state then was the real one (see confirm): the delay makes
// inversions rare, the confirmation makes them harmless.
type merger struct {
	delay    time.Duration
	pending  eventHeap
	late     []Event
	released uint64
}

func newMerger(delay time.Duration) *merger { return &merger{delay: delay} }

// push adds an event; its Time is when it arrived.
func (q *merger) push(e Event) {
	if e.RV <= q.released {
		e.Late = true
		q.late = append(q.late, e)
		return
	}
	heap.Push(&q.pending, e)
}

// pop returns the events to evaluate at now, in order: late ones first
// (their place in the timeline is already past), then, lowest revision
// first, every event that has waited its delay and has no lower-revision
// event still waiting behind it.
func (q *merger) pop(now time.Time) []Event {
	out := q.late
	q.late = nil
	for q.pending.Len() > 0 && !q.pending[0].Time.Add(q.delay).After(now) {
		e := heap.Pop(&q.pending).(Event)
		q.released = max(q.released, e.RV)
		out = append(out, e)
	}
	return out
}

// flush returns every event held, in order.
func (q *merger) flush() []Event {
	out := q.late
	q.late = nil
	for q.pending.Len() > 0 {
		e := heap.Pop(&q.pending).(Event)
		q.released = max(q.released, e.RV)
		out = append(out, e)
	}
	return out
}

func (q *merger) len() int { return q.pending.Len() + len(q.late) }

type eventHeap []Event

func (h eventHeap) Len() int           { return len(h) }
func (h eventHeap) Less(i, j int) bool { return h[i].RV < h[j].RV }
func (h eventHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)        { *h = append(*h, x.(Event)) }
func (h *eventHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
