package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	child "github.com/dispatcherhq/dispatcher/internal/proc"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
	"github.com/dispatcherhq/dispatcher/producer"
)

// The broker tests' numbers: messages in the crash run, where the worker
// is killed, and while Temporal is down.
const (
	brokerMessages   = 1000
	brokerKillAfter  = 300
	brokerWhileDown  = 50
	brokerEventType  = "order_placed"
	brokerFunction   = "orders"
	brokerMalformed1 = `{"type":`                            // not JSON
	brokerMalformed2 = `{"id":"no-type","content":{"n":-1}}` // no type
)

// restartableTemporal is a Temporal dev server keeping its state in a
// file: killed and started again on the same address, it has every
// workflow it had.
type restartableTemporal struct {
	mu  sync.Mutex
	srv *child.DevServer
}

// start is a systemOption's temporal: it starts the server for t.
func (r *restartableTemporal) start(t *testing.T) (string, client.Client) {
	t.Helper()
	dir := t.TempDir()
	srv, err := child.StartDevServer(t.Context(), child.DevServerOptions{
		CLI: testenv.TemporalCLI(t), LogPath: filepath.Join(dir, "temporal.log"), DBFile: filepath.Join(dir, "temporal.db"),
	})
	if err != nil {
		t.Fatal(err)
	}
	r.srv = srv
	t.Cleanup(func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.srv.Stop(syscall.SIGINT, 5*time.Second)
	})
	c, err := srv.Dial()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return srv.Addr, c
}

// kill ends the server with SIGKILL.
func (r *restartableTemporal) kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.srv.Kill()
}

// restart starts the server again on its address and file.
func (r *restartableTemporal) restart(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	opts := r.srv.Options
	opts.LogPath += ".again"
	srv, err := child.StartDevServer(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	r.srv = srv
}

// brokerSink is the task function of the broker tests: for each message's
// number (the event's content.n) it records the Idempotency-Keys it was
// called with. One key per number is one dispatch per event.
type brokerSink struct {
	mu   sync.Mutex
	keys map[int]map[string]bool
}

func (b *brokerSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var call struct {
		Data struct {
			Event struct {
				Content struct {
					N *int `json:"n"`
				} `json:"content"`
			} `json:"event"`
		} `json:"data"`
	}
	if err := json.NewDecoder(r.Body).Decode(&call); err != nil || call.Data.Event.Content.N == nil {
		http.Error(w, "no content.n", http.StatusBadRequest)
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	n := *call.Data.Event.Content.N
	if b.keys[n] == nil {
		b.keys[n] = map[string]bool{}
	}
	b.keys[n][r.Header.Get("Idempotency-Key")] = true
}

// seen counts the numbers in [from, to) that were dispatched.
func (b *brokerSink) seen(from, to int) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for i := from; i < to; i++ {
		if len(b.keys[i]) > 0 {
			n++
		}
	}
	return n
}

// check fails t unless every number in [from, to) was dispatched exactly
// once, under one key, and nothing else was.
func (b *brokerSink) check(t *testing.T, from, to int) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var missing, twice []int
	for i := from; i < to; i++ {
		switch len(b.keys[i]) {
		case 0:
			missing = append(missing, i)
		case 1:
		default:
			twice = append(twice, i)
		}
	}
	if len(missing)+len(twice) > 0 {
		t.Fatalf("messages %d..%d: %d never dispatched %v, %d dispatched more than once %v", from, to-1,
			len(missing), head(missing), len(twice), head(twice))
	}
	for n := range b.keys {
		if n < 0 {
			t.Fatalf("an invalid message was dispatched: %v", b.keys[n])
		}
	}
}

func head(xs []int) []int { return xs[:min(len(xs), 10)] }

// brokerMessage is message number n of a broker test, in one of the
// envelopes the intake takes, in turn: Extra Horizon with an id, lk
// without one (identified by the message id, or by nothing but its bytes),
// a structured CloudEvent and a binary one (its attributes in headers
// named prefix+"id", ...: AMQP's "ce_", NATS's "ce-").
func brokerMessage(n int, prefix string) (body []byte, contentType string, headers map[string]string, msgID string) {
	content := fmt.Sprintf(`{"n":%d}`, n)
	switch n % 4 {
	case 0:
		return fmt.Appendf(nil, `{"id":"eh-%d","type":%q,"content":%s}`, n, brokerEventType, content), "application/json", nil, ""
	case 1:
		if n%8 == 1 {
			msgID = fmt.Sprintf("msg-%d", n)
		}
		return fmt.Appendf(nil, `{"type":%q,"timestamp":"2030-01-01T00:00:00Z","data":%s,"source":{"producerId":"broker-test"}}`, brokerEventType, content),
			"application/json", nil, msgID
	case 2:
		return fmt.Appendf(nil, `{"specversion":"1.0","id":"ce-%d","source":"/broker-test","type":%q,"data":%s}`, n, brokerEventType, content),
			"application/cloudevents+json", nil, ""
	default:
		return []byte(content), "application/json", map[string]string{
			prefix + "specversion": "1.0", prefix + "id": fmt.Sprintf("bin-%d", n), prefix + "source": "/broker-test", prefix + "type": brokerEventType,
		}, ""
	}
}

