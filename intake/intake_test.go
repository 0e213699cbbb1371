package intake

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
)

var received = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// TestParseBrokerMessages reads each envelope as brokers deliver it: the
// headers of AMQP (ce_*) and NATS (ce-*) become the attributes of binary
// mode, and an event without an id takes the message's.
func TestParseBrokerMessages(t *testing.T) {
	for _, tc := range []struct {
		name        string
		contentType string
		headers     map[string]string
		body        string
		defaultID   string
		want        dispatcher.Event
		envelope    string
	}{
		{"extra horizon with an id", "application/json", nil, `{"id":"e1","type":"user_deleted","content":{"a":1}}`, "msg-1",
			dispatcher.Event{ID: "e1", Type: "user_deleted", Content: []byte(`{"a":1}`), Time: received}, dispatcher.EnvelopeExtraHorizon},
		{"extra horizon without: the message's id", "", nil, `{"type":"user_deleted"}`, "msg-2",
			dispatcher.Event{ID: "msg-2", Type: "user_deleted", Content: []byte(`{}`), Time: received}, dispatcher.EnvelopeExtraHorizon},
		// Keys of the client's own pass: one that nearly spells a field
		// the event has, and any beside no content.
		{"extra horizon with a key near one it has", "application/json", nil, `{"id":"e2","type":"t","content":{"a":1},"context":{"b":2}}`, "",
			dispatcher.Event{ID: "e2", Type: "t", Content: []byte(`{"a":1}`), Time: received}, dispatcher.EnvelopeExtraHorizon},
		{"extra horizon without content, a key of its own", "application/json", nil, `{"id":"e3","type":"t","origin":"app"}`, "",
			dispatcher.Event{ID: "e3", Type: "t", Content: []byte(`{}`), Time: received}, dispatcher.EnvelopeExtraHorizon},
		// Nor is a key near id (which is made when missing) a mistake.
		{"extra horizon without id, content, a key near id", "application/json", nil, `{"type":"t","uid":"u-1"}`, "msg-4",
			dispatcher.Event{ID: "msg-4", Type: "t", Content: []byte(`{}`), Time: received}, dispatcher.EnvelopeExtraHorizon},
		{"lk", "application/json", nil, `{"type":"t","timestamp":"2024-01-01T00:00:00Z","data":{"k":"v"},"source":{"producerId":"p","kinesisPartitionKey":"pk"}}`, "msg-3",
			dispatcher.Event{ID: "msg-3", Type: "t", Content: []byte(`{"k":"v"}`), Time: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), Source: "p", PartitionKey: "pk"}, dispatcher.EnvelopeLK},
		{"cloudevents structured", "application/cloudevents+json; charset=utf-8", nil,
			`{"specversion":"1.0","id":"c1","source":"/s","type":"t","partitionkey":"u-1","data":{"x":1}}`, "ignored",
			dispatcher.Event{ID: "c1", Type: "t", Source: "/s", Content: []byte(`{"x":1}`), Time: received, Key: dispatcher.CloudEventKey("/s", "c1"), PartitionKey: "u-1"}, dispatcher.EnvelopeCloudEvents},
		// Sent as curl sends a body, or as plain JSON: a structured
		// CloudEvent all the same. Before, it was read as an lk event and
		// refused for its source, "must be an object".
		{"cloudevents structured, curl's content type", "application/x-www-form-urlencoded", nil,
			`{"specversion":"1.0","id":"c2","source":"/s","type":"t","time":"2024-02-03T04:05:06Z","data":{"x":1}}`, "ignored",
			dispatcher.Event{ID: "c2", Type: "t", Source: "/s", Content: []byte(`{"x":1}`), Time: time.Date(2024, 2, 3, 4, 5, 6, 0, time.UTC), Key: dispatcher.CloudEventKey("/s", "c2")}, dispatcher.EnvelopeCloudEvents},
		// Before, read in binary mode: "specversion: is required".
		{"cloudevents structured, application/cloudevents", "application/cloudevents", nil,
			`{"specversion":"1.0","id":"c7","source":"/s","type":"t"}`, "ignored",
			dispatcher.Event{ID: "c7", Type: "t", Source: "/s", Content: []byte(`{}`), Time: received, Key: dispatcher.CloudEventKey("/s", "c7")}, dispatcher.EnvelopeCloudEvents},
		{"cloudevents structured, application/json", "application/json", nil,
			`{"specversion":"1.0","id":"c3","source":"/s","type":"t"}`, "ignored",
			dispatcher.Event{ID: "c3", Type: "t", Source: "/s", Content: []byte(`{}`), Time: received, Key: dispatcher.CloudEventKey("/s", "c3")}, dispatcher.EnvelopeCloudEvents},
		// An Extra Horizon event with a key specversion besides, which
		// intake ignores, is no CloudEvent (it has no string source).
		// Nor with a null source (none, as its envelope reads it).
		{"extra horizon with a null source and a key specversion", "application/json", nil, `{"id":"e10","type":"t","content":{"a":1},"source":null,"specversion":"1.0"}`, "",
			dispatcher.Event{ID: "e10", Type: "t", Content: []byte(`{"a":1}`), Time: received}, dispatcher.EnvelopeExtraHorizon},
		{"extra horizon with a key specversion", "application/json", nil, `{"id":"e9","type":"t","content":{},"specversion":"1.0"}`, "",
			dispatcher.Event{ID: "e9", Type: "t", Content: []byte(`{}`), Time: received}, dispatcher.EnvelopeExtraHorizon},
		// As Python's json.dumps writes it. Before, refused: "illegal
		// base64 data at input byte 0".
		{"cloudevents structured, data_base64 after a space", "application/cloudevents+json", nil,
			`{"specversion": "1.0", "id": "c4", "source": "/s", "type": "t", "data_base64": "aGVsbG8="}`, "ignored",
			dispatcher.Event{ID: "c4", Type: "t", Source: "/s", Content: []byte(`"hello"`), Time: received, Key: dispatcher.CloudEventKey("/s", "c4")}, dispatcher.EnvelopeCloudEvents},
		{"cloudevents 0.3 structured, base64 data after a space", "application/cloudevents+json", nil,
			`{"specversion": "0.3", "id": "c6", "source": "/s", "type": "t", "datacontentencoding": "base64", "data": "aGVsbG8="}`, "ignored",
			dispatcher.Event{ID: "c6", Type: "t", Source: "/s", Content: []byte(`"hello"`), Time: received, Key: dispatcher.CloudEventKey("/s", "c6")}, dispatcher.EnvelopeCloudEvents},
		// Binary, as CloudEvents sends it: it stays base64. Before the
		// check of UTF-8 it became text with its bytes replaced.
		{"cloudevents structured, binary data_base64", "application/cloudevents+json", nil,
			`{"specversion":"1.0","id":"c5","source":"/s","type":"t","datacontenttype":"image/png","data_base64":"iVBORw0KGgo="}`, "ignored",
			dispatcher.Event{ID: "c5", Type: "t", Source: "/s", Content: []byte(`"iVBORw0KGgo="`), Time: received, Key: dispatcher.CloudEventKey("/s", "c5")}, dispatcher.EnvelopeCloudEvents},
		{"cloudevents binary, AMQP's ce_ headers", "application/json",
			map[string]string{"ce_specversion": "1.0", "ce_id": "b1", "ce_source": "/s", "ce_type": "t", "ce_time": "2024-02-03T04:05:06Z", "x-other": "kept out"},
			`{"y":2}`, "ignored",
			dispatcher.Event{ID: "b1", Type: "t", Source: "/s", Content: []byte(`{"y":2}`), Time: time.Date(2024, 2, 3, 4, 5, 6, 0, time.UTC), Key: dispatcher.CloudEventKey("/s", "b1")}, dispatcher.EnvelopeCloudEvents},
		// Media types are case-insensitive: before, this JSON became the
		// string "{\"y\":3}", and every template of the event failed.
		{"cloudevents binary, JSON in capitals", "Application/JSON; charset=UTF-8",
			map[string]string{"ce-specversion": "1.0", "ce-id": "b3", "ce-source": "/s", "ce-type": "t"},
			`{"y":3}`, "",
			dispatcher.Event{ID: "b3", Type: "t", Source: "/s", Content: []byte(`{"y":3}`), Time: received, Key: dispatcher.CloudEventKey("/s", "b3")}, dispatcher.EnvelopeCloudEvents},
		{"cloudevents binary, NATS's ce- headers", "text/plain",
			map[string]string{"ce-specversion": "1.0", "ce-id": "b2", "ce-source": "/s", "ce-type": "t"},
			`hello`, "",
			dispatcher.Event{ID: "b2", Type: "t", Source: "/s", Content: []byte(`"hello"`), Time: received, Key: dispatcher.CloudEventKey("/s", "b2")}, dispatcher.EnvelopeCloudEvents},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse(Message{Header: NewHeader(tc.contentType, tc.headers), Body: []byte(tc.body), DefaultID: tc.defaultID}, received)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Events) != 1 || p.Envelope != tc.envelope || p.Batch {
				t.Fatalf("parsed %+v", p)
			}
			got := p.Events[0]
			if got.ID != tc.want.ID || got.Type != tc.want.Type || got.Source != tc.want.Source || !bytes.Equal(got.Content, tc.want.Content) ||
				!got.Time.Equal(tc.want.Time) || got.Key != tc.want.Key || got.PartitionKey != tc.want.PartitionKey {
				t.Fatalf("got %+v (content %s)\nwant %+v", got, got.Content, tc.want)
			}
		})
	}
}

