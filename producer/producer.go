// Package producer sends events to the dispatcher from Go services: over
// HTTP to its intake (POST /events/v1), or through RabbitMQ or NATS
// JetStream, which the dispatcher consumes. It is the Go counterpart of
// lk-dispatch's dispatch(type, data, {sourceUserId, partitionKey}):
//
//	p, err := producer.New(producer.HTTP("https://dispatcher.example.com", apiKey),
//		producer.WithSource("billing@"+hostname))
//	ev, err := p.Dispatch(ctx, "user_deleted", data,
//		producer.WithUserID(userID), producer.WithPartitionKey(userID))
//
// Every event gets an id once (a UUIDv7, or the caller's own with
// WithID), and keeps it, with the same bytes, across the producer's
// retries: the dispatcher runs an event id once, so an event sent twice
// because an answer was lost is dispatched once. Dispatch returns when
// the event is durably taken: the dispatcher answered 202 (it has started
// the dispatch), RabbitMQ confirmed the publish (publisher confirms, with
// the mandatory flag so an event no queue takes is an error), or
// JetStream acknowledged it (with the id as Nats-Msg-Id, for JetStream's
// own duplicate window). Its error says whether sending the same event
// again may succeed (Retryable).
//
// The package imports no framework and none of the dispatcher's other
// packages: only the standard library and the RabbitMQ and NATS clients.
package producer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"
)

// Transport sends an encoded event once. Send returns an *Error whose
// Retryable says whether sending the same event again may succeed (any
// other error is taken as retryable); it must honour ctx's deadline.
// Close releases its connections. HTTP, AMQP and NATS are the transports
// of this package.
type Transport interface {
	Send(ctx context.Context, ev Event) (Receipt, error)
	Close() error
}

// Retry is how Dispatch retries a retryable failure: up to Attempts
// sends in all, waiting Initial after the first failure, twice as long
// after each next one up to Max, each wait with up to half of it
// random. A Retry-After from the dispatcher is waited instead, with up to
// a fifth more at random, so that producers told the same Retry-After do
// not all come back at once; one longer than Max ends the retries, with
// RetryAfter in the error.
type Retry struct {
	Attempts int
	Initial  time.Duration
	Max      time.Duration
}

// DefaultRetry is the Retry of a producer that sets none: 5 attempts,
// with at most 3 seconds of waiting between them in all.
var DefaultRetry = Retry{Attempts: 5, Initial: 200 * time.Millisecond, Max: 10 * time.Second}

// DefaultAttemptTimeout bounds one send: the request, or the publish and
// its confirmation, and the connection it needs.
const DefaultAttemptTimeout = 10 * time.Second

// Producer sends events through one transport. It is safe for concurrent
// use.
type Producer struct {
	transport      Transport
	envelope       Envelope
	source         string
	retry          Retry
	attemptTimeout time.Duration
	now            func() time.Time
	sleep          func(ctx context.Context, d time.Duration) error

	mu       sync.Mutex
	closed   bool
	inFlight sync.WaitGroup // Dispatch calls Close waits for
	// closing ends when Close begins: it cuts the waits between attempts
	// short, so that Close does not wait them out.
	closing     context.Context
	closingDone context.CancelFunc
}

// Option configures a Producer.
type Option func(*Producer)

// WithEnvelope sets the envelope events are sent in (default EnvelopeLK).
func WithEnvelope(e Envelope) Option { return func(p *Producer) { p.envelope = e } }

// WithSource names the producer: lk's source.producerId, CloudEvents'
// source. The default is "<program>@<hostname>". A CloudEvent is
// identified by its source and id together, so a producer that sends
// again with WithID an event a failed Dispatch returned keeps it the same
// by setting the source explicitly.
func WithSource(source string) Option { return func(p *Producer) { p.source = source } }

// WithRetry sets how retryable failures are retried (default
// DefaultRetry; Attempts 1 never retries). An Initial or Max left zero
// is DefaultRetry's.
func WithRetry(r Retry) Option {
	return func(p *Producer) {
		// Retry{Attempts: 3} retried at once, three sends within a
		// millisecond, when it meant the default waits.
		if r.Initial == 0 {
			r.Initial = DefaultRetry.Initial
		}
		if r.Max == 0 {
			r.Max = max(DefaultRetry.Max, r.Initial)
		}
		p.retry = r
	}
}

// WithAttemptTimeout bounds each send (default DefaultAttemptTimeout).
func WithAttemptTimeout(d time.Duration) Option { return func(p *Producer) { p.attemptTimeout = d } }

// WithClock sets the clock that times events and ids (default time.Now).
func WithClock(now func() time.Time) Option { return func(p *Producer) { p.now = now } }

// configChecker is a transport of this package that knows whether its
// configuration (a URL) is valid before it connects.
type configChecker interface{ configErr() error }

