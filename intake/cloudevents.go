package intake

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/wire"
)

// parseCloudEvents reads CloudEvents 1.0 in binary, structured or batch
// mode with the CloudEvents SDK. Its HTTP binding reads the attributes of
// binary mode from Ce-* headers, which is why brokers' headers are given
// that form (HeaderFrom).
func parseCloudEvents(msg Message, mediaType string, now time.Time) ([]dispatcher.Event, bool, error) {
	body := msg.Body
	if len(bytes.TrimSpace(body)) == 0 && msg.Header.Get("Ce-Specversion") == "" {
		return nil, false, &Error{EmptyBody, "the " + msg.BodyName + " is empty; a CloudEvent is expected"}
	}
	// The SDK panics on a header named just "ce-" (it reads the letter
	// after the prefix); refuse it, as the name of no attribute.
	if _, ok := msg.Header["Ce-"]; ok {
		return nil, false, dispatcher.Errorf(dispatcher.EINVALID, `header "ce-": a CloudEvents attribute header needs the attribute's name after "ce-"`)
	}
	if msg.Header.Get("Ce-Specversion") == "" && bytes.Contains(body, []byte(`base64`)) {
		// Structured: the SDK reads data_base64 (0.3: data with
		// datacontentencoding base64) with the whitespace after its
		// colon (as json.dumps and pretty printers write it) when
		// datacontenttype does not come first, and refuses it as base64
		// that is not. Compacted, it holds none.
		var c bytes.Buffer
		if json.Compact(&c, body) == nil {
			body = c.Bytes()
		}
	}
	var reader io.ReadCloser = http.NoBody
	if len(body) > 0 {
		reader = io.NopCloser(bytes.NewReader(body))
	}
	m := cehttp.NewMessage(msg.Header, reader)
	batch := mediaType == ceBatchJSON
	var ces []cloudevents.Event
	var err error
	if batch {
		ces, err = binding.ToEvents(context.Background(), m, m.BodyReader)
	} else {
		var ce *cloudevents.Event
		if ce, err = binding.ToEvent(context.Background(), m); err == nil {
			ces = []cloudevents.Event{*ce}
		}
	}
	if err != nil {
		// The schema, with its formats, names the field the SDK's parser
		// stumbled on; the parser's own error quotes its internals and
		// the body.
		if err := checkCloudEventSchema(formatSchemas(), msg, batch); err != nil {
			return nil, false, err
		}
		return nil, false, &Error{BodyFormat, "not a valid CloudEvent: " + err.Error()}
	}
	if len(ces) == 0 {
		return nil, false, &Error{EmptyBody, "the batch holds no CloudEvents"}
	}
	if len(ces) > dispatcher.MaxEventBatch {
		return nil, false, dispatcher.Errorf(dispatcher.EINVALID, "batch: holds %d CloudEvents; a batch may hold at most %d, send the rest in another batch",
			len(ces), dispatcher.MaxEventBatch)
	}
	// The schema first: it names the field and says what is wrong with it
	// as every other refusal does.
	if err := checkCloudEventSchema(schemas(), msg, batch); err != nil {
		return nil, false, err
	}
	if structured := strings.HasPrefix(mediaType, "application/cloudevents"); structured {
		if err := givenTwice(body, batch); err != nil {
			return nil, false, err
		}
		if bytes.Contains(body, []byte(`"data_base64"`)) {
			if err := bothData(body, batch); err != nil {
				return nil, false, err
			}
		}
	}
	out := make([]dispatcher.Event, len(ces))
	for i, ce := range ces {
		ev, err := fromCloudEvent(ce, now)
		if err != nil {
			if len(ces) > 1 {
				err = dispatcher.Prefixed(err, fmt.Sprintf("[%d].", i))
			}
			return nil, false, err
		}
		out[i] = ev
	}
	return out, batch, nil
}

