//go:build e2e

package chaos_test

import (
	"errors"
	"io"
	"net"
	"sync/atomic"
	"time"
)

// webhookProxy is the one address the API server calls the managers'
// webhooks at: each connection goes to the first replica that accepts it
// (a replica that is down refuses at once), so a dead replica never
// blocks a workload write. It forwards TCP: TLS is between the API server
// and the replica, which both serve with the certificate in their shared
// Secret. A request in flight when its replica dies fails, as it would
// behind a Service.
type webhookProxy struct {
	l        net.Listener
	backends atomic.Pointer[func() []string]
	// refused is called for a connection no replica accepted.
	refused atomic.Pointer[func()]
}

func startWebhookProxy() (*webhookProxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &webhookProxy{l: l}
	p.setBackends(func() []string { return nil })
	p.onRefused(func() {})
	go p.serve()
	return p, nil
}

// setBackends sets how the proxy learns the replicas' webhook addresses
// (host:port), asked at every connection, preferred first.
func (p *webhookProxy) setBackends(f func() []string) { p.backends.Store(&f) }

// onRefused sets what is called for a connection no replica accepted.
func (p *webhookProxy) onRefused(f func()) { p.refused.Store(&f) }

func (p *webhookProxy) port() int { return p.l.Addr().(*net.TCPAddr).Port }

func (p *webhookProxy) serve() {
	for {
		conn, err := p.l.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		go p.forward(conn)
	}
}

func (p *webhookProxy) forward(in net.Conn) {
	defer in.Close()
	var out net.Conn
	for _, addr := range (*p.backends.Load())() {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			out = c
			break
		}
	}
	if out == nil {
		(*p.refused.Load())()
		return
	}
	defer out.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		// Half-close so the other side sees the end, then let the other
		// direction finish.
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(out, in)
	go pipe(in, out)
	<-done
	<-done
}

// stop stops accepting; open connections end with their replica or the
// API server.
func (p *webhookProxy) stop() { _ = p.l.Close() }
