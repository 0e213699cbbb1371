package producer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dispatcherhq/dispatcher/internal/redact"
)

// DefaultSubjectPrefix starts the subject of every event: events.<type>,
// which the dispatcher's stream DISPATCHER_EVENTS captures (events.>).
const DefaultSubjectPrefix = "events."

// NATSOption configures the NATS transport.
type NATSOption func(*natsTransport)

// NATSSubjectPrefix sets what starts the subject, before the event type
// (default DefaultSubjectPrefix): the dispatcher's DISPATCHER_NATS_SUBJECT,
// with or without the dot that separates it from the type ("events" and
// "events." are both events.<type>).
func NATSSubjectPrefix(prefix string) NATSOption {
	if prefix != "" {
		prefix = strings.TrimSuffix(prefix, ".") + "."
	}
	return func(t *natsTransport) { t.prefix = prefix }
}

// NATSStream makes JetStream refuse an event that would be stored in
// another stream than this one (ErrRejected), so that a misconfigured
// subject fails instead of feeding another stream.
func NATSStream(name string) NATSOption { return func(t *natsTransport) { t.stream = name } }

// NATSConnectOptions adds options to the connection: credentials, TLS,
// reconnection (nats.UserInfo, nats.UserCredentials, nats.Secure, ...).
func NATSConnectOptions(opts ...nats.Option) NATSOption {
	return func(t *natsTransport) { t.opts = append(t.opts, opts...) }
}

// NATS publishes events to JetStream on the subject <prefix><type>
// (events.user_deleted) and returns once the stream acknowledged them.
// The event's identity is the message's Nats-Msg-Id, so that JetStream
// drops an event sent again within the stream's duplicate window
// (Receipt's Duplicate): its id, or for a CloudEvent "ce-" and a hash of
// its source and id. A subject no stream captures is ErrNoStream, retryable.
// A type beginning with "dead." is ErrInvalid: the dispatcher keeps its
// dead letters on those subjects, and takes nothing else in from there.
// url is the NATS server's (nats://127.0.0.1:4222, or several, comma-
// separated). The transport connects on the first send and again after
// the connection closed for good; in between, the NATS client reconnects
// by itself. Connecting is part of a send: the attempt timeout and the
// caller's ctx bound it.
func NATS(url string, opts ...NATSOption) Transport {
	t := &natsTransport{url: url, prefix: DefaultSubjectPrefix, connecting: make(chan struct{}, 1)}
	for _, o := range opts {
		o(t)
	}
	t.err = checkNATSURL(url)
	return t
}

// checkNATSURL refuses what the NATS client could never connect to, which
// each send would otherwise try again, as retryable, for ever: a URL that
// does not parse, of another scheme, without a host. Its error quotes no
// password.
func checkNATSURL(urls string) error {
	if strings.TrimSpace(strings.ReplaceAll(urls, ",", "")) == "" {
		return errors.New("producer: nats: no server URL")
	}
	for _, raw := range strings.Split(urls, ",") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		if !strings.Contains(raw, "://") {
			raw = "nats://" + raw // as the NATS client reads host:port
		}
		if err := redact.Ambiguous(raw); err != nil {
			return fmt.Errorf("producer: nats: URL: %v", err)
		}
		u, err := url.Parse(raw)
		if err != nil {
			return fmt.Errorf("producer: nats: URL: %v", redact.URL(err))
		}
		switch {
		case u.Scheme != "nats" && u.Scheme != "tls" && u.Scheme != "ws" && u.Scheme != "wss":
			return fmt.Errorf("producer: nats: URL of scheme %q: must be nats, tls, ws or wss", u.Scheme)
		case u.Hostname() == "":
			return fmt.Errorf("producer: nats: URL %s: no host", u.Redacted())
		}
	}
	return nil
}

type natsTransport struct {
	url    string
	prefix string
	stream string
	opts   []nats.Option
	err    error
	// connecting holds one token, taken by the send that connects: the
	// others wait for it as long as their ctx lets them, which a mutex
	// would not.
	connecting chan struct{}

	mu     sync.Mutex
	nc     *nats.Conn
	js     jetstream.JetStream
	closed bool
}

func (t *natsTransport) configErr() error { return t.err }

func (t *natsTransport) Send(ctx context.Context, ev Event) (Receipt, error) {
	if t.err != nil {
		return Receipt{}, &Error{Transport: "nats", Message: t.err.Error(), Err: ErrInvalid}
	}
	subject := t.prefix + ev.Type
	if err := checkSubject(subject); err != nil {
		return Receipt{}, invalid("nats", fmt.Sprintf("type: %q makes the subject %q, %s", ev.Type, subject, err))
	}
	// The dispatcher's dead letters live on <prefix>dead.>: an event
	// published there would be acknowledged as one, never dispatched.
	if strings.HasPrefix(ev.Type, "dead.") {
		return Receipt{}, invalid("nats", fmt.Sprintf("type: %q makes the subject %q, where the dispatcher keeps its dead letters: a type may not begin with dead.", ev.Type, subject))
	}
	js, err := t.jetStream(ctx)
	if err != nil {
		return Receipt{}, err
	}
	msg := nats.NewMsg(subject)
	msg.Data = ev.Body
	msg.Header.Set("Content-Type", ev.ContentType)
	opts := []jetstream.PublishOpt{jetstream.WithMsgID(msgID(ev))}
	if t.stream != "" {
		opts = append(opts, jetstream.WithExpectStream(t.stream))
	}
	ack, err := js.PublishMsg(ctx, msg, opts...)
	if err != nil {
		return Receipt{}, natsError("publish to "+subject, err)
	}
	return Receipt{Duplicate: ack.Duplicate, Stream: ack.Stream, Sequence: ack.Sequence}, nil
}

