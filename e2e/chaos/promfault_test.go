//go:build e2e

package chaos_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/devenv/controlplane"
)

// queryTimeout is the analyses' Prometheus timeout; a slow answer takes
// three times as long.
const queryTimeout = "2s"

// fault is how the Prometheus behind the fault proxy misbehaves.
type fault string

// The faults. Each one must only ever make a measurement an Error or
// Inconclusive (a pause), never Successful or Failed (a promotion or a
// rollback).
const (
	faultNone fault = ""
	// Prometheus is stopped (and restarted when the fault ends): the
	// proxy resets every connection, as a host with nothing listening.
	faultDown fault = "down"
	// Answers come after three times the query timeout.
	faultSlow fault = "slow"
	// An HTML error page with 502, and an HTML page with 200 (a login
	// page of a proxy in between).
	faultHTML502 fault = "html-502"
	faultHTML200 fault = "html-200"
	// A JSON answer cut in the middle.
	faultBadJSON fault = "invalid-json"
	// A vector holding NaN, +Inf, -Inf; an empty vector.
	faultNaN    fault = "nan"
	faultInf    fault = "+inf"
	faultNegInf fault = "-inf"
	faultEmpty  fault = "empty-vector"
	// A matrix where an instant query expects a vector.
	faultMatrix fault = "matrix"
)

// allFaults are the faults the run cycles through.
var allFaults = []fault{faultDown, faultSlow, faultHTML502, faultHTML200, faultBadJSON, faultNaN, faultInf, faultNegInf, faultEmpty, faultMatrix}

// faultWarning marks the well-formed garbage answers: Prometheus puts
// warnings in the answer and Sluice keeps them with the measurement, so
// the suite knows exactly which measurements a fault produced.
const faultWarning = "chaos fault: "

// promFaults is an HTTP proxy in front of the real Prometheus that the
// analyses' templates name as their address.
type promFaults struct {
	prom  *controlplane.Prometheus
	srv   *http.Server
	l     net.Listener
	proxy *httputil.ReverseProxy

	mu       sync.Mutex
	current  fault
	answered map[fault]int
	windows  []faultWindow
}

// faultWindow is one period of a fault.
type faultWindow struct {
	fault      fault
	start, end time.Time
}

func startPromFaults(prom *controlplane.Prometheus) (*promFaults, error) {
	target, err := url.Parse(prom.URL())
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &promFaults{prom: prom, l: l, answered: map[fault]int{}}
	p.proxy = httputil.NewSingleHostReverseProxy(target)
	// Prometheus unreachable: reset the connection, so the client sees a
	// Prometheus that is down, not a proxy answering 502.
	p.proxy.ErrorHandler = func(w http.ResponseWriter, r *http.Request, _ error) {
		if r.Context().Err() != nil {
			return // the client gave up (its timeout)
		}
		p.reset(w, faultDown)
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.srv.Serve(l) }()
	return p, nil
}

// URL is the address the templates name.
func (p *promFaults) URL() string { return "http://" + p.l.Addr().String() }

func (p *promFaults) stop() { _ = p.srv.Close() }

func (p *promFaults) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	f := p.current
	p.mu.Unlock()
	instant := strings.HasSuffix(r.URL.Path, "/api/v1/query")
	switch {
	case f == faultSlow:
		p.count(f)
		select {
		case <-time.After(3 * mustDuration(queryTimeout)):
		case <-r.Context().Done():
			return
		}
	case f == faultNone || f == faultDown || !instant:
	default:
		p.count(f)
		p.garbage(w, f)
		return
	}
	p.proxy.ServeHTTP(w, r)
}

func (p *promFaults) count(f fault) {
	p.mu.Lock()
	p.answered[f]++
	p.mu.Unlock()
}

