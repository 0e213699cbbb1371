package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/dispatcherhq/dispatcher/producer"
)

// broker is where a row's events go before the dispatcher takes them: a
// topology of the row's own on a RabbitMQ or NATS server, which the
// dispatcher creates when it starts and the bench deletes afterwards.
type broker interface {
	// String names the broker in notes and errors.
	String() string
	// env points `dispatcher serve` at the topology.
	env() []string
	// transport publishes to it, with up to conc publishes in flight.
	transport(conc int) producer.Transport
	// remove deletes the topology; what does not exist is no error.
	remove(ctx context.Context) error
	// addr is the server's host:port, for its process's CPU time.
	addr() string
}

// amqpTopology is the exchange and queue of the AMQP row, named for the
// run. The dispatcher declares them and their dead-letter pair (the
// exchange <exchange>.dlx, the queue <queue>.dead).
type amqpTopology struct {
	url, exchange, queue string
}

func newAMQPTopology(url string) amqpTopology {
	name := "bench." + randomHex(6) + ".events"
	return amqpTopology{url: url, exchange: name, queue: name}
}

func (t amqpTopology) String() string {
	return fmt.Sprintf("RabbitMQ at %s (exchange and queue %s)", redact(t.url), t.queue)
}

func (t amqpTopology) env() []string {
	return []string{"DISPATCHER_AMQP_URL=" + t.url, "DISPATCHER_AMQP_EXCHANGE=" + t.exchange, "DISPATCHER_AMQP_QUEUE=" + t.queue}
}

// transport publishes with publisher confirms, a channel per caller, to
// the exchange the dispatcher declared (an exchange missing is an error,
// not one the producer declares).
func (t amqpTopology) transport(conc int) producer.Transport {
	return producer.AMQP(t.url, producer.AMQPExchange(t.exchange), producer.AMQPDeclare(false), producer.AMQPChannels(conc))
}

func (t amqpTopology) remove(ctx context.Context) error {
	conn, err := dialAMQP(ctx, t.url)
	if err != nil {
		return err
	}
	defer conn.Close()
	// A failed operation closes its channel: each gets its own.
	var errs []error
	do := func(what string, f func(*amqp.Channel) error) {
		ch, err := conn.Channel()
		if err == nil {
			err = f(ch)
			_ = ch.Close()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("delete %s: %w", what, err))
		}
	}
	for _, q := range []string{t.queue, t.queue + ".dead"} {
		do("queue "+q, func(ch *amqp.Channel) error { _, err := ch.QueueDelete(q, false, false, false); return err })
	}
	for _, x := range []string{t.exchange, t.exchange + ".dlx"} {
		do("exchange "+x, func(ch *amqp.Channel) error { return ch.ExchangeDelete(x, false, false) })
	}
	return errors.Join(errs...)
}

func (t amqpTopology) addr() string { return urlAddr(t.url, "5672") }

func dialAMQP(ctx context.Context, url string) (*amqp.Connection, error) {
	timeout := 10 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(d))
	}
	return amqp.DialConfig(url, amqp.Config{Dial: amqp.DefaultDial(timeout),
		Properties: amqp.Table{"connection_name": "dispatcher-bench"}})
}

// natsTopology is the stream and subject prefix of the NATS row, named
// for the run. The dispatcher creates the stream, on <subject>.>, and
// its durable consumer.
type natsTopology struct {
	url, stream, subject string
}

func newNATSTopology(url string) natsTopology {
	id := randomHex(6)
	return natsTopology{url: url, stream: "BENCH_" + strings.ToUpper(id), subject: "bench_" + id}
}

func (t natsTopology) String() string {
	return fmt.Sprintf("NATS at %s (stream %s on %s.>)", redact(t.url), t.stream, t.subject)
}

func (t natsTopology) env() []string {
	return []string{"DISPATCHER_NATS_URL=" + t.url, "DISPATCHER_NATS_STREAM=" + t.stream, "DISPATCHER_NATS_SUBJECT=" + t.subject}
}

// transport publishes through JetStream on <subject>.bench, waiting for
// the stream's acknowledgement; JetStream refuses the event were the
// subject to land in another stream.
func (t natsTopology) transport(int) producer.Transport {
	return producer.NATS(t.url, producer.NATSSubjectPrefix(t.subject+"."), producer.NATSStream(t.stream))
}

// remove deletes the stream, and the consumer and the messages with it.
func (t natsTopology) remove(ctx context.Context) error {
	nc, js, err := dialJetStream(t.url)
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := js.DeleteStream(ctx, t.stream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("delete stream %s: %w", t.stream, err)
	}
	return nil
}

func (t natsTopology) addr() string { return urlAddr(strings.Split(t.url, ",")[0], "4222") }

func dialJetStream(url string) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(url, nats.Name("dispatcher-bench"), nats.Timeout(5*time.Second))
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// checkBrokers makes sure, before any row runs, that the brokers of the
// AMQP and NATS rows answer, so that a missing one fails the run at once
// rather than after minutes of other rows.
func checkBrokers(ctx context.Context, p params) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	hint := "start it (`make services`) or leave the broker rows out with -brokers=false"
	conn, err := dialAMQP(ctx, p.AMQPURL)
	if err != nil {
		return fmt.Errorf("RabbitMQ at %s: %w: %s", redact(p.AMQPURL), err, hint)
	}
	_ = conn.Close()
	nc, js, err := dialJetStream(p.NATSURL)
	if err == nil {
		_, err = js.AccountInfo(ctx)
		nc.Close()
	}
	if err != nil {
		return fmt.Errorf("NATS JetStream at %s: %w: %s", redact(p.NATSURL), err, hint)
	}
	return nil
}

// urlAddr is the host:port of a broker URL, with the scheme's default
// port when it names none; "" when it cannot be read.
func urlAddr(raw, defaultPort string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Hostname() == "" {
		return ""
	}
	port := u.Port()
	if port == "" {
		port = defaultPort
	}
	if _, err := strconv.Atoi(port); err != nil {
		return ""
	}
	return net.JoinHostPort(u.Hostname(), port)
}
