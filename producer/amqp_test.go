package producer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/dispatcherhq/dispatcher/internal/testenv"
)

// rabbitURL is the RabbitMQ the tests publish to: $TEST_AMQP_URL, or the
// local one.
func rabbitURL() string {
	if u := os.Getenv("TEST_AMQP_URL"); u != "" {
		return u
	}
	return "amqp://guest:guest@127.0.0.1:5672/"
}

// rabbit connects to the test RabbitMQ with the plain client, to see what
// the producer published; it skips the test (fails it under CI and make
// test) when there is none.
func rabbit(t *testing.T) *amqp.Channel {
	t.Helper()
	conn, err := amqp.Dial(rabbitURL())
	if err != nil {
		testenv.Missing(t, "RabbitMQ at %s is unavailable: %v", rabbitURL(), err)
		return nil
	}
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func uniqueName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// bindQueue declares an exclusive queue bound to exchange for key, with
// args, and returns its name.
func bindQueue(t *testing.T, ch *amqp.Channel, exchange, key string, args amqp.Table) string {
	t.Helper()
	// The exchange as the producer declares it, so the test may bind first.
	if err := ch.ExchangeDeclare(exchange, "topic", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ch.ExchangeDelete(exchange, false, false) })
	q, err := ch.QueueDeclare("", false, true, true, false, args)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(q.Name, key, exchange, false, nil); err != nil {
		t.Fatal(err)
	}
	return q.Name
}

// get waits for the next message of queue.
func get(t *testing.T, ch *amqp.Channel, queue string) amqp.Delivery {
	t.Helper()
	var d amqp.Delivery
	testenv.Eventually(t, 10*time.Second, func() string {
		var ok bool
		var err error
		if d, ok, err = ch.Get(queue, true); err != nil {
			t.Fatal(err)
		} else if !ok {
			return "no message in " + queue
		}
		return ""
	})
	return d
}

func TestAMQPPublishesConfirmed(t *testing.T) {
	ch := rabbit(t)
	exchange := uniqueName("producer-test-")
	queue := bindQueue(t, ch, exchange, "#", nil)
	for _, envelope := range []Envelope{EnvelopeLK, EnvelopeCloudEvents} {
		t.Run(string(envelope), func(t *testing.T) {
			p := newProducer(t, AMQP(rabbitURL(), AMQPExchange(exchange)), nil,
				WithEnvelope(envelope), WithSource("billing@host-1"))
			ev, err := p.Dispatch(context.Background(), "user_deleted", map[string]any{"userId": 42},
				WithUserID("u-7"), WithPartitionKey("pk-7"))
			if err != nil {
				t.Fatal(err)
			}
			d := get(t, ch, queue)
			if d.Exchange != exchange || d.RoutingKey != "user_deleted" || d.MessageId != ev.ID || d.Type != "user_deleted" ||
				d.ContentType != ev.ContentType || d.DeliveryMode != amqp.Persistent || d.AppId != "billing@host-1" ||
				!d.Timestamp.Equal(ev.Time.Truncate(time.Second)) || string(d.Body) != string(ev.Body) {
				t.Errorf("delivered %s %q id %s type %s %s mode %d app %s at %s: %s\nwant the event %+v",
					d.Exchange, d.RoutingKey, d.MessageId, d.Type, d.ContentType, d.DeliveryMode, d.AppId, d.Timestamp, d.Body, ev)
			}
			if ev.Receipt.Attempts != 1 {
				t.Errorf("receipt %+v", ev.Receipt)
			}
		})
	}
}

