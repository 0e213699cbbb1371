package intake

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/dispatcherhq/dispatcher"
)

// starter answers each Start with the next of its answers (the last one
// once they run out) and records what it was asked.
type starter struct {
	mu      sync.Mutex
	answers []error
	calls   []time.Time
	events  []dispatcher.Event
	tenants []string
}

func (s *starter) Start(ctx context.Context, ev dispatcher.Event) (dispatcher.StartResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, time.Now())
	var err error
	if len(s.answers) > 0 {
		err = s.answers[0]
		if len(s.answers) > 1 {
			s.answers = s.answers[1:]
		}
	}
	if err != nil {
		return dispatcher.StartResult{}, err
	}
	s.events = append(s.events, ev)
	s.tenants = append(s.tenants, dispatcher.CallerOf(ctx).Tenant)
	return dispatcher.StartResult{WorkflowID: ev.WorkflowID(), RunID: "r", Duplicate: ev.ID == "dup"}, nil
}

func (s *starter) attempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

var unavailable = dispatcher.Errorf(dispatcher.EUNAVAILABLE, "temporal is unavailable: connection refused")

func newHandler(s *starter) *Handler {
	h := &Handler{Source: "test", Starter: s, Tenant: "acme", Now: func() time.Time { return received }}
	h.backoff.min, h.backoff.max = 20*time.Millisecond, 80*time.Millisecond
	return h
}

func jsonMessage(body string) Message {
	return Message{Header: NewHeader("application/json", nil), Body: []byte(body)}
}

func TestHandleVerdicts(t *testing.T) {
	batch := `[{"specversion":"1.0","id":"a","source":"/s","type":"t"},{"specversion":"1.0","id":"b","source":"/s","type":"t"}]`
	for _, tc := range []struct {
		name    string
		msg     Message
		answers []error
		want    Result
		started int
	}{
		{"accepted", jsonMessage(`{"id":"e1","type":"t"}`), nil, Result{Verdict: Ack, Type: "t", Events: 1}, 1},
		{"a duplicate counts as accepted", jsonMessage(`{"id":"dup","type":"t"}`), nil, Result{Verdict: Ack, Type: "t", Events: 1, Duplicates: 1}, 1},
		{"a batch", Message{Header: NewHeader("application/cloudevents-batch+json", nil), Body: []byte(batch)}, nil, Result{Verdict: Ack, Type: "t", Events: 2}, 2},
		{"unreadable: dead letter, nothing started", jsonMessage(`{"type":`), nil,
			Result{Verdict: DeadLetter, Cause: ReasonInvalid, Reason: "the message body is not valid JSON: unexpected end of JSON input (at byte 8)"}, 0},
		{"a field wrong: dead letter naming it", jsonMessage(`{"id":"e2"}`), nil,
			Result{Verdict: DeadLetter, Cause: ReasonInvalid, Reason: "type: is required"}, 0},
		{"refused by Temporal: dead letter", Message{Header: NewHeader("application/cloudevents-batch+json", nil), Body: []byte(batch)},
			[]error{nil, dispatcher.Errorf(dispatcher.EINVALID, "temporal refused the event: search attribute too long")},
			Result{Verdict: DeadLetter, Cause: ReasonRefused, Type: "t", Events: 1, Reason: "[1].temporal refused the event: search attribute too long (the events before [1] were accepted, those after it were not tried; sent again, the message's accepted events are answered as duplicates)"}, 1},
		{"Temporal away, then back: accepted", jsonMessage(`{"id":"e3","type":"t"}`), []error{unavailable, unavailable, nil}, Result{Verdict: Ack, Type: "t", Events: 1}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &starter{answers: tc.answers}
			got := newHandler(s).Handle(t.Context(), tc.msg)
			if got != tc.want {
				t.Fatalf("result %+v\nwant   %+v", got, tc.want)
			}
			if len(s.events) != tc.started {
				t.Fatalf("started %d events, want %d", len(s.events), tc.started)
			}
			for _, tenant := range s.tenants {
				if tenant != "acme" {
					t.Fatalf("started for tenant %q, want the source's", tenant)
				}
			}
		})
	}
}

