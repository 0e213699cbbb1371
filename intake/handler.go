package intake

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dispatcherhq/dispatcher"
)

// Starter starts the dispatch of an event and returns once Temporal has
// durably accepted it (dispatch.Starter). Its errors have the domain's
// codes: EINVALID when Temporal refuses the event, EUNAVAILABLE when it
// does not answer.
type Starter interface {
	Start(ctx context.Context, ev dispatcher.Event) (dispatcher.StartResult, error)
}

// Keyer is a Starter that tells an event's ordering key ("" for none)
// without starting it, as Start would resolve it (dispatch.Starter). A
// batch then takes the places of all its events at once: it learns them
// otherwise one at a time, as it hands its events over, and one waiting
// behind a key that cannot go on would hold every message after it.
type Keyer interface {
	Key(ctx context.Context, ev dispatcher.Event) (string, error)
}

// Verdict is what a broker does with a message once Handle is done.
type Verdict int

const (
	// Ack: Temporal has durably accepted every event of the message (a
	// duplicate counts as accepted).
	Ack Verdict = iota
	// DeadLetter: the message can never be accepted (it cannot be read,
	// or Temporal refuses an event); Result.Reason says why.
	DeadLetter
	// Retry: Temporal (or the database) did not answer, or the source is
	// stopping; deliver the message again later.
	Retry
)

func (v Verdict) String() string {
	return [...]string{"ack", "dead-letter", "retry"}[v]
}

// Result is what became of a message.
type Result struct {
	Verdict Verdict
	// Reason says why a message is dead-lettered, naming the field at
	// fault: safe to put in a header for whoever reads the dead letters.
	Reason string
	// Cause is the reason's label in metrics: ReasonInvalid or
	// ReasonRefused.
	Cause string
	// Type is the message's event type when it could be read.
	Type       string
	Events     int // started, duplicates included
	Duplicates int
}

// Handler takes the messages of one broker source in: it reads them with
// Parse and starts their events for its tenant. While Temporal does not
// answer it keeps trying, every message of the source waiting on one
// backoff, so an outage costs a few attempts a second, not a hot loop.
type Handler struct {
	// Source names the source in logs ("amqp", "nats").
	Source  string
	Starter Starter
	// Tenant is whom the source's events belong to; "" is the implicit
	// tenant.
	Tenant string
	// Hold is how long Handle keeps trying an unavailable Temporal before
	// it answers Retry; 0 means until ctx ends.
	Hold time.Duration
	// OrderedHold is Hold for an event that is ordered (the Starter, a
	// Keyer, gives it a key) or may be (its key cannot be told now: the
	// store is down): handed back, it would come again after the later
	// events of its key, which would go first. 0 means Hold.
	OrderedHold time.Duration
	// MaxBytes is the largest body taken in; a larger one is a dead
	// letter. 0 means no limit but the broker's.
	MaxBytes int64
	// StartTimeout bounds one attempt to start an event; 0 means 10 s.
	StartTimeout time.Duration
	Now          func() time.Time // nil means time.Now
	Log          *slog.Logger     // nil discards
	Events       *Events          // counts the events started; nil counts none

	backoff Backoff
}