func TestAMQPUnroutableIsAnError(t *testing.T) {
	ch := rabbit(t)
	exchange := uniqueName("producer-test-")
	// Bound for another type only: the event is returned, not dropped.
	queue := bindQueue(t, ch, exchange, "invoice_paid", nil)
	p := newProducer(t, AMQP(rabbitURL(), AMQPExchange(exchange), AMQPChannels(1)), &waits{},
		WithRetry(Retry{Attempts: 2, Initial: time.Millisecond, Max: time.Millisecond}))
	ev, err := p.Dispatch(context.Background(), "user_deleted", nil)
	if !errors.Is(err, ErrUnroutable) || !Retryable(err) || ev.Receipt.Attempts != 2 {
		t.Fatalf("err = %v after %d attempts; want ErrUnroutable, retryable, after 2", err, ev.Receipt.Attempts)
	}
	// The channel that had the return publishes the next event, which a
	// queue takes, without mistaking it for returned.
	ev, err = p.Dispatch(context.Background(), "invoice_paid", nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := get(t, ch, queue); d.MessageId != ev.ID {
		t.Errorf("delivered %s, want %s", d.MessageId, ev.ID)
	}
}

func TestAMQPNackIsAnError(t *testing.T) {
	ch := rabbit(t)
	exchange := uniqueName("producer-test-")
	// A queue of one message that refuses more: RabbitMQ nacks the publish.
	bindQueue(t, ch, exchange, "#", amqp.Table{"x-max-length": int32(1), "x-overflow": "reject-publish"})
	p := newProducer(t, AMQP(rabbitURL(), AMQPExchange(exchange)), &waits{},
		WithRetry(Retry{Attempts: 2, Initial: time.Millisecond, Max: time.Millisecond}))
	if _, err := p.Dispatch(context.Background(), "t", nil); err != nil {
		t.Fatal(err)
	}
	ev, err := p.Dispatch(context.Background(), "t", nil)
	if !errors.Is(err, ErrNacked) || !Retryable(err) || ev.Receipt.Attempts != 2 {
		t.Fatalf("err = %v after %d attempts; want ErrNacked, retryable, after 2", err, ev.Receipt.Attempts)
	}
}

func TestAMQPReconnects(t *testing.T) {
	ch := rabbit(t)
	exchange := uniqueName("producer-test-")
	queue := bindQueue(t, ch, exchange, "#", nil)
	tr := AMQP(rabbitURL(), AMQPExchange(exchange)).(*amqpTransport)
	p := newProducer(t, tr, nil)
	if _, err := p.Dispatch(context.Background(), "t", nil); err != nil {
		t.Fatal(err)
	}
	get(t, ch, queue)
	// The connection is lost, as when the broker restarts: the next
	// dispatch connects again.
	tr.mu.Lock()
	first := tr.conn
	tr.mu.Unlock()
	_ = first.Close()
	ev, err := p.Dispatch(context.Background(), "t", nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := get(t, ch, queue); d.MessageId != ev.ID {
		t.Errorf("delivered %s, want %s", d.MessageId, ev.ID)
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.conn == first {
		t.Error("the closed connection is still in use")
	}
}

func TestAMQPConcurrentDispatches(t *testing.T) {
	ch := rabbit(t)
	exchange := uniqueName("producer-test-")
	queue := bindQueue(t, ch, exchange, "#", nil)
	p := newProducer(t, AMQP(rabbitURL(), AMQPExchange(exchange), AMQPChannels(3)), nil)
	const n = 30
	ids := make(chan string, n)
	errs := make(chan error, n)
	for i := range n {
		go func() {
			ev, err := p.Dispatch(context.Background(), "t", map[string]int{"i": i})
			ids <- ev.ID
			errs <- err
		}()
	}
	want := map[string]bool{}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		want[<-ids] = true
	}
	for range n {
		d := get(t, ch, queue)
		if !want[d.MessageId] {
			t.Fatalf("delivered %s, not one of the dispatched events, or twice", d.MessageId)
		}
		delete(want, d.MessageId)
	}
}

func TestAMQPFailures(t *testing.T) {
	rabbit(t)
	fast := WithRetry(Retry{Attempts: 3, Initial: time.Millisecond, Max: time.Millisecond})
	for _, tt := range []struct {
		name      string
		tr        Transport
		retryable bool
	}{
		// Without declaring it, an exchange that does not exist is a
		// configuration error: not retried.
		{"no exchange", AMQP(rabbitURL(), AMQPExchange(uniqueName("producer-missing-")), AMQPDeclare(false)), false},
		{"wrong password", AMQP("amqp://guest:wrong@127.0.0.1:5672/"), false},
		// Before, retried as if the broker were unavailable.
		{"no such vhost", AMQP(rabbitVhost("producer-missing-vhost")), false},
		{"nothing listening", AMQP("amqp://guest:guest@127.0.0.1:1/"), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := newProducer(t, tt.tr, &waits{}, fast)
			ev, err := p.Dispatch(context.Background(), "t", nil)
			want := 1
			if tt.retryable {
				want = 3
			}
			if err == nil || Retryable(err) != tt.retryable || ev.Receipt.Attempts != want {
				t.Errorf("err = %v (retryable %v) after %d attempts; want retryable %v after %d", err, Retryable(err), ev.Receipt.Attempts, tt.retryable, want)
			}
		})
	}
	// A name taken by an exchange of another type cannot be declared.
	ch := rabbit(t)
	exchange := uniqueName("producer-direct-")
	if err := ch.ExchangeDeclare(exchange, "direct", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ch.ExchangeDelete(exchange, false, false) })
	p := newProducer(t, AMQP(rabbitURL(), AMQPExchange(exchange)), &waits{}, fast)
	if _, err := p.Dispatch(context.Background(), "t", nil); !errors.Is(err, ErrRejected) || Retryable(err) {
		t.Errorf("err = %v; want ErrRejected, not retryable", err)
	}
}

