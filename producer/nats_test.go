package producer

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dispatcherhq/dispatcher/internal/testenv"
)

// natsURL is the NATS server the tests publish to: $TEST_NATS_URL, or
// the local one.
func natsURL() string {
	if u := os.Getenv("TEST_NATS_URL"); u != "" {
		return u
	}
	return "nats://127.0.0.1:4222"
}

// testStream creates a JetStream stream of its own for the test, on the
// subjects <prefix>>, and returns it and the prefix; it skips the test
// (fails it under CI and make test) when there is no NATS with JetStream.
func testStream(t *testing.T) (jetstream.Stream, string) {
	t.Helper()
	nc, err := nats.Connect(natsURL())
	if err != nil {
		testenv.Missing(t, "NATS at %s is unavailable: %v", natsURL(), err)
		return nil, ""
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	name := strings.ToUpper(uniqueName("PRODUCER_TEST_"))
	prefix := strings.ToLower(name) + ".events."
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{prefix + ">"},
		Storage: jetstream.MemoryStorage, Duplicates: time.Minute})
	if err != nil {
		testenv.Missing(t, "NATS at %s has no JetStream: %v", natsURL(), err)
		return nil, ""
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = js.DeleteStream(ctx, name)
	})
	return s, prefix
}

func TestNATSPublishesAcknowledged(t *testing.T) {
	stream, prefix := testStream(t)
	for _, envelope := range []Envelope{EnvelopeLK, EnvelopeCloudEvents} {
		t.Run(string(envelope), func(t *testing.T) {
			p := newProducer(t, NATS(natsURL(), NATSSubjectPrefix(prefix), NATSStream(stream.CachedInfo().Config.Name)), nil,
				WithEnvelope(envelope), WithSource("billing@host-1"))
			ev, err := p.Dispatch(context.Background(), "user_deleted", map[string]any{"userId": 42},
				WithUserID("u-7"), WithPartitionKey("pk-7"))
			if err != nil {
				t.Fatal(err)
			}
			r := ev.Receipt
			if r.Stream != stream.CachedInfo().Config.Name || r.Sequence == 0 || r.Duplicate || r.Attempts != 1 {
				t.Errorf("receipt %+v", r)
			}
			m, err := stream.GetMsg(context.Background(), r.Sequence)
			if err != nil {
				t.Fatal(err)
			}
			if m.Subject != prefix+"user_deleted" || m.Header.Get("Nats-Msg-Id") != msgID(ev) ||
				m.Header.Get("Content-Type") != ev.ContentType || string(m.Data) != string(ev.Body) {
				t.Errorf("stored %s %v %s\nwant the event %+v", m.Subject, m.Header, m.Data, ev)
			}
		})
	}
}

// The prefix is the dispatcher's DISPATCHER_NATS_SUBJECT, which has no
// trailing dot. Before, "events" published on eventsuser_deleted, which no
// stream captured.
func TestNATSSubjectPrefixWithoutItsDot(t *testing.T) {
	stream, prefix := testStream(t)
	p := newProducer(t, NATS(natsURL(), NATSSubjectPrefix(strings.TrimSuffix(prefix, "."))), nil)
	ev, err := p.Dispatch(context.Background(), "user_deleted", map[string]int{"n": 1})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := stream.GetMsg(context.Background(), ev.Receipt.Sequence); err != nil || m.Subject != prefix+"user_deleted" {
		t.Fatalf("stored on %v (%v), want %suser_deleted", m, err, prefix)
	}
}

func TestNATSDuplicateIsDroppedByJetStream(t *testing.T) {
	stream, prefix := testStream(t)
	p := newProducer(t, NATS(natsURL(), NATSSubjectPrefix(prefix)), nil)
	first, err := p.Dispatch(context.Background(), "user_deleted", map[string]int{"n": 1})
	if err != nil {
		t.Fatal(err)
	}
	// Sent again with its id, as after a lost acknowledgement.
	again, err := p.Dispatch(context.Background(), "user_deleted", map[string]int{"n": 1}, WithID(first.ID))
	if err != nil {
		t.Fatal(err)
	}
	if !again.Receipt.Duplicate || again.Receipt.Sequence != first.Receipt.Sequence {
		t.Errorf("sent again: receipt %+v; want a duplicate of sequence %d", again.Receipt, first.Receipt.Sequence)
	}
	info, err := stream.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Errorf("the stream holds %d messages, want 1", info.State.Msgs)
	}
}