// TestParseErrors shows what refuses a message and that each error says
// what is wrong: the field, or the body as a whole.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, contentType, body string
		headers                 map[string]string
		kind                    Kind   // a body error, or
		code                    string // a field error's domain code
		mention                 string
	}{
		{"empty", "", "  ", nil, EmptyBody, "", "message body is empty"},
		{"null", "application/json", " null ", nil, EmptyBody, "", "message body is null; a JSON object is expected"}, // before: "is empty"
		{"not an object", "application/json", `"x"`, nil, BodyFormat, "", "must be a JSON object"},
		// Before, both "must be a JSON object".
		{"a list of events", "application/json", `[{"id":"l-1","type":"t","content":{}}]`, nil, BodyFormat, "", "is a JSON list, which only a batch of CloudEvents may be (each with specversion)"},
		{"not JSON", "application/json", `not json`, nil, BodyFormat, "", "is not valid JSON: invalid character 'o' in literal null (expecting 'u') (at byte 2)"},
		{"broken JSON", "application/json", `{"type":`, nil, BodyFormat, "", "not valid JSON"},
		{"cloudevents in XML", "application/cloudevents+xml", `<event specversion="1.0"/>`, nil, BodyFormat, "",
			"Content-Type application/cloudevents+xml: only CloudEvents in JSON are read, as application/cloudevents+json"},
		{"cloudevents binary, not the JSON its content type in capitals says", "APPLICATION/JSON", `notjson`,
			map[string]string{"ce-specversion": "1.0", "ce-id": "b4", "ce-source": "/s", "ce-type": "t"}, 0, dispatcher.EINVALID,
			`data: is not JSON, as its content type "APPLICATION/JSON" says`},
		// Before, the bad bytes went into the content, and to functions.
		{"not UTF-8", "application/json", "{\"type\":\"t\",\"content\":{\"n\":\"\xff\xfe\"}}", nil, 0, dispatcher.EINVALID, "content: is not valid UTF-8 text (at its byte 6)"},
		{"no type", "application/json", `{"id":"x"}`, nil, 0, dispatcher.EREQUIRED, "type: is required"},
		{"type of the wrong kind", "application/json", `{"type":5}`, nil, 0, dispatcher.EINVALID, "type: must be a string"},
		// A near miss of a field the event lacks; before, its content was
		// dropped and the dispatch failed later (a template's missing key).
		{"content misspelt", "application/json", `{"id":"x","type":"t","contnet":{"name":"Ann"}}`, nil, 0, dispatcher.EINVALID, `contnet: unknown field; did you mean "content"? (the event has no content)`},
		{"type misspelt", "application/json", `{"id":"x","tpye":"t","content":{}}`, nil, 0, dispatcher.EINVALID, `tpye: unknown field; did you mean "type"?`},
		{"data misspelt", "application/json", `{"id":"x","type":"t","source":{"producerId":"p"},"dat":{}}`, nil, 0, dispatcher.EINVALID, `dat: unknown field; did you mean "data"?`},
		// Before, encoding/json took "TYPE" for "type", and the last of
		// the two was the type dispatched.
		{"a field in another case too", "application/json", `{"id":"x","type":"user_deleted","TYPE":"other"}`, nil, 0, dispatcher.EINVALID, `TYPE: sets "type" again (keys match regardless of case); give each field once`},
		{"a field twice", "application/json", `{"id":"x","type":"user_deleted","type":"other"}`, nil, 0, dispatcher.EINVALID, `type: sets "type" again`},
		{"lk data not an object", "application/json", `{"type":"t","data":"x"}`, nil, 0, dispatcher.EINVALID, "data: must be a JSON object"},
		// Read as lk, its content was dropped (the dispatch saw {}); read
		// as Extra Horizon, its data would be.
		{"content with data", "application/json", `{"type":"t","content":{"a":1},"data":{"b":2}}`, nil, 0, dispatcher.EINVALID, "content: cannot be sent with data: an event is Extra Horizon's"},
		{"content with an lk source", "application/json", `{"type":"t","content":{"a":1},"source":{"userId":"u"}}`, nil, 0, dispatcher.EINVALID, "content: cannot be sent with source"},
		// Before: "source: must be an object, not string", lk's.
		{"content with a string source", "application/json", `{"type":"t","content":{"a":1},"source":"shop"}`, nil, 0, dispatcher.EINVALID, "content: cannot be sent with a string source, a CloudEvent's (which also needs specversion)"},
		{"a CloudEvent without specversion", "application/json", `{"type":"t","source":"shop","id":"1","data":{}}`, nil, 0, dispatcher.EINVALID, "source: must be an object, lk's {userId, producerId, kinesisPartitionKey}, not a string: a CloudEvent's source is a string, and it needs specversion"},
		{"a string Source", "application/json", `{"type":"t","content":{},"Source":"shop"}`, nil, 0, dispatcher.EINVALID, "content: cannot be sent with a string source"},
		{"a time with a string source", "application/json", `{"type":"t","creationTimestamp":1,"source":"shop"}`, nil, 0, dispatcher.EINVALID, "creationTimestamp: cannot be sent with a string source"},
		{"content with an lk timestamp", "application/json", `{"type":"t","content":{"a":1},"timestamp":"2024-05-01T10:00:00Z"}`, nil, 0, dispatcher.EINVALID, "content: cannot be sent with timestamp"},
		{"creationTimestamp with data", "application/json", `{"type":"t","creationTimestamp":1,"data":{}}`, nil, 0, dispatcher.EINVALID, "creationTimestamp: cannot be sent with data"},
		{"lk producerId of the wrong kind", "application/json", `{"type":"t","source":{"producerId":5}}`, nil, 0, dispatcher.EINVALID, "source.producerId"},
		// Without its content type, refused as a CloudEvent, not as an lk
		// event for its source.
		{"a batch without its content type, one without a type", "", `[{"specversion":"1.0","id":"a","source":"/s","type":"t"},{"specversion":"1.0","id":"b","source":"/s"}]`, nil, 0, dispatcher.EREQUIRED, "[1].type: is required"},
		// No other envelope is a list: it was refused as "the request
		// body must be a JSON object", naming nothing.
		{"a batch without its content type, the first without a source", "application/json", `[{"specversion":"1.0","id":"a","type":"t"}]`, nil, 0, dispatcher.EREQUIRED, "[0].source: is required"},
		// Before, read as an lk event from its data, and accepted.
		{"cloudevent without source, application/json", "application/json", `{"specversion":"1.0","id":"x","type":"t","data":{"a":1}}`, nil, 0, dispatcher.EREQUIRED, "source: is required"},
		{"cloudevent without source", "application/cloudevents+json", `{"specversion":"1.0","id":"x","type":"t"}`, nil, 0, dispatcher.EREQUIRED, "source: is required"},
		// Its source neither a CloudEvent's (a string) nor lk's (an
		// object): a CloudEvent's is said. Before, "must be an object".
		{"cloudevent with a number for source, application/json", "application/json", `{"specversion":"1.0","id":"x","type":"t","source":5}`, nil, 0, dispatcher.EINVALID, "source: must be string, not number"},
		// A listener of task_failed may trust its source.
		{"cloudevent posing as the dispatcher", "application/cloudevents+json", `{"specversion":"1.0","id":"x","type":"task_failed","source":"dispatcher"}`, nil, 0, dispatcher.EINVALID, `source: "dispatcher" is the dispatcher's own for task_failed events`},
		{"cloudevent posing as the dispatcher in capitals", "application/cloudevents+json", `{"specversion":"1.0","id":"x","type":"task_failed","source":" Dispatcher"}`, nil, 0, dispatcher.EINVALID, `source: "dispatcher" is the dispatcher's own`},
		{"cloudevent posing as the dispatcher, a zero-width space", "application/cloudevents+json", "{\"specversion\":\"1.0\",\"id\":\"x\",\"type\":\"task_failed\",\"source\":\"dispatcher\u200b\"}", nil, 0, dispatcher.EINVALID, "source: a task_failed event's source must be printable ASCII"},
		{"cloudevent posing as the dispatcher in Cyrillic", "application/cloudevents+json", "{\"specversion\":\"1.0\",\"id\":\"x\",\"type\":\"task_failed\",\"source\":\"dispatch\u0435r\"}", nil, 0, dispatcher.EINVALID, "source: a task_failed event's source must be printable ASCII"},
		{"cloudevent posing as the dispatcher, encoded twice", "application/cloudevents+json", `{"specversion":"1.0","id":"x","type":"task_failed","source":"%2564ispatcher"}`, nil, 0, dispatcher.EINVALID, `source: "dispatcher" is the dispatcher's own`},
		// Before, taken for none and replaced by the time it came.
		{"cloudevent time the zero time", "application/cloudevents+json", `{"specversion":"1.0","id":"a","source":"s","type":"t","time":"0001-01-01T00:00:00Z"}`, nil, 0, dispatcher.EINVALID, "time:"},
		{"binary cloudevent whose data is not UTF-8", "application/octet-stream", "\xff\xfe\x00<", map[string]string{"ce_specversion": "1.0", "ce_id": "x", "ce_source": "/s", "ce_type": "t"}, 0, dispatcher.EINVALID, "data: is neither JSON nor UTF-8 text"},
		{"cloudevent in a batch posing as the dispatcher", "application/cloudevents-batch+json", `[{"specversion":"1.0","id":"a","type":"t","source":"/s"},{"specversion":"1.0","id":"x","type":"task_failed","source":"dispatcher"}]`, nil, 0, dispatcher.EINVALID, `[1].source: "dispatcher" is the dispatcher's own`},
		{"lk event posing as the dispatcher", "application/json", `{"id":"x","type":"task_failed","data":{},"source":{"producerId":"dispatcher"}}`, nil, 0, dispatcher.EINVALID, `source.producerId: "dispatcher" is the dispatcher's own`},
		{"binary without type", "application/json", `{}`, map[string]string{"ce_specversion": "1.0", "ce_id": "x", "ce_source": "/s"}, 0, dispatcher.EREQUIRED, "type: is required"},
		{"a header named ce_", "application/json", `{}`, map[string]string{"ce_specversion": "1.0", "ce_": "x"}, 0, dispatcher.EINVALID, `header "ce-"`},
		// Before, a binary CloudEvent's header carried up to a megabyte of
		// partition key into its dispatch, past the body's limit.
		{"binary partitionkey too long", "application/json", `{}`, map[string]string{"ce_specversion": "1.0", "ce_id": "x", "ce_source": "/s", "ce_type": "t", "ce_partitionkey": strings.Repeat("k", 1025)}, 0, dispatcher.EINVALID, "partitionkey: must be at most 1024 characters"},
		{"lk partition key over 1024 bytes in fewer characters", "application/json", `{"type":"t","source":{"kinesisPartitionKey":"` + strings.Repeat("é", 513) + `"}}`, nil, 0, dispatcher.EINVALID, "partitionKey: must be at most 1024 bytes"},
		{"schema: partitionkey not a string", "application/cloudevents+json", `{"specversion":"1.0","id":"x","source":"/s","type":"t","partitionkey":5}`, nil, 0, dispatcher.EINVALID, "partitionkey: must be string"},
		// Before, the SDK's parser answered these, quoting its internals
		// and the body: "ReadString: expects \" or n, but found 1, ...".
		{"cloudevent time not a string", "application/cloudevents+json", `{"specversion":"1.0","id":"a","source":"s","type":"t","time":1}`, nil, 0, dispatcher.EINVALID, "time: must be string"},
		{"cloudevent datacontenttype not a string", "application/cloudevents+json", `{"specversion":"1.0","id":"a","source":"s","type":"t","datacontenttype":1}`, nil, 0, dispatcher.EINVALID, "datacontenttype: must be string"},
		{"cloudevent broken JSON", "application/cloudevents+json", `{"specversion":"1.0",`, nil, BodyFormat, "", "not valid JSON"},
		// Before, the SDK's validation answered these first, in lines:
		// "[1].cloudevent: source: REQUIRED\n".
		{"a batch's event without source", "application/cloudevents-batch+json",
			`[{"specversion":"1.0","id":"a","source":"/s","type":"t"},{"specversion":"1.0","id":"b","type":"t"}]`, nil, 0, dispatcher.EREQUIRED, "[1].source: is required"},
		{"binary without source, type and id", "application/json", `{}`, map[string]string{"ce_specversion": "1.0"}, 0, dispatcher.EREQUIRED, ": is required"},
		// Before, the SDK's parser answered these without naming the
		// attribute: `parse "::not a uri": missing protocol scheme`.
		{"binary dataschema not a URI", "application/json", `{}`, map[string]string{"ce_specversion": "1.0", "ce_id": "x", "ce_source": "/s", "ce_type": "t", "ce_dataschema": "::not a uri"}, 0, dispatcher.EINVALID, `dataschema: must be an absolute URI such as https://example.com/source, not "::not a uri"`},
		{"binary source not a URI reference", "application/json", `{}`, map[string]string{"ce_specversion": "1.0", "ce_id": "x", "ce_source": "::", "ce_type": "t"}, 0, dispatcher.EINVALID, `source: must be a URI reference such as /sources/billing, not "::"`},
		{"binary time not a time", "application/json", `{}`, map[string]string{"ce_specversion": "1.0", "ce_id": "x", "ce_source": "/s", "ce_type": "t", "ce_time": "yesterday"}, 0, dispatcher.EINVALID, `time: must be an RFC 3339 time such as 2026-12-01T10:00:00Z, not "yesterday"`},
		// Before, the SDK's parser answered these without naming the
		// attribute (a probe): "not a valid CloudEvent: illegal base64
		// data at input byte 0", "… bad key, CloudEvents attribute names
		// MUST consist of …".
		{"data_base64 not base64", "application/cloudevents+json", `{"specversion":"1.0","id":"c5","source":"/s","type":"t","data_base64":"!!!"}`, nil, 0, dispatcher.EINVALID, "data_base64: value is not 'base64' encoded"},
		{"attribute name not lowercase", "application/cloudevents+json", `{"specversion":"1.0","id":"c6","source":"/s","type":"t","Bad-Ext":"x"}`, nil, 0, dispatcher.EINVALID,
			`Bad-Ext: is not a CloudEvents attribute name, which is letters a-z and digits 0-9`},

		{"a batch's attribute name", "application/cloudevents-batch+json", `[{"specversion":"1.0","id":"c7","source":"/s","type":"t","x_y":"x"}]`, nil, 0, dispatcher.EINVALID,
			`[0].x_y: is not a CloudEvents attribute name`},
		{"binary attribute name", "application/json", `{}`, map[string]string{"ce_specversion": "1.0", "ce_id": "x", "ce_source": "/s", "ce_type": "t", "ce_bad-ext": "x"}, 0, dispatcher.EINVALID,
			`bad-ext: is not a CloudEvents attribute name`},
		{"schema: a batch's third event", "application/cloudevents-batch+json",
			`[{"specversion":"1.0","id":"a","source":"/s","type":"t"},{"specversion":"1.0","id":"b","source":"/s","type":"t"},{"specversion":"1.0","id":"c","source":"/s","type":"t","partitionkey":true}]`,
			nil, 0, dispatcher.EINVALID, "[2].partitionkey: must be string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(Message{Header: NewHeader(tc.contentType, tc.headers), Body: []byte(tc.body), BodyName: "message body"}, received)
			var ie *Error
			switch {
			case err == nil:
				t.Fatal("accepted")
			case tc.kind != 0 && (!errors.As(err, &ie) || ie.Kind != tc.kind):
				t.Fatalf("error %v, want a body error of kind %d", err, tc.kind)
			case tc.kind == 0 && dispatcher.ErrorCode(err) != tc.code:
				t.Fatalf("error %v (code %s), want code %s", err, dispatcher.ErrorCode(err), tc.code)
			case !strings.Contains(err.Error(), tc.mention):
				t.Fatalf("error %q does not say %q", err, tc.mention)
			}
		})
	}
}

