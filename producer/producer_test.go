package producer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/testenv"
)

// fakeTransport answers each Send with the next of its errors (nil once
// they run out) and records what it was sent.
type fakeTransport struct {
	mu     sync.Mutex
	errs   []error
	sent   []Event
	closed bool
}

func (f *fakeTransport) Send(_ context.Context, ev Event) (Receipt, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, ev)
	if len(f.errs) == 0 {
		return Receipt{WorkflowID: "dispatch-" + ev.ID}, nil
	}
	err := f.errs[0]
	f.errs = f.errs[1:]
	return Receipt{}, err
}

func (f *fakeTransport) Close() error { f.closed = true; return nil }

// waits records the pauses of a producer between attempts instead of
// sleeping them.
type waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *waits) sleep(ctx context.Context, d time.Duration) error {
	w.mu.Lock()
	w.d = append(w.d, d)
	w.mu.Unlock()
	return ctx.Err()
}

// newProducer returns a producer on t whose pauses w records.
func newProducer(t *testing.T, tr Transport, w *waits, opts ...Option) *Producer {
	t.Helper()
	p, err := New(tr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if w != nil {
		p.sleep = w.sleep
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

var (
	retryable = &Error{Transport: "fake", Retryable: true, Message: "unavailable"}
	permanent = &Error{Transport: "fake", Message: "refused", Err: ErrRejected}
)

func TestDispatchRetriesWithTheSameEvent(t *testing.T) {
	retry := Retry{Attempts: 4, Initial: 100 * time.Millisecond, Max: 300 * time.Millisecond}
	for _, tt := range []struct {
		name      string
		errs      []error
		attempts  int
		wantErr   error // nil: success
		retryable bool
	}{
		{"first attempt", nil, 1, nil, false},
		{"after two failures", []error{retryable, retryable}, 3, nil, false},
		{"a plain error is retried", []error{errors.New("broken pipe")}, 2, nil, false},
		{"not retryable", []error{retryable, permanent}, 2, ErrRejected, false},
		{"attempts exhausted", []error{retryable, retryable, retryable, retryable, retryable}, 4, retryable, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tr := &fakeTransport{errs: tt.errs}
			w := &waits{}
			p := newProducer(t, tr, w, WithRetry(retry))
			ev, err := p.Dispatch(context.Background(), "user_deleted", map[string]any{"userId": 42})
			if (err == nil) != (tt.wantErr == nil) || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if Retryable(err) != tt.retryable {
				t.Errorf("Retryable(%v) = %v, want %v", err, Retryable(err), tt.retryable)
			}
			if len(tr.sent) != tt.attempts || ev.Receipt.Attempts != tt.attempts {
				t.Fatalf("sent %d times, Receipt.Attempts %d; want %d", len(tr.sent), ev.Receipt.Attempts, tt.attempts)
			}
			for i, s := range tr.sent {
				if s.ID != ev.ID || string(s.Body) != string(ev.Body) {
					t.Errorf("attempt %d sent id %s body %s; the first was id %s body %s", i+1, s.ID, s.Body, ev.ID, ev.Body)
				}
			}
			// Waits double from Initial to Max, each between half and all of it.
			if len(w.d) != tt.attempts-1 {
				t.Fatalf("waited %d times, want %d", len(w.d), tt.attempts-1)
			}
			base := retry.Initial
			for i, d := range w.d {
				if d < base/2 || d > base {
					t.Errorf("wait %d = %s, want within [%s, %s]", i+1, d, base/2, base)
				}
				base = min(2*base, retry.Max)
			}
			if tt.wantErr == nil && ev.Receipt.WorkflowID != "dispatch-"+ev.ID {
				t.Errorf("receipt %+v: the transport's receipt is lost", ev.Receipt)
			}
		})
	}
}

func TestDispatchHonoursRetryAfter(t *testing.T) {
	busy := &Error{Transport: "http", Retryable: true, Status: 429, RetryAfter: 3 * time.Second}
	tr := &fakeTransport{errs: []error{busy}}
	w := &waits{}
	p := newProducer(t, tr, w, WithRetry(Retry{Attempts: 3, Initial: time.Millisecond, Max: 5 * time.Second}))
	if _, err := p.Dispatch(context.Background(), "t", nil); err != nil {
		t.Fatal(err)
	}
	if len(w.d) != 1 || w.d[0] < 3*time.Second || w.d[0] > 3600*time.Millisecond {
		t.Errorf("waits %v, want one of 3s as Retry-After said, up to a fifth more", w.d)
	}

	// A Retry-After beyond Max ends the retries: the caller schedules it.
	tooLong := &Error{Transport: "http", Retryable: true, Status: 503, RetryAfter: time.Hour}
	tr = &fakeTransport{errs: []error{tooLong}}
	p = newProducer(t, tr, w, WithRetry(Retry{Attempts: 3, Initial: time.Millisecond, Max: 5 * time.Second}))
	_, err := p.Dispatch(context.Background(), "t", nil)
	var e *Error
	if !errors.As(err, &e) || !e.Retryable || e.RetryAfter != time.Hour || len(tr.sent) != 1 {
		t.Errorf("err %v after %d sends; want the retryable error with RetryAfter 1h after 1", err, len(tr.sent))
	}
}

// Producers a busy dispatcher told the same Retry-After do not all come
// back at once. Before, each waited exactly Retry-After, in lockstep.
func TestRetryAfterIsJittered(t *testing.T) {
	busy := &Error{Transport: "http", Retryable: true, Status: 503, RetryAfter: time.Second}
	w := &waits{}
	for range 20 {
		p := newProducer(t, &fakeTransport{errs: []error{busy}}, w, WithRetry(Retry{Attempts: 2, Initial: time.Millisecond, Max: 5 * time.Second}))
		if _, err := p.Dispatch(context.Background(), "t", nil); err != nil {
			t.Fatal(err)
		}
	}
	distinct := map[time.Duration]bool{}
	for _, d := range w.d {
		if d < time.Second || d > 1200*time.Millisecond {
			t.Errorf("waited %s after a Retry-After of 1s, want within [1s, 1.2s]", d)
		}
		distinct[d] = true
	}
	if len(distinct) < 10 {
		t.Errorf("20 producers told to wait 1s waited %v: in lockstep", w.d)
	}
}

func TestDispatchStopsWhenTheContextEnds(t *testing.T) {
	tr := &fakeTransport{errs: []error{retryable, retryable}}
	p := newProducer(t, tr, nil, WithRetry(Retry{Attempts: 5, Initial: time.Hour, Max: time.Hour}))
	ctx, cancel := context.WithCancel(context.Background())
	p.sleep = func(context.Context, time.Duration) error { cancel(); return ctx.Err() }
	ev, err := p.Dispatch(ctx, "t", nil)
	if !errors.Is(err, context.Canceled) || !Retryable(err) || ev.ID == "" {
		t.Errorf("err = %v (retryable %v), id %q; want the last attempt's retryable error with context.Canceled, and the event's id",
			err, Retryable(err), ev.ID)
	}
}

func TestDispatchAfterClose(t *testing.T) {
	tr := &fakeTransport{}
	p := newProducer(t, tr, nil)
	if err := p.Close(); err != nil || !tr.closed {
		t.Fatalf("Close = %v, transport closed %v", err, tr.closed)
	}
	if _, err := p.Dispatch(context.Background(), "t", nil); !errors.Is(err, ErrClosed) || Retryable(err) {
		t.Errorf("err = %v, want ErrClosed, not retryable", err)
	}
	if len(tr.sent) != 0 {
		t.Errorf("a closed producer sent %d events", len(tr.sent))
	}
}

func TestNewRefusesBadConfiguration(t *testing.T) {
	for _, tt := range []struct {
		name string
		tr   Transport
		opts []Option
	}{
		{"no transport", nil, nil},
		{"unknown envelope", &fakeTransport{}, []Option{WithEnvelope("xml")}},
		{"no attempt", &fakeTransport{}, []Option{WithRetry(Retry{})}},
		{"max below initial", &fakeTransport{}, []Option{WithRetry(Retry{Attempts: 2, Initial: time.Second, Max: time.Millisecond})}},
		{"zero attempt timeout", &fakeTransport{}, []Option{WithAttemptTimeout(0)}},
		{"CloudEvents source not a URI-reference", &fakeTransport{}, []Option{WithEnvelope(EnvelopeCloudEvents), WithSource("%zz")}},
		{"HTTP URL without scheme", HTTP("dispatcher:8080", "t"), nil},
		{"HTTP URL of another scheme", HTTP("ftp://dispatcher", "t"), nil},
		{"AMQP URL", AMQP("http://rabbit"), nil},
		{"AMQP channels", AMQP("amqp://127.0.0.1", AMQPChannels(0)), nil},
		{"NATS URL", NATS(" "), nil},
		{"NATS URLs", NATS(" , "), nil},
		// Before, taken, and each Dispatch failed to connect, retryable,
		// for ever.
		{"NATS URL that does not parse", NATS("nats://127.0.0.1:4222,nats://h%zz:4222"), nil},
		{"NATS URL of another scheme", NATS("http://127.0.0.1:4222"), nil},
		{"NATS URL with a password's # unencoded", NATS("nats://u:42#x@127.0.0.1:4222"), nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if p, err := New(tt.tr, tt.opts...); err == nil {
				p.Close()
				t.Error("New succeeded")
			}
		})
	}
}

// The NATS client's URLs: a list, with or without the scheme.
func TestNewTakesNATSURLs(t *testing.T) {
	for _, url := range []string{
		"nats://127.0.0.1:4222",
		"127.0.0.1:4222",
		"nats://u:p%40ss@a:4222, tls://b:4222,",
		"ws://127.0.0.1:8080",
	} {
		p, err := New(NATS(url))
		if err != nil {
			t.Errorf("%s: %v", url, err)
			continue
		}
		p.Close()
	}
}

func TestDefaultSource(t *testing.T) {
	p := newProducer(t, &fakeTransport{}, nil, WithEnvelope(EnvelopeCloudEvents))
	if err := checkSource(EnvelopeCloudEvents, p.source); err != nil || p.source == "" {
		t.Errorf("default source %q: %v", p.source, err)
	}
}

// A broker URL that does not parse is not quoted with its password in
// the errors. Before, url.Parse's error quoted it whole, and the AMQP
// transport copied it into the error of New and of every Send.
func TestBadURLHidesThePassword(t *testing.T) {
	_, err := New(AMQP("amqp://guest:s3cr%zzet@127.0.0.1:5672/"))
	if err == nil || strings.Contains(err.Error(), "s3cr") || !strings.Contains(err.Error(), "amqp://xxxxx@127.0.0.1:5672") {
		t.Errorf("AMQP: New: %v; want an error naming the host, not the password", err)
	}
	_, err = AMQP("amqp://guest:s3cr%zzet@127.0.0.1:5672/").Send(context.Background(), Event{ID: "e", Type: "t"})
	if err == nil || strings.Contains(err.Error(), "s3cr") || !errors.Is(err, ErrInvalid) {
		t.Errorf("AMQP: Send: %v; want ErrInvalid without the password", err)
	}
	// Before, taken by New, and quoted by every Dispatch's error.
	_, err = New(NATS("nats://nats:s3cr%zzet@127.0.0.1:4222"))
	if err == nil || strings.Contains(err.Error(), "s3cr") || !strings.Contains(err.Error(), "nats://xxxxx@127.0.0.1:4222") {
		t.Errorf("NATS: New: %v; want an error naming the host, not the password", err)
	}
	// Before, url.Parse's error and the URL were quoted whole.
	for url, want := range map[string]string{
		"http://user:s3cr%CRET@dispatcher.example.com/": "http://xxxxx@dispatcher.example.com",
		"ftp://user:s3cret@dispatcher.example.com/":     "ftp://user:xxxxx@dispatcher.example.com",
		"user:s3cret@dispatcher.example.com":            "user:…",
	} {
		_, err = New(HTTP(url, "t"))
		if err == nil || strings.Contains(err.Error(), "s3cr") || !strings.Contains(err.Error(), want) {
			t.Errorf("HTTP %s: New: %v; want an error showing %s, not the password", url, err, want)
		}
	}
}

// gateTransport holds its first Send until release is closed, and records
// whether it was closed while a Send was in flight.
type gateTransport struct {
	fakeTransport
	started, release chan struct{}
	held             atomic.Bool
	inFlight         atomic.Int32
	closedInFlight   atomic.Bool
}

func (g *gateTransport) Send(ctx context.Context, ev Event) (Receipt, error) {
	g.inFlight.Add(1)
	defer g.inFlight.Add(-1)
	if g.held.CompareAndSwap(false, true) {
		close(g.started)
		<-g.release
	}
	return g.fakeTransport.Send(ctx, ev)
}

func (g *gateTransport) Close() error {
	g.closedInFlight.Store(g.inFlight.Load() > 0)
	return g.fakeTransport.Close()
}

// Close lets the sends in flight end before it closes the transport, and
// refuses the Dispatch calls that begin after it. Before, it closed the
// transport under them: events the broker took were reported failed
// (NATS: connection closed, retryable).
func TestCloseWaitsForDispatchesInFlight(t *testing.T) {
	tr := &gateTransport{started: make(chan struct{}), release: make(chan struct{})}
	p := newProducer(t, tr, nil)
	dispatched := make(chan error, 1)
	go func() {
		_, err := p.Dispatch(context.Background(), "t", nil)
		dispatched <- err
	}()
	<-tr.started
	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()
	testenv.Eventually(t, 5*time.Second, func() string {
		if _, err := p.Dispatch(context.Background(), "t", nil); !errors.Is(err, ErrClosed) || Retryable(err) {
			return fmt.Sprintf("a Dispatch once Close began: %v, want ErrClosed", err)
		}
		return ""
	})
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) with a Dispatch in flight", err)
	default:
	}
	close(tr.release)
	if err := <-dispatched; err != nil {
		t.Errorf("the Dispatch in flight at Close: %v, want it taken", err)
	}
	if err := <-closed; err != nil || !tr.closed || tr.closedInFlight.Load() {
		t.Errorf("Close = %v, transport closed %v, while a send was in flight %v; want it closed after the send",
			err, tr.closed, tr.closedInFlight.Load())
	}
}

