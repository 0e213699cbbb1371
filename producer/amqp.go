package producer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/dispatcherhq/dispatcher/internal/redact"
)

// DefaultExchange is the topic exchange the dispatcher consumes
// (DISPATCHER_AMQP_EXCHANGE).
const DefaultExchange = "dispatcher.events"

// AMQPOption configures the AMQP transport.
type AMQPOption func(*amqpTransport)

// AMQPExchange sets the exchange events are published to (default
// DefaultExchange).
func AMQPExchange(name string) AMQPOption { return func(t *amqpTransport) { t.exchange = name } }

// AMQPDeclare says whether the transport declares the exchange (durable,
// topic) when it connects, so that producers may start before the
// dispatcher (default true). Without it, publishing to an exchange that
// does not exist fails for good (ErrRejected).
func AMQPDeclare(declare bool) AMQPOption { return func(t *amqpTransport) { t.declare = declare } }

// AMQPChannels sets how many publishes may await their confirmation at
// once, each on a channel of its own (default 4).
func AMQPChannels(n int) AMQPOption { return func(t *amqpTransport) { t.channels = n } }

// AMQP publishes events to a RabbitMQ topic exchange, the routing key
// their type, persistent and mandatory, on a channel in confirm mode:
// Send returns once the broker confirmed the publish. An event no queue
// is bound for comes back (ErrUnroutable), a negative confirmation is
// ErrNacked; both are retryable. The message's message-id is the event id,
// its type the event type, its timestamp the event time, its app-id the
// producer's source and its content type that of the envelope. url is an
// AMQP URI (amqp://guest:guest@127.0.0.1:5672/). The transport connects
// on the first send and again on the next send after the connection is
// lost.
func AMQP(url string, opts ...AMQPOption) Transport {
	t := &amqpTransport{url: url, exchange: DefaultExchange, declare: true, channels: 4}
	for _, o := range opts {
		o(t)
	}
	if _, err := amqp.ParseURI(url); err != nil {
		t.err = fmt.Errorf("producer: amqp: URL: %v", redact.URL(err))
	} else if t.channels < 1 {
		t.err = errors.New("producer: amqp: AMQPChannels needs at least 1")
	}
	t.slots = make(chan struct{}, max(t.channels, 1))
	return t
}

type amqpTransport struct {
	url      string
	exchange string
	declare  bool
	channels int
	err      error
	slots    chan struct{} // one per publish awaiting its confirmation

	mu     sync.Mutex
	conn   *amqp.Connection
	idle   []*amqpChannel // channels of conn, confirming, none publishing
	closed bool
}

// amqpChannel is a channel in confirm mode with one publish at a time,
// so that a returned message (which the broker sends before the publish's
// confirmation, and the client hands over in that order) is the one
// just published.
type amqpChannel struct {
	conn    *amqp.Connection
	ch      *amqp.Channel
	returns chan amqp.Return
	closes  chan *amqp.Error
}

func (t *amqpTransport) configErr() error { return t.err }

// maxRoutingKey is the longest AMQP short string.
const maxRoutingKey = 255

func (t *amqpTransport) Send(ctx context.Context, ev Event) (Receipt, error) {
	if t.err != nil {
		return Receipt{}, &Error{Transport: "amqp", Message: t.err.Error(), Err: ErrInvalid}
	}
	if len(ev.Type) > maxRoutingKey {
		return Receipt{}, invalid("amqp", fmt.Sprintf("type: a routing key holds at most %d bytes", maxRoutingKey))
	}
	select {
	case t.slots <- struct{}{}:
		defer func() { <-t.slots }()
	case <-ctx.Done():
		return Receipt{}, &Error{Transport: "amqp", Retryable: true, Message: "waiting for a channel", Err: ctx.Err()}
	}
	c, err := t.channel(ctx)
	if err != nil {
		return Receipt{}, err
	}
	dc, err := c.ch.PublishWithDeferredConfirmWithContext(ctx, t.exchange, ev.Type, true, false, amqp.Publishing{
		ContentType:  ev.ContentType,
		DeliveryMode: amqp.Persistent,
		MessageId:    ev.ID,
		Timestamp:    ev.Time,
		Type:         ev.Type,
		AppId:        ev.Source,
		Body:         ev.Body,
	})
	if err != nil {
		t.discard(c)
		return Receipt{}, t.channelError(c, "publish", err)
	}
	acked, err := dc.WaitContext(ctx)
	switch {
	case err != nil:
		// A confirmation may still come, and a return with it: the
		// channel cannot be used again.
		t.discard(c)
		return Receipt{}, &Error{Transport: "amqp", Retryable: true, Message: "no confirmation", Err: err}
	case !acked && c.ch.IsClosed():
		t.discard(c)
		return Receipt{}, t.channelError(c, "publish", amqp.ErrClosed)
	case !acked:
		t.release(c)
		return Receipt{}, &Error{Transport: "amqp", Retryable: true, Message: fmt.Sprintf("exchange %q", t.exchange), Err: ErrNacked}
	}
	select {
	case r := <-c.returns:
		t.release(c)
		if r.MessageId == ev.ID {
			return Receipt{}, &Error{Transport: "amqp", Retryable: true, Err: ErrUnroutable,
				Message: fmt.Sprintf("exchange %q, routing key %q: %d %s", t.exchange, ev.Type, r.ReplyCode, r.ReplyText)}
		}
	default:
		t.release(c)
	}
	return Receipt{}, nil
}

