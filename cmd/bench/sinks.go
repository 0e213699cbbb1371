package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/emersion/go-smtp"
)

// tracker counts the side effects that reach the sinks, per event id, and
// tells a waiting caller when all actions of its event have arrived.
type tracker struct {
	perEvent int // actions each event makes

	mu      sync.Mutex
	pending map[string]*arrivals

	mails, calls, strays atomic.Int64
	smtpConns            atomic.Int64 // SMTP connections the sink accepted
}

type arrivals struct {
	left int
	done chan struct{}
}

func newTracker(perEvent int) *tracker {
	return &tracker{perEvent: perEvent, pending: map[string]*arrivals{}}
}

// expect registers event id before it is sent; the channel closes when
// all its actions arrived.
func (t *tracker) expect(id string) <-chan struct{} {
	a := &arrivals{left: t.perEvent, done: make(chan struct{})}
	t.mu.Lock()
	t.pending[id] = a
	t.mu.Unlock()
	return a.done
}

// arrived records one action of event id. Arrivals beyond the expected
// ones (at-least-once retries) or of unknown ids count as strays.
func (t *tracker) arrived(id string) {
	t.mu.Lock()
	a, ok := t.pending[id]
	if ok {
		a.left--
		if a.left == 0 {
			delete(t.pending, id)
			close(a.done)
		}
	}
	t.mu.Unlock()
	if !ok {
		t.strays.Add(1)
	}
}

// sinkCounts are the tracker's counters at one moment.
type sinkCounts struct{ mails, calls, strays, smtpConns int64 }

func (t *tracker) counts() sinkCounts {
	return sinkCounts{mails: t.mails.Load(), calls: t.calls.Load(), strays: t.strays.Load(), smtpConns: t.smtpConns.Load()}
}

func (c sinkCounts) since(before sinkCounts) sinkCounts {
	return sinkCounts{mails: c.mails - before.mails, calls: c.calls - before.calls,
		strays: c.strays - before.strays, smtpConns: c.smtpConns - before.smtpConns}
}

// smtpSink is an SMTP server on loopback that accepts every mail and
// reports its X-Dispatcher-Event header to the tracker.
type smtpSink struct {
	addr string
	srv  *smtp.Server
}

func startSMTPSink(t *tracker) (*smtpSink, error) {
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		t.smtpConns.Add(1)
		return &smtpSession{t: t}, nil
	}))
	srv.Domain = "localhost"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go func() { _ = srv.Serve(l) }()
	return &smtpSink{addr: l.Addr().String(), srv: srv}, nil
}

func (s *smtpSink) close() { _ = s.srv.Close() }

type smtpSession struct{ t *tracker }

func (s *smtpSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *smtpSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *smtpSession) Reset()                               {}
func (s *smtpSession) Logout() error                        { return nil }

func (s *smtpSession) Data(r io.Reader) error {
	id := ""
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			break // end of the header
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "X-Dispatcher-Event") {
			id = strings.TrimSpace(v)
		}
	}
	_, _ = io.Copy(io.Discard, r)
	s.t.mails.Add(1)
	s.t.arrived(id)
	return nil
}

// functionSink is an HTTP task function on loopback that answers 200 to
// every call and reports data.event.id to the tracker.
type functionSink struct {
	url string
	srv *http.Server
}

func startFunctionSink(t *tracker) (*functionSink, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Data struct {
				Event struct {
					ID string `json:"id"`
				} `json:"event"`
			} `json:"data"`
		}
		b, _ := io.ReadAll(r.Body)
		_ = json.NewDecoder(bytes.NewReader(b)).Decode(&body)
		t.calls.Add(1)
		t.arrived(body.Data.Event.ID)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	})
	srv := &http.Server{Handler: h, ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = srv.Serve(l) }()
	return &functionSink{url: "http://" + l.Addr().String() + "/bench", srv: srv}, nil
}

func (s *functionSink) close() { _ = s.srv.Close() }
