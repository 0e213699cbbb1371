// Package intake turns what producers send into dispatcher.Events, the
// same way whichever way it came: an HTTP request to /events/v1 (api) or a
// message from a broker (rabbitmq, jetstream). It reads every envelope the
// dispatcher accepts (Extra Horizon, lk, CloudEvents in structured, binary
// or batch mode), checks it against the published JSON Schema
// (docs/schemas/event.json), and, for brokers, starts the events and says
// whether a message is to be acknowledged, dead-lettered or delivered
// again (Handler).
package intake

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/wire"
)

// Message is what arrives: a body and the metadata around it.
type Message struct {
	// Header holds the Content-Type and, in CloudEvents binary mode, the
	// event's attributes as Ce-* headers (canonical keys, as net/http
	// has them; HeaderFrom converts a broker's).
	Header http.Header
	Body   []byte
	// DefaultID is the id an Extra Horizon or lk event without one gets;
	// empty generates a new one. A broker derives it from the message, so
	// that a message delivered twice is one event.
	DefaultID string
	// BodyName is what errors call the body; empty means "request body".
	BodyName string
	// HTTP says that Header came with an HTTP request, whose Ce-* values
	// the CloudEvents HTTP binding has percent-encoded; brokers' bindings
	// do not encode them.
	HTTP bool
	// Redelivered says that the broker delivered the message before:
	// its events, accepted then, come again as duplicates.
	Redelivered bool
}

// Parsed is what a message holds.
type Parsed struct {
	Events   []dispatcher.Event
	Envelope string // dispatcher.Envelope*
	Batch    bool   // a CloudEvents batch: answer with a list
}

// Parse reads the events of msg, received at now, in whichever envelope
// it uses, and checks them against the schema. A message that cannot be
// read returns an *Error; one with a wrong field a *dispatcher.Error that
// names the field.
func Parse(msg Message, now time.Time) (Parsed, error) {
	if msg.Header == nil {
		msg.Header = http.Header{}
	}
	if msg.BodyName == "" {
		msg.BodyName = "request body"
	}
	if err := singleAttributes(msg.Header); err != nil {
		return Parsed{}, err
	}
	if msg.HTTP {
		h, err := percentDecoded(msg.Header)
		if err != nil {
			return Parsed{}, err
		}
		msg.Header = h
	}
	if msg.Header.Get("Ce-Specversion") == "" { // else the body is the data, whatever it holds
		msg.Body = wire.TrimBOM(msg.Body)
	}
	mediaType, _, _ := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if msg.Header.Get("Ce-Specversion") == "" && mediaType != ceJSON && mediaType != ceBatchJSON {
		// Another application/cloudevents (+xml, or none) too: before, it
		// was read in binary mode, and a JSON CloudEvent was refused as
		// having no specversion.
		given := mediaType
		if mediaType = structured(msg.Body); mediaType != "" {
			msg.Header = msg.Header.Clone()
			msg.Header.Set("Content-Type", mediaType)
		} else if strings.HasPrefix(given, "application/cloudevents") {
			return Parsed{}, &Error{BodyFormat, fmt.Sprintf("Content-Type %s: only CloudEvents in JSON are read, as %s (a batch: %s), or in binary mode (ce- headers)",
				given, ceJSON, ceBatchJSON)}
		}
	}
	if msg.Header.Get("Ce-Specversion") != "" || strings.HasPrefix(mediaType, "application/cloudevents") {
		events, batch, err := parseCloudEvents(msg, mediaType, now)
		p := Parsed{Events: events, Envelope: dispatcher.EnvelopeCloudEvents, Batch: batch}
		if err == nil {
			err = checkEvents(p)
		}
		return p, err
	}
	ev, envelope, err := parseJSON(msg, now)
	if err == nil {
		err = checkEvents(Parsed{Events: []dispatcher.Event{ev}, Envelope: envelope})
	}
	if err != nil {
		return Parsed{}, err
	}
	return Parsed{Events: []dispatcher.Event{ev}, Envelope: envelope}, nil
}