// channel returns an idle channel of the connection, connecting first
// when there is none.
func (t *amqpTransport) channel(ctx context.Context) (*amqpChannel, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, &Error{Transport: "amqp", Err: ErrClosed}
	}
	if t.conn == nil || t.conn.IsClosed() {
		if err := t.connect(ctx); err != nil {
			return nil, err
		}
	}
	for len(t.idle) > 0 {
		c := t.idle[len(t.idle)-1]
		t.idle = t.idle[:len(t.idle)-1]
		if c.conn == t.conn && !c.ch.IsClosed() {
			return c, nil
		}
		_ = c.ch.Close()
	}
	ch, err := t.conn.Channel()
	if err != nil {
		return nil, amqpError("open a channel", err)
	}
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		return nil, amqpError("confirm mode", err)
	}
	return &amqpChannel{conn: t.conn, ch: ch,
		returns: ch.NotifyReturn(make(chan amqp.Return, 1)),
		closes:  ch.NotifyClose(make(chan *amqp.Error, 1))}, nil
}

// connect dials the broker and declares the exchange; t.mu is held.
func (t *amqpTransport) connect(ctx context.Context) error {
	timeout := 30 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	if timeout <= 0 {
		return &Error{Transport: "amqp", Retryable: true, Message: "connect", Err: context.DeadlineExceeded}
	}
	conn, err := amqp.DialConfig(t.url, amqp.Config{
		Dial:       amqp.DefaultDial(timeout),
		Heartbeat:  10 * time.Second,
		Properties: amqp.Table{"connection_name": "dispatcher-producer"},
	})
	if err != nil {
		return amqpError("connect", redact.URL(err))
	}
	if t.declare {
		ch, err := conn.Channel()
		if err == nil {
			err = ch.ExchangeDeclare(t.exchange, "topic", true, false, false, false, nil)
			_ = ch.Close()
		}
		if err != nil {
			_ = conn.Close()
			return amqpError(fmt.Sprintf("declare the topic exchange %q", t.exchange), err)
		}
	}
	if t.conn != nil {
		_ = t.conn.Close()
	}
	t.conn, t.idle = conn, nil
	return nil
}

func (t *amqpTransport) release(c *amqpChannel) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed || c.conn != t.conn || c.ch.IsClosed() {
		_ = c.ch.Close()
		return
	}
	t.idle = append(t.idle, c)
}

func (t *amqpTransport) discard(c *amqpChannel) { _ = c.ch.Close() }

// channelError says why c failed: the reason the broker closed it with,
// when it did.
func (t *amqpTransport) channelError(c *amqpChannel, op string, err error) error {
	select {
	case reason, ok := <-c.closes:
		if ok && reason != nil {
			err = reason
		}
	default:
	}
	return amqpError(op, err)
}

// amqpError classifies err: refused access, a missing exchange or one
// declared otherwise are not retryable; anything else (a lost connection,
// a broker unavailable) is.
func amqpError(op string, err error) *Error {
	e := &Error{Transport: "amqp", Retryable: true, Message: op, Err: err}
	var ae *amqp.Error
	if errors.As(err, &ae) {
		switch ae.Code {
		case amqp.AccessRefused, amqp.NotFound, amqp.PreconditionFailed:
			e.Retryable = false
			e.Err = fmt.Errorf("%w: %w", ErrRejected, err)
		}
	}
	return e
}

func (t *amqpTransport) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	if t.conn == nil {
		return nil
	}
	err := t.conn.Close()
	if errors.Is(err, amqp.ErrClosed) {
		err = nil
	}
	return err
}
