package rabbitmq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	neturl "net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/intake"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
)

// starter is Temporal as the source sees it: it records the events it
// starts and answers err while err is set.
type starter struct {
	err      atomic.Pointer[error]
	attempts atomic.Int64
	mu       sync.Mutex
	ids      []string
}

func (s *starter) Start(_ context.Context, ev dispatcher.Event) (dispatcher.StartResult, error) {
	s.attempts.Add(1)
	if err := s.err.Load(); err != nil {
		return dispatcher.StartResult{}, *err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ids = append(s.ids, ev.ID)
	return dispatcher.StartResult{WorkflowID: ev.WorkflowID(), RunID: "r"}, nil
}

func (s *starter) started() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ids)
}

// broker connects to the test RabbitMQ and returns a channel, with a
// fresh exchange and queue name removed at the end.
func broker(t testing.TB) (url, name string, ch *amqp.Channel) {
	t.Helper()
	url = os.Getenv("TEST_AMQP_URL")
	if url == "" {
		url = "amqp://guest:guest@127.0.0.1:5672/"
	}
	conn, err := amqp.Dial(url)
	if err != nil {
		testenv.Missing(t, "RabbitMQ at %s is unavailable (make services starts it): %v", url, err)
		t.SkipNow()
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name = "dispatcher.unit." + hex.EncodeToString(b)
	t.Cleanup(func() {
		if ch, err := conn.Channel(); err == nil {
			for _, q := range []string{name, name + ".dead"} {
				_, _ = ch.QueueDelete(q, false, false, false)
			}
			for _, x := range []string{name, name + ".dlx"} {
				_ = ch.ExchangeDelete(x, false, false)
			}
		}
		_ = conn.Close()
	})
	if ch, err = conn.Channel(); err != nil {
		t.Fatal(err)
	}
	return url, name, ch
}

// run starts a source on name and waits until it consumes; stop ends it
// and waits for Run to return.
func run(t testing.TB, url, name string, st intake.Starter, prefetch int) (src *Source, m *intake.SourceMetrics, stop func()) {
	t.Helper()
	metrics, err := intake.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	m = metrics.Source("amqp")
	src = New(Config{URL: url, Exchange: name, Queue: name, Prefetch: prefetch}, &intake.Handler{Source: "amqp", Starter: st}, m, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); src.Run(ctx) }()
	testenv.Eventually(t, 30*time.Second, func() string {
		if err := src.Ready(ctx); err != nil {
			return err.Error()
		}
		return ""
	})
	stop = func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("Run did not return after its context ended")
		}
	}
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			stop()
		}
	})
	return src, m, stop
}

func publish(t testing.TB, ch *amqp.Channel, exchange, body string) {
	t.Helper()
	if err := ch.PublishWithContext(context.Background(), exchange, "t", false, false,
		amqp.Publishing{ContentType: "application/json", DeliveryMode: amqp.Persistent, Body: []byte(body)}); err != nil {
		t.Fatal(err)
	}
}

// ready is the queue's ready messages.
func ready(t testing.TB, ch *amqp.Channel, queue string) int {
	t.Helper()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return q.Messages
}

func TestSource(t *testing.T) {
	url, name, ch := broker(t)
	st := &starter{}
	_, m, stop := run(t, url, name, st, 4)

	publish(t, ch, name, `{"id":"e1","type":"t"}`)
	testenv.Eventually(t, 10*time.Second, func() string {
		if testutil.ToFloat64(m.Acked) != 1 || st.started() != 1 {
			return fmt.Sprintf("acked %v, started %d", testutil.ToFloat64(m.Acked), st.started())
		}
		return ""
	})

	// An unreadable message is a dead letter with its reason; the next
	// one goes on.
	publish(t, ch, name, `{"id":"e2"}`)
	publish(t, ch, name, `{"id":"e3","type":"t"}`)
	var reason any
	testenv.Eventually(t, 10*time.Second, func() string {
		d, ok, err := ch.Get(name+".dead", true)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return "no dead letter yet"
		}
		reason = d.Headers[HeaderError]
		return ""
	})
	if reason != "type: is required" {
		t.Fatalf("dead letter's reason %v", reason)
	}
	testenv.Eventually(t, 10*time.Second, func() string {
		// Acknowledged too: the ack follows the start, and one counted
		// below would pass for an ack while Temporal was away.
		if st.started() != 2 || testutil.ToFloat64(m.Acked) != 2 {
			return fmt.Sprintf("the message after the dead letter: started %d, acked %v", st.started(), testutil.ToFloat64(m.Acked))
		}
		return ""
	})

	// Temporal away: the message is tried, held, not acknowledged; when
	// the source stops it goes back to the queue.
	unavailable := error(dispatcher.Errorf(dispatcher.EUNAVAILABLE, "temporal is unavailable"))
	st.err.Store(&unavailable)
	acked := testutil.ToFloat64(m.Acked)
	publish(t, ch, name, `{"id":"e4","type":"t"}`)
	testenv.Eventually(t, 10*time.Second, func() string {
		if st.attempts.Load() < 5 {
			return "not tried yet"
		}
		return ""
	})
	if testutil.ToFloat64(m.Acked) != acked {
		t.Fatal("acknowledged while Temporal was away")
	}
	stop()
	if n := ready(t, ch, name); n != 1 {
		t.Fatalf("after the stop the queue holds %d ready messages, want the one in hand back", n)
	}

	// Back: a new source takes it.
	st.err.Store(nil)
	_, m, _ = run(t, url, name, st, 4)
	testenv.Eventually(t, 10*time.Second, func() string {
		if testutil.ToFloat64(m.Acked) != 1 || testutil.ToFloat64(m.Redelivered) != 1 {
			return fmt.Sprintf("acked %v, redelivered %v", testutil.ToFloat64(m.Acked), testutil.ToFloat64(m.Redelivered))
		}
		return ""
	})
}