// Close does not wait out a Dispatch's pause before its next attempt: the
// Dispatch returns its last error at once, and sends no more.
func TestCloseCutsTheWaitBeforeARetry(t *testing.T) {
	tr := &fakeTransport{errs: []error{retryable}}
	p := newProducer(t, tr, nil, WithRetry(Retry{Attempts: 2, Initial: time.Hour, Max: time.Hour}))
	waiting := make(chan struct{})
	p.sleep = func(ctx context.Context, d time.Duration) error {
		close(waiting)
		return sleep(ctx, d)
	}
	dispatched := make(chan error, 1)
	go func() {
		_, err := p.Dispatch(context.Background(), "t", nil)
		dispatched <- err
	}()
	<-waiting
	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close waits for a Dispatch's pause of an hour")
	}
	var err error
	select {
	case err = <-dispatched:
	case <-time.After(10 * time.Second):
		t.Fatal("Dispatch still waits to retry after Close")
	}
	if !errors.Is(err, retryable) || !Retryable(err) || errors.Is(err, context.Canceled) || len(tr.sent) != 1 {
		t.Errorf("err = %v after %d sends; want the first attempt's error, retryable, after 1", err, len(tr.sent))
	}
}

// silentServer accepts connections until the test ends, and never says a
// word on them: a broker that hangs, or a port of something else.
func silentServer(t *testing.T) string {
	t.Helper()
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return testenv.AcceptLoopback(t, func(c net.Conn) {
		mu.Lock()
		defer mu.Unlock()
		conns = append(conns, c)
	})
}