// textContent refuses an event whose content holds bytes that are not
// UTF-8. JSON is UTF-8 (RFC 8259); encoding/json keeps them in a raw
// message, which a function then received as JSON that is not. Strings
// elsewhere come decoded, their bad bytes U+FFFD, which the fields'
// checks refuse.
func textContent(p Parsed) error {
	for i, ev := range p.Events {
		if at := wire.NotUTF8(ev.Content); at >= 0 {
			return dispatcher.Errorf(dispatcher.EINVALID, "%s: is not valid UTF-8 text (at its byte %d)",
				fieldOf(p, i, "data", map[string]string{dispatcher.EnvelopeExtraHorizon: "content"}), at)
		}
	}
	return nil
}

// checkEvents checks what the schema cannot say of p's events: their
// content is text, and none poses as the dispatcher.
func checkEvents(p Parsed) error {
	if err := textContent(p); err != nil {
		return err
	}
	return posing(p)
}

// fieldOf names the field of event i of p as its producer wrote it:
// field, or its name in p's envelope (renamed), and in a batch "[i]."
// before it.
func fieldOf(p Parsed, i int, field string, renamed map[string]string) string {
	if p.Batch {
		return fmt.Sprintf("[%d].%s", i, field)
	}
	if f, ok := renamed[p.Envelope]; ok {
		return f
	}
	return field
}

// posing refuses a task_failed event from the dispatcher's own source
// (dispatcher.TaskFailedSource), whatever its envelope, or from one that
// could read as it: a listener that trusts the source trusts that a task
// failed, and a person reading an alert trusts what it shows. A
// producer's own task_failed events come from any other source of
// printable ASCII.
func posing(p Parsed) error {
	for i, ev := range p.Events {
		if ev.Type != dispatcher.EventTaskFailed {
			continue
		}
		field := fieldOf(p, i, "source", map[string]string{dispatcher.EnvelopeLK: "source.producerId"})
		source, ascii := plainSource(ev.Source)
		switch {
		case !ascii:
			return dispatcher.Errorf(dispatcher.EINVALID, "%s: a %s event's source must be printable ASCII, so that none reads as the dispatcher's own (%q)",
				field, dispatcher.EventTaskFailed, dispatcher.TaskFailedSource)
		case strings.EqualFold(strings.TrimSpace(source), dispatcher.TaskFailedSource):
			return dispatcher.Errorf(dispatcher.EINVALID, "%s: %q is the dispatcher's own for %s events; send yours from another source",
				field, dispatcher.TaskFailedSource, dispatcher.EventTaskFailed)
		}
	}
	return nil
}

// plainSource returns source percent-decoded (the CloudEvents SDK encodes
// a source's spaces and other characters; decoded again, as a listener
// might), and whether it is printable ASCII: letters that look alike in
// other scripts, invisible and combining characters are not.
func plainSource(source string) (string, bool) {
	for range 3 {
		s, err := url.PathUnescape(source)
		if err != nil || s == source {
			break
		}
		source = s
	}
	for _, r := range source {
		if r < ' ' || r > '~' {
			return source, false
		}
	}
	return source, true
}

// The media types of structured CloudEvents, one and a batch.
const ceJSON, ceBatchJSON = "application/cloudevents+json", "application/cloudevents-batch+json"

// structured returns the media type of body when it is a structured
// CloudEvent, or a batch of them, sent with another content type (curl's
// default, application/json): an object with specversion and a source
// that is a string (or neither a string nor an object, lk's: refused as a
// CloudEvent's), or no source and no key of the others' own, or a list
// whose first element has specversion. Neither is an Extra Horizon event (no
// source) or an lk one (its source an object), which were refused for a
// source that "must be an object"; one of those with a key specversion
// besides, which intake ignores, stays what it was. No other envelope is a list: a batch is read as one whatever its
// first event lacks, so that the answer names it ("[0].source: is
// required", not "the request body must be a JSON object").
func structured(body []byte) string {
	if !bytes.Contains(body, []byte(`"specversion"`)) {
		return "" // not decoded twice: the events of the other envelopes
	}
	var one struct {
		Specversion, Source, Content, CreationTimestamp, Timestamp json.RawMessage
	}
	cloudEvent := func(b []byte) bool {
		// Without a source, one with no key of Extra Horizon's or lk's
		// own is a CloudEvent that lacks it, said so, rather than an lk
		// event, read from its data; one whose source is neither a
		// string nor an object (lk's) is a CloudEvent whose source is not
		// a string, said so.
		if json.Unmarshal(b, &one) != nil || one.Specversion == nil {
			return false
		}
		if one.Source != nil && string(one.Source) != "null" { // null: none, as in the other envelopes
			return !bytes.HasPrefix(one.Source, []byte("{"))
		}
		return one.Content == nil && one.CreationTimestamp == nil && one.Timestamp == nil
	}
	switch body = bytes.TrimSpace(body); {
	case bytes.HasPrefix(body, []byte("{")):
		if cloudEvent(body) {
			return ceJSON
		}
	case bytes.HasPrefix(body, []byte("[")):
		var first []json.RawMessage
		if json.Unmarshal(body, &first) == nil && len(first) > 0 && json.Unmarshal(first[0], &one) == nil && one.Specversion != nil {
			return ceBatchJSON
		}
	}
	return ""
}