// heldStarter starts its first event once the source's session has ended
// (ended is closed then) and release is closed: Temporal answering after
// the source's channel closed.
type heldStarter struct {
	starter
	ended, release chan struct{}
}

func (s *heldStarter) Start(ctx context.Context, ev dispatcher.Event) (dispatcher.StartResult, error) {
	if s.attempts.Load() == 0 {
		s.attempts.Add(1)
		<-ctx.Done()
		close(s.ended)
		<-s.release
	}
	return s.starter.Start(ctx, ev)
}

// A message whose acknowledgement fails (the connection dropped while
// Temporal took it) is counted as handed back, and delivered again: a
// duplicate, acknowledged. Before, it was counted nowhere, and received −
// acked − dead-lettered − retried did not add up.
func TestSourceAckAfterTheConnectionDropped(t *testing.T) {
	url, name, ch := broker(t)
	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.NewProxy(t, u.Host)
	u.Host = proxy.Addr
	st := &heldStarter{ended: make(chan struct{}), release: make(chan struct{})}
	src, m, _ := run(t, u.String(), name, st, 4)
	publish(t, ch, name, `{"id":"e1","type":"t"}`)
	testenv.Eventually(t, 10*time.Second, func() string {
		if st.attempts.Load() == 0 {
			return "the message is not in hand"
		}
		return ""
	})
	proxy.Resume() // cuts the connection
	select {
	case <-st.ended:
	case <-time.After(30 * time.Second):
		t.Fatal("the session did not end with its connection")
	}
	// Down as soon as the session ends, while its handler still works.
	// Before, up until the handler returned (a Temporal start: seconds).
	if err := src.Ready(context.Background()); err == nil || testutil.ToFloat64(m.Up) != 0 {
		t.Errorf("with its connection gone and a message still in hand: ready %v, up %v; want not ready, 0", err, testutil.ToFloat64(m.Up))
	}
	close(st.release)
	testenv.Eventually(t, 30*time.Second, func() string {
		if testutil.ToFloat64(m.Acked) != 1 || testutil.ToFloat64(m.Retried) != 1 || testutil.ToFloat64(m.Received) != 2 {
			return fmt.Sprintf("received %v, acked %v, retried %v; want 2, 1, 1",
				testutil.ToFloat64(m.Received), testutil.ToFloat64(m.Acked), testutil.ToFloat64(m.Retried))
		}
		return ""
	})
}

// A header of any AMQP field type RabbitMQ passes on is read, the
// unsigned ones (u, i) that clients such as rabbitmq-c send among them.
// Before, the client library could not decode them: the channel closed on
// the message, which went back to the head of the queue, and the intake
// reconnected every second, taking nothing, with no log line naming it.
func TestSourceReadsEveryHeaderType(t *testing.T) {
	url, name, ch := broker(t)
	st := &starter{}
	_, m, _ := run(t, url, name, st, 4)
	for i, v := range []any{uint16(7), uint32(7), int8(-7), uint8(7), float32(0.5), []byte("b"), amqp.Decimal{Scale: 1, Value: 75}} {
		if err := ch.PublishWithContext(context.Background(), name, "t", false, false, amqp.Publishing{
			ContentType: "application/json", DeliveryMode: amqp.Persistent, Headers: amqp.Table{"x-count": v},
			Body: fmt.Appendf(nil, `{"id":"h%d","type":"t"}`, i)}); err != nil {
			t.Fatalf("publishing a %T header: %v", v, err)
		}
	}
	publish(t, ch, name, `{"id":"after","type":"t"}`)
	testenv.Eventually(t, 20*time.Second, func() string {
		if st.started() != 8 || testutil.ToFloat64(m.Acked) != 8 {
			return fmt.Sprintf("started %d, acked %v of 8", st.started(), testutil.ToFloat64(m.Acked))
		}
		return ""
	})
}