// TestCloudEventAttributeNamesInCamelCase: capitals, which the SDK takes
// though the specification says lowercase, pass. Refused, events taken
// before would have been dead-lettered (a review).
func TestCloudEventAttributeNamesInCamelCase(t *testing.T) {
	body := `{"specversion":"1.0","id":"c8","source":"/s","type":"t","traceId":"x"}`
	evs, err := Parse(Message{Header: NewHeader("application/cloudevents+json", nil), Body: []byte(body), BodyName: "message body"}, received)
	if err != nil || len(evs.Events) != 1 {
		t.Fatalf("%s: %+v, %v; want it taken", body, evs, err)
	}
}

// TestSchemaPublished keeps the published schema the one the intake
// validates with.
func TestSchemaPublished(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "schemas", "event.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(doc, schemaJSON) {
		t.Fatal("docs/schemas/event.json differs from intake/event.schema.json: cp intake/event.schema.json docs/schemas/event.json")
	}
	schemas() // compiles, or panics
}

// TestSchemaErrorsNameTheField validates documents against each
// definition and checks that the error names the field and the reason.
func TestSchemaErrorsNameTheField(t *testing.T) {
	for _, tc := range []struct {
		def, doc string
		code     string
		want     string // "" means valid
	}{
		{defExtraHorizon, `{"type":"t","content":[1,2],"creationTimestamp":1700000000000,"extra":true}`, "", ""},
		{defExtraHorizon, `{"id":null,"type":"t","creationTimestamp":"2024-01-01T00:00:00Z"}`, "", ""},
		{defExtraHorizon, `{"content":{}}`, dispatcher.EREQUIRED, "type: is required"},
		{defExtraHorizon, `{"type":""}`, dispatcher.EREQUIRED, "type: is required"},
		{defExtraHorizon, `{"type":"t","id":"` + strings.Repeat("i", 201) + `"}`, dispatcher.EINVALID, "id: must be at most 200 characters"},
		{defExtraHorizon, `{"type":"t","creationTimestamp":true}`, dispatcher.EINVALID, "creationTimestamp: must be null or integer or string, not boolean"},
		{defLK, `{"type":"t","data":{},"source":{"userId":"u","producerId":"p","kinesisPartitionKey":"k"}}`, "", ""},
		{defLK, `{"type":"t","data":[]}`, dispatcher.EINVALID, "data: must be object, not array"},
		{defLK, `{"type":"t","source":{"kinesisPartitionKey":"` + strings.Repeat("k", 1025) + `"}}`, dispatcher.EINVALID, "source.kinesisPartitionKey: must be at most 1024 characters"},
		{defCloudEvent, `{"specversion":"1.0","id":"x","source":"/s","type":"t","partitionkey":"` + strings.Repeat("k", 1025) + `"}`, dispatcher.EINVALID, "partitionkey: must be at most 1024 characters"},
		{defLK, `{"type":"t","source":{"producerId":1}}`, dispatcher.EINVALID, "source.producerId: must be string, not number"},
		{defCloudEvent, `{"specversion":"1.0","id":"x","source":"/s","type":"t","data":"anything","ext":1}`, "", ""},
		{defCloudEvent, `{"specversion":"2.0","id":"x","source":"/s","type":"t"}`, dispatcher.EINVALID, `specversion: must be "1.0" or "0.3"`},
		{defCloudEvent, `{"specversion":"1.0","id":"x","type":"t"}`, dispatcher.EREQUIRED, "source: is required"},
		{defCloudEventBatch, `[]`, dispatcher.EINVALID, "event: must hold at least 1 items"},
		{defCloudEventBatch, `[{"specversion":"1.0","id":"x","source":"/s","type":"t"},{"specversion":"1.0","id":"y","type":"t"}]`, dispatcher.EREQUIRED, "[1].source: is required"},
	} {
		err := checkSchema(tc.def, []byte(tc.doc))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s %s: %v, want valid", tc.def, tc.doc, err)
		case tc.want != "" && (dispatcher.ErrorCode(err) != tc.code || dispatcher.ErrorMessage(err) != tc.want):
			t.Errorf("%s %s: %v, want %s: %s", tc.def, tc.doc, err, tc.code, tc.want)
		}
	}
}