// Handle reads msg and starts its events, in the order of the source's
// Turns when ctx carries a turn (WithTurn). ctx ending makes it stop
// waiting for Temporal and answer Retry; a start in flight still completes
// (within StartTimeout), so a stopping source can acknowledge it.
func (h *Handler) Handle(ctx context.Context, msg Message) Result {
	turn := turnOf(ctx)
	if turn != nil {
		defer turn.Done() // whatever becomes of msg, the messages after it go on
	}
	p, bad := h.read(msg)
	if bad != nil {
		return *bad
	}
	res := Result{Verdict: Ack, Type: p.Events[0].Type}
	started := time.Now()
	starts := dispatcher.WithCaller(context.WithoutCancel(ctx), dispatcher.Caller{Subject: dispatcher.CallerService, Tenant: h.Tenant})
	if k, ok := h.Starter.(Keyer); ok && turn != nil && len(p.Events) > 1 {
		h.placeAll(ctx, starts, turn, k, p.Events)
	}
	for i, ev := range p.Events {
		evCtx := starts
		if turn != nil {
			evCtx = dispatcher.WithTurn(starts, turn.event(i, len(p.Events)))
		}
		for retried := false; ; retried = true {
			if h.backoff.Wait(ctx) != nil {
				return Result{Verdict: Retry, Type: res.Type}
			}
			sr, err := h.start(evCtx, ev)
			if err == nil {
				h.backoff.Succeeded()
				h.Events.Received(h.Source, ev.Type, p.Envelope, sr.Duplicate)
				res.Events++
				if sr.Duplicate {
					res.Duplicates++
					switch {
					case slices.ContainsFunc(p.Events[:i], func(e dispatcher.Event) bool { return e.WorkflowID() == ev.WorkflowID() }):
						h.log().Info("broker intake: an event's id came twice in one message; dispatched once",
							"source", h.Source, "id", ev.ID, "type", ev.Type)
					case !msg.Redelivered && !retried:
						// Neither the broker's redelivery nor a start tried
						// again (the first may have been taken, its answer
						// lost): a producer that sent the event again, or
						// gave another event its id, which is then never
						// dispatched. Said, as the HTTP intake's
						// "duplicate": true says it to its caller.
						h.log().Info("broker intake: an event already accepted came again in another message; not dispatched again",
							"source", h.Source, "id", ev.ID, "type", ev.Type)
					}
				}
				if turn != nil {
					turn.release(i) // handed over: the next of its key may go
				}
				break
			}
			if code := dispatcher.ErrorCode(err); code == dispatcher.EINVALID || code == dispatcher.EREQUIRED {
				if len(p.Events) > 1 {
					err = dispatcher.Prefixed(err, fmt.Sprintf("[%d].", i))
				}
				why := reason(err)
				if i > 0 { // before, the dead letter did not say that some ran
					note := fmt.Sprintf(" (the events before [%d] were accepted, those after it were not tried; sent again, the message's accepted events are answered as duplicates)", i)
					why = bound(why, MaxReason-len(note)) + note // the note kept whole when the reason is bounded
				}
				return Result{Verdict: DeadLetter, Reason: why, Cause: ReasonRefused, Type: ev.Type, Events: res.Events, Duplicates: res.Duplicates}
			}
			if delay, report := h.backoff.Failed(); report {
				_, since := h.backoff.Waiting()
				h.log().Warn("broker intake: cannot start dispatches; messages wait, unacknowledged",
					"source", h.Source, "failing_since", since, "retry_in", delay, "err", err)
			}
			if held := time.Since(started); h.Hold > 0 && held >= h.Hold && (held >= h.OrderedHold || !h.mayBeOrdered(ctx, evCtx, turn, p.Events[i:])) {
				return Result{Verdict: Retry, Type: res.Type}
			}
		}
	}
	return res
}

// mayBeOrdered reports whether one of events, of a message a source
// takes in turn, is ordered, or may be: its key cannot be told now. It
// asks with the caller of starts, until ctx, the source's, ends.
func (h *Handler) mayBeOrdered(ctx, starts context.Context, turn *Turn, events []dispatcher.Event) bool {
	k, ok := h.Starter.(Keyer)
	if !ok || turn == nil {
		return false
	}
	kctx, cancel := context.WithTimeout(starts, h.startTimeout())
	defer cancel()
	defer context.AfterFunc(ctx, cancel)()
	for _, ev := range events {
		if key, err := k.Key(kctx, ev); err != nil || key != "" {
			return true
		}
	}
	return false
}

// placeAll takes the places of a batch's events at once when their keys
// can be told now; otherwise each takes its own as it is handed over.
func (h *Handler) placeAll(ctx, starts context.Context, turn *Turn, k Keyer, events []dispatcher.Event) {
	keys := make([]string, len(events))
	for i, ev := range events {
		kctx, cancel := context.WithTimeout(starts, h.startTimeout())
		key, err := k.Key(kctx, ev)
		cancel()
		if err != nil {
			return
		}
		keys[i] = key
	}
	_ = turn.placeAll(ctx, keys) // ctx ended: Handle answers Retry
}