// TestHandleWaitsForTemporal: while Temporal does not answer, a message
// is retried with a growing wait shared by all the source's messages (no
// hot loop), is handed back after Hold, and comes back at once when the
// source stops.
func TestHandleWaitsForTemporal(t *testing.T) {
	s := &starter{answers: []error{unavailable}}
	h := newHandler(s)
	h.Hold = 400 * time.Millisecond
	var wg sync.WaitGroup
	results := make([]Result, 20)
	begin := time.Now()
	for i := range results {
		wg.Go(func() { results[i] = h.Handle(t.Context(), jsonMessage(`{"id":"e","type":"t"}`)) })
	}
	wg.Wait()
	for _, r := range results {
		if r.Verdict != Retry {
			t.Fatalf("result %+v, want Retry", r)
		}
	}
	// 20 messages held 400 ms with waits of 20, 40, 80, 80, ... ms: each
	// message tries once per wait, about 8 times, not hundreds.
	if n := s.attempts(); n > 20*10 {
		t.Fatalf("%d attempts in %s: a hot loop", n, time.Since(begin))
	}
	if waiting, since := h.backoff.Waiting(); !waiting || since.Before(begin) {
		t.Fatalf("Waiting() = %v, %v", waiting, since)
	}

	ctx, cancel := context.WithCancel(t.Context())
	h.Hold = 0 // until the source stops
	done := make(chan Result)
	go func() { done <- h.Handle(ctx, jsonMessage(`{"id":"e","type":"t"}`)) }()
	cancel()
	select {
	case r := <-done:
		if r.Verdict != Retry {
			t.Fatalf("a stopping source: %+v, want Retry", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Handle went on after its source stopped")
	}

	s.mu.Lock()
	s.answers = []error{nil}
	s.mu.Unlock()
	if r := h.Handle(t.Context(), jsonMessage(`{"id":"e","type":"t"}`)); r.Verdict != Ack {
		t.Fatalf("Temporal back: %+v", r)
	}
	if waiting, _ := h.backoff.Waiting(); waiting {
		t.Fatal("still waiting once a start succeeded")
	}
}

func TestHandleTooLarge(t *testing.T) {
	s := &starter{}
	h := newHandler(s)
	h.MaxBytes = 16
	r := h.Handle(t.Context(), jsonMessage(`{"type":"t","content":{"long":true}}`))
	if r.Verdict != DeadLetter || r.Reason != "the message body is 36 bytes; the limit is 16 bytes" || len(s.events) != 0 {
		t.Fatalf("result %+v", r)
	}
}

func TestReasonIsClientSafe(t *testing.T) {
	r := newHandler(&starter{}).Handle(t.Context(), jsonMessage(`{"type":"t","creationTimestamp":"soon"}`))
	if r.Verdict != DeadLetter || !strings.HasPrefix(r.Reason, "creationTimestamp: ") {
		t.Fatalf("result %+v", r)
	}
}

// A message whose reading panics (a bug of the dispatcher's, on input it
// did not foresee) is dead-lettered, the panic logged: before, the panic
// took the process down, and the broker delivered the message to the next
// one, which went down too, until no dispatcher was left taking events.
func TestHandleSurvivesAPanicWhileReading(t *testing.T) {
	s := &starter{}
	h := newHandler(s)
	h.Now = func() time.Time { panic("a bug") }
	for _, r := range []Result{h.Handle(t.Context(), jsonMessage(`{"type":"t"}`)), func() Result { r, _ := h.Unreadable(jsonMessage(`{"type":"t"}`)); return r }()} {
		if r.Verdict != DeadLetter || !strings.Contains(r.Reason, "could not read the message") || len(s.events) != 0 {
			t.Fatalf("result %+v", r)
		}
	}
}

// The dead letters' reasons that docs/brokers.md gives as examples are
// those of their bodies. Before, it gave "the message body is not valid
// JSON: ... (at byte 8)" for a body that is not even an object.
func TestDocumentedDeadLetterReasons(t *testing.T) {
	doc, err := os.ReadFile("../docs/brokers.md")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(strings.Fields(string(doc)), " ") // the reasons may be wrapped
	h := &Handler{Source: "nats"}
	for _, tt := range []struct{ body, want string }{
		{`{"id":"e1"}`, "type: is required"},
		{`not json`, "the message body is not valid JSON: invalid character 'o' in literal null (expecting 'u') (at byte 2)"},
		{`"text"`, "the message body must be a JSON object"},
		{`{"type":"t",}`, "the message body is not valid JSON: invalid character '}' looking for beginning of object key string (at byte 13)"},
	} {
		r, bad := h.Unreadable(Message{Header: NewHeader("application/json", nil), Body: []byte(tt.body)})
		if !bad || r.Reason != tt.want {
			t.Errorf("%s: reason %q, want %q", tt.body, r.Reason, tt.want)
		}
		if !strings.Contains(text, "`"+tt.body+"`, `"+tt.want+"`") && !strings.Contains(text, "(e.g. `"+tt.want+"`") {
			t.Errorf("docs/brokers.md does not give %q as the reason of %s", tt.want, tt.body)
		}
	}
}

// TestBoundReason: a dead letter's reason is cut to MaxReason bytes at a
// character's boundary. Before, a reason quoting non-ASCII text was cut
// inside a character, and clients refused to read the header.
func TestBoundReason(t *testing.T) {
	long := "creationTimestamp: " + strings.Repeat("é", MaxReason)
	got := BoundReason(long)
	if len(got) > MaxReason || len(got) < MaxReason-1 || !utf8.ValidString(got) || !strings.HasPrefix(long, got) {
		t.Errorf("BoundReason cut %d bytes to %d (valid UTF-8: %v), want a prefix of at most %d bytes, whole characters", len(long), len(got), utf8.ValidString(got), MaxReason)
	}
	if short := "type: is required"; BoundReason(short) != short {
		t.Errorf("a short reason changed: %q", BoundReason(short))
	}
}

// A batch's refusal that says some of its events were accepted says it
// whole, however long Temporal's reason: the reason is cut, not the note.
func TestHandleBatchRefusalKeepsItsNote(t *testing.T) {
	batch := `[{"specversion":"1.0","id":"a","source":"/s","type":"t"},{"specversion":"1.0","id":"b","source":"/s","type":"t"}]`
	s := &starter{answers: []error{nil, dispatcher.Errorf(dispatcher.EINVALID, "temporal refused the event: %s", strings.Repeat("é", MaxReason))}}
	got := newHandler(s).Handle(t.Context(), Message{Header: NewHeader("application/cloudevents-batch+json", nil), Body: []byte(batch)})
	if got.Verdict != DeadLetter || len(got.Reason) > MaxReason || !utf8.ValidString(got.Reason) ||
		!strings.HasPrefix(got.Reason, "[1].temporal refused the event: é") || !strings.HasSuffix(got.Reason, "answered as duplicates)") {
		t.Fatalf("result %+v (%d bytes)", got, len(got.Reason))
	}
}

// A duplicate in a message delivered for the first time is logged: a
// producer sent the event again, or gave another event its id, which is
// then never dispatched. Before, only a metric counted it. A broker's
// redelivery of a message accepted before is not.
func TestHandleLogsADuplicateSentAgain(t *testing.T) {
	var logs bytes.Buffer
	h := newHandler(&starter{})
	h.Log = slog.New(slog.NewTextHandler(&logs, nil))
	redelivered := jsonMessage(`{"id":"dup","type":"t"}`)
	redelivered.Redelivered = true
	if got := h.Handle(t.Context(), redelivered); got.Duplicates != 1 || logs.Len() != 0 {
		t.Fatalf("a redelivery: %+v, logged %q; want a duplicate, nothing logged", got, logs.String())
	}
	// Nor a start tried again after an error: the first may have been
	// taken, its answer lost.
	h.Starter = &starter{answers: []error{unavailable, nil}}
	if got := h.Handle(t.Context(), jsonMessage(`{"id":"dup","type":"t"}`)); got.Duplicates != 1 || strings.Contains(logs.String(), "already accepted") {
		t.Fatalf("a start tried again: %+v, logged %q; want a duplicate, not logged as sent again", got, logs.String())
	}
	if got := h.Handle(t.Context(), jsonMessage(`{"id":"dup","type":"t"}`)); got.Duplicates != 1 ||
		!strings.Contains(logs.String(), "an event already accepted came again in another message") || !strings.Contains(logs.String(), "id=dup") {
		t.Fatalf("sent again: %+v, logged %q; want a duplicate, logged with its id", got, logs.String())
	}
}

// An id given twice in one batch is logged as such, not as an event sent
// again in another message.
func TestHandleLogsAnIDTwiceInABatch(t *testing.T) {
	var logs bytes.Buffer
	h := newHandler(&starter{})
	h.Log = slog.New(slog.NewTextHandler(&logs, nil))
	batch := `[{"specversion":"1.0","id":"dup","source":"/s","type":"t"},{"specversion":"1.0","id":"dup","source":"/s","type":"t"}]`
	h.Handle(t.Context(), Message{Header: NewHeader("application/cloudevents-batch+json", nil), Body: []byte(batch)})
	if out := logs.String(); !strings.Contains(out, "an event's id came twice in one message") || strings.Count(out, "in another message") != 1 {
		t.Errorf("logged %q; want the first as sent again (the fake says duplicate), the second as twice in one message", out)
	}
}