// givenTwice refuses a structured CloudEvent, or one of a batch,
// that gives an attribute twice: the SDK keeps the last, and a gateway or
// a log in front of the dispatcher that reads the first would see another
// type or id than the one dispatched. An Extra Horizon or lk event that
// does so is refused too (decodeObject). The bytes tell first whether a
// key may be there twice, sparing most events the walk.
func givenTwice(body []byte, batch bool) error {
	// In a batch one event may give an optional attribute twice where
	// another leaves it out: counts tell nothing, every event is walked.
	if !batch && !bytes.Contains(body, []byte(`\`)) && !slices.ContainsFunc(coreAttributes, func(k []byte) bool { return bytes.Count(body, k) > 1 }) {
		return nil
	}
	events := []json.RawMessage{body}
	if batch {
		// Into a new slice: decoded into one holding body, the first
		// event would be copied over body's own bytes.
		events = nil
		if json.Unmarshal(body, &events) != nil {
			return nil // the parser has said what is wrong with it
		}
	}
	for i, ev := range events {
		if key := repeatedKey(ev); key != "" {
			at := ""
			if batch {
				at = fmt.Sprintf("[%d].", i)
			}
			return dispatcher.Errorf(dispatcher.EINVALID, "%s%s: given twice; a CloudEvent gives each attribute once", at, key)
		}
	}
	return nil
}

// coreAttributes are the attributes givenTwice looks for, quoted, with
// the ordering extension.
var coreAttributes = [][]byte{[]byte(`"specversion"`), []byte(`"id"`), []byte(`"source"`), []byte(`"type"`), []byte(`"subject"`),
	[]byte(`"time"`), []byte(`"datacontenttype"`), []byte(`"dataschema"`), []byte(`"data"`), []byte(`"data_base64"`), []byte(`"` + partitionKeyExtension + `"`)}

// repeatedKey returns the first key the JSON object obj holds twice, as
// written (escapes decoded); "" when none or obj is not an object.
func repeatedKey(obj []byte) string {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return ""
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		var value json.RawMessage
		if err != nil || dec.Decode(&value) != nil {
			return ""
		}
		key, _ := tok.(string)
		if seen[key] {
			return key
		}
		seen[key] = true
	}
	return ""
}

// bothData refuses a structured CloudEvent, or one of a batch, that holds
// both data and data_base64, which the CloudEvents JSON format lets none
// hold: the SDK would keep one of them without a word.
func bothData(body []byte, batch bool) error {
	var events []map[string]json.RawMessage
	if !batch {
		events = make([]map[string]json.RawMessage, 1)
		if json.Unmarshal(body, &events[0]) != nil {
			return nil // the parser has said what is wrong with it
		}
	} else if json.Unmarshal(body, &events) != nil {
		return nil
	}
	for i, ev := range events {
		_, data := ev["data"]
		if _, b64 := ev["data_base64"]; data && b64 {
			at := ""
			if batch {
				at = fmt.Sprintf("[%d].", i)
			}
			return dispatcher.Errorf(dispatcher.EINVALID, "%sdata_base64: a CloudEvent holds data or data_base64, not both", at)
		}
	}
	return nil
}

// partitionKeyExtension is the CloudEvents extension (the partitioning
// extension's) that carries the key a dispatcher may order events by.
const partitionKeyExtension = "partitionkey"

// timeGiven reports whether a CloudEvent carries a time attribute, which
// may be the zero time: that is out of range, as an Extra Horizon event's
// creationTimestamp before 1970 is, not "none".
func timeGiven(ce cloudevents.Event) bool {
	switch c := ce.Context.(type) {
	case *event.EventContextV1:
		return c.Time != nil
	case *event.EventContextV03:
		return c.Time != nil
	}
	return false
}

func fromCloudEvent(ce cloudevents.Event, now time.Time) (dispatcher.Event, error) {
	if err := ce.Validate(); err != nil {
		return dispatcher.Event{}, dispatcher.Errorf(dispatcher.EINVALID, "cloudevent: %v", err)
	}
	ev := dispatcher.Event{ID: ce.ID(), Type: ce.Type(), Source: ce.Source(), Key: dispatcher.CloudEventKey(ce.Source(), ce.ID()), Time: ce.Time().UTC()}
	if ce.Time().IsZero() && !timeGiven(ce) {
		ev.Time = now.UTC() // none: when it came
	}
	if v, ok := ce.Extensions()[partitionKeyExtension]; ok {
		if pk, err := types.Format(v); err == nil {
			ev.PartitionKey = pk
		}
	}
	if _, err := wire.InRange(ev.Time); err != nil {
		return ev, dispatcher.Errorf(dispatcher.EINVALID, "time: %v", err)
	}
	data, ct := ce.Data(), ce.DataContentType()
	isJSON := strings.Contains(strings.ToLower(ct), "json") // media types are case-insensitive (RFC 9110)
	switch {
	case len(data) == 0:
		ev.Content = json.RawMessage("{}")
	case json.Valid(data) && (ct == "" || isJSON):
		ev.Content = json.RawMessage(data)
	case isJSON:
		return ev, dispatcher.Errorf(dispatcher.EINVALID, "data: is not JSON, as its content type %q says", ct)
	case !utf8.Valid(data) && ce.DataBase64:
		// Binary sent as CloudEvents sends it, data_base64: it reaches
		// templates as it came, base64.
		s, _ := json.Marshal(base64.StdEncoding.EncodeToString(data))
		ev.Content = s
	case !utf8.Valid(data):
		// As a string it would reach templates with every byte that is
		// not UTF-8 replaced: another event than the one sent.
		return ev, dispatcher.Errorf(dispatcher.EINVALID, "data: is neither JSON nor UTF-8 text (content type %q); send binary data base64-encoded: data_base64 in a structured CloudEvent", ct)
	default:
		// Non-JSON data reaches templates as a string.
		s, _ := json.Marshal(string(data))
		ev.Content = s
	}
	return wire.WithID(ev, now)
}