// Unreadable returns the dead letter's verdict on msg when no attempt can
// ever start it (too large, or unreadable), without starting anything: a
// source that must dead-letter a message without trying it names why.
func (h *Handler) Unreadable(msg Message) (Result, bool) {
	_, bad := h.read(msg)
	if bad == nil {
		return Result{}, false
	}
	return *bad, true
}

// read parses msg, or returns the verdict on one that cannot be read. A
// panic while reading (a bug, on input nobody foresaw) dead-letters msg:
// left to crash the process, the broker would deliver msg to the next
// dispatcher, and down it would go too.
func (h *Handler) read(msg Message) (p Parsed, bad *Result) {
	defer func() {
		if r := recover(); r != nil {
			h.log().Error("broker intake: reading a message panicked; it goes to the dead letters",
				"source", h.Source, "panic", r, "stack", string(debug.Stack()))
			p, bad = Parsed{}, &Result{Verdict: DeadLetter, Cause: ReasonInvalid,
				Reason: "the dispatcher could not read the message (an error of its own, logged)"}
		}
	}()
	if msg.BodyName == "" {
		msg.BodyName = "message body"
	}
	if h.MaxBytes > 0 && int64(len(msg.Body)) > h.MaxBytes {
		return Parsed{}, &Result{Verdict: DeadLetter, Cause: ReasonInvalid,
			Reason: fmt.Sprintf("the %s is %d bytes; the limit is %d bytes", msg.BodyName, len(msg.Body), h.MaxBytes)}
	}
	p, err := Parse(msg, h.now())
	if err != nil {
		return p, &Result{Verdict: DeadLetter, Reason: reason(err), Cause: ReasonInvalid}
	}
	return p, nil
}

func (h *Handler) start(ctx context.Context, ev dispatcher.Event) (dispatcher.StartResult, error) {
	ctx, cancel := context.WithTimeout(ctx, h.startTimeout())
	defer cancel()
	return h.Starter.Start(ctx, ev)
}

func (h *Handler) startTimeout() time.Duration {
	if h.StartTimeout <= 0 {
		return 10 * time.Second
	}
	return h.StartTimeout
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Handler) log() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.New(slog.DiscardHandler)
}

// MaxReason bounds the reason a source puts in a dead letter's header,
// in bytes.
const MaxReason = 1024

// BoundReason is reason cut to MaxReason bytes at a character's boundary:
// a header cut inside a character is not UTF-8, which clients refuse.
func BoundReason(reason string) string { return bound(reason, MaxReason) }

// bound is s cut to at most n bytes, at a rune's start.
func bound(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := max(n, 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// reason is the text of a refusal that goes with a dead letter.
func reason(err error) string {
	if m := dispatcher.ErrorMessage(err); m != "internal error" {
		return m
	}
	return err.Error()
}

// DefaultID is the id an event without one takes from the message that
// carries it: the broker's message id, or a hash of it when it could be
// no event's (longer than 200 characters, as AMQP's may be 255, or with a
// NUL), or with none, DerivedID of the message. The same at each
// delivery. Before, a message id too long had its event dead-lettered for
// an "id" its body never held.
func DefaultID(prefix, messageID string, header http.Header, body []byte) string {
	if messageID == "" {
		return DerivedID(prefix, header, body)
	}
	if (&dispatcher.Event{ID: messageID, Type: "t"}).Validate() != nil {
		sum := sha256.Sum256([]byte(messageID))
		return prefix + "-message-" + hex.EncodeToString(sum[:16])
	}
	return messageID
}

// DerivedID is the id of an event without one that arrives in a message
// with no message id of its own: a hash of what the message holds, the
// same each time the message is delivered. prefix names the source
// ("amqp"); header holds only what matters to the event (Content-Type and
// Ce-* attributes).
func DerivedID(prefix string, header http.Header, body []byte) string {
	h := sha256.New()
	keys := make([]string, 0, len(header))
	for k := range header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(h, "%s:%s\n", k, strings.Join(header[k], ","))
	}
	h.Write([]byte{0})
	h.Write(body)
	return prefix + "-" + hex.EncodeToString(h.Sum(nil)[:16])
}
