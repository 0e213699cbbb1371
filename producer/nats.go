package producer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"

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
// by itself.
func NATS(url string, opts ...NATSOption) Transport {
	t := &natsTransport{url: url, prefix: DefaultSubjectPrefix}
	for _, o := range opts {
		o(t)
	}
	if strings.TrimSpace(url) == "" {
		t.err = errors.New("producer: nats: no server URL")
	}
	return t
}

type natsTransport struct {
	url    string
	prefix string
	stream string
	opts   []nats.Option
	err    error

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
	js, err := t.jetStream()
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

// jetStream returns the JetStream context of the connection, connecting
// first when there is none or it closed.
func (t *natsTransport) jetStream() (jetstream.JetStream, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, &Error{Transport: "nats", Err: ErrClosed}
	}
	if t.nc != nil && !t.nc.IsClosed() {
		return t.js, nil
	}
	nc, err := nats.Connect(t.url, append([]nats.Option{nats.Name("dispatcher-producer")}, t.opts...)...)
	if err != nil {
		return nil, natsError("connect", redact.URL(err))
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, natsError("JetStream", err)
	}
	t.nc, t.js = nc, js
	return js, nil
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
		t.nc.Close()
	}
	return nil
}
