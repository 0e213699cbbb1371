package jetstream

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	js "github.com/nats-io/nats.go/jetstream"

	"github.com/dispatcherhq/dispatcher/intake"
)

// handle takes one message in and acknowledges it, dead-letters it or
// hands it back, as the intake decides.
func (s *Source) handle(ctx context.Context, msg js.Msg) {
	// Dead letters live in the stream, under the consumer's filter: they
	// are kept there, not taken in again. Nor is anything else published
	// on their subjects, which says so.
	if strings.HasPrefix(msg.Subject(), s.deadPrefix()) {
		if msg.Headers().Get(HeaderError) == "" {
			s.log.Warn("nats intake: a message on the dead letters' subjects is not taken in; publish events on "+s.cfg.Subject+".<type>, where <type> does not begin with dead.",
				"subject", msg.Subject())
		}
		_ = msg.Ack()
		return
	}
	meta, err := msg.Metadata()
	if err != nil {
		s.metrics.Received.Inc()
		s.log.Warn("nats intake: a message without JetStream metadata", "subject", msg.Subject(), "err", err)
		return
	}
	// A message this process holds, delivered again: its progress
	// acknowledgements did not reach JetStream for an AckWait (the
	// connection dropped meanwhile). The handler that holds it goes on
	// and acknowledges it. Before, a second handler took it, and after a
	// few such drops during an outage of Temporal one of them, past
	// MaxDeliver, dead-lettered an event the other dispatched. JetStream
	// counts the delivery all the same: the holder keeps the count, for
	// when it stops before Temporal took the message.
	delivered := new(atomic.Uint64)
	delivered.Store(meta.NumDelivered)
	if held, inHand := s.held.LoadOrStore(meta.Sequence.Stream, delivered); inHand {
		// JetStream counted it: the holder's last delivery is this one.
		held.(*atomic.Uint64).Store(meta.NumDelivered)
		return
	}
	defer s.held.Delete(meta.Sequence.Stream)
	s.metrics.Received.Inc()
	if meta.NumDelivered > 1 {
		s.metrics.Redelivered.Inc()
	}
	// JetStream delivers without limit (the consumer's MaxDeliver is -1):
	// the limit is kept here, so a message whose dead letter could not be
	// published comes again rather than being dropped.
	if meta.NumDelivered > uint64(s.cfg.MaxDeliver) {
		// Past its last delivery, which crashed the dispatcher or whose
		// dead letter failed: it is not tried again, which could crash it
		// again, but one that cannot be read still says why.
		r, bad := s.handler.Unreadable(toMessage(msg))
		if !bad {
			r = maxDelivered(meta)
		}
		s.deadLetter(ctx, msg, meta, r)
		return
	}
	// Progress acknowledgements keep JetStream from delivering the
	// message again while it is in hand, however long Temporal takes.
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(s.cfg.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	m := toMessage(msg)
	m.Redelivered = meta.NumDelivered > 1
	r := s.handler.Handle(ctx, m)
	switch r.Verdict {
	case intake.Ack:
		// Double: JetStream confirms it has the acknowledgement, so a
		// message reported acked will not come again.
		if err := msg.DoubleAck(context.WithoutCancel(ctx)); err != nil {
			s.unconfirmed(msg, err)
		} else {
			s.metrics.Acked.Inc()
		}
	case intake.DeadLetter:
		s.deadLetter(ctx, msg, meta, r)
	case intake.Retry:
		if meta.NumDelivered = delivered.Load(); meta.NumDelivered >= uint64(s.cfg.MaxDeliver) {
			// Its last delivery, and the source stops before Temporal took
			// it: the next would not be tried.
			s.deadLetter(ctx, msg, meta, maxDelivered(meta))
			return
		}
		_ = msg.NakWithDelay(handBack)
		s.metrics.Retried.Inc()
	}
}

// unconfirmed counts msg, whose acknowledgement JetStream did not confirm
// (the connection dropped meanwhile), among the messages handed back: it
// is delivered again after the ack wait, a duplicate then, unless the
// acknowledgement reached JetStream after all (nats.go sends what it
// buffered once it reconnects). Before, it was counted nowhere, and
// received − acked − dead-lettered − retried did not add up.
func (s *Source) unconfirmed(msg js.Msg, err error) {
	s.metrics.Retried.Inc()
	s.log.Debug("nats intake: an acknowledgement was not confirmed; the message may be delivered again", "subject", msg.Subject(), "err", err)
}

// maxDelivered is the verdict on a message delivered MaxDeliver times
// without an acknowledgement.
func maxDelivered(meta *js.MsgMetadata) intake.Result {
	return intake.Result{Verdict: intake.DeadLetter, Cause: intake.ReasonMaxDeliver,
		Reason: fmt.Sprintf("delivered %d times without an acknowledgement: each time the dispatcher holding it stopped, crashed, or lost its connection to NATS for longer than the ack wait, or could not dead-letter it", meta.NumDelivered)}
}

// toMessage is the intake's view of a message. An event without an id
// takes the message's Nats-Msg-Id, else a hash of the message: a
// redelivery is the same event.
func toMessage(msg js.Msg) intake.Message {
	h := msg.Headers()
	headers := make(map[string]string, len(h))
	var contentType string
	for k, v := range h {
		if len(v) == 0 {
			continue
		}
		if strings.EqualFold(k, "Content-Type") {
			contentType = v[0]
			continue
		}
		headers[k] = v[0]
	}
	m := intake.Message{Header: intake.NewHeader(contentType, headers), Body: msg.Data()}
	m.DefaultID = intake.DefaultID("nats", h.Get(nats.MsgIdHdr), m.Header, msg.Data())
	return m
}

// deadLetter publishes a copy of msg on <subject>.dead.<type> with the
// reason in its x-dispatcher-error header and, once the stream has it,
// acknowledges msg. When that fails the message is handed back, to be
// delivered again (and dead-lettered then), later each time.
func (s *Source) deadLetter(ctx context.Context, msg js.Msg, meta *js.MsgMetadata, r intake.Result) {
	reason := r.Reason
	reason = intake.BoundReason(reason)
	out := nats.NewMsg(s.deadSubject(r.Type, msg.Subject()))
	for k, v := range msg.Headers() {
		// Not JetStream's own (Nats-Expected-Last-Sequence, Nats-Rollup,
		// Nats-TTL, …): the producer's, on a copy, they act on the stream
		// again; one refused every dead letter of the message, which then
		// came back for good, another purged the stream of the events
		// behind it.
		if !strings.HasPrefix(strings.ToLower(k), "nats-") {
			out.Header[k] = v
		}
	}
	if id := msg.Headers().Get(nats.MsgIdHdr); id != "" {
		out.Header.Set("x-dispatcher-msg-id", id)
	}
	// The same dead letter published twice (the ack after it was lost) is
	// stored once: JetStream deduplicates by this id.
	out.Header.Set(nats.MsgIdHdr, fmt.Sprintf("dead-%s-%d", meta.Stream, meta.Sequence.Stream))
	out.Header.Set(HeaderError, reason)
	out.Header.Set(HeaderSubject, msg.Subject())
	out.Data = msg.Data()
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_, err := s.js.PublishMsg(pctx, out, js.WithExpectStream(s.cfg.Stream))
	if tooLarge(err) {
		// The message with the dead letter's headers passes what the
		// server or the stream takes: without its body, or it would come
		// back for good. The body stays in the stream, at its sequence.
		out.Data = nil
		out.Header.Set(HeaderBodyDropped, fmt.Sprintf("%d bytes, too many for a dead letter: the message is in stream %s at sequence %d", len(msg.Data()), meta.Stream, meta.Sequence.Stream))
		_, err = s.js.PublishMsg(pctx, out, js.WithExpectStream(s.cfg.Stream))
	}
	if err != nil {
		if _, report := s.deadFailures.Failed(); report {
			s.log.Warn("nats intake: could not dead-letter a message; it is delivered again", "reason", reason, "err", err)
		}
		_ = msg.NakWithDelay(deadLetterRetry(meta.NumDelivered))
		s.metrics.Retried.Inc()
		return
	}
	s.deadFailures.Succeeded()
	if err := msg.DoubleAck(pctx); err != nil {
		s.unconfirmed(msg, err)
	} else {
		s.metrics.DeadLettered(r.Cause)
	}
	s.log.Warn("nats intake: message dead-lettered", "subject", msg.Subject(), "dead_subject", out.Subject, "reason", reason)
}

// tooLarge says that a publish failed for the size of the message.
func tooLarge(err error) bool {
	return errors.Is(err, nats.ErrMaxPayload) || errors.Is(err, js.ErrStreamMessageExceedsMaximum)
}

// deadLetterRetry is the delay before a message whose dead letter failed
// on its nth delivery comes again: 1 s, doubling to 30 s, so a stream that
// stays full is not a hot loop.
func deadLetterRetry(n uint64) time.Duration {
	if n > 6 {
		return maxRetry
	}
	return min(minRetry<<(n-1), maxRetry)
}

func (s *Source) deadPrefix() string { return s.cfg.Subject + ".dead." }

// deadSubject is where the dead letter of a message on subject goes:
// <prefix>.dead.<type>, the type the event's when it could be read and
// can be a subject's tail, else the subject's tail after the prefix.
func (s *Source) deadSubject(typ, subject string) string {
	if !ValidSubject(typ) {
		typ = strings.TrimPrefix(subject, s.cfg.Subject+".")
	}
	if !ValidSubject(typ) {
		typ = "unknown"
	}
	return s.deadPrefix() + typ
}
