package models_test

import (
	"context"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
)

// A database that goes away is EUNAVAILABLE (503; the intake refuses an
// event it cannot read the configuration of, and a broker source
// requeues it), to a read and to a change, not an internal error.
// Before, only a timeout was: a refused or cut connection was a 500, and
// the intake dispatched the event without its configuration.
func TestDatabaseGoneIsUnavailable(t *testing.T) {
	u, err := url.Parse(testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	p := proxy(t, u.Host)
	u.Host = p.addr
	s := newStore(t, u.String())
	if _, err := s.ConfigVersion(context.Background()); err != nil {
		t.Fatal(err)
	}
	p.stop()
	_, err = s.ConfigVersion(context.Background())
	if code := dispatcher.ErrorCode(err); code != dispatcher.EUNAVAILABLE {
		t.Errorf("a read with the database gone: %v (code %q), want %s", err, code, dispatcher.EUNAVAILABLE)
	}
	tmpl := dispatcher.Template{Name: "bye", Subject: "Bye", Text: "Bye"}
	err = s.CreateTemplate(context.Background(), &tmpl)
	if code := dispatcher.ErrorCode(err); code != dispatcher.EUNAVAILABLE {
		t.Errorf("a change with the database gone: %v (code %q), want %s", err, code, dispatcher.EUNAVAILABLE)
	}
}

// tcpProxy forwards connections to a server until stopped, then refuses
// them and cuts those it holds: the server gone, as its clients see it.
type tcpProxy struct {
	addr  string
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func proxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{addr: ln.Addr().String(), ln: ln}
	t.Cleanup(p.stop)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(s, c); s.Close() }()
			go func() { _, _ = io.Copy(c, s); c.Close() }()
		}
	}()
	return p
}

func (p *tcpProxy) stop() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}
