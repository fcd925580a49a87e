package notify

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"k8s.io/client-go/util/workqueue"
)

// Job is one message to one destination.
type Job struct {
	// Rollout is the Rollout the message is about.
	Rollout RolloutRef
	// Key is the record's key in NotifiedAnnotation: the event's key and
	// the destination.
	Key         string
	Trigger     Trigger
	Destination Destination
	Message     Message
	// Resolve reads the service's credentials at delivery (a rotated
	// Secret is picked up by the next attempt).
	Resolve func(context.Context) (Target, error)
}

// Result is how a job ended.
type Result string

// The results.
const (
	ResultSent    Result = "sent"
	ResultFailed  Result = "failed"
	ResultDropped Result = "dropped"
)

// Queue delivers jobs in the background: Enqueue never waits, a failed
// attempt is retried with exponential backoff (client-go's rate-limited
// work queue) up to Attempts times, and Done is told how each job ended.
type Queue struct {
	// Workers deliver at once (default 2).
	Workers int
	// Capacity is the most jobs waiting; more are dropped (default 1000).
	Capacity int
	// Attempts per job (default 5); the delay doubles from Backoff
	// (default 1s) up to MaxBackoff (default 1m): 1s, 2s, 4s, 8s.
	Attempts   int
	Backoff    time.Duration
	MaxBackoff time.Duration
	// HTTP sends the requests; default a client with a 10s timeout.
	HTTP *http.Client
	// Done is called once per job, from a worker, with how it ended and
	// the last error (nil when sent).
	Done func(ctx context.Context, j *Job, r Result, err error)

	once sync.Once
	q    workqueue.TypedRateLimitingInterface[*Job]
}

func (q *Queue) init() {
	q.once.Do(func() {
		if q.Workers < 1 {
			q.Workers = 2
		}
		if q.Capacity < 1 {
			q.Capacity = 1000
		}
		if q.Attempts < 1 {
			q.Attempts = 5
		}
		if q.Backoff <= 0 {
			q.Backoff = time.Second
		}
		if q.MaxBackoff < q.Backoff {
			q.MaxBackoff = max(q.Backoff, time.Minute)
		}
		if q.HTTP == nil {
			q.HTTP = &http.Client{Timeout: 10 * time.Second}
		}
		q.q = workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[*Job](q.Backoff, q.MaxBackoff),
			workqueue.TypedRateLimitingQueueConfig[*Job]{Name: "sluice-notifications"})
	})
}

// Enqueue hands j over for delivery; it returns false, and j is not
// delivered, when Capacity jobs already wait.
func (q *Queue) Enqueue(j *Job) bool {
	q.init()
	if q.q.Len() >= q.Capacity {
		return false
	}
	q.q.Add(j)
	return true
}

// Len is the number of jobs waiting.
func (q *Queue) Len() int { q.init(); return q.q.Len() }

// Start delivers until ctx ends (a manager Runnable; it runs on the
// elected leader only, like the controllers).
func (q *Queue) Start(ctx context.Context) error {
	q.init()
	var wg sync.WaitGroup
	for range q.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for q.work(ctx) {
			}
		}()
	}
	<-ctx.Done()
	q.q.ShutDown()
	wg.Wait()
	return nil
}

func (q *Queue) work(ctx context.Context) bool {
	j, shutdown := q.q.Get()
	if shutdown {
		return false
	}
	defer q.q.Done(j)
	err := q.attempt(ctx, j)
	var perm Permanent
	switch {
	case err == nil:
		q.q.Forget(j)
		q.done(ctx, j, ResultSent, nil)
	case ctx.Err() != nil:
		// Stopping: the job is not recorded, so the next leader sends it.
		q.q.Forget(j)
	case errors.As(err, &perm) || q.q.NumRequeues(j)+1 >= q.Attempts:
		q.q.Forget(j)
		q.done(ctx, j, ResultFailed, err)
	default:
		q.q.AddRateLimited(j)
	}
	return true
}

func (q *Queue) attempt(ctx context.Context, j *Job) error {
	t, err := j.Resolve(ctx)
	if err != nil {
		return err
	}
	return Send(ctx, q.HTTP, t, j.Message)
}

func (q *Queue) done(ctx context.Context, j *Job, r Result, err error) {
	if q.Done != nil {
		q.Done(ctx, j, r, err)
	}
}