// TestNewHeader keeps the attributes and the content type, whatever the
// broker's spelling, and nothing else.
func TestNewHeader(t *testing.T) {
	h := NewHeader("application/json", map[string]string{"ce_id": "1", "CE-Source": "/s", "ce-type": "t", "x-trace": "no", "cen": "no"})
	want := http.Header{"Content-Type": {"application/json"}, "Ce-Id": {"1"}, "Ce-Source": {"/s"}, "Ce-Type": {"t"}}
	if len(h) != len(want) {
		t.Fatalf("header %v, want %v", h, want)
	}
	for k, v := range want {
		if h.Get(k) != v[0] {
			t.Fatalf("header %v, want %v", h, want)
		}
	}
}

// An attribute given twice with different values is refused, naming
// it, over HTTP and from a broker alike; twice the same is one. Before,
// the first ce-type header won, whatever a gateway in front had read, and
// of a broker's ce_type and ce-type, the one Go's map ranged over last.
func TestAttributesGivenTwice(t *testing.T) {
	binary := func(h http.Header) Message {
		h.Set("Ce-Specversion", "1.0")
		h.Set("Ce-Source", "/s")
		return Message{Header: h, Body: []byte(`{}`), HTTP: true}
	}
	for name, tc := range map[string]struct {
		msg  Message
		want string
	}{
		"two types":           {binary(http.Header{"Ce-Id": {"1"}, "Ce-Type": {"invoice_paid", "user_deleted"}}), "header ce-type: given 2 times with different values"},
		"two ids":             {binary(http.Header{"Ce-Id": {"1", "2"}, "Ce-Type": {"t"}}), "header ce-id: given 2 times"},
		"a broker's two ways": {Message{Header: NewHeader("", map[string]string{"ce_specversion": "1.0", "ce-source": "/s", "ce-id": "1", "ce_type": "a", "ce-type": "b"}), Body: []byte(`{}`)}, "header ce-type: given 2 times"},
		"twice the same":      {binary(http.Header{"Ce-Id": {"1"}, "Ce-Type": {"t", "t"}}), ""},
		"two content types":   {binary(http.Header{"Ce-Id": {"1"}, "Ce-Type": {"t"}, "Content-Type": {"text/plain", "application/json"}}), "header content-type: given 2 times"},
	} {
		p, err := Parse(tc.msg, time.Now())
		switch {
		case tc.want == "" && (err != nil || len(p.Events) != 1 || p.Events[0].Type != "t"):
			t.Errorf("%s: %+v, %v; want one event of type t", name, p.Events, err)
		case tc.want != "" && (dispatcher.ErrorCode(err) != dispatcher.EINVALID || !strings.HasPrefix(dispatcher.ErrorMessage(err), tc.want)):
			t.Errorf("%s: %v, want EINVALID: %s", name, err, tc.want)
		}
	}
}