// An event without an id whose message id is too long for an event's (AMQP
// allows 255 characters) is dispatched with a hash of it. Before, it was
// dead-lettered: "id: must be at most 200 characters".
func TestSourceTakesALongMessageID(t *testing.T) {
	url, name, ch := broker(t)
	st := &starter{}
	_, m, _ := run(t, url, name, st, 4)
	long := strings.Repeat("m", 250)
	if err := ch.PublishWithContext(context.Background(), name, "t", false, false, amqp.Publishing{
		ContentType: "application/json", DeliveryMode: amqp.Persistent, MessageId: long, Body: []byte(`{"type":"t"}`)}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func() string {
		if st.started() != 1 || testutil.ToFloat64(m.Acked) != 1 {
			return fmt.Sprintf("started %d, acked %v", st.started(), testutil.ToFloat64(m.Acked))
		}
		return ""
	})
	st.mu.Lock()
	defer st.mu.Unlock()
	if want := intake.DefaultID("amqp", long, nil, nil); st.ids[0] != want {
		t.Errorf("dispatched as %q, want %q", st.ids[0], want)
	}
}

// deadLettered waits for the message's dead letter in name.dead; received
// says how often the source had it meanwhile.
func deadLettered(t testing.TB, ch *amqp.Channel, name string, m *intake.SourceMetrics) {
	t.Helper()
	testenv.Eventually(t, 20*time.Second, func() string {
		_, ok, err := ch.Get(name+".dead", true)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return fmt.Sprintf("no dead letter yet; received %v times", testutil.ToFloat64(m.Received))
		}
		return ""
	})
}

// Many handlers dead-lettering at once publish each dead letter whole on
// the one channel, and the session holds. Before, one handler's
// declarations landed inside another's publish (505 UNEXPECTED_FRAME):
// the channel closed, the session with it, and dead letters already
// published came again when their messages were delivered again.
func TestSourceDeadLettersAtOnce(t *testing.T) {
	url, name, ch := broker(t)
	src, m, _ := run(t, url, name, &starter{}, 256)
	const n = 1000
	for i := range n {
		publish(t, ch, name, fmt.Sprintf("not json %d", i))
	}
	testenv.Eventually(t, 60*time.Second, func() string {
		if got := testutil.ToFloat64(m.Received); got < n {
			return fmt.Sprintf("received %v of %d", got, n)
		}
		if dead := ready(t, ch, name+".dead"); dead < n {
			return fmt.Sprintf("%d of %d dead letters", dead, n)
		}
		return ""
	})
	if err := src.lastErr.Load(); err != nil {
		t.Fatalf("the session ended while dead-lettering: %v", *err)
	}
	if dead := ready(t, ch, name+".dead"); dead != n {
		t.Fatalf("%d dead letters of %d messages", dead, n)
	}
}

// A dead letter to an exchange that is gone closes the publish channel:
// the source connects again, declaring the exchange again, and the message
// is dead-lettered instead of coming back thousands of times a second
// while the source looks healthy.
func TestSourceDeadLetterExchangeGone(t *testing.T) {
	url, name, ch := broker(t)
	src, m, _ := run(t, url, name, &starter{}, 4)
	if err := ch.ExchangeDelete(name+".dlx", false, false); err != nil {
		t.Fatal(err)
	}
	publish(t, ch, name, `{"id":"p1"}`)
	deadLettered(t, ch, name, m)
	if n := testutil.ToFloat64(m.Received); n > 3 {
		t.Fatalf("received %v times before it was dead-lettered", n)
	}
	testenv.Eventually(t, 10*time.Second, func() string {
		if err := src.Ready(context.Background()); err != nil {
			return err.Error()
		}
		return ""
	})
}

// An exchange deleted and declared again while the source runs (a
// clean-up, then a producer that declares it) is bound to the queue again
// within a few seconds. Before, its events found no queue, and the broker
// dropped them, until the worker restarted.
func TestSourceBindsItsQueueAgain(t *testing.T) {
	url, name, ch := broker(t)
	st := &starter{}
	run(t, url, name, st, 4)
	redeclare(t, url, name, amqp.ExchangeTopic)
	flowsAgain(t, ch, name, st)
}

