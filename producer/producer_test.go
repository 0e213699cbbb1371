package producer

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
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
	if len(w.d) != 1 || w.d[0] != 3*time.Second {
		t.Errorf("waits %v, want [3s] as Retry-After said", w.d)
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
	} {
		t.Run(tt.name, func(t *testing.T) {
			if p, err := New(tt.tr, tt.opts...); err == nil {
				p.Close()
				t.Error("New succeeded")
			}
		})
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
	p := newProducer(t, NATS("nats://nats:s3cr%zzet@127.0.0.1:4222"), &waits{}, WithRetry(Retry{Attempts: 1}))
	_, err = p.Dispatch(context.Background(), "t", nil)
	if err == nil || strings.Contains(err.Error(), "s3cr") || !strings.Contains(err.Error(), "nats://xxxxx@127.0.0.1:4222") {
		t.Errorf("NATS: Dispatch: %v; want an error naming the host, not the password", err)
	}
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