// testConnectIsBounded dispatches at once through one producer on a
// transport to a server that never answers: each Dispatch returns when
// its attempt timeout or its ctx ends, not one after the other. Before,
// connecting ignored both (NATS waited 2 s, AMQP 10 s), and the
// dispatches waiting for the connection waited in turn.
func testConnectIsBounded(t *testing.T, newTransport func(addr string) Transport) {
	addr := silentServer(t)
	dispatchAll := func(t *testing.T, p *Producer, ctx context.Context, within time.Duration, wantErr error) {
		t.Helper()
		const n = 3
		errs := make(chan error, n)
		start := time.Now()
		for range n {
			go func() {
				_, err := p.Dispatch(ctx, "t", nil)
				if took := time.Since(start); took > within {
					err = fmt.Errorf("returned after %s, want within %s: %w", took, within, err)
				}
				errs <- err
			}()
		}
		for range n {
			if err := <-errs; !Retryable(err) || strings.Contains(err.Error(), "returned after") || wantErr != nil && !errors.Is(err, wantErr) {
				t.Errorf("%v; want a retryable error %v", err, wantErr)
			}
		}
	}
	t.Run("by the attempt timeout", func(t *testing.T) {
		const attempt = 500 * time.Millisecond
		p := newProducer(t, newTransport(addr), nil, WithRetry(Retry{Attempts: 1}), WithAttemptTimeout(attempt))
		dispatchAll(t, p, context.Background(), 2*attempt, nil)
	})
	t.Run("by the caller's ctx", func(t *testing.T) {
		p := newProducer(t, newTransport(addr), nil, WithRetry(Retry{Attempts: 1}))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		time.AfterFunc(300*time.Millisecond, cancel)
		dispatchAll(t, p, ctx, time.Second, context.Canceled)
	})
}