// parseJSON reads an Extra Horizon or lk event: a JSON object whose keys
// tell which. Unknown keys are ignored, as Extra Horizon clients send
// extra ones.
func parseJSON(msg Message, now time.Time) (dispatcher.Event, string, error) {
	body := bytes.TrimSpace(msg.Body)
	switch {
	case len(body) == 0:
		return dispatcher.Event{}, "", &Error{EmptyBody, "the " + msg.BodyName + " is empty; a JSON object is expected"}
	case string(body) == "null": // no event, as an empty body
		return dispatcher.Event{}, "", &Error{EmptyBody, "the " + msg.BodyName + " is null; a JSON object is expected"}
	}
	switch {
	case body[0] == '[' && json.Valid(body):
		return dispatcher.Event{}, "", &Error{BodyFormat, "the " + msg.BodyName + " is a JSON list, which only a batch of CloudEvents may be (each with specversion); send an Extra Horizon or lk event as one JSON object"}
	case body[0] != '{' && !json.Valid(body):
		var v any
		return dispatcher.Event{}, "", decodeObject(body, &v, msg.BodyName) // where it breaks
	case body[0] != '{':
		return dispatcher.Event{}, "", &Error{BodyFormat, "the " + msg.BodyName + " must be a JSON object"}
	}
	var e wire.Event
	if err := decodeObject(body, &e, msg.BodyName); err != nil {
		if err := stringSource(body); err != nil {
			return dispatcher.Event{}, "", err
		}
		return dispatcher.Event{}, "", err
	}
	if err := misspelt(body, e); err != nil {
		return dispatcher.Event{}, "", err
	}
	if (e.ID == nil || *e.ID == "") && msg.DefaultID != "" {
		e.ID = &msg.DefaultID
	}
	ev, err := e.ToDomain(now)
	if err != nil {
		return ev, "", err
	}
	envelope := e.Envelope()
	if err := checkSchema(envelopeSchema(envelope), body); err != nil {
		return ev, "", err
	}
	return ev, envelope, nil
}

// stringSource explains an event refused for its string source (a body
// that decodeObject refused): with Extra Horizon's content or
// creationTimestamp, that the source is a CloudEvent's field, which needs
// specversion; without, that lk's source is an object and a CloudEvent
// needs specversion. Before, "source: must be an object", lk's, steered
// the sender to a third envelope.
func stringSource(body []byte) error {
	var keys struct{ Source, Content, CreationTimestamp json.RawMessage }
	if json.Unmarshal(body, &keys) != nil || !bytes.HasPrefix(keys.Source, []byte(`"`)) {
		return nil
	}
	switch {
	case keys.Content != nil:
		return dispatcher.Errorf(dispatcher.EINVALID, "content: %s", eventWithStringSource)
	case keys.CreationTimestamp != nil:
		return dispatcher.Errorf(dispatcher.EINVALID, "creationTimestamp: %s", eventWithStringSource)
	}
	return dispatcher.Errorf(dispatcher.EINVALID, "source: must be an object, lk's {userId, producerId, kinesisPartitionKey}, not a string: a CloudEvent's source is a string, and it needs specversion")
}

const eventWithStringSource = "cannot be sent with a string source, a CloudEvent's (which also needs specversion): an Extra Horizon event {content, creationTimestamp} has no source"

