package wire

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/dispatcherhq/dispatcher"
)

// Event is an event as Extra Horizon ({id, type, content,
// creationTimestamp}) or lk-dispatch ({id, type, timestamp, data,
// source:{userId, producerId, kinesisPartitionKey}}) sends it. Which one it
// is shows in which keys are present.
type Event struct {
	ID                *string          `json:"id"`
	Type              *string          `json:"type"`
	Content           json.RawMessage  `json:"content"`
	CreationTimestamp *json.RawMessage `json:"creationTimestamp"`
	Timestamp         *string          `json:"timestamp"`
	Data              json.RawMessage  `json:"data"`
	Source            *LKSource        `json:"source"`
}

// LKSource is the source of an lk-dispatch event.
type LKSource struct {
	UserID              string `json:"userId"`
	ProducerID          string `json:"producerId"`
	KinesisPartitionKey string `json:"kinesisPartitionKey"`
}

// AcceptedEvent is the answer for one event taken in.
type AcceptedEvent struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	// CreationTimestamp is the event's time: its envelope's, else when
	// it was received (epoch ms), as Extra Horizon answers an event.
	CreationTimestamp int64  `json:"creationTimestamp"`
	WorkflowID        string `json:"workflowId"`
	RunID             string `json:"runId"`
	Duplicate         bool   `json:"duplicate"`
	// Sequenced: the event waits its turn behind its ordering key's
	// earlier events; runId is empty until then.
	Sequenced bool `json:"sequenced,omitempty"`
}

// Envelope names the form of e.
func (e Event) Envelope() string {
	if _, lk := e.fields(); lk != "" {
		return dispatcher.EnvelopeLK
	}
	return dispatcher.EnvelopeExtraHorizon
}

// fields names the first field of e that is Extra Horizon's, and the
// first that is lk's, "" for none.
func (e Event) fields() (eh, lk string) {
	switch {
	case e.Content != nil:
		eh = "content"
	case e.CreationTimestamp != nil:
		eh = "creationTimestamp"
	}
	switch {
	case e.Data != nil:
		lk = "data"
	case e.Timestamp != nil:
		lk = "timestamp"
	case e.Source != nil:
		lk = "source"
	}
	return eh, lk
}

// ToDomain normalises e, received at now, generating an id when it has
// none.
func (e Event) ToDomain(now time.Time) (dispatcher.Event, error) {
	ev := dispatcher.Event{ID: value(e.ID), Type: value(e.Type), Time: now.UTC()}
	if ev.Type == "" {
		return ev, dispatcher.Errorf(dispatcher.EREQUIRED, "type: is required")
	}
	if eh, lk := e.fields(); eh != "" && lk != "" {
		// Read as either, it would lose the other's: content, or data.
		return ev, dispatcher.Errorf(dispatcher.EINVALID,
			"%s: cannot be sent with %s: an event is Extra Horizon's {content, creationTimestamp} or lk's {data, timestamp, source}, not both", eh, lk)
	}
	if e.Envelope() == dispatcher.EnvelopeLK {
		if e.Data != nil && !isObject(e.Data) {
			return ev, dispatcher.Errorf(dispatcher.EINVALID, "data: must be a JSON object")
		}
		ev.Content = e.Data
		if e.Timestamp != nil {
			t, err := time.Parse(time.RFC3339Nano, *e.Timestamp)
			if err != nil {
				return ev, dispatcher.Errorf(dispatcher.EINVALID, "timestamp: %q is not an ISO-8601 date-time", *e.Timestamp)
			}
			if ev.Time, err = InRange(t.UTC()); err != nil {
				return ev, dispatcher.Errorf(dispatcher.EINVALID, "timestamp: %v", err)
			}
		}
		if e.Source != nil {
			ev.Source = e.Source.ProducerID
			ev.PartitionKey = e.Source.KinesisPartitionKey
		}
	} else {
		ev.Content = e.Content
		if e.CreationTimestamp != nil {
			t, err := ParseTimestamp(*e.CreationTimestamp)
			var ms int64
			if err != nil && json.Unmarshal(*e.CreationTimestamp, &ms) == nil {
				// A number too small for milliseconds since 1973 is taken
				// as it always was: the event's time schedules nothing,
				// and its producer's seconds refuse no event.
				t, err = InRange(time.UnixMilli(ms).UTC())
			}
			if err != nil {
				return ev, dispatcher.Errorf(dispatcher.EINVALID, "creationTimestamp: %v", err)
			}
			ev.Time = t
		}
	}
	if len(ev.Content) == 0 || string(ev.Content) == "null" {
		ev.Content = json.RawMessage("{}")
	}
	return WithID(ev, now)
}

// WithID gives ev, received at now, an id when it has none, and
// validates it.
func WithID(ev dispatcher.Event, now time.Time) (dispatcher.Event, error) {
	if ev.ID == "" {
		ev.ID = dispatcher.NewID(now)
	}
	return ev, ev.Validate()
}

// FromStart is the answer for ev once its dispatch started.
func FromStart(ev dispatcher.Event, res dispatcher.StartResult) AcceptedEvent {
	return AcceptedEvent{ID: ev.ID, Type: ev.Type, CreationTimestamp: ev.Time.UnixMilli(), WorkflowID: res.WorkflowID, RunID: res.RunID, Duplicate: res.Duplicate, Sequenced: res.Sequenced}
}

func isObject(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '{'
}
