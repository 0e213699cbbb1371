package intake

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"

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