// redeclare deletes the exchange and declares it again, of kind. The
// source binds its queue again every few seconds, declaring the exchange
// as it had it: when it does so between the delete and the declare, the
// declare of another kind is refused (406, which closes the channel), and
// both are made again on a channel of their own. Before, the test failed.
func redeclare(t *testing.T, url, name, kind string) {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	testenv.Eventually(t, 10*time.Second, func() string {
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		defer ch.Close()
		if err := ch.ExchangeDelete(name, false, false); err != nil {
			return err.Error()
		}
		if err := ch.ExchangeDeclare(name, kind, true, false, false, false, nil); err != nil {
			return err.Error()
		}
		return ""
	})
}

// flowsAgain publishes until an event reaches st: those published while
// the queue is not bound are dropped.
func flowsAgain(t *testing.T, ch *amqp.Channel, name string, st *starter) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() string {
		if st.started() > 0 {
			return ""
		}
		publish(t, ch, name, `{"id":"again","type":"t","content":{}}`)
		return "no event reached the queue"
	})
}

// A dead letter whose queue was deleted (purged by hand) or unbound while
// the source runs still lands there: the broker confirms a dead letter no
// queue took, and the source acknowledged the message, which was then
// nowhere. Before, it was lost.
func TestSourceDeadLetterQueueGone(t *testing.T) {
	url, name, ch := broker(t)
	_, m, _ := run(t, url, name, &starter{}, 4)
	if _, err := ch.QueueDelete(name+".dead", false, false, false); err != nil {
		t.Fatal(err)
	}
	publish(t, ch, name, `{"id":"p1"}`)
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	testenv.Eventually(t, 20*time.Second, func() string {
		// A channel of its own per look: a queue not found closes it.
		c, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.QueueDeclarePassive(name+".dead", true, false, false, false, nil); err != nil {
			return err.Error()
		}
		return ""
	})
	deadLettered(t, ch, name, m)
	if err := ch.QueueUnbind(name+".dead", "#", name+".dlx", nil); err != nil {
		t.Fatal(err)
	}
	publish(t, ch, name, `{"id":"p2"}`)
	deadLettered(t, ch, name, m)
}

// A dead letter the broker refuses (a queue bound to the dead-letter
// exchange that is full and rejects publishes) leaves the channels open:
// the message goes back to the queue after the source's backoff, a few
// times in seconds rather than thousands, and is dead-lettered once the
// broker takes it.
func TestSourceDeadLetterRefused(t *testing.T) {
	url, name, ch := broker(t)
	src, m, _ := run(t, url, name, &starter{}, 4)
	full := name + ".full"
	if _, err := ch.QueueDeclare(full, false, false, false, false, amqp.Table{"x-max-length": 0, "x-overflow": "reject-publish"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = ch.QueueDelete(full, false, false, false) })
	if err := ch.QueueBind(full, "#", name+".dlx", false, nil); err != nil {
		t.Fatal(err)
	}

	begin := time.Now()
	publish(t, ch, name, `{"id":"p1"}`)
	testenv.Eventually(t, 20*time.Second, func() string {
		if n := testutil.ToFloat64(m.Retried); n < 3 {
			return fmt.Sprintf("handed back %v times", n)
		}
		return ""
	})
	if d := time.Since(begin); d < time.Second {
		t.Fatalf("handed back 3 times in %s (received %v times): no backoff", d, testutil.ToFloat64(m.Received))
	}
	// Not ready meanwhile: the message takes a place of the prefetch each
	// time, and the messages behind it wait. Before, /readyz said ok.
	if err := src.Ready(context.Background()); err == nil || !strings.Contains(err.Error(), "cannot dead-letter") {
		t.Errorf("ready while dead letters are refused: %v", err)
	}

	if _, err := ch.QueueDelete(full, false, false, false); err != nil {
		t.Fatal(err)
	}
	deadLettered(t, ch, name, m)
	if n := testutil.ToFloat64(m.Received); n > 8 {
		t.Fatalf("received %v times before it was dead-lettered", n)
	}
	testenv.Eventually(t, 10*time.Second, func() string {
		if err := src.Ready(context.Background()); err != nil {
			return "not ready once the dead letter was taken: " + err.Error()
		}
		return ""
	})
}

