package testenv

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy forwards TCP connections to a server, the way its clients would
// see a network fault between them: Stop is the server gone, Stall a
// black-holed route, Resume the route back.
type Proxy struct {
	Addr   string // where clients connect: host:port
	target string
	ln     net.Listener

	mu      sync.Mutex
	conns   []net.Conn
	stalled bool
	dropped atomic.Int64
}

// NewProxy forwards connections to target (host:port) until the test
// ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	return NewProxyOn(t, "127.0.0.1:0", target)
}

// NewProxyOn is NewProxy listening on addr: a server that comes up, on
// an address its clients were given, after them.
func NewProxyOn(t testing.TB, addr, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Addr: ln.Addr().String(), target: target, ln: ln}
	t.Cleanup(p.Stop)
	go p.accept()
	return p
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		stalled := p.stalled
		p.conns = append(p.conns, c)
		p.mu.Unlock()
		if stalled {
			continue // held open, never answered
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, s)
		p.mu.Unlock()
		go p.pipe(s, c)
		go p.pipe(c, s)
	}
}

// pipe copies from src to dst, dropping what it reads while the proxy is
// stalled.
func (p *Proxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		p.mu.Lock()
		stalled := p.stalled
		p.mu.Unlock()
		if n > 0 && stalled {
			p.dropped.Add(int64(n))
		}
		if n > 0 && !stalled {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				src.Close()
			}
			return
		}
	}
}

// Dropped is how many bytes the proxy has dropped while stalled: what
// reached the server's side of it since.
func (p *Proxy) Dropped() int64 { return p.dropped.Load() }

// Stall makes the proxy a black hole: connections stay open, and nothing
// sent on them, or on new ones, is answered.
func (p *Proxy) Stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stalled = true
}

// Resume ends a stall. The connections it held are cut (what they sent
// was lost); new ones are forwarded again.
func (p *Proxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stalled = false
	p.closeAll()
}

// Stop refuses new connections and cuts those the proxy holds: the
// server gone, as its clients see it.
func (p *Proxy) Stop() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closeAll()
}

func (p *Proxy) closeAll() {
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// AcceptLoopback listens on a loopback port until the test ends, handing
// each connection to accept in the order they come; it returns the
// address.
func AcceptLoopback(t testing.TB, accept func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accept(c)
		}
	}()
	return ln.Addr().String()
}
