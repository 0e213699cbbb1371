package intake

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
)

// keyStarter hands events over as dispatch.Starter does: it waits for its
// turn with the event's key (content.key, "" for none), then records the
// event's content.seq under its key. The first attempt of each event in
// fail fails as Temporal would when it does not answer.
type keyStarter struct {
	mu     sync.Mutex
	handed map[string][]int
	fail   map[int]bool
	// hold keeps the start of event seq until its channel closes, once
	// its turn has come.
	hold map[int]chan struct{}
}

func (s *keyStarter) Start(ctx context.Context, ev dispatcher.Event) (dispatcher.StartResult, error) {
	var c struct {
		Key string `json:"key"`
		Seq int    `json:"seq"`
	}
	_ = json.Unmarshal(ev.Content, &c)
	if t := dispatcher.TurnOf(ctx); t != nil {
		if err := t.Wait(ctx, c.Key); err != nil {
			return dispatcher.StartResult{}, err
		}
	}
	if hold := s.hold[c.Seq]; hold != nil {
		<-hold
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail[c.Seq] {
		delete(s.fail, c.Seq)
		return dispatcher.StartResult{}, dispatcher.Errorf(dispatcher.EUNAVAILABLE, "temporal is unavailable")
	}
	s.handed[c.Key] = append(s.handed[c.Key], c.Seq)
	return dispatcher.StartResult{WorkflowID: ev.ID}, nil
}

func keyed(seq int, key string) Message {
	return Message{Header: NewHeader("application/json", nil),
		Body: fmt.Appendf(nil, `{"id":"e%d","type":"t","content":{"key":%q,"seq":%d}}`, seq, key, seq)}
}

// Messages handled concurrently, in the reverse order of their delivery,
// hand their events of one key over in delivery order, retries included,
// and an unreadable one among them holds nothing up;
// events of other keys, and without one, do not wait for them. Before,
// a broker's ordered events reached Temporal in whatever order their
// handlers ran.
func TestTurnsKeepDeliveryOrderPerKey(t *testing.T) {
	s := &keyStarter{handed: map[string][]int{}, fail: map[int]bool{7: true, 40: true}}
	h := &Handler{Starter: s}
	var turns Turns
	const n = 200
	taken := make([]*Turn, n)
	for i := range n {
		taken[i] = turns.Take()
	}
	var wg sync.WaitGroup
	for i := n - 1; i >= 0; i-- {
		wg.Go(func() {
			key := fmt.Sprint("k", i%5)
			if i%7 == 0 {
				key = ""
			}
			if i == n/2 { // unreadable: its turn ends all the same
				if r := h.Handle(WithTurn(context.Background(), taken[i]), Message{Header: NewHeader("application/json", nil), Body: []byte("{")}); r.Verdict != DeadLetter {
					t.Errorf("message %d: %+v, want a dead letter", i, r)
				}
				return
			}
			if r := h.Handle(WithTurn(context.Background(), taken[i]), keyed(i, key)); r.Verdict != Ack {
				t.Errorf("message %d: %+v", i, r)
			}
		})
	}
	wg.Wait()
	total := 0
	for key, seqs := range s.handed {
		total += len(seqs)
		if key != "" && !slices.IsSorted(seqs) {
			t.Errorf("key %s handed over as %v, want in delivery order", key, seqs)
		}
	}
	if total != n-1 {
		t.Fatalf("%d events handed over, want %d", total, n-1)
	}
}

// keyer is a keyStarter that tells its events' keys (Keyer), as
// dispatch.Starter does.
type keyer struct{ *keyStarter }

func (keyer) Key(_ context.Context, ev dispatcher.Event) (string, error) {
	var c struct{ Key string }
	err := json.Unmarshal(ev.Content, &c)
	return c.Key, err
}

// keyedStarter is a starter that tells its events' keys, "" when
// their content has none, as dispatch.Starter does (Keyer).
type keyedStarter struct{ *starter }

func (keyedStarter) Key(_ context.Context, ev dispatcher.Event) (string, error) {
	var c struct{ Key string }
	err := json.Unmarshal(ev.Content, &c)
	return c.Key, err
}

// TestHandleHoldsOrderedEvents: while Temporal does not answer, an
// unordered event is handed back after Hold, but an ordered one, in turn,
// stays in hand until OrderedHold: handed back, it would come again after
// the later events of its key. Before, both were handed back after Hold,
// and an outage of a minute ran RabbitMQ's ordered events out of order.
// So does a batch whose ordered event comes after an unordered one.
func TestHandleHoldsOrderedEvents(t *testing.T) {
	ordered := map[string]Message{
		"an ordered event": jsonMessage(`{"id":"o","type":"t","content":{"key":"k"}}`),
		"a batch, its ordered event after an unordered one": {Header: NewHeader("application/cloudevents-batch+json", nil),
			Body: []byte(`[{"specversion":"1.0","id":"u2","source":"s","type":"t","data":{}},{"specversion":"1.0","id":"o2","source":"s","type":"t","data":{"key":"k"}}]`)},
	}
	for name, msg := range ordered {
		t.Run(name, func(t *testing.T) { holdsOrdered(t, msg) })
	}
}

func holdsOrdered(t *testing.T, msg Message) {
	s := &starter{answers: []error{unavailable}}
	h := newHandler(s)
	h.Starter = keyedStarter{s}
	h.Hold, h.OrderedHold = 50*time.Millisecond, time.Hour
	var turns Turns
	if r := h.Handle(WithTurn(t.Context(), turns.Take()), jsonMessage(`{"id":"u","type":"t","content":{}}`)); r.Verdict != Retry {
		t.Fatalf("an unordered event: %+v, want Retry after Hold", r)
	}
	done := make(chan Result, 1)
	go func() { done <- h.Handle(WithTurn(t.Context(), turns.Take()), msg) }()
	// Tried again and again, with waits of 20, 40, 80, 80 … ms: past Hold
	// after 3 tries. Then Temporal answers.
	before := s.attempts()
	for deadline := time.Now().Add(10 * time.Second); s.attempts() < before+8; {
		select {
		case r := <-done:
			t.Fatalf("%+v after %d tries, want it held", r, s.attempts()-before)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d tries in 10 s", s.attempts()-before)
		}
	}
	s.mu.Lock()
	s.answers = []error{nil}
	s.mu.Unlock()
	if r := <-done; r.Verdict != Ack {
		t.Fatalf("Temporal back: %+v, want Ack", r)
	}
}

// A batch takes the places of all its events at once: while one of them
// waits behind a key that does not go on (here a start that does not
// return; a key whose Sequence takes no more signals does the same), the
// messages after the batch go on, but for those of its keys. Before, a
// batch learned its keys one at a time as it handed its events over, and
// every message after it waited, whatever its key.
func TestTurnsBatchBehindAStuckKey(t *testing.T) {
	release := make(chan struct{})
	s := &keyStarter{handed: map[string][]int{}, hold: map[int]chan struct{}{1: release}}
	// The batch waits as long as it takes; the message after it gives up
	// after 2 s.
	h, impatient := &Handler{Starter: keyer{s}, StartTimeout: time.Second}, &Handler{Starter: keyer{s}, StartTimeout: time.Second, Hold: 2 * time.Second}
	var turns Turns
	stuck, batch, after := turns.Take(), turns.Take(), turns.Take()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(release)
	wg.Go(func() { h.Handle(WithTurn(context.Background(), stuck), keyed(1, "hot")) })
	wg.Go(func() {
		r := h.Handle(WithTurn(context.Background(), batch), Message{Header: NewHeader("application/cloudevents-batch+json", nil),
			Body: []byte(`[{"specversion":"1.0","id":"e2","source":"s","type":"t","data":{"key":"hot","seq":2}},` +
				`{"specversion":"1.0","id":"e3","source":"s","type":"t","data":{"key":"cold","seq":3}}]`)})
		if r.Verdict == DeadLetter {
			t.Errorf("the batch: %+v", r)
		}
	})
	if r := impatient.Handle(WithTurn(context.Background(), after), keyed(4, "warm")); r.Verdict != Ack {
		t.Fatalf("the message after the batch: %+v, want it handed over while the batch waits behind key hot", r)
	}
}