// BenchmarkSource is the broker intake's own cost: messages through
// RabbitMQ and the intake (read, schema, ack) to a Temporal that answers at
// once, 64 in flight.
func BenchmarkSource(b *testing.B) {
	url, name, ch := broker(b)
	st := &starter{}
	_, m, _ := run(b, url, name, st, 64)
	b.ResetTimer()
	for i := range b.N {
		publish(b, ch, name, fmt.Sprintf(`{"id":"b-%d","type":"t","content":{"n":%d}}`, i, i))
	}
	for testutil.ToFloat64(m.Acked) < float64(b.N) {
		time.Sleep(time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// A URL that does not parse is not logged nor reported with its
// password. Before, url.Parse's error quoted it whole, in the log of
// every attempt to connect and on /readyz.
func TestSourceHidesThePasswordOfABadURL(t *testing.T) {
	metrics, err := intake.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	var logs testenv.Buffer
	src := New(Config{URL: "amqp://guest:s3cr%zzet@127.0.0.1:5672/", Exchange: "fixb", Queue: "fixb"},
		&intake.Handler{Source: "amqp", Starter: &starter{}}, metrics.Source("amqp"), slog.New(slog.NewTextHandler(&logs, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); src.Run(ctx) }()
	var ready error
	testenv.Eventually(t, 10*time.Second, func() string {
		if ready = src.Ready(ctx); ready == nil || !strings.Contains(logs.String(), "connecting again") {
			return fmt.Sprintf("Ready: %v; log:\n%s", ready, logs.String())
		}
		return ""
	})
	cancel()
	<-done
	for _, s := range []string{ready.Error(), logs.String()} {
		if strings.Contains(s, "s3cr") || !strings.Contains(s, "amqp://xxxxx@127.0.0.1:5672") {
			t.Errorf("%s\nholds the password, or does not name the host", s)
		}
	}
}

// A prefetch above AMQP's 16 bits is the largest there is. Before, Qos
// cut it to 16 bits: 65536 was 0, no limit at all.
func TestNewBoundsThePrefetch(t *testing.T) {
	for _, tt := range []struct{ prefetch, want int }{{0, 64}, {1, 1}, {65535, 65535}, {65536, 65535}, {1 << 20, 65535}} {
		src := New(Config{Prefetch: tt.prefetch}, &intake.Handler{}, nil, slog.New(slog.DiscardHandler))
		if src.cfg.Prefetch != tt.want {
			t.Errorf("Prefetch %d: the source's is %d, want %d", tt.prefetch, src.cfg.Prefetch, tt.want)
		}
	}
}

// An exchange declared anew with other settings, which the source cannot
// bind to as it needs, makes it not ready, saying why, until it is
// declared as it was; then its events flow again. Before, it looked ready
// with its queue unbound, and the broker dropped its events.
func TestSourceNotReadyOnAnExchangeItCannotUse(t *testing.T) {
	url, name, ch := broker(t)
	st := &starter{}
	src, _, _ := run(t, url, name, st, 4)
	redeclare(t, url, name, amqp.ExchangeDirect)
	testenv.Eventually(t, 30*time.Second, func() string {
		if src.Ready(context.Background()) == nil {
			return "still ready, with an exchange of another type"
		}
		return ""
	})
	redeclare(t, url, name, amqp.ExchangeTopic) // as it was, by a producer
	flowsAgain(t, ch, name, st)
}

// A binary CloudEvent whose ce_id is void (a null its client sent), a
// table or an array has no id: it is dead-lettered, as one with an empty
// ce_id is. Before, a void one was the id "<nil>", and the second such
// event of its source was dropped as a duplicate of the first (a probe).
func TestSourceHeadersWithoutAValue(t *testing.T) {
	url, name, ch := broker(t)
	st := &starter{}
	run(t, url, name, st, 4)
	ids := []any{nil, nil, amqp.Table{"a": "b"}, []any{"x"}}
	for i, id := range ids {
		if err := ch.PublishWithContext(context.Background(), name, "t", false, false, amqp.Publishing{
			ContentType: "application/json", DeliveryMode: amqp.Persistent,
			Headers: amqp.Table{"ce_specversion": "1.0", "ce_id": id, "ce_source": "src", "ce_type": "t"},
			Body:    fmt.Appendf(nil, `{"n":%d}`, i)}); err != nil {
			t.Fatal(err)
		}
	}
	publish(t, ch, name, `{"id":"after","type":"t"}`)
	testenv.Eventually(t, 20*time.Second, func() string {
		if dead := ready(t, ch, name+".dead"); st.started() != 1 || dead != len(ids) {
			return fmt.Sprintf("started %d, dead letters %d; want 1 (the event after) and %d", st.started(), dead, len(ids))
		}
		return ""
	})
}