// New returns a producer that sends through t. It does not connect: the
// AMQP and NATS transports connect on the first Dispatch, and again after
// they lost their connection.
func New(t Transport, opts ...Option) (*Producer, error) {
	if t == nil {
		return nil, errors.New("producer: no transport")
	}
	p := &Producer{transport: t, envelope: EnvelopeLK, retry: DefaultRetry, attemptTimeout: DefaultAttemptTimeout,
		now: time.Now, sleep: sleep}
	p.closing, p.closingDone = context.WithCancel(context.Background())
	for _, o := range opts {
		o(p)
	}
	if c, ok := t.(configChecker); ok {
		if err := c.configErr(); err != nil {
			return nil, err
		}
	}
	if p.source == "" {
		p.source = defaultSource()
	}
	switch {
	case p.envelope != EnvelopeLK && p.envelope != EnvelopeCloudEvents:
		return nil, fmt.Errorf("producer: envelope %q: must be %q or %q", p.envelope, EnvelopeLK, EnvelopeCloudEvents)
	case p.retry.Attempts < 1 || p.retry.Initial < 0 || p.retry.Max < p.retry.Initial:
		return nil, fmt.Errorf("producer: retry %+v: needs at least 1 attempt and 0 <= Initial <= Max", p.retry)
	case p.attemptTimeout <= 0:
		return nil, errors.New("producer: the attempt timeout must be positive")
	}
	if err := checkSource(p.envelope, p.source); err != nil {
		return nil, err
	}
	return p, nil
}

// Dispatch sends an event of type typ with data (any value that
// encodes as JSON: a struct, a map, json.RawMessage; with the lk envelope
// a JSON object; nil sends {}), retrying retryable failures as the
// producer's Retry says, and returns the event as sent once it is taken.
// On failure it returns the event too, with its id, and an error that
// is or wraps an *Error (errors.As); when Retryable(err), sending it again
// with WithID(ev.ID) and WithTime(ev.Time) is safe. ctx bounds the whole,
// retries included; when it ends between attempts, the error wraps the
// last attempt's and ctx's.
func (p *Producer) Dispatch(ctx context.Context, typ string, data any, opts ...DispatchOption) (Event, error) {
	now := p.now()
	ev := Event{Type: typ, Time: now, Source: p.source, Envelope: p.envelope}
	for _, o := range opts {
		o(&ev)
	}
	if ev.ID == "" {
		ev.ID = newID(now)
	}
	ev.Time = ev.Time.UTC().Truncate(time.Millisecond)
	if err := ev.encode(data); err != nil {
		return ev, err
	}
	if !p.begin() {
		return ev, &Error{Message: "dispatch", Err: ErrClosed}
	}
	defer p.inFlight.Done()
	for attempt, wait := 1, p.retry.Initial; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, p.attemptTimeout)
		rec, err := p.transport.Send(actx, ev)
		cancel()
		rec.Attempts = attempt
		ev.Receipt = rec
		if err == nil {
			return ev, nil
		}
		var e *Error
		if !errors.As(err, &e) {
			e = &Error{Retryable: true, Message: "send", Err: err}
			err = e
		}
		if !e.Retryable || attempt >= p.retry.Attempts || p.closing.Err() != nil {
			return ev, err
		}
		pause := wait/2 + rand.N(wait/2+1)
		if e.RetryAfter > 0 {
			if e.RetryAfter > p.retry.Max {
				return ev, err
			}
			// Never sooner than asked; the jitter spreads the producers a
			// busy dispatcher answered at once, which came back in
			// lockstep.
			pause = e.RetryAfter + rand.N(e.RetryAfter/5+1)
		}
		if serr := p.pause(ctx, pause); serr != nil {
			if p.closing.Err() != nil {
				return ev, err // the event was not taken; Close is no reason of its own
			}
			return ev, fmt.Errorf("%w (stopped retrying: %w)", err, serr)
		}
		wait = min(2*wait, p.retry.Max)
	}
}

// begin counts a Dispatch in flight, unless the producer is closed.
func (p *Producer) begin() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.inFlight.Add(1)
	return true
}

// pause waits d between attempts, or less when ctx ends or Close begins.
func (p *Producer) pause(ctx context.Context, d time.Duration) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(p.closing, cancel)
	defer stop()
	return p.sleep(ctx, d)
}

// Close waits for the Dispatch calls in flight to end, then closes the
// transport's connections; Dispatch calls that begin once Close has
// begun fail with ErrClosed. A send in flight is not cut short, so that
// an event the broker or the dispatcher takes is reported taken, not
// failed: Close may wait as long as the longest of them, bounded by its
// caller's ctx and the attempt timeout. A Dispatch waiting to retry does
// not send again: it returns its last error, retryable, at once.
func (p *Producer) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	p.closingDone()
	p.inFlight.Wait()
	return p.transport.Close()
}

// sleep waits d, or less when ctx ends first (its error then).
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

var unsafeSourceChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// defaultSource is "<program>@<hostname>", as lk-dispatch's producerIds
// are "server@hostname", kept to characters valid in a URI-reference.
func defaultSource() string {
	host, _ := os.Hostname()
	prog := filepath.Base(os.Args[0])
	return unsafeSourceChars.ReplaceAllString(prog, "-") + "@" + unsafeSourceChars.ReplaceAllString(host, "-")
}
