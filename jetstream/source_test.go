package jetstream

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	js "github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/intake"
	"github.com/dispatcherhq/dispatcher/internal/proc"
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

// server connects to the test NATS and returns a fresh stream name and
// subject prefix; the stream is deleted at the end.
func server(t testing.TB) (url, stream, subject string, jsc js.JetStream) {
	t.Helper()
	url = os.Getenv("TEST_NATS_URL")
	if url == "" {
		url = nats.DefaultURL
	}
	nc, err := nats.Connect(url, nats.Timeout(5*time.Second))
	if err == nil {
		if jsc, err = js.New(nc); err == nil {
			_, err = jsc.AccountInfo(context.Background())
		}
	}
	if err != nil {
		testenv.Missing(t, "NATS with JetStream at %s is unavailable (make services starts it): %v", url, err)
		t.SkipNow()
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	stream, subject = "DISPATCHER_UNIT_"+id, "unit"+id
	t.Cleanup(func() {
		_ = jsc.DeleteStream(context.Background(), stream)
		nc.Close()
	})
	return url, stream, subject, jsc
}

// run starts a source and waits until it consumes; stop ends it and waits
// for Run to return.
func run(t testing.TB, cfg Config, st intake.Starter) (m *intake.SourceMetrics, stop func()) {
	t.Helper()
	_, m, stop = runSource(t, cfg, st, slog.New(slog.DiscardHandler))
	return m, stop
}

// runSource is run with the source's log going to log, and returns the
// source too.
func runSource(t testing.TB, cfg Config, st intake.Starter, log *slog.Logger) (src *Source, m *intake.SourceMetrics, stop func()) {
	t.Helper()
	metrics, err := intake.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	m = metrics.Source("nats")
	src = New(cfg, &intake.Handler{Source: "nats", Starter: st}, m, log)
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

func publish(t testing.TB, jsc js.JetStream, subject, body string) {
	t.Helper()
	m := nats.NewMsg(subject)
	m.Header.Set("Content-Type", "application/json")
	m.Data = []byte(body)
	if _, err := jsc.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}

// deadLetter waits for the next dead letter after seq on subject.dead.>
// and returns it.
func deadLetter(t testing.TB, jsc js.JetStream, stream, subject string, n int) js.Msg {
	t.Helper()
	var got js.Msg
	testenv.Eventually(t, 10*time.Second, func() string {
		c, err := jsc.OrderedConsumer(context.Background(), stream, js.OrderedConsumerConfig{FilterSubjects: []string{subject + ".dead.>"}})
		if err != nil {
			t.Fatal(err)
		}
		batch, err := c.FetchNoWait(n)
		if err != nil {
			t.Fatal(err)
		}
		var msgs []js.Msg
		for m := range batch.Messages() {
			msgs = append(msgs, m)
		}
		if len(msgs) < n {
			return fmt.Sprintf("%d dead letters, want %d", len(msgs), n)
		}
		got = msgs[n-1]
		return ""
	})
	return got
}

func TestSource(t *testing.T) {
	url, stream, subject, jsc := server(t)
	cfg := Config{URL: url, Stream: stream, Subject: subject, Prefetch: 4, MaxDeliver: 2, AckWait: time.Second}
	st := &starter{}
	m, stop := run(t, cfg, st)
	if _, err := jsc.Stream(context.Background(), stream); err != nil {
		t.Fatalf("the source did not create the stream: %v", err)
	}

	publish(t, jsc, subject+".t", `{"id":"e1","type":"t"}`)
	testenv.Eventually(t, 10*time.Second, func() string {
		if testutil.ToFloat64(m.Acked) != 1 || st.started() != 1 {
			return fmt.Sprintf("acked %v, started %d", testutil.ToFloat64(m.Acked), st.started())
		}
		return ""
	})

	// An unreadable message is a dead letter with its reason; the next
	// one goes on; the dead letter is not taken in again.
	publish(t, jsc, subject+".t", `{"id":"e2"}`)
	publish(t, jsc, subject+".t", `{"id":"e3","type":"t"}`)
	d := deadLetter(t, jsc, stream, subject, 1)
	if d.Subject() != subject+".dead.t" || d.Headers().Get(HeaderError) != "type: is required" || d.Headers().Get(HeaderSubject) != subject+".t" {
		t.Fatalf("dead letter on %s with %v", d.Subject(), d.Headers())
	}
	testenv.Eventually(t, 10*time.Second, func() string {
		// Acked too: the ack is counted once JetStream confirmed it, after
		// the start, and the next step reads the count.
		if st.started() != 2 || testutil.ToFloat64(m.Acked) != 2 {
			return fmt.Sprintf("the message after the dead letter: started %d, acked %v", st.started(), testutil.ToFloat64(m.Acked))
		}
		return ""
	})

	// Temporal away: the message is held past AckWait, not redelivered
	// (progress acks), not acknowledged.
	unavailable := error(dispatcher.Errorf(dispatcher.EUNAVAILABLE, "temporal is unavailable"))
	st.err.Store(&unavailable)
	acked := testutil.ToFloat64(m.Acked)
	publish(t, jsc, subject+".t", `{"id":"e4","type":"t"}`)
	time.Sleep(3 * cfg.AckWait) // what is checked is that nothing happens meanwhile
	info := consumerInfo(t, jsc, stream)
	if info.NumAckPending != 1 || info.NumRedelivered != 0 || testutil.ToFloat64(m.Acked) != acked || st.attempts.Load() < 3 {
		t.Fatalf("Temporal away: %d unacknowledged, %d redelivered, %v acked, %d attempts", info.NumAckPending, info.NumRedelivered,
			testutil.ToFloat64(m.Acked)-acked, st.attempts.Load())
	}

	// Stopped holding it, the source hands it back: its first delivery
	// ended without an ack. MaxDeliver is 2: its second, last, delivery is
	// still tried, and Temporal, back, takes it.
	stop()
	st.err.Store(nil)
	m, stop = run(t, cfg, st)
	testenv.Eventually(t, 10*time.Second, func() string {
		if st.started() != 3 || testutil.ToFloat64(m.Acked) != 1 || testutil.ToFloat64(m.Redelivered) != 1 {
			return fmt.Sprintf("its last delivery: started %d, acked %v, redelivered %v", st.started(),
				testutil.ToFloat64(m.Acked), testutil.ToFloat64(m.Redelivered))
		}
		return ""
	})

	// Temporal away on a message's first and last deliveries, the source
	// stopped during each: the last goes to the dead letters rather than
	// back, where the next delivery would not be tried.
	st.err.Store(&unavailable)
	received := testutil.ToFloat64(m.Received)
	publish(t, jsc, subject+".t", `{"id":"e5","type":"t"}`)
	for range cfg.MaxDeliver {
		testenv.Eventually(t, 10*time.Second, func() string {
			if testutil.ToFloat64(m.Received) != received+1 {
				return fmt.Sprintf("received %v, want %v", testutil.ToFloat64(m.Received), received+1)
			}
			return ""
		})
		stop()
		m, stop = run(t, cfg, st)
		received = 0
	}
	d = deadLetter(t, jsc, stream, subject, 2)
	if !strings.HasPrefix(d.Headers().Get(HeaderError), "delivered 2 times without an acknowledgement") {
		t.Fatalf("dead letter's reason %q", d.Headers().Get(HeaderError))
	}
	if st.started() != 3 {
		t.Fatalf("started %d", st.started())
	}
}

// More messages than Prefetch wait out an outage of Temporal longer than
// MaxDeliver × AckWait and are all dispatched once it is back: the source
// holds no message it does not keep alive with progress acks. Before, it
// pulled Prefetch messages ahead of its handlers, which JetStream delivered
// again every AckWait, so after the outage they were dead letters
// ("delivered 2 times without an acknowledgement") that were never tried.
func TestSourceOutageLongerThanMaxDeliver(t *testing.T) {
	url, stream, subject, jsc := server(t)
	cfg := Config{URL: url, Stream: stream, Subject: subject, Prefetch: 2, MaxDeliver: 2, AckWait: time.Second}
	st := &starter{}
	unavailable := error(dispatcher.Errorf(dispatcher.EUNAVAILABLE, "temporal is unavailable"))
	st.err.Store(&unavailable)
	m, _ := run(t, cfg, st)
	for i := range 8 {
		publish(t, jsc, subject+".t", fmt.Sprintf(`{"id":"o%d","type":"t"}`, i))
	}
	time.Sleep(4 * cfg.AckWait) // what is checked is that nothing is delivered again meanwhile
	st.err.Store(nil)
	testenv.Eventually(t, 20*time.Second, func() string {
		if st.started() != 8 || testutil.ToFloat64(m.Acked) != 8 {
			return fmt.Sprintf("started %d, acked %v", st.started(), testutil.ToFloat64(m.Acked))
		}
		return ""
	})
	if n := testutil.ToFloat64(m.Redelivered); n != 0 {
		t.Errorf("%v messages were delivered again during the outage", n)
	}
}

// consumerInfo is what JetStream says of the source's consumer.
func consumerInfo(t testing.TB, jsc js.JetStream, stream string) *js.ConsumerInfo {
	t.Helper()
	c, err := jsc.Consumer(context.Background(), stream, Consumer)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// A message in hand while the connection drops, for longer than the ack
// wait, again and again during an outage of Temporal: JetStream delivers
// it again each time, and the handler holding it goes on and
// acknowledges it once Temporal is back; no second handler takes it, and
// no dead letter says it was delivered MaxDeliver times. Before, the
// deliveries counted towards MaxDeliver: after two such drops the event
// was dead-lettered, though the first handler dispatched it as well; and
// broker_up stayed 1 while the source was cut off.
func TestSourceMessageInHandDeliveredAgain(t *testing.T) {
	url, stream, subject, jsc := server(t)
	proxy := testenv.NewProxy(t, strings.TrimPrefix(url, "nats://"))
	cfg := Config{URL: "nats://" + proxy.Addr, Stream: stream, Subject: subject, Prefetch: 4, MaxDeliver: 2, AckWait: time.Second}
	st := &starter{}
	unavailable := error(dispatcher.Errorf(dispatcher.EUNAVAILABLE, "temporal is unavailable"))
	st.err.Store(&unavailable)
	m, _ := run(t, cfg, st)
	publish(t, jsc, subject+".t", `{"id":"held","type":"t"}`)
	testenv.Eventually(t, 10*time.Second, func() string {
		if st.attempts.Load() == 0 {
			return "the message is not in hand"
		}
		return ""
	})
	delivered := func() uint64 { return consumerInfo(t, jsc, stream).Delivered.Consumer }
	deadLetters := func() (reasons []string) {
		c, err := jsc.OrderedConsumer(context.Background(), stream, js.OrderedConsumerConfig{FilterSubjects: []string{subject + ".dead.>"}})
		if err != nil {
			t.Fatal(err)
		}
		batch, err := c.FetchNoWait(1)
		if err != nil {
			t.Fatal(err)
		}
		for dead := range batch.Messages() {
			reasons = append(reasons, dead.Headers().Get(HeaderError))
		}
		return reasons
	}
	for drop := range 3 {
		before := delivered()
		proxy.Stall()               // the progress acknowledgements are lost…
		time.Sleep(2 * cfg.AckWait) // …for longer than the ack wait: the lapse is what is tested
		proxy.Resume()              // cuts the connection
		if drop == 0 {
			testenv.Eventually(t, 10*time.Second, func() string {
				if testutil.ToFloat64(m.Up) != 0 {
					return "broker_up is still 1 after the connection was cut"
				}
				return ""
			})
		}
		testenv.Eventually(t, 20*time.Second, func() string {
			if dead := deadLetters(); len(dead) > 0 {
				t.Fatalf("drop %d: dead-lettered during the outage: %v", drop, dead)
			}
			if testutil.ToFloat64(m.Up) != 1 || delivered() == before {
				return fmt.Sprintf("drop %d: up %v, not delivered again", drop, testutil.ToFloat64(m.Up))
			}
			return ""
		})
	}
	st.err.Store(nil)
	testenv.Eventually(t, 30*time.Second, func() string {
		if st.started() != 1 || testutil.ToFloat64(m.Acked) != 1 {
			return fmt.Sprintf("started %d, acked %v", st.started(), testutil.ToFloat64(m.Acked))
		}
		return ""
	})
	if dead := deadLetters(); len(dead) > 0 {
		t.Errorf("dead-lettered: %v", dead)
	}
}

// A connection that stalls (the network drops everything, nothing closes
// it) is down in dispatcher_broker_up within seconds, as in /readyz, and
// up again once it works. Before, the gauge stayed 1 until the client's
// pings gave up, minutes later (a probe).
func TestSourceDownWhileItsConnectionStalls(t *testing.T) {
	url, stream, subject, _ := server(t)
	proxy := testenv.NewProxy(t, strings.TrimPrefix(url, "nats://"))
	cfg := Config{URL: "nats://" + proxy.Addr, Stream: stream, Subject: subject, Prefetch: 4, MaxDeliver: 2, AckWait: time.Second}
	m, _ := run(t, cfg, &starter{})
	proxy.Stall()
	testenv.Eventually(t, 20*time.Second, func() string {
		if testutil.ToFloat64(m.Up) != 0 {
			return "broker_up is still 1 while the connection stalls"
		}
		return ""
	})
	proxy.Resume() // cuts the connection: the client connects again
	testenv.Eventually(t, 30*time.Second, func() string {
		if testutil.ToFloat64(m.Up) != 1 {
			return "broker_up is not 1 again"
		}
		return ""
	})
}

// A message published on the dead letters' subjects that is not a dead
// letter (an event whose type begins with "dead.", a fixed dead letter
// published back to where it was) is not taken in, and says so in the log.
// Before, it was acknowledged without a word.
func TestSourceMessageOnTheDeadSubjects(t *testing.T) {
	url, stream, subject, jsc := server(t)
	var logs testenv.Buffer
	st := &starter{}
	_, m, _ := runSource(t, Config{URL: url, Stream: stream, Subject: subject, Prefetch: 4, MaxDeliver: 2, AckWait: time.Second}, st,
		slog.New(slog.NewTextHandler(&logs, nil)))
	publish(t, jsc, subject+".dead.t", `{"id":"d1","type":"t"}`)
	publish(t, jsc, subject+".t", `{"id":"d2","type":"t"}`)
	testenv.Eventually(t, 10*time.Second, func() string {
		if testutil.ToFloat64(m.Acked) != 1 || !strings.Contains(logs.String(), "not taken in") {
			return fmt.Sprintf("acked %v; log:\n%s", testutil.ToFloat64(m.Acked), logs.String())
		}
		return ""
	})
	if st.started() != 1 || !strings.Contains(logs.String(), subject+".dead.t") {
		t.Errorf("started %d; log:\n%s", st.started(), logs.String())
	}
}

// The messages in hand keep their slots when the consumer goes: no more
// than Prefetch are ever taken in. Before, each setup of the consumer
// counted afresh, so every re-creation (the consumer deleted, a pull
// failing) let Prefetch more in beside those still waiting for Temporal.
func TestSourceSlotsOutliveTheConsumer(t *testing.T) {
	url, stream, subject, jsc := server(t)
	st := &starter{}
	unavailable := error(dispatcher.Errorf(dispatcher.EUNAVAILABLE, "temporal is unavailable"))
	st.err.Store(&unavailable)
	m, _ := run(t, Config{URL: url, Stream: stream, Subject: subject, Prefetch: 2, MaxDeliver: 5, AckWait: time.Second}, st)
	publish(t, jsc, subject+".t", `{"id":"s0","type":"t"}`)
	testenv.Eventually(t, 10*time.Second, func() string {
		if n := testutil.ToFloat64(m.Received); n != 1 {
			return fmt.Sprintf("received %v, want 1", n)
		}
		return ""
	})
	// One message in hand, a pull for one more pending: the deletion ends
	// the pull, and the source sets the consumer up again (from the
	// stream's start: s0 comes again).
	if err := jsc.DeleteConsumer(context.Background(), stream, Consumer); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 4; i++ {
		publish(t, jsc, subject+".t", fmt.Sprintf(`{"id":"s%d","type":"t"}`, i))
	}
	time.Sleep(4 * time.Second) // what is checked is that no more than Prefetch are taken in meanwhile
	if n := testutil.ToFloat64(m.Received); n > 2 {
		t.Errorf("%v messages taken in with Prefetch 2", n)
	}
}

// gatedStarter is a starter whose starts wait until gate is closed.
type gatedStarter struct {
	starter
	gate chan struct{}
}

func (g *gatedStarter) Start(ctx context.Context, ev dispatcher.Event) (dispatcher.StartResult, error) {
	<-g.gate
	return g.starter.Start(ctx, ev)
}

// A consumer deleted while every handler is busy is set up again once
// they are free. Before, the pulls after the deletion went unanswered,
// and the source waited for a consumer that was gone until it restarted.
func TestSourceConsumerDeletedWhileBusy(t *testing.T) {
	url, stream, subject, jsc := server(t)
	st := &gatedStarter{gate: make(chan struct{})}
	run(t, Config{URL: url, Stream: stream, Subject: subject, Prefetch: 2, AckWait: 30 * time.Second}, st)
	for i := range 2 {
		publish(t, jsc, subject+".t", fmt.Sprintf(`{"id":"b%d","type":"t"}`, i))
	}
	testenv.Eventually(t, 10*time.Second, func() string {
		if n := st.attempts.Load(); n != 0 {
			return fmt.Sprintf("%d starts, want none while the gate is shut", n)
		}
		c, err := jsc.Consumer(context.Background(), stream, Consumer)
		if err != nil {
			return err.Error()
		}
		if info, err := c.Info(context.Background()); err != nil || info.NumAckPending != 2 {
			return fmt.Sprintf("%v in hand (%v), want both handlers busy", info, err)
		}
		return ""
	})
	if err := jsc.DeleteConsumer(context.Background(), stream, Consumer); err != nil {
		t.Fatal(err)
	}
	close(st.gate)
	publish(t, jsc, subject+".t", `{"id":"after","type":"t"}`)
	testenv.Eventually(t, 30*time.Second, func() string {
		st.mu.Lock()
		defer st.mu.Unlock()
		if !slices.Contains(st.ids, "after") {
			return fmt.Sprintf("started %v, want the event published after the deletion", st.ids)
		}
		return ""
	})
}

// BenchmarkSource is the broker intake's own cost: messages through
// JetStream and the intake (read, schema, double ack) to a Temporal that
// answers at once, 64 in flight.
func BenchmarkSource(b *testing.B) {
	url, stream, subject, jsc := server(b)
	st := &starter{}
	m, _ := run(b, Config{URL: url, Stream: stream, Subject: subject, Prefetch: 64}, st)
	b.ResetTimer()
	for i := range b.N {
		publish(b, jsc, subject+".t", fmt.Sprintf(`{"id":"b-%d","type":"t","content":{"n":%d}}`, i, i))
	}
	for testutil.ToFloat64(m.Acked) < float64(b.N) {
		time.Sleep(time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// A dead letter that cannot be published (the stream full, new messages
// discarded) on a message's last delivery does not lose the message: it
// is delivered again until its dead letter is in the stream. The consumer
// an older version created with a finite MaxDeliver is updated to none.
func TestSourceDeadLetterFails(t *testing.T) {
	url, stream, subject, jsc := server(t)
	ctx := context.Background()
	// Room for the message, none for its dead letter.
	sc := js.StreamConfig{Name: stream, Subjects: []string{subject + ".>"}, Storage: js.FileStorage,
		Retention: js.LimitsPolicy, MaxMsgs: 1, Discard: js.DiscardNew}
	if _, err := jsc.CreateStream(ctx, sc); err != nil {
		t.Fatal(err)
	}
	if _, err := jsc.CreateOrUpdateConsumer(ctx, stream, js.ConsumerConfig{Durable: Consumer, AckPolicy: js.AckExplicitPolicy,
		MaxDeliver: 2, FilterSubject: subject + ".>"}); err != nil {
		t.Fatal(err)
	}
	cfg := Config{URL: url, Stream: stream, Subject: subject, Prefetch: 4, MaxDeliver: 2, AckWait: time.Second}
	st := &starter{}
	src, m, _ := runSource(t, cfg, st, slog.New(slog.DiscardHandler))
	c, err := jsc.Consumer(ctx, stream, Consumer)
	if err != nil {
		t.Fatal(err)
	}
	if md := c.CachedInfo().Config.MaxDeliver; md != -1 {
		t.Fatalf("the consumer's MaxDeliver is %d, want -1 (unlimited)", md)
	}

	publish(t, jsc, subject+".t", `{"id":"e1"}`) // no type: a dead letter
	// Past its last delivery (2) it comes again, the dead letter failing.
	testenv.Eventually(t, 20*time.Second, func() string {
		if n := testutil.ToFloat64(m.Received); n < 3 {
			return fmt.Sprintf("received %v times, want 3 or more", n)
		}
		return ""
	})
	// Not ready meanwhile, as for RabbitMQ. Before, /readyz said ok.
	if err := src.Ready(ctx); err == nil || !strings.Contains(err.Error(), "cannot dead-letter") {
		t.Errorf("ready while dead letters are refused: %v", err)
	}
	sc.MaxMsgs = -1
	if _, err := jsc.UpdateStream(ctx, sc); err != nil {
		t.Fatal(err)
	}
	d := deadLetter(t, jsc, stream, subject, 1)
	testenv.Eventually(t, 10*time.Second, func() string {
		if err := src.Ready(ctx); err != nil {
			return "not ready once the dead letter is in: " + err.Error()
		}
		return ""
	})
	// Why it is one, not how often it came: its dead letter failed.
	if d.Subject() != subject+".dead.t" || d.Headers().Get(HeaderSubject) != subject+".t" || d.Headers().Get(HeaderError) != "type: is required" {
		t.Fatalf("dead letter on %s with %v", d.Subject(), d.Headers())
	}
	testenv.Eventually(t, 10*time.Second, func() string {
		info, err := c.Info(ctx)
		if err != nil {
			return err.Error()
		}
		if info.NumAckPending != 0 || info.NumPending != 0 {
			return fmt.Sprintf("%d unacknowledged, %d pending", info.NumAckPending, info.NumPending)
		}
		return ""
	})
	if st.started() != 0 {
		t.Fatalf("started %d", st.started())
	}
}

// A message that fits the stream, but not with the headers of its dead
// letter, is dead-lettered without its body, which stays in the stream.
// Before, every dead letter of it failed, and it came back for good.
func TestSourceDeadLetterTooLargeForItsBody(t *testing.T) {
	url, stream, subject, jsc := server(t)
	ctx := context.Background()
	if _, err := jsc.CreateStream(ctx, js.StreamConfig{Name: stream, Subjects: []string{subject + ".>"}, Storage: js.FileStorage,
		Retention: js.LimitsPolicy, MaxMsgSize: 512}); err != nil {
		t.Fatal(err)
	}
	m, _ := run(t, Config{URL: url, Stream: stream, Subject: subject, Prefetch: 4, AckWait: time.Second}, &starter{})
	body := `{"id":"big","pad":"` + strings.Repeat("x", 440) + `"}` // no type: a dead letter
	publish(t, jsc, subject+".t", body)
	d := deadLetter(t, jsc, stream, subject, 1)
	if len(d.Data()) != 0 || d.Headers().Get(HeaderError) != "type: is required" ||
		!strings.Contains(d.Headers().Get(HeaderBodyDropped), fmt.Sprintf("%d bytes, too many for a dead letter: the message is in stream %s at sequence 1", len(body), stream)) {
		t.Fatalf("dead letter %q with %v", d.Data(), d.Headers())
	}
	testenv.Eventually(t, 10*time.Second, func() string {
		c, err := jsc.Consumer(ctx, stream, Consumer)
		if err != nil {
			return err.Error()
		}
		if info, err := c.Info(ctx); err != nil || info.NumAckPending != 0 || info.NumPending != 0 {
			return fmt.Sprintf("consumer %+v (%v): want the message acknowledged", info, err)
		}
		return ""
	})
	if n := testutil.ToFloat64(m.Received); n != 1 {
		t.Fatalf("received %v times, want once", n)
	}
}

// A dead letter carries none of the producer's JetStream headers, which
// would act on the stream again: one that expected the stream's last
// sequence made every dead letter of its message fail, and the message
// came back for good; a rollup purged the stream of the events behind it.
// The producer's message id is kept, as x-dispatcher-msg-id.
func TestSourceDeadLetterDropsJetStreamHeaders(t *testing.T) {
	url, stream, subject, jsc := server(t)
	ctx := context.Background()
	st := &starter{}
	m, _ := run(t, Config{URL: url, Stream: stream, Subject: subject, Prefetch: 4, MaxDeliver: 2, AckWait: time.Second}, st)
	s, err := jsc.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	poison := nats.NewMsg(subject + ".t")
	poison.Header.Set(nats.MsgIdHdr, "poison-1")
	poison.Header.Set("Nats-Expected-Last-Sequence", fmt.Sprint(info.State.LastSeq))
	poison.Header.Set("X-Trace", "kept")
	poison.Data = []byte("not json")
	if _, err := jsc.PublishMsg(ctx, poison); err != nil {
		t.Fatal(err)
	}
	d := deadLetter(t, jsc, stream, subject, 1)
	h := d.Headers()
	for k := range h {
		if strings.HasPrefix(strings.ToLower(k), "nats-") && k != nats.MsgIdHdr && k != "Nats-Expected-Stream" { // the dead letter's own
			t.Errorf("the dead letter carries %s: %v", k, h)
		}
	}
	if h.Get("x-dispatcher-msg-id") != "poison-1" || h.Get("X-Trace") != "kept" || h.Get(HeaderError) == "" {
		t.Errorf("dead letter headers %v, want the message id, the producer's other headers and the reason", h)
	}
	if n := testutil.ToFloat64(m.Received); n != 1 {
		t.Errorf("the message was received %v times, want once: its dead letter is written at once", n)
	}
}

// Two deployments on one stream, on subjects of their own, each keep
// their messages. One that would take over the other's consumer is
// refused, naming the consumer and both filters, and the consumer is left
// as it is; with a consumer of its own it consumes its subjects alone.
// Before, the second updated the shared consumer "dispatcher" to its
// filter: it took the first one's messages from then on, as its own
// tenant's, and the acknowledgement floor passed those of its subjects
// that the first had skipped.
func TestSourceConsumerOfAnotherDeployment(t *testing.T) {
	url, stream, subject, jsc := server(t)
	a, b := subject+"a", subject+"b"
	if _, err := jsc.CreateStream(context.Background(), js.StreamConfig{Name: stream, Subjects: []string{a + ".>", b + ".>"},
		Storage: js.FileStorage, Retention: js.LimitsPolicy}); err != nil {
		t.Fatal(err)
	}
	cfgA := Config{URL: url, Stream: stream, Subject: a, Prefetch: 4, AckWait: time.Second}
	stA := &starter{}
	mA, _ := run(t, cfgA, stA)

	cfgB := Config{URL: url, Stream: stream, Subject: b, Prefetch: 4, AckWait: time.Second}
	metrics, err := intake.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	var logs testenv.Buffer
	refused := New(cfgB, &intake.Handler{Source: "nats", Starter: &starter{}}, metrics.Source("nats"), slog.New(slog.NewTextHandler(&logs, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); refused.Run(ctx) }()
	want := fmt.Sprintf("consumer %s on stream %s: it filters on %s.>, not on %s.>", Consumer, stream, a, b)
	testenv.Eventually(t, 10*time.Second, func() string {
		if err := refused.Ready(ctx); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "DISPATCHER_NATS_CONSUMER") {
			return fmt.Sprintf("Ready: %v, want an error containing %q and naming DISPATCHER_NATS_CONSUMER", err, want)
		}
		return ""
	})
	cancel()
	<-done
	if !strings.Contains(logs.String(), want) {
		t.Errorf("the log does not say why the source does not consume:\n%s", logs.String())
	}
	c, err := jsc.Consumer(context.Background(), stream, Consumer)
	if err != nil {
		t.Fatal(err)
	}
	if f := c.CachedInfo().Config.FilterSubject; f != a+".>" {
		t.Fatalf("the consumer's filter is %s, want %s.> as its deployment set it", f, a)
	}

	cfgB.Consumer = "b"
	stB := &starter{}
	mB, _ := run(t, cfgB, stB)
	publish(t, jsc, a+".t", `{"id":"a1","type":"t"}`)
	publish(t, jsc, b+".t", `{"id":"b1","type":"t"}`)
	testenv.Eventually(t, 10*time.Second, func() string {
		if testutil.ToFloat64(mA.Acked) != 1 || testutil.ToFloat64(mB.Acked) != 1 {
			return fmt.Sprintf("acked %v and %v, want 1 each", testutil.ToFloat64(mA.Acked), testutil.ToFloat64(mB.Acked))
		}
		return ""
	})
	if fmt.Sprint(stA.ids, stB.ids) != "[a1] [b1]" {
		t.Errorf("started %v and %v, want [a1] and [b1]", stA.ids, stB.ids)
	}
}

// A URL that does not parse is not logged nor reported with its
// password. Before, url.Parse's error quoted it whole, in the log and on
// /readyz.
func TestSourceHidesThePasswordOfABadURL(t *testing.T) {
	metrics, err := intake.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	var logs testenv.Buffer
	src := New(Config{URL: "nats://127.0.0.1:4222,nats://nats:s3cr%zzet@127.0.0.1:4222", Stream: "fixb", Subject: "fixb"},
		&intake.Handler{Source: "nats", Starter: &starter{}}, metrics.Source("nats"), slog.New(slog.NewTextHandler(&logs, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); src.Run(ctx) }()
	var ready error
	testenv.Eventually(t, 10*time.Second, func() string {
		if ready = src.Ready(ctx); ready == nil || !strings.Contains(logs.String(), "connect") {
			return fmt.Sprintf("Ready: %v; log:\n%s", ready, logs.String())
		}
		return ""
	})
	cancel()
	<-done
	for _, s := range []string{ready.Error(), logs.String()} {
		if strings.Contains(s, "s3cr") || !strings.Contains(s, "nats://xxxxx@127.0.0.1:4222") {
			t.Errorf("%s\nholds the password, or does not name the host", s)
		}
	}
}

// An AckWait too short to keep a message with progress acknowledgements
// is MinAckWait. Before, 2ns panicked in the handler (a ticker every
// AckWait/3, 0) on the first message.
func TestNewBoundsTheAckWait(t *testing.T) {
	for _, tt := range []struct{ ackWait, want time.Duration }{{0, 30 * time.Second}, {2, time.Second}, {time.Second, time.Second}, {time.Minute, time.Minute}} {
		src := New(Config{AckWait: tt.ackWait}, &intake.Handler{}, nil, slog.New(slog.DiscardHandler))
		if src.cfg.AckWait != tt.want {
			t.Errorf("AckWait %s: the source's is %s, want %s", tt.ackWait, src.cfg.AckWait, tt.want)
		}
	}
}

// A connection that fails at once is tried again, with backoff, until
// the source stops. Before, Run returned after the first failure, and the
// process stayed not ready until it was restarted.
func TestSourceTriesToConnectAgain(t *testing.T) {
	metrics, err := intake.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	var logs testenv.Buffer
	src := New(Config{URL: "nats://127.0.0.1:%zz", Stream: "fixb", Subject: "fixb"},
		&intake.Handler{Source: "nats", Starter: &starter{}}, metrics.Source("nats"), slog.New(slog.NewTextHandler(&logs, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); src.Run(ctx) }()
	testenv.Eventually(t, 10*time.Second, func() string {
		select {
		case <-done:
			return ""
		default:
		}
		if n := strings.Count(logs.String(), "cannot connect; trying again"); n < 2 {
			return fmt.Sprintf("%d attempts to connect; log:\n%s", n, logs.String())
		}
		return ""
	})
	select {
	case <-done:
		t.Fatalf("Run returned after a failure to connect; log:\n%s", logs.String())
	default:
	}
	cancel()
	<-done
}

// A stream that deletes what is acknowledged is refused: the source
// acknowledges the dead letters, which live in the stream. Before, it
// consumed a work-queue or interest stream, and its dead letters were
// deleted as soon as they were written.
func TestSourceRefusesAStreamThatDeletesAcknowledged(t *testing.T) {
	for _, retention := range []js.RetentionPolicy{js.WorkQueuePolicy, js.InterestPolicy} {
		t.Run(retention.String(), func(t *testing.T) {
			readyRefuses(t, func(stream, subject string) (js.StreamConfig, string) {
				return js.StreamConfig{Name: stream, Subjects: []string{subject + ".>"}, Storage: js.FileStorage, Retention: retention},
					fmt.Sprintf("stream %s: its retention is %s, which deletes the dead letters", stream, retention)
			})
		})
	}
}

// A stream of that name on other subjects is refused naming its subjects
// and those the source needs. Before, the server's own error said only
// "consumer filter subject is not a valid subset of the interest subjects"
// (broker probe).
func TestSourceRefusesAStreamOnOtherSubjects(t *testing.T) {
	readyRefuses(t, func(stream, subject string) (js.StreamConfig, string) {
		return js.StreamConfig{Name: stream, Subjects: []string{subject + "-other.>"}, Storage: js.FileStorage},
			fmt.Sprintf("stream %s is on the subjects %s-other.>, which do not hold %s.>: add %s.> to its subjects (or widen one that overlaps it), or name a stream on it",
				stream, subject, subject, subject)
	})
}

// readyRefuses creates the stream that stream gives for the test's
// stream name and subject, runs a source on them, and waits for its
// readiness to fail with the error that stream gives too.
func readyRefuses(t *testing.T, stream func(stream, subject string) (js.StreamConfig, string)) {
	t.Helper()
	url, name, subject, jsc := server(t)
	cfg, want := stream(name, subject)
	if _, err := jsc.CreateStream(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	metrics, err := intake.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	src := New(Config{URL: url, Stream: name, Subject: subject}, &intake.Handler{Source: "nats", Starter: &starter{}},
		metrics.Source("nats"), slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); src.Run(ctx) }()
	defer func() { cancel(); <-done }()
	testenv.Eventually(t, 10*time.Second, func() string {
		if err := src.Ready(ctx); err == nil || !strings.Contains(err.Error(), want) {
			return fmt.Sprintf("Ready: %v, want an error containing %q", err, want)
		}
		return ""
	})
}

// A server that refuses the source's credentials is asked again, for as
// long as it takes to fix them on the server. Before, the client gave up
// for good at the second refusal, and the source stayed not ready until
// the process restarted.
func TestSourceKeepsTryingRefusedCredentials(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var tries atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tries.Add(1)
			// A NATS server that refuses every CONNECT.
			fmt.Fprint(c, "INFO {\"server_id\":\"refusing\",\"version\":\"2.10.0\",\"proto\":1,\"max_payload\":1048576,\"auth_required\":true}\r\n")
			bufio.NewReader(c).ReadString('\n')
			fmt.Fprint(c, "-ERR 'Authorization Violation'\r\n")
			c.Close()
		}
	}()
	metrics, err := intake.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	src := New(Config{URL: "nats://u:wrong@" + ln.Addr().String(), Stream: "fixb", Subject: "fixb"},
		&intake.Handler{Source: "nats", Starter: &starter{}}, metrics.Source("nats"), slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); src.Run(ctx) }()
	testenv.Eventually(t, 15*time.Second, func() string {
		if n := tries.Load(); n < 4 {
			return fmt.Sprintf("%d attempts to connect", n)
		}
		return ""
	})
	cancel()
	<-done
}

// A server that refuses the connection is named as such, on /readyz at
// once and in the log. Before, /readyz said "not consuming yet" for the
// first 10 s, and then, like the log, that the stream did not answer in
// time.
func TestSourceSaysTheServerRefuses(t *testing.T) {
	metrics, err := intake.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	var logs testenv.Buffer
	port, err := proc.FreePort() // nothing listens on it
	if err != nil {
		t.Fatal(err)
	}
	src := New(Config{URL: "nats://127.0.0.1:" + strconv.Itoa(port), Stream: "refused", Subject: "refused"},
		&intake.Handler{Source: "nats", Starter: &starter{}}, metrics.Source("nats"), slog.New(slog.NewTextHandler(&logs, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); src.Run(ctx) }()
	defer func() { cancel(); <-done }()
	testenv.Eventually(t, 5*time.Second, func() string {
		if err := src.Ready(ctx); err == nil || !strings.Contains(err.Error(), "not connected to the server") || !strings.Contains(err.Error(), "connection refused") {
			return fmt.Sprintf("Ready: %v", err)
		}
		return ""
	})
	testenv.Eventually(t, 30*time.Second, func() string {
		if !strings.Contains(logs.String(), "not connected to the server") {
			return "log:\n" + logs.String()
		}
		return ""
	})
}

// A pull expires within half the AckWait: JetStream keeps the pull of a
// process that died open until it expires, and a message redelivered to
// it meanwhile counts towards MaxDeliver unseen. Before, pulls waited
// 5 s whatever the AckWait: with DISPATCHER_NATS_ACK_WAIT=3s, two crashes
// dead-lettered an event never tried (a probe).
func TestPullWaitWithinTheAckWait(t *testing.T) {
	for _, tt := range []struct{ ackWait, want time.Duration }{
		{30 * time.Second, fetchWait}, {10 * time.Second, fetchWait}, {3 * time.Second, 1500 * time.Millisecond}, {MinAckWait, 500 * time.Millisecond},
	} {
		if got := pullWait(tt.ackWait); got != tt.want || got >= tt.ackWait {
			t.Errorf("pullWait(%v) = %v, want %v", tt.ackWait, got, tt.want)
		}
	}
}
