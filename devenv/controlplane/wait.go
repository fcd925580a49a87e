package controlplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// pollInterval is how often WaitFor and the readiness checks poll.
const pollInterval = 100 * time.Millisecond

// ErrTimeout is wrapped by the error WaitFor returns when the condition did
// not hold in time.
var ErrTimeout = errors.New("timed out")

// WaitFor calls cond every 100ms until it returns true, returns an error,
// timeout passes or ctx is done. An error from cond ends the wait and is
// returned as is; a condition that should tolerate transient errors must
// return (false, nil) for them.
func WaitFor(ctx context.Context, timeout time.Duration, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("condition not met after %s: %w", timeout, ErrTimeout)
			}
			return ctx.Err()
		case <-t.C:
		}
	}
}

// waitHTTPOK polls url with client (adding the bearer token when not
// empty) until it answers 200, failing early when p exits.
func waitHTTPOK(ctx context.Context, timeout time.Duration, p *process, client *http.Client, url, token string) error {
	var last string
	err := WaitFor(ctx, timeout, func() (bool, error) {
		if done, _ := p.exited(); done {
			return false, p.exitError()
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return true, nil
		}
		last = fmt.Sprintf("%s: %s", resp.Status, body)
		return false, nil
	})
	if errors.Is(err, ErrTimeout) {
		return fmt.Errorf("%s not ready at %s (last answer: %s): %w; last lines of %s:\n%s",
			p.name, url, last, err, p.logPath, p.logTail())
	}
	return err
}