// msgID is the Nats-Msg-Id of ev, by which JetStream drops it when it is
// sent again: the event's identity as the dispatcher sees it. That of lk's
// event is its id alone; that of a CloudEvent is its source and id
// together, so that two producers' events of one id are both kept (a hash,
// the source being up to 1024 bytes).
func msgID(ev Event) string {
	if ev.Envelope != EnvelopeCloudEvents {
		return ev.ID
	}
	h := sha256.Sum256([]byte(ev.Source + "\x00" + ev.ID))
	return "ce-" + hex.EncodeToString(h[:])[:32]
}

// current returns the JetStream context of the connection; nil when there
// is none or it closed.
func (t *natsTransport) current() (jetstream.JetStream, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, &Error{Transport: "nats", Err: ErrClosed}
	}
	if t.nc != nil && !t.nc.IsClosed() {
		return t.js, nil
	}
	return nil, nil
}

// jetStream returns the JetStream context of the connection, connecting
// first when there is none or it closed, within ctx.
func (t *natsTransport) jetStream(ctx context.Context) (jetstream.JetStream, error) {
	if js, err := t.current(); js != nil || err != nil {
		return js, err
	}
	select {
	case t.connecting <- struct{}{}:
		defer func() { <-t.connecting }()
	case <-ctx.Done():
		return nil, natsError("waiting for the connection", ctx.Err())
	}
	// Another send may have connected while this one waited.
	if js, err := t.current(); js != nil || err != nil {
		return js, err
	}
	nc, err := t.connect(ctx)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, natsError("JetStream", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		nc.Close()
		return nil, &Error{Transport: "nats", Err: ErrClosed}
	}
	t.nc, t.js = nc, js
	return js, nil
}

// connect connects within ctx. The NATS client takes no context: its
// Timeout bounds each server's dial and handshake, and a connection that
// comes after ctx ended is closed.
func (t *natsTransport) connect(ctx context.Context) (*nats.Conn, error) {
	timeout := DefaultAttemptTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	if timeout <= 0 {
		return nil, natsError("connect", context.DeadlineExceeded)
	}
	// Last, so that it bounds a Timeout of the caller's options too: the
	// client's default, 2 s, outlasted a shorter attempt timeout.
	opts := append([]nats.Option{nats.Name("dispatcher-producer")}, t.opts...)
	opts = append(opts, nats.Timeout(timeout))
	type result struct {
		nc  *nats.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		nc, err := nats.Connect(t.url, opts...)
		done <- result{nc, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			if ctx.Err() != nil {
				return nil, natsError("connect", fmt.Errorf("%w (%w)", ctx.Err(), redact.URL(r.err)))
			}
			return nil, natsError("connect", redact.URL(r.err))
		}
		return r.nc, nil
	case <-ctx.Done():
		go func() {
			if r := <-done; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, natsError("connect", ctx.Err())
	}
}

// checkSubject refuses what NATS cannot publish to: whitespace,
// wildcards, empty tokens.
func checkSubject(s string) error {
	if strings.ContainsAny(s, " \t\r\n\f\v*>") {
		return errors.New("which may not hold whitespace, * or >")
	}
	for _, tok := range strings.Split(s, ".") {
		if tok == "" {
			return errors.New("which may not start or end with a dot, nor hold two in a row")
		}
	}
	return nil
}

// natsError classifies err: JetStream refusing the message (4xx), a
// message too large and refused credentials are not retryable; a stream
// that did not answer, a timeout, a lost connection are.
func natsError(op string, err error) *Error {
	e := &Error{Transport: "nats", Retryable: true, Message: op, Err: err}
	var api *jetstream.APIError
	switch {
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		e.Err = fmt.Errorf("%w: %w", ErrNoStream, err)
	case errors.As(err, &api):
		if api.Code < 500 && api.Code != 429 {
			e.Retryable = false
			e.Err = fmt.Errorf("%w: %w", ErrRejected, err)
		}
	case errors.Is(err, nats.ErrMaxPayload), errors.Is(err, nats.ErrBadSubject):
		e.Retryable = false
		e.Err = fmt.Errorf("%w: %w", ErrInvalid, err)
	case errors.Is(err, nats.ErrAuthorization), errors.Is(err, nats.ErrAuthExpired), errors.Is(err, nats.ErrAuthRevoked):
		e.Retryable = false
	}
	return e
}

func (t *natsTransport) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	if t.nc != nil {
		// Close, not Drain: the producer's Close waited for the publishes
		// in flight, so Drain would only unsubscribe JetStream's reply
		// inbox, and return before the connection is closed.
		t.nc.Close()
	}
	return nil
}
