package producer

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Envelope is the JSON form an event is sent in.
type Envelope string

// The envelopes the dispatcher takes in from producers.
const (
	// EnvelopeLK is lk-dispatch's event, the default:
	//
	//	{"id", "type", "timestamp", "data": {...},
	//	 "source": {"userId", "producerId", "kinesisPartitionKey"}}
	//
	// The dispatcher identifies it by its id alone, so an event sent again
	// with WithID is the same event whatever producer sends it; and it
	// carries the user id and partition key in fields of its own.
	EnvelopeLK Envelope = "lk"
	// EnvelopeCloudEvents is a CloudEvents 1.0 event in structured mode
	// (application/cloudevents+json), the user id and the partition key
	// in the extensions "userid" and "partitionkey" (CloudEvents'
	// Partitioning extension). The dispatcher identifies it by its
	// source and id together.
	EnvelopeCloudEvents Envelope = "cloudevents"
)

// Content types of the envelopes.
const (
	contentTypeLK          = "application/json"
	contentTypeCloudEvents = "application/cloudevents+json; charset=utf-8"
)

// Event is an event as Dispatch sent it: the same ID and Body on every
// attempt.
type Event struct {
	ID   string
	Type string
	// Time is when it happened, to the millisecond.
	Time time.Time
	// Data is the event's data as JSON: lk's "data", the dispatcher's
	// event content.
	Data json.RawMessage
	// UserID is the user whose action caused the event (lk's
	// source.userId, CloudEvents' "userid"); may be empty.
	UserID string
	// PartitionKey is lk's source.kinesisPartitionKey, CloudEvents'
	// "partitionkey"; may be empty.
	PartitionKey string
	// Source is who produced it: lk's source.producerId, CloudEvents'
	// source.
	Source   string
	Envelope Envelope
	// ContentType and Body are what was sent.
	ContentType string
	Body        []byte
	// Receipt says how it was taken.
	Receipt Receipt
}

// Receipt says how an event was taken.
type Receipt struct {
	// Attempts is how many times the producer sent it.
	Attempts int
	// Duplicate is true when the event was taken before: the dispatcher
	// (HTTP) or the JetStream stream already had its id.
	Duplicate bool
	// WorkflowID and RunID name the dispatch the event started (HTTP).
	WorkflowID string
	RunID      string
	// Stream and Sequence are where JetStream stored it (NATS).
	Stream   string
	Sequence uint64
}

// DispatchOption sets a property of one event.
type DispatchOption func(*Event)

// WithUserID sets the id of the user whose action caused the event.
func WithUserID(id string) DispatchOption { return func(e *Event) { e.UserID = id } }

// WithPartitionKey sets the event's partition key.
func WithPartitionKey(key string) DispatchOption { return func(e *Event) { e.PartitionKey = key } }

// WithID sets the event's id instead of a new one: for a caller that has
// a stable id of its own (an outbox row, a message it is relaying), or
// that sends again an event whose Dispatch failed. The dispatcher runs an
// event id once.
func WithID(id string) DispatchOption { return func(e *Event) { e.ID = id } }

// WithTime sets when the event happened instead of now.
func WithTime(t time.Time) DispatchOption { return func(e *Event) { e.Time = t } }

// lkEvent is the lk-dispatch envelope.
type lkEvent struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	Timestamp string          `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
	Source    lkSource        `json:"source"`
}

type lkSource struct {
	UserID              string `json:"userId,omitempty"`
	ProducerID          string `json:"producerId"`
	KinesisPartitionKey string `json:"kinesisPartitionKey,omitempty"`
}

// cloudEvent is a CloudEvents 1.0 event in its JSON format.
type cloudEvent struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Time            string          `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	UserID          string          `json:"userid,omitempty"`
	PartitionKey    string          `json:"partitionkey,omitempty"`
	Data            json.RawMessage `json:"data"`
}

// isoMillis is lk's timestamp: ISO-8601 in UTC to the millisecond.
const isoMillis = "2006-01-02T15:04:05.000Z07:00"