// testCloseDuringDispatches closes a producer on tr while dispatches are
// in flight: each is taken or fails with ErrClosed, none in between.
// Before, the connection was closed under them: NATS reported
// "connection closed", AMQP "channel/connection is not open", retryable,
// for events the broker had taken. It returns the events reported taken.
func testCloseDuringDispatches(t *testing.T, tr Transport) []Event {
	t.Helper()
	p := newProducer(t, tr, nil, WithRetry(Retry{Attempts: 1}))
	const workers = 8
	var taken atomic.Int32
	var mu sync.Mutex
	var events []Event
	var failed []error
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				ev, err := p.Dispatch(context.Background(), "t", nil)
				mu.Lock()
				switch {
				case err == nil:
					events = append(events, ev)
					taken.Add(1)
				case !errors.Is(err, ErrClosed):
					failed = append(failed, err)
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	testenv.Eventually(t, 10*time.Second, func() string {
		if n := taken.Load(); n < 50 {
			return fmt.Sprintf("%d events taken", n)
		}
		return ""
	})
	if err := p.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	wg.Wait()
	for _, err := range failed {
		t.Errorf("a Dispatch in flight at Close: %v, want it taken", err)
	}
	return events
}

// A Retry that names only its attempts waits as DefaultRetry does.
// Before, its zero Initial and Max retried at once.
func TestRetryLeftZeroWaitsAsTheDefault(t *testing.T) {
	tr := &fakeTransport{errs: []error{retryable, retryable}}
	w := &waits{}
	p := newProducer(t, tr, w, WithRetry(Retry{Attempts: 3}))
	if _, err := p.Dispatch(context.Background(), "t", nil); err != nil {
		t.Fatal(err)
	}
	base := DefaultRetry.Initial
	if len(w.d) != 2 {
		t.Fatalf("waited %d times, want 2", len(w.d))
	}
	for i, d := range w.d {
		if d < base/2 || d > base {
			t.Errorf("wait %d = %s, want within [%s, %s]", i+1, d, base/2, base)
		}
		base *= 2
	}
}
