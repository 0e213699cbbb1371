package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/dispatcherhq/dispatcher/intake"
)

// handle takes one delivery in and acknowledges it, dead-letters it or
// hands it back, as the intake decides.
func (s *Source) handle(ctx context.Context, pub *amqp.Channel, d amqp.Delivery) {
	s.metrics.Received.Inc()
	if d.Redelivered {
		s.metrics.Redelivered.Inc()
	}
	r := s.handler.Handle(ctx, toMessage(d))
	switch r.Verdict {
	case intake.Ack:
		// An ack that fails (the channel closed) leaves the message to be
		// delivered again: a duplicate then, acknowledged at once.
		if err := d.Ack(false); err != nil {
			s.handedBack(d, err)
		} else {
			s.metrics.Acked.Inc()
		}
	case intake.DeadLetter:
		if !s.tryDeadLetter(ctx, pub, d, r.Reason) {
			_ = d.Nack(false, true)
			s.metrics.Retried.Inc()
			return
		}
		if err := d.Ack(false); err != nil {
			s.handedBack(d, err)
		} else {
			s.metrics.DeadLettered(r.Cause)
		}
		s.log.Warn("amqp intake: message dead-lettered", "routing_key", d.RoutingKey, "message_id", d.MessageId, "reason", r.Reason)
	case intake.Retry:
		_ = d.Nack(false, true)
		s.metrics.Retried.Inc()
	}
}

// handedBack counts d, whose acknowledgement failed (its channel closed),
// among the messages handed back: the broker delivers it again. Before,
// it was counted nowhere, and received − acked − dead-lettered − retried
// did not add up.
func (s *Source) handedBack(d amqp.Delivery, err error) {
	s.metrics.Retried.Inc()
	s.log.Debug("amqp intake: an acknowledgement failed; the message is delivered again", "message_id", d.MessageId, "err", err)
}

// tryDeadLetter dead-letters d and says whether it did. A dead letter the
// broker does not take (the dead-letter queue full and refusing publishes,
// the publish channel closed) would fail again at once on d's redelivery,
// thousands of times a second: after a failure d is held until the
// source's backoff is over, and no dead letter is tried before. A failure
// that closed the publish channel also ends the session (and the wait),
// the next declaring the topology again; the backoff outlives it.
func (s *Source) tryDeadLetter(ctx context.Context, pub *amqp.Channel, d amqp.Delivery, reason string) bool {
	if s.deadBackoff.Wait(ctx) != nil {
		return false
	}
	err := s.deadLetter(ctx, pub, d, reason)
	if err == nil {
		s.deadBackoff.Succeeded()
		return true
	}
	if delay, report := s.deadBackoff.Failed(); report {
		s.log.Warn("amqp intake: cannot dead-letter messages; they go back to the queue, later each time",
			"retry_in", delay, "reason", reason, "err", err)
	}
	_ = s.deadBackoff.Wait(ctx)
	return false
}

// toMessage is the intake's view of a delivery. An event without an id
// takes the message id, else a hash of the message: a redelivery is the
// same event.
func toMessage(d amqp.Delivery) intake.Message {
	headers := make(map[string]string, len(d.Headers))
	for k, v := range d.Headers {
		if text, ok := headerText(v); ok {
			headers[k] = text
		}
	}
	m := intake.Message{Header: intake.NewHeader(d.ContentType, headers), Body: d.Body, Redelivered: d.Redelivered}
	m.DefaultID = intake.DefaultID("amqp", d.MessageId, m.Header, d.Body)
	return m
}

// headerText is an AMQP header value as text, as a CloudEvents attribute
// is, and false for one no attribute can have: void (a null a client
// sent), a table or an array, which are left out, as missing. Before, a
// void ce_id was the id "<nil>": every later event of its source with one
// was dropped as a duplicate of the first (a probe).
func headerText(v any) (string, bool) {
	switch v := v.(type) {
	case nil, amqp.Table, []any:
		return "", false
	case string:
		return v, true
	case []byte:
		return string(v), true
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano), true
	default:
		return fmt.Sprint(v), true
	}
}

// deadLetter publishes a copy of d to the dead-letter exchange with the
// reason in its x-dispatcher-error header, and waits until the broker has
// it.
func (s *Source) deadLetter(ctx context.Context, pub *amqp.Channel, d amqp.Delivery, reason string) error {
	reason = intake.BoundReason(reason)
	headers := amqp.Table{}
	for k, v := range d.Headers {
		headers[k] = v
	}
	headers[HeaderError] = reason
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	dc, err := s.publishDead(ctx, pub, d, headers)
	if err != nil {
		return err
	}
	acked, err := dc.WaitContext(ctx) // beside the other handlers' publishes
	if err != nil {
		return err
	}
	if !acked {
		return errors.New("the broker refused the dead letter")
	}
	return nil
}

// publishDead declares the dead letters' exchange and queue and publishes
// d's dead letter on pub, one handler at a time (deadMu).
func (s *Source) publishDead(ctx context.Context, pub *amqp.Channel, d amqp.Delivery, headers amqp.Table) (*amqp.DeferredConfirmation, error) {
	s.deadMu.Lock()
	defer s.deadMu.Unlock()
	if err := declareDead(pub, s.cfg); err != nil {
		return nil, err
	}
	return pub.PublishWithDeferredConfirmWithContext(ctx, s.cfg.Exchange+".dlx", d.RoutingKey, false, false, amqp.Publishing{
		Headers: headers, ContentType: d.ContentType, ContentEncoding: d.ContentEncoding,
		DeliveryMode: amqp.Persistent, Priority: d.Priority, CorrelationId: d.CorrelationId,
		MessageId: d.MessageId, Timestamp: d.Timestamp, Type: d.Type, AppId: d.AppId, Body: d.Body,
	})
}