func TestDerivedID(t *testing.T) {
	h := NewHeader("application/json", nil)
	a, b := DerivedID("amqp", h, []byte(`{"type":"t"}`)), DerivedID("amqp", h, []byte(`{"type":"t"}`))
	c := DerivedID("amqp", h, []byte(`{"type":"u"}`))
	if a != b || a == c || !strings.HasPrefix(a, "amqp-") || len(a) != len("amqp-")+32 {
		t.Fatalf("DerivedID: %s %s %s", a, b, c)
	}
	if ev := (dispatcher.Event{ID: a, Type: "t"}); ev.Validate() != nil || !dispatcher.ValidWorkflowID(ev.WorkflowID()) {
		t.Fatalf("%s does not make a valid event id", a)
	}
}

// A message id that could be no event's (too long, as AMQP's may be 255
// characters; a NUL) gives its event a hash of it, the same each time;
// one that could is taken as it is. Before, the event was dead-lettered
// for an id its body never held.
func TestDefaultID(t *testing.T) {
	h := NewHeader("application/json", nil)
	body := []byte(`{"type":"t"}`)
	long := strings.Repeat("m", 250)
	for _, tt := range []struct {
		messageID, want string
	}{
		{"order-7", "order-7"},
		{"", DerivedID("amqp", h, body)},
		{long, DefaultID("amqp", long, h, []byte(`{"type":"other"}`))}, // the message id's, not the body's
	} {
		got := DefaultID("amqp", tt.messageID, h, body)
		if got != tt.want {
			t.Errorf("DefaultID(%.20q) = %q, want %q", tt.messageID, got, tt.want)
		}
		if err := (&dispatcher.Event{ID: got, Type: "t"}).Validate(); err != nil {
			t.Errorf("DefaultID(%.20q) = %q: %v", tt.messageID, got, err)
		}
	}
	if a, b := DefaultID("amqp", long, h, body), DefaultID("amqp", long+"x", h, body); a == b || a == long {
		t.Errorf("message ids too long: %q and %q", a, b)
	}
	for _, id := range []string{"a\x00b", `a"b`, `a\b`} {
		if got := DefaultID("nats", id, h, body); !strings.HasPrefix(got, "nats-message-") {
			t.Errorf("the message id %q gave %q", id, got)
		}
	}
}