// rabbitVhost is rabbitURL with another vhost.
func rabbitVhost(vhost string) string {
	u, err := url.Parse(rabbitURL())
	if err != nil {
		panic(err)
	}
	u.Path = "/" + vhost
	return u.String()
}

func TestAMQPConnectIsBounded(t *testing.T) {
	testConnectIsBounded(t, func(addr string) Transport { return AMQP("amqp://guest:guest@" + addr + "/") })
}

// A broker that stops answering on the open connection: a send that must
// open a channel returns when its attempt timeout ends. Before, opening
// the channel took no ctx, and the send waited until the heartbeats gave
// out, 30 s and more.
func TestAMQPChannelOpenIsBounded(t *testing.T) {
	ch := rabbit(t)
	exchange := uniqueName("producer-test-")
	bindQueue(t, ch, exchange, "#", nil)
	u, err := url.Parse(rabbitURL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.NewProxy(t, u.Host)
	u.Host = proxy.Addr
	tr := AMQP(u.String(), AMQPExchange(exchange)).(*amqpTransport)
	const attempt = 500 * time.Millisecond
	p := newProducer(t, tr, nil, WithRetry(Retry{Attempts: 1}), WithAttemptTimeout(attempt))
	if _, err := p.Dispatch(context.Background(), "t", nil); err != nil {
		t.Fatal(err)
	}
	tr.mu.Lock()
	idle := tr.idle
	tr.idle = nil // the next send opens a channel
	tr.mu.Unlock()
	for _, c := range idle {
		_ = c.ch.Close()
	}
	proxy.Stall()
	start := time.Now()
	_, err = p.Dispatch(context.Background(), "t", nil)
	if took := time.Since(start); !Retryable(err) || took > 4*attempt {
		t.Errorf("returned %v after %s; want a retryable error within %s", err, took, 4*attempt)
	}
	// The connection that did not answer is dropped: the next send
	// connects again, once the broker answers.
	tr.mu.Lock()
	dropped := tr.conn == nil
	tr.mu.Unlock()
	if !dropped {
		t.Error("the connection that did not answer is still in use")
	}
	proxy.Resume()
	if _, err := p.Dispatch(context.Background(), "t", nil); err != nil {
		t.Errorf("after the broker answers again: %v", err)
	}
}

func TestAMQPCloseDuringDispatches(t *testing.T) {
	ch := rabbit(t)
	exchange := uniqueName("producer-test-")
	queue := bindQueue(t, ch, exchange, "#", nil)
	events := testCloseDuringDispatches(t, AMQP(rabbitURL(), AMQPExchange(exchange)))
	want := map[string]bool{}
	for _, ev := range events {
		want[ev.ID] = true
	}
	for range events {
		d := get(t, ch, queue)
		if !want[d.MessageId] {
			t.Fatalf("delivered %s, not one of the events reported taken, or twice", d.MessageId)
		}
		delete(want, d.MessageId)
	}
}

// The body published is the envelope: a consumer decodes it as the HTTP
// intake does.
func TestAMQPBodyIsTheEnvelope(t *testing.T) {
	ch := rabbit(t)
	exchange := uniqueName("producer-test-")
	queue := bindQueue(t, ch, exchange, "user.*", nil)
	p := newProducer(t, AMQP(rabbitURL(), AMQPExchange(exchange)), nil, WithSource("svc"))
	ev, err := p.Dispatch(context.Background(), "user.deleted", map[string]any{"id": 1}, WithUserID("u-1"))
	if err != nil {
		t.Fatal(err)
	}
	var got lkEvent
	if err := json.Unmarshal(get(t, ch, queue).Body, &got); err != nil {
		t.Fatal(err)
	}
	if got.ID != ev.ID || got.Type != "user.deleted" || got.Source.UserID != "u-1" || got.Source.ProducerID != "svc" {
		t.Errorf("consumed %+v", got)
	}
}