// reset closes the client's connection without an answer.
func (p *promFaults) reset(w http.ResponseWriter, f fault) {
	p.count(f)
	hj, ok := w.(http.Hijacker)
	if !ok {
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// garbage answers an instant query as the fault has it.
func (p *promFaults) garbage(w http.ResponseWriter, f fault) {
	now := float64(time.Now().UnixMilli()) / 1000
	vector := func(value string) string {
		return fmt.Sprintf(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[%.3f,%q]}]},"warnings":[%q]}`,
			now, value, faultWarning+string(f))
	}
	body, status, typ := "", http.StatusOK, "application/json"
	switch f {
	case faultHTML502:
		status, typ = http.StatusBadGateway, "text/html"
		body = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
	case faultHTML200:
		typ = "text/html"
		body = `<!DOCTYPE html><html><head><title>Sign in</title></head><body><form method="post" action="/login"><input name="user"><input type="password" name="password"></form></body></html>`
	case faultBadJSON:
		body = fmt.Sprintf(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[%.3f,"0.0`, now)
	case faultNaN:
		body = vector("NaN")
	case faultInf:
		body = vector("+Inf")
	case faultNegInf:
		body = vector("-Inf")
	case faultEmpty:
		body = fmt.Sprintf(`{"status":"success","data":{"resultType":"vector","result":[]},"warnings":[%q]}`, faultWarning+string(f))
	case faultMatrix:
		// Healthy-looking values in the wrong shape.
		body = fmt.Sprintf(`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[%.3f,"0.001"],[%.3f,"0.002"]]}]},"warnings":[%q]}`,
			now-1, now, faultWarning+string(f))
	}
	w.Header().Set("Content-Type", typ)
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// set puts a fault in force (faultNone ends it). Down stops Prometheus;
// the next set starts it again (on the same port, with its data).
func (p *promFaults) set(ctx context.Context, f fault) error {
	p.mu.Lock()
	prev := p.current
	p.current = f
	now := time.Now()
	if n := len(p.windows); n > 0 && p.windows[n-1].end.IsZero() {
		p.windows[n-1].end = now
	}
	if f != faultNone {
		p.windows = append(p.windows, faultWindow{fault: f, start: now})
	}
	p.mu.Unlock()
	switch {
	case f == faultDown:
		return p.prom.Stop()
	case prev == faultDown:
		return p.prom.Restart(ctx)
	}
	return nil
}

// run cycles through the faults until ctx ends: healthy for pass, then a
// fault for hold, each fault in turn (a new random order each round).
func (p *promFaults) run(ctx context.Context, rng *rand.Rand, pass, hold [2]time.Duration, errs func(error)) {
	defer func() {
		// Leave Prometheus up and answering.
		if err := p.set(context.Background(), faultNone); err != nil {
			errs(fmt.Errorf("prometheus fault proxy: ending the last fault: %w", err))
		}
	}()
	var order []fault
	for {
		if !sleep(ctx, between(rng, pass)) {
			return
		}
		if len(order) == 0 {
			order = append([]fault(nil), allFaults...)
			rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		}
		f := order[0]
		order = order[1:]
		if err := p.set(ctx, f); err != nil {
			errs(fmt.Errorf("prometheus fault %s: %w", f, err))
		}
		sleep(ctx, between(rng, hold))
		if err := p.set(ctx, faultNone); err != nil && ctx.Err() == nil {
			errs(fmt.Errorf("prometheus fault %s: ending it: %w", f, err))
		}
	}
}

// snapshot returns the windows so far and the answers per fault.
func (p *promFaults) snapshot() ([]faultWindow, map[fault]int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	answered := map[fault]int{}
	for k, v := range p.answered {
		answered[k] = v
	}
	return append([]faultWindow(nil), p.windows...), answered
}

func mustDuration(s string) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return d
}

// between is a random duration in [r[0], r[1]].
func between(rng *rand.Rand, r [2]time.Duration) time.Duration {
	return r[0] + time.Duration(rng.Int64N(int64(r[1]-r[0])+1))
}

// sleep waits d, or less when ctx ends; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}