// encode validates ev and sets its Data, ContentType and Body from data.
func (ev *Event) encode(data any) error {
	if err := ev.validate(); err != nil {
		return err
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return invalid("", "data: not JSON: "+err.Error())
	}
	if string(raw) == "null" {
		raw = json.RawMessage("{}")
	}
	ev.Data = raw
	switch ev.Envelope {
	case EnvelopeCloudEvents:
		ev.ContentType = contentTypeCloudEvents
		ev.Body, err = json.Marshal(cloudEvent{SpecVersion: "1.0", ID: ev.ID, Source: ev.Source, Type: ev.Type,
			Time: ev.Time.Format(time.RFC3339Nano), DataContentType: "application/json",
			UserID: ev.UserID, PartitionKey: ev.PartitionKey, Data: ev.Data})
	default:
		if !bytes.HasPrefix(raw, []byte("{")) {
			return invalid("", "data: the lk envelope's data must be a JSON object, not "+abbreviate(raw))
		}
		ev.ContentType = contentTypeLK
		ev.Body, err = json.Marshal(lkEvent{ID: ev.ID, Type: ev.Type, Timestamp: ev.Time.Format(isoMillis), Data: ev.Data,
			Source: lkSource{UserID: ev.UserID, ProducerID: ev.Source, KinesisPartitionKey: ev.PartitionKey}})
	}
	return err
}

// validate checks what the dispatcher would refuse: an empty type or one
// of more than 256 characters, an id of more than 200, a type or an id
// with a double quote, a backslash or a control character, a partition
// key of more than 1024 bytes, a time outside the years 1970 to 9999,
// text that is not UTF-8 or holds NUL.
func (ev *Event) validate() error {
	for _, f := range []struct{ name, value string }{
		{"type", ev.Type}, {"id", ev.ID}, {"source", ev.Source}, {"userId", ev.UserID}, {"partitionKey", ev.PartitionKey},
	} {
		if !utf8.ValidString(f.value) || strings.ContainsRune(f.value, 0) {
			return invalid("", f.name+": must be UTF-8 text without NUL characters")
		}
	}
	switch {
	case ev.Type == "":
		return invalid("", "type: is required")
	case utf8.RuneCountInString(ev.Type) > 256:
		return invalid("", "type: must be at most 256 characters")
	case ev.ID == "":
		return invalid("", "id: must not be empty")
	case utf8.RuneCountInString(ev.ID) > 200:
		return invalid("", "id: must be at most 200 characters")
	case !searchable(ev.Type):
		return invalid("", "type: "+unsearchable)
	case !searchable(ev.ID):
		// Before, sent: a broker took it, and the dispatcher dead-lettered it.
		return invalid("", "id: "+unsearchable)
	case len(ev.PartitionKey) > 1024:
		return invalid("", "partitionKey: must be at most 1024 bytes")
	case ev.Time.Year() < 1970 || ev.Time.Year() > 9999:
		return invalid("", fmt.Sprintf("time: must be between the years 1970 and 9999, not %d", ev.Time.Year()))
	}
	return checkSource(ev.Envelope, ev.Source)
}

// searchable reports whether s has no double quote, backslash or control
// character, as the dispatcher takes an event's type and id: its
// dispatches could not be searched for by them.
func searchable(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return r == '"' || r == '\\' || unicode.IsControl(r) })
}

const unsearchable = "must not contain a double quote, a backslash or a control character"

// checkSource checks a producer's source: at most 1024 bytes and, in a
// CloudEvent, a non-empty URI-reference.
func checkSource(envelope Envelope, source string) error {
	if len(source) > 1024 {
		return invalid("", "source: must be at most 1024 bytes")
	}
	if envelope == EnvelopeCloudEvents {
		if _, err := url.Parse(source); err != nil || strings.TrimSpace(source) == "" {
			return invalid("", fmt.Sprintf("source: %q is not a URI-reference, which a CloudEvent's source must be", source))
		}
	}
	return nil
}

// newID returns a UUIDv7: random, and ordered by the time it was made,
// as lk-dispatch's ids are UUIDs.
func newID(now time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	_, _ = rand.Read(b[6:]) // never fails (crypto/rand since Go 1.24)
	b[6] = b[6]&0x0f | 0x70
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// abbreviate shows the start of a JSON value in a message.
func abbreviate(raw []byte) string {
	if len(raw) > 40 {
		return string(raw[:40]) + "…"
	}
	return string(raw)
}
