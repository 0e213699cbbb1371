package producer

import (
	"context"
	"errors"
	"fmt"
	"net"
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
// lost. Connecting, and opening a channel, are part of a send: the
// attempt timeout and the caller's ctx bound them.
func AMQP(url string, opts ...AMQPOption) Transport {
	t := &amqpTransport{url: url, exchange: DefaultExchange, declare: true, channels: 4,
		connecting: make(chan struct{}, 1)}
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
	// connecting holds one token, taken by the send that connects: the
	// others wait for it as long as their ctx lets them, which a mutex
	// would not.
	connecting chan struct{}

	mu     sync.Mutex // guards what follows, never held across the network
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
	conn, c, err := t.idleChannel()
	if c != nil || err != nil {
		return c, err
	}
	if conn == nil {
		if conn, err = t.connection(ctx); err != nil {
			return nil, err
		}
	}
	// The client takes no ctx here: a broker that stops answering on an
	// open connection held the send until the heartbeats gave out (30 s
	// and more). The open goes on without it, and closes what it opens;
	// when the attempt's time ran out, the connection is dropped too
	// (closing it ends the open): the next send connects again, rather
	// than leave one more open waiting on a connection that is gone.
	type opened struct {
		c   *amqpChannel
		err error
	}
	done := make(chan opened, 1)
	go func() {
		c, err := openChannel(conn)
		done <- opened{c, err}
	}()
	select {
	case o := <-done:
		return o.c, o.err
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.mu.Lock()
			if t.conn == conn {
				t.conn, t.idle = nil, nil
			}
			t.mu.Unlock()
			go conn.Close()
		}
		go func() {
			if o := <-done; o.c != nil {
				_ = o.c.ch.Close()
			}
		}()
		return nil, &Error{Transport: "amqp", Retryable: true, Message: "open a channel", Err: ctx.Err()}
	}
}

// openChannel opens a channel of conn in confirm mode.
func openChannel(conn *amqp.Connection) (*amqpChannel, error) {
	ch, err := conn.Channel()
	if err != nil {
		return nil, amqpError("open a channel", err)
	}
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		return nil, amqpError("confirm mode", err)
	}
	return &amqpChannel{conn: conn, ch: ch,
		returns: ch.NotifyReturn(make(chan amqp.Return, 1)),
		closes:  ch.NotifyClose(make(chan *amqp.Error, 1))}, nil
}

// idleChannel returns an idle channel of the connection, or the
// connection when it has none; neither when there is no connection open.
func (t *amqpTransport) idleChannel() (*amqp.Connection, *amqpChannel, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, nil, &Error{Transport: "amqp", Err: ErrClosed}
	}
	if t.conn == nil || t.conn.IsClosed() {
		return nil, nil, nil
	}
	for len(t.idle) > 0 {
		c := t.idle[len(t.idle)-1]
		t.idle = t.idle[:len(t.idle)-1]
		if c.conn == t.conn && !c.ch.IsClosed() {
			return nil, c, nil
		}
		_ = c.ch.Close()
	}
	return t.conn, nil, nil
}

// connection returns the connection, connecting within ctx, or waiting
// within ctx for the send that connects.
func (t *amqpTransport) connection(ctx context.Context) (*amqp.Connection, error) {
	select {
	case t.connecting <- struct{}{}:
		defer func() { <-t.connecting }()
	case <-ctx.Done():
		return nil, &Error{Transport: "amqp", Retryable: true, Message: "waiting for the connection", Err: ctx.Err()}
	}
	// Another send may have connected while this one waited.
	if conn, _, err := t.idleChannel(); conn != nil || err != nil {
		return conn, err
	}
	conn, err := t.connect(ctx)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		_ = conn.Close()
		return nil, &Error{Transport: "amqp", Err: ErrClosed}
	}
	if t.conn != nil {
		_ = t.conn.Close()
	}
	t.conn, t.idle = conn, nil
	return conn, nil
}

// connect dials the broker and declares the exchange, within ctx: the
// client takes no context, so the socket is closed when ctx ends before
// the connection is ready (a broker that accepts and never answers held
// a send for 30 s, whatever its ctx).
func (t *amqpTransport) connect(ctx context.Context) (*amqp.Connection, error) {
	if _, ok := ctx.Deadline(); !ok { // Send called without the producer's attempt timeout
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultAttemptTimeout)
		defer cancel()
	}
	var stop func() bool
	conn, err := amqp.DialConfig(t.url, amqp.Config{
		Dial: func(network, addr string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			stop = context.AfterFunc(ctx, func() { _ = c.Close() })
			return c, nil
		},
		Heartbeat:  10 * time.Second,
		Properties: amqp.Table{"connection_name": "dispatcher-producer"},
	})
	if err == nil && t.declare {
		err = t.declareExchange(conn)
	}
	cut := stop != nil && !stop() // ctx ended: the socket is closed, or about to be
	switch {
	case ctx.Err() != nil && (err != nil || cut):
		if conn != nil {
			_ = conn.Close()
		}
		return nil, &Error{Transport: "amqp", Retryable: true, Message: "connect", Err: ctx.Err()}
	case err != nil:
		if conn != nil {
			_ = conn.Close()
		}
		return nil, amqpError("connect", redact.URL(err))
	}
	return conn, nil
}

// declareExchange declares the topic exchange, durable.
func (t *amqpTransport) declareExchange(conn *amqp.Connection) error {
	ch, err := conn.Channel()
	if err == nil {
		err = ch.ExchangeDeclare(t.exchange, "topic", true, false, false, false, nil)
		_ = ch.Close()
	}
	if err != nil {
		return fmt.Errorf("declare the topic exchange %q: %w", t.exchange, err)
	}
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

// amqpError classifies err: refused access, a missing vhost, a missing
// exchange or one declared otherwise are not retryable; anything else (a lost connection,
// a broker unavailable) is.
func amqpError(op string, err error) *Error {
	e := &Error{Transport: "amqp", Retryable: true, Message: op, Err: err}
	var ae *amqp.Error
	if errors.As(err, &ae) {
		switch ae.Code {
		// NotAllowed: the vhost does not exist, or the user may not use it.
		case amqp.AccessRefused, amqp.NotFound, amqp.PreconditionFailed, amqp.NotAllowed:
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