// misspelt refuses an event without a type, or without content and
// data, that has a key nearly spelling the one it lacks ("contnet",
// "tpye"): its content would be dropped quietly, and the dispatch fail
// later for what the event did carry. Keys of their own, which Extra
// Horizon clients send, pass, as does a near miss of a field that the
// event has; an event with its type and content is not walked again.
func misspelt(body []byte, e wire.Event) error {
	if e.Type != nil && (e.Content != nil || e.Data != nil) {
		return nil
	}
	path, name := wire.Misspelt(body, e)
	noContent := e.Content == nil && e.Data == nil
	lacks := map[string]bool{"type": e.Type == nil, "content": noContent, "data": noContent}
	if path == "" || strings.Contains(path, ".") || !lacks[name] {
		return nil
	}
	return dispatcher.Errorf(dispatcher.EINVALID, "%s: unknown field; did you mean %q? (the event has no %s)", path, name, name)
}

// decodeObject decodes body, a JSON object, into v, saying which field
// has the wrong type or where the JSON breaks.
func decodeObject(body []byte, v any, bodyName string) error {
	err := json.Unmarshal(body, v)
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case err == nil:
		if path, name := wire.Twice(body, v); path != "" {
			return dispatcher.Errorf(dispatcher.EINVALID, "%s: sets %q again (keys match regardless of case); give each field once", path, name)
		}
		return nil
	case errors.As(err, &syntax):
		return &Error{BodyFormat, fmt.Sprintf("the %s is not valid JSON: %v (at byte %d)", bodyName, syntax, syntax.Offset)}
	case errors.As(err, &typ) && typ.Field != "":
		return dispatcher.Errorf(dispatcher.EINVALID, "%s", wire.TypeErrorIn(body, typ))
	default:
		return &Error{BodyFormat, "the " + bodyName + " is not valid JSON: " + err.Error()}
	}
}

// NewHeader returns the Header of a broker message with contentType and
// headers: its CloudEvents binary-mode attributes, whichever way the
// broker's convention spells them ("ce-id", "ce_id", "Ce-Id"), keyed as
// Parse reads them ("Ce-Id"). Other headers are left out.
func NewHeader(contentType string, headers map[string]string) http.Header {
	h := http.Header{}
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	for k, v := range headers {
		if len(k) >= 3 && strings.EqualFold(k[:2], "ce") && (k[2] == '-' || k[2] == '_') {
			key := textproto.CanonicalMIMEHeaderKey("ce-" + k[3:])
			h[key] = append(h[key], v) // two spellings of one attribute: Parse checks they agree
		}
	}
	return h
}

// singleAttributes refuses a CloudEvents attribute, or the content type,
// given twice with different values (two ce-type headers; a broker's
// ce_type beside its ce-type): the SDK reads the first, a gateway in front
// may have read the last, and a key allowed one type would be checked
// against another.
func singleAttributes(h http.Header) error {
	for k, vs := range h {
		// Content-Type too: it says binary or structured mode, and is
		// the datacontenttype of binary mode.
		if (strings.HasPrefix(k, "Ce-") || k == "Content-Type") && slices.ContainsFunc(vs, func(v string) bool { return v != vs[0] }) {
			return dispatcher.Errorf(dispatcher.EINVALID, "header %s: given %d times with different values; a CloudEvents attribute has one", strings.ToLower(k), len(vs))
		}
	}
	return nil
}

// percentDecoded returns h with the values of its Ce-* headers
// percent-decoded, as the CloudEvents HTTP binding has senders encode a
// space, '"', '%' and what is not printable ASCII. A value that does not
// decode, or not to UTF-8, is refused, naming its header.
func percentDecoded(h http.Header) (http.Header, error) {
	out, cloned := h, false
	for k, vs := range h {
		if !strings.HasPrefix(k, "Ce-") {
			continue
		}
		for i, v := range vs {
			if !strings.Contains(v, "%") {
				continue
			}
			d, err := url.PathUnescape(v)
			if err != nil || !utf8.ValidString(d) {
				return nil, dispatcher.Errorf(dispatcher.EINVALID,
					"header %s: %q is not percent-encoded UTF-8 as the CloudEvents HTTP binding has it (%%20 for a space, %%25 for %%)", strings.ToLower(k), v)
			}
			if !cloned {
				out, cloned = h.Clone(), true
			}
			out[k][i] = d
		}
	}
	return out, nil
}
