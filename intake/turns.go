package intake

import (
	"context"
	"sync"

	"github.com/dispatcherhq/dispatcher"
)

// Turns keeps the ordered events of a source that handles its messages
// concurrently in the order it received them: the events of one ordering
// key reach Temporal in delivery order, whatever order their handlers run
// in, while other events go at once. The loop receiving the messages takes
// a turn for each, in order (Take), and hands it to Handle in its context
// (WithTurn). An event waits, once its key is known (dispatcher.Turn), for
// every earlier message to know its keys, then for the earlier events of
// its key to be handed over. A message handed back to the broker gives up
// its place: it comes again after later ones.
type Turns struct {
	mu   sync.Mutex
	last chan struct{}            // closed once the latest turn's message knows its keys
	keys map[string]chan struct{} // by key, closed once its latest event is handed over
}

// Take returns the turn of the message received next.
func (t *Turns) Take() *Turn {
	t.mu.Lock()
	defer t.mu.Unlock()
	tu := &Turn{turns: t, prev: t.last, known: make(chan struct{}), places: map[int]place{}}
	t.last = tu.known
	return tu
}

// Turn is one message's place among the messages of its source.
type Turn struct {
	turns       *Turns
	prev, known chan struct{}

	mu     sync.Mutex
	places map[int]place // by event index, once its key is known
	done   bool          // known is closed, or about to be
}

// place is an event's place behind the earlier events of its key.
type place struct {
	before, mine chan struct{} // nil without a key
	key          string
}

type turnCtxKey struct{}

// WithTurn returns ctx carrying tu for Handle.
func WithTurn(ctx context.Context, tu *Turn) context.Context {
	return context.WithValue(ctx, turnCtxKey{}, tu)
}

func turnOf(ctx context.Context) *Turn {
	tu, _ := ctx.Value(turnCtxKey{}).(*Turn)
	return tu
}

// event is the dispatcher.Turn of the message's event i, of n.
func (tu *Turn) event(i, n int) dispatcher.Turn { return eventTurn{tu, i, n} }

type eventTurn struct {
	tu   *Turn
	i, n int
}

// Wait takes the event's place the first time (each attempt to hand it
// over asks again, and keeps the place; one placeAll took is kept, whatever
// key the event now has), then waits for the events before it.
func (e eventTurn) Wait(ctx context.Context, key string) error {
	tu := e.tu
	tu.mu.Lock()
	p, ok := tu.places[e.i]
	tu.mu.Unlock()
	if !ok {
		if err := await(ctx, tu.prev); err != nil {
			return err
		}
		p = tu.turns.queue(key)
		tu.mu.Lock()
		tu.places[e.i] = p
		all := len(tu.places) == e.n
		tu.mu.Unlock()
		if all {
			tu.knowAll()
		}
	}
	return await(ctx, p.before)
}

// placeAll takes the places of all the message's events at once, keys[i]
// being event i's, once the messages before it know theirs; the messages
// after it may then take theirs. An error is ctx's, which ended first.
func (tu *Turn) placeAll(ctx context.Context, keys []string) error {
	if err := await(ctx, tu.prev); err != nil {
		return err
	}
	places := make([]place, len(keys))
	for i, key := range keys {
		places[i] = tu.turns.queue(key)
	}
	tu.mu.Lock()
	for i, p := range places {
		tu.places[i] = p
	}
	tu.mu.Unlock()
	tu.knowAll()
	return nil
}

// await waits until ch closes (nil: at once) or ctx ends.
func await(ctx context.Context, ch chan struct{}) error {
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// queue returns a new place behind the latest event of key; an event
// without a key has an empty one.
func (t *Turns) queue(key string) place {
	if key == "" {
		return place{}
	}
	p := place{key: key, mine: make(chan struct{})}
	t.mu.Lock()
	if t.keys == nil {
		t.keys = map[string]chan struct{}{}
	}
	p.before, t.keys[key] = t.keys[key], p.mine
	t.mu.Unlock()
	return p
}

// release ends event i's turn: it is handed over, or never will be.
func (tu *Turn) release(i int) {
	tu.mu.Lock()
	p := tu.places[i]
	tu.places[i] = place{} // released: keeps its index counted
	tu.mu.Unlock()
	if p.mine == nil {
		return
	}
	close(p.mine)
	tu.turns.mu.Lock()
	if tu.turns.keys[p.key] == p.mine {
		delete(tu.turns.keys, p.key)
	}
	tu.turns.mu.Unlock()
}

// knowAll says the message knows the keys of all its events: later
// messages may take their places once the earlier ones have.
func (tu *Turn) knowAll() {
	tu.mu.Lock()
	defer tu.mu.Unlock()
	if tu.done {
		return
	}
	tu.done = true
	if tu.prev == nil {
		close(tu.known)
		return
	}
	go func() { <-tu.prev; close(tu.known) }()
}

// Done ends the message's turn, whatever became of it: its events give
// up the places they hold, and later messages go on. Handle calls it.
func (tu *Turn) Done() {
	tu.knowAll()
	tu.mu.Lock()
	var held []int
	for i, p := range tu.places {
		if p.mine != nil {
			held = append(held, i)
		}
	}
	tu.mu.Unlock()
	for _, i := range held {
		tu.release(i)
	}
}