// Two CloudEvents of one id from two sources are two events, as the
// dispatcher sees them: JetStream keeps both, and drops only the same
// source's event sent again. Before, the Nats-Msg-Id was the id alone, and
// JetStream dropped the second source's event as a duplicate.
func TestNATSCloudEventsOfOneIDFromTwoSources(t *testing.T) {
	stream, prefix := testStream(t)
	dispatch := func(source string) Receipt {
		t.Helper()
		p := newProducer(t, NATS(natsURL(), NATSSubjectPrefix(prefix)), nil, WithEnvelope(EnvelopeCloudEvents), WithSource(source))
		ev, err := p.Dispatch(context.Background(), "user_deleted", nil, WithID("evt-1"))
		if err != nil {
			t.Fatal(err)
		}
		return ev.Receipt
	}
	if r := dispatch("billing"); r.Duplicate {
		t.Fatalf("the first event: receipt %+v", r)
	}
	if r := dispatch("shipping"); r.Duplicate {
		t.Errorf("another source's event of the same id: receipt %+v, want it kept", r)
	}
	if r := dispatch("billing"); !r.Duplicate {
		t.Errorf("the first event sent again: receipt %+v, want a duplicate", r)
	}
	if info, err := stream.Info(context.Background()); err != nil || info.State.Msgs != 2 {
		t.Errorf("the stream holds %+v (%v), want 2 messages", info.State, err)
	}
	m, err := stream.GetMsg(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if id := m.Header.Get("Nats-Msg-Id"); !strings.HasPrefix(id, "ce-") || len(id) != 35 {
		t.Errorf("Nats-Msg-Id %q, want ce- and 32 hexadecimal digits", id)
	}
}

func TestNATSFailures(t *testing.T) {
	stream, prefix := testStream(t)
	fast := WithRetry(Retry{Attempts: 2, Initial: time.Millisecond, Max: time.Millisecond})
	for _, tt := range []struct {
		name      string
		tr        Transport
		typ       string
		want      error
		retryable bool
	}{
		{"no stream captures the subject", NATS(natsURL(), NATSSubjectPrefix(uniqueName("nostream")+".")), "t", ErrNoStream, true},
		{"another stream expected", NATS(natsURL(), NATSSubjectPrefix(prefix), NATSStream("ANOTHER")), "t", ErrRejected, false},
		{"a type that is no subject", NATS(natsURL(), NATSSubjectPrefix(prefix)), "user deleted", ErrInvalid, false},
		{"a wildcard", NATS(natsURL(), NATSSubjectPrefix(prefix)), "user.>", ErrInvalid, false},
		{"an empty token", NATS(natsURL(), NATSSubjectPrefix(prefix)), "user..deleted", ErrInvalid, false},
		// The dispatcher would take it for a dead letter, and never
		// dispatch it.
		{"a type on the dead letters' subjects", NATS(natsURL(), NATSSubjectPrefix(prefix)), "dead.user_deleted", ErrInvalid, false},
		{"nothing listening", NATS("nats://127.0.0.1:1"), "t", nil, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := newProducer(t, tt.tr, &waits{}, fast)
			ev, err := p.Dispatch(context.Background(), tt.typ, nil)
			want := 1
			if tt.retryable {
				want = 2
			}
			if err == nil || tt.want != nil && !errors.Is(err, tt.want) || Retryable(err) != tt.retryable || ev.Receipt.Attempts != want {
				t.Errorf("err = %v (retryable %v) after %d attempts; want %v, retryable %v, after %d",
					err, Retryable(err), ev.Receipt.Attempts, tt.want, tt.retryable, want)
			}
		})
	}
	if info, err := stream.Info(context.Background()); err != nil || info.State.Msgs != 0 {
		t.Errorf("the stream holds %+v (%v), want nothing", info, err)
	}
}

func TestNATSReconnectsAfterClose(t *testing.T) {
	stream, prefix := testStream(t)
	tr := NATS(natsURL(), NATSSubjectPrefix(prefix)).(*natsTransport)
	p := newProducer(t, tr, nil)
	if _, err := p.Dispatch(context.Background(), "t", nil); err != nil {
		t.Fatal(err)
	}
	// The connection closes for good, as after the client's reconnects
	// ran out: the next dispatch connects again.
	tr.mu.Lock()
	tr.nc.Close()
	tr.mu.Unlock()
	ev, err := p.Dispatch(context.Background(), "t", nil)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := stream.GetMsg(context.Background(), ev.Receipt.Sequence); err != nil || m.Header.Get("Nats-Msg-Id") != ev.ID {
		t.Errorf("stored %+v (%v), want the event %s", m, err, ev.ID)
	}
}

func TestNATSConnectIsBounded(t *testing.T) {
	testConnectIsBounded(t, func(addr string) Transport { return NATS("nats://" + addr) })
}

func TestNATSCloseDuringDispatches(t *testing.T) {
	stream, prefix := testStream(t)
	for _, ev := range testCloseDuringDispatches(t, NATS(natsURL(), NATSSubjectPrefix(prefix))) {
		if m, err := stream.GetMsg(context.Background(), ev.Receipt.Sequence); err != nil || m.Header.Get("Nats-Msg-Id") != ev.ID {
			t.Fatalf("stored %+v (%v), want the event %s reported taken", m, err, ev.ID)
		}
	}
}