// brokerSystem starts the API and a worker taking events from a broker
// (env), against Temporal on a file, with a dispatcher of brokerEventType
// calling sink.
func brokerSystem(t *testing.T, temporal *restartableTemporal, sink http.Handler, env ...string) *system {
	t.Helper()
	s := startSystem(t, splitProcesses, withEnv(env...), func(o *systemOptions) { o.temporal = temporal.start })
	srv := httptest.NewServer(sink)
	t.Cleanup(srv.Close)
	s.call("POST", "/functions/v1", map[string]any{"name": brokerFunction, "url": srv.URL, "timeoutSeconds": 10}, 200)
	s.call("POST", "/dispatchers/v1", map[string]any{"eventType": brokerEventType,
		"actions": []any{map[string]any{"type": "task", "functionName": brokerFunction}}}, 200)
	return s
}

// workerMetric is a broker source's series of the metric name on the
// worker's /metrics.
func (s *system) workerMetric(name, source string) float64 {
	s.t.Helper()
	var sum float64
	for _, m := range scrape(s.t, s.worker.url)[name].GetMetric() {
		if matches(m.GetLabel(), map[string]string{"source": source}) {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// workerReady waits until the worker's /readyz says check is ok.
func (s *system) workerReady(check string) {
	s.t.Helper()
	var last string
	s.poll("the worker's "+check+" readiness", func() bool {
		res, err := http.Get(s.worker.url + "/readyz")
		if err != nil {
			last = err.Error()
			return false
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		last = string(b)
		return res.StatusCode == 200 && strings.Contains(last, fmt.Sprintf("%q:\"ok\"", check))
	}, &last)
}

// brokerRun is what the broker tests share: publishing, the crash run,
// the outage.
type brokerRun struct {
	t        *testing.T
	s        *system
	sink     *brokerSink
	temporal *restartableTemporal
	source   string // "amqp" or "nats"
	// producers send the messages of some envelopes, by n%4; publish the
	// others, and the invalid ones.
	producers map[int]*producer.Producer
	publish   func(n int, body []byte, contentType string, headers map[string]string, msgID string)
	prefix    string // of the binary mode's headers
	// deadLetters returns the reasons of the dead letters once there are
	// want of them.
	deadLetters func(want int) []string
	// held says whether the broker still has n messages the dispatcher
	// has not acknowledged (delivered or not), or why not.
	held func(n int) string
}

// publishRange publishes messages from to to: the lk and CloudEvents ones
// through the producer package, as producers would, the others (the
// Extra Horizon envelope and binary CloudEvents, which it does not send)
// as they are.
func (r *brokerRun) publishRange(from, to int) {
	for n := from; n < to; n++ {
		if p := r.producers[n%4]; p != nil {
			if _, err := p.Dispatch(r.t.Context(), brokerEventType, map[string]int{"n": n}, producer.WithID(fmt.Sprint("p-", n))); err != nil {
				r.t.Fatalf("producer: message %d: %v", n, err)
			}
			continue
		}
		body, ct, headers, id := brokerMessage(n, r.prefix)
		r.publish(n, body, ct, headers, id)
	}
}

// brokerProducers are the producers of a broker run's lk (n%4 == 1) and
// CloudEvents (n%4 == 2) messages, each with a transport of its own.
func brokerProducers(t *testing.T, transport func() producer.Transport) map[int]*producer.Producer {
	t.Helper()
	out := map[int]*producer.Producer{}
	for n, env := range map[int]producer.Envelope{1: producer.EnvelopeLK, 2: producer.EnvelopeCloudEvents} {
		p, err := producer.New(transport(), producer.WithEnvelope(env), producer.WithSource("/broker-test"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Close() })
		out[n] = p
	}
	return out
}

// crash publishes brokerMessages messages with two invalid ones in the
// middle, SIGKILLs the worker once brokerKillAfter are dispatched and
// starts it again: every message is dispatched once, the invalid ones
// are dead letters with their reasons.
func (r *brokerRun) crash() {
	t := r.t
	begin := time.Now()
	r.s.workerReady(r.source)
	r.publishRange(0, brokerMessages/2)
	r.publish(-1, []byte(brokerMalformed1), "application/json", nil, "")
	r.publish(-1, []byte(brokerMalformed2), "application/json", nil, "")
	r.publishRange(brokerMessages/2, brokerMessages)
	t.Logf("published %d messages (and 2 invalid) in %s", brokerMessages, time.Since(begin).Round(time.Millisecond))

	r.s.poll(fmt.Sprintf("%d dispatches before the crash", brokerKillAfter), func() bool { return r.sink.seen(0, brokerMessages) >= brokerKillAfter })
	// The invalid messages may have been dead-lettered already: on a busy
	// machine publishing is slower than dispatching, and the worker killed
	// takes its count with it.
	deadBefore := r.s.workerMetric("dispatcher_broker_messages_dead_lettered_total", r.source)
	r.s.crashWorker()
	atKill := r.sink.seen(0, brokerMessages)
	t.Logf("SIGKILLed the worker at %d dispatched (%s)", atKill, time.Since(begin).Round(time.Millisecond))
	if atKill == brokerMessages {
		t.Fatal("every message was dispatched before the worker was killed: the crash proves nothing")
	}
	r.s.startWorker()
	var got string
	r.s.pollFor(90*time.Second, "every message dispatched", func() bool {
		n := r.sink.seen(0, brokerMessages)
		got = fmt.Sprintf("%d of %d dispatched", n, brokerMessages)
		return n == brokerMessages
	}, &got)
	t.Logf("all %d dispatched %s after publishing began", brokerMessages, time.Since(begin).Round(time.Millisecond))
	r.sink.check(t, 0, brokerMessages)

	reasons := r.deadLetters(2)
	slices.Sort(reasons)
	if len(reasons) != 2 || !strings.Contains(reasons[0], "not valid JSON") || reasons[1] != "type: is required" {
		t.Fatalf("dead letters' reasons %q, want the unparsable message's and \"type: is required\"", reasons)
	}
	r.s.poll("the queue drained", func() bool { return r.held(0) == "" })
	if n := r.s.workerMetric("dispatcher_broker_messages_dead_lettered_total", r.source); deadBefore+n != 2 {
		t.Fatalf("dead_lettered_total = %v before the crash and %v after, want 2 in all", deadBefore, n)
	}
}

// outage stops Temporal, publishes brokerWhileDown messages, and shows
// that none is acknowledged nor retried in a loop while it is down, and
// that all are dispatched once it is back.
func (r *brokerRun) outage() {
	t := r.t
	received := r.s.workerMetric("dispatcher_broker_messages_received_total", r.source)
	acked := r.s.workerMetric("dispatcher_broker_messages_acked_total", r.source)
	events := r.s.workerMetric("dispatcher_events_received_total", r.source)
	r.temporal.kill()
	from, to := brokerMessages, brokerMessages+brokerWhileDown
	r.publishRange(from, to)
	r.s.poll("the worker to hold the messages", func() bool {
		return r.s.workerMetric("dispatcher_broker_messages_received_total", r.source) >= received+brokerWhileDown
	})
	// Nothing happens while Temporal is away: that takes watching a while.
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		if why := r.held(brokerWhileDown); why != "" {
			t.Fatalf("Temporal down: %s", why)
		}
		if a := r.s.workerMetric("dispatcher_broker_messages_acked_total", r.source); a != acked {
			t.Fatalf("Temporal down, yet %v messages were acknowledged", a-acked)
		}
	}
	if got := r.s.workerMetric("dispatcher_broker_messages_received_total", r.source) - received; got != brokerWhileDown {
		t.Fatalf("Temporal down: %v deliveries of %d messages; they were handed back and forth", got, brokerWhileDown)
	}
	if n := r.sink.seen(from, to); n != 0 {
		t.Fatalf("%d dispatched without Temporal", n)
	}
	// Prometheus sees the outage without /readyz being asked.
	r.s.poll("dispatcher_ready{check=temporal} 0", func() bool { return r.s.ready("temporal") == 0 })
	r.temporal.restart(t)
	var got string
	r.s.pollFor(90*time.Second, "the backlog dispatched once Temporal is back", func() bool {
		n := r.sink.seen(from, to)
		got = fmt.Sprintf("%d of %d dispatched", n, brokerWhileDown)
		return n == brokerWhileDown
	}, &got)
	r.sink.check(t, 0, to)
	r.s.poll("the backlog acknowledged", func() bool {
		return r.held(0) == "" && r.s.workerMetric("dispatcher_broker_messages_acked_total", r.source) == acked+brokerWhileDown
	})
	// Its events are counted as HTTP's are. Before, a broker's were not.
	if n := r.s.workerMetric("dispatcher_events_received_total", r.source) - events; n != brokerWhileDown {
		t.Fatalf("dispatcher_events_received_total{source=%q} grew by %v, want %d", r.source, n, brokerWhileDown)
	}
	r.s.poll("dispatcher_ready{check=temporal} 1", func() bool { return r.s.ready("temporal") == 1 })
	// What the alert rules and the dashboard query of the broker sources
	// is exported (TestObservabilityMetricsExported has no broker).
	want := queriedMetrics(t)
	maps.DeleteFunc(want, func(name string, _ []string) bool { return !strings.HasPrefix(name, brokerMetrics) })
	if missing := missingMetrics(scrape(t, r.s.worker.url), want); len(want) == 0 || len(missing) > 0 {
		t.Fatalf("the alert rules and the dashboard query broker metrics the worker does not export (of %d): %v", len(want), missing)
	}
}

// ready is dispatcher_ready{check} on the worker's /metrics; -1 when it
// has no such series.
func (s *system) ready(check string) float64 {
	s.t.Helper()
	for _, m := range scrape(s.t, s.worker.url)["dispatcher_ready"].GetMetric() {
		if matches(m.GetLabel(), map[string]string{"check": check}) {
			return m.GetGauge().GetValue()
		}
	}
	return -1
}

func randomName() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// brokerURL is the broker's URL for the tests: $name, else def.
func brokerURL(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
