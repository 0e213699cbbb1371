package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
	"github.com/dispatcherhq/dispatcher/wire"
	"github.com/prometheus/client_golang/prometheus"
)

func (hs *harness) post(path, contentType, body string, headers map[string]string) *httptest.ResponseRecorder {
	hs.t.Helper()
	req := httptest.NewRequest("POST", path, strings.NewReader(body))
	req.Host = "localhost"
	req.Header.Set("Authorization", "Bearer "+hs.token)
	req.Header.Set("Content-Type", contentType)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	hs.h.ServeHTTP(rec, req)
	return rec
}

func TestEventEnvelopes(t *testing.T) {
	hs := newHarness(t, testenv.SQLite(t))
	cases := []struct {
		name, contentType, body string
		headers                 map[string]string
		want                    dispatcher.Event
	}{
		{"extra horizon", "application/json",
			`{"id":"e1","type":"user_deleted","content":{"userId":"u1"},"creationTimestamp":1700000000000}`, nil,
			dispatcher.Event{ID: "e1", Type: "user_deleted", Content: json.RawMessage(`{"userId":"u1"}`), Time: time.UnixMilli(1700000000000).UTC()}},
		{"lk", "application/json",
			`{"id":"f47ac10b","type":"user_deleted","timestamp":"2016-01-01T00:00:00.000Z","data":{"k":"v"},"source":{"userId":"u","producerId":"server@host","kinesisPartitionKey":"p"}}`, nil,
			dispatcher.Event{ID: "f47ac10b", Type: "user_deleted", Content: json.RawMessage(`{"k":"v"}`), Time: time.Date(2016, 1, 1, 0, 0, 0, 0, time.UTC), Source: "server@host"}},
		{"cloudevents structured", "application/cloudevents+json",
			`{"specversion":"1.0","id":"c1","type":"user_deleted","source":"/users","time":"2024-02-03T04:05:06Z","datacontenttype":"application/json","data":{"userId":"u2"}}`, nil,
			dispatcher.Event{ID: "c1", Type: "user_deleted", Content: json.RawMessage(`{"userId":"u2"}`), Time: time.Date(2024, 2, 3, 4, 5, 6, 0, time.UTC), Source: "/users"}},
		{"cloudevents binary", "application/json", `{"userId":"u3"}`,
			map[string]string{"ce-specversion": "1.0", "ce-id": "b1", "ce-type": "user_deleted", "ce-source": "/users", "ce-time": "2024-02-03T04:05:06Z"},
			dispatcher.Event{ID: "b1", Type: "user_deleted", Content: json.RawMessage(`{"userId":"u3"}`), Time: time.Date(2024, 2, 3, 4, 5, 6, 0, time.UTC), Source: "/users"}},
		// The HTTP binding has senders percent-encode a space, '"', '%'
		// and what is not printable ASCII in a Ce-* header; before, the
		// id and type were kept encoded, another event than the one sent.
		// (A source is a URI reference, which keeps its space encoded.)
		{"cloudevents binary, percent-encoded", "application/json", `{"userId":"u4"}`,
			map[string]string{"ce-specversion": "1.0", "ce-id": "b%20%2520%C3%A9", "ce-type": "user%20deleted", "ce-source": "/users%20eu"},
			dispatcher.Event{ID: "b %20é", Type: "user deleted", Content: json.RawMessage(`{"userId":"u4"}`), Source: "/users%20eu"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hs.starter.events = nil
			rec := hs.post("/events/v1", tc.contentType, tc.body, tc.headers)
			if rec.Code != http.StatusAccepted {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			var got wire.AcceptedEvent
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if got.ID != tc.want.ID || got.WorkflowID != dispatcher.WorkflowID(tc.want.ID) || got.RunID == "" || got.Duplicate {
				t.Fatalf("answer %+v", got)
			}
			ev := hs.starter.events[0]
			// As Extra Horizon answers an event: its time, given or when
			// it was received.
			if got.CreationTimestamp != ev.Time.UnixMilli() || !tc.want.Time.IsZero() && got.CreationTimestamp != tc.want.Time.UnixMilli() {
				t.Errorf("creationTimestamp %d, want the event's time %v", got.CreationTimestamp, ev.Time)
			}
			if ev.ID != tc.want.ID || ev.Type != tc.want.Type || string(ev.Content) != string(tc.want.Content) || ev.Source != tc.want.Source ||
				ev.Time.IsZero() || (!tc.want.Time.IsZero() && !ev.Time.Equal(tc.want.Time)) {
				t.Fatalf("normalised to %+v (content %s), want %+v", ev, ev.Content, tc.want)
			}
		})
	}
}

func TestEventBatchDuplicateAndGeneratedID(t *testing.T) {
	hs := newHarness(t, testenv.SQLite(t))
	rec := hs.post("/events/v1", "application/cloudevents-batch+json",
		`[{"specversion":"1.0","id":"a","type":"t","source":"s"},{"specversion":"1.0","id":"b","type":"t","source":"s","data":"plain"}]`, nil)
	var batch []wire.AcceptedEvent
	if rec.Code != 202 || json.Unmarshal(rec.Body.Bytes(), &batch) != nil || len(batch) != 2 || batch[1].ID != "b" {
		t.Fatalf("batch: %d %s", rec.Code, rec.Body)
	}
	if string(hs.starter.events[1].Content) != `"plain"` {
		t.Fatalf("non-JSON data should arrive as a string, got %s", hs.starter.events[1].Content)
	}
	rec = hs.post("/events/v1", "application/json", `{"id":"a","type":"t"}`, nil)
	var again wire.AcceptedEvent
	if json.Unmarshal(rec.Body.Bytes(), &again) != nil || !again.Duplicate {
		t.Fatalf("same id again: %s", rec.Body)
	}
	rec = hs.post("/events/v1", "application/json", `{"type":"t","content":{}}`, nil)
	var gen wire.AcceptedEvent
	if json.Unmarshal(rec.Body.Bytes(), &gen) != nil || !dispatcher.ValidID(gen.ID) {
		t.Fatalf("missing id should be generated: %s", rec.Body)
	}
}

// A batch whose second event Temporal refuses: the answer names the event
// and says that the first was accepted. Before, it read as if the whole
// batch had been refused.
func TestEventBatchRefusedInTheMiddle(t *testing.T) {
	hs := newHarness(t, testenv.SQLite(t))
	hs.starter.refuse = map[string]error{"b": dispatcher.Errorf(dispatcher.EINVALID, "id: %q was sent before as an event of another type", "b")}
	rec := hs.post("/events/v1", "application/cloudevents-batch+json",
		`[{"specversion":"1.0","id":"a","type":"t","source":"s"},{"specversion":"1.0","id":"b","type":"t","source":"s"},{"specversion":"1.0","id":"c","type":"t","source":"s"}]`, nil)
	var body map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	wantError(t, rec.Code, body, 400, 15, `[1].id: "b" was sent before as an event of another type (the events before [1] were accepted`)
	if len(hs.starter.events) != 1 || hs.starter.events[0].ID != "a" {
		t.Fatalf("started %v, want a alone", hs.starter.events)
	}
	// Likewise an error of the server's, which keeps its status.
	hs.starter.refuse = map[string]error{"b": errors.New("the database is down")}
	rec = hs.post("/events/v1", "application/cloudevents-batch+json",
		`[{"specversion":"1.0","id":"a","type":"t","source":"s"},{"specversion":"1.0","id":"b","type":"t","source":"s"}]`, nil)
	body = nil
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	if msg, _ := body["message"].(string); rec.Code != 500 || !strings.Contains(msg, "[1]: internal error (the events before [1] were accepted") {
		t.Fatalf("a server error at [1]: %d %s", rec.Code, rec.Body)
	}
	// One that is not a field's reads as the event's; before, as a path:
	// "[1].temporal is unavailable".
	hs.starter.refuse = map[string]error{"b": dispatcher.Errorf(dispatcher.EUNAVAILABLE, "temporal is unavailable: context deadline exceeded")}
	rec = hs.post("/events/v1", "application/cloudevents-batch+json",
		`[{"specversion":"1.0","id":"a","type":"t","source":"s"},{"specversion":"1.0","id":"b","type":"t","source":"s"}]`, nil)
	body = nil
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	wantError(t, rec.Code, body, 503, 503, "[1]: temporal is unavailable: context deadline exceeded (the events before [1] were accepted")
}

func TestEventErrors(t *testing.T) {
	hs := newHarness(t, testenv.SQLite(t))
	cases := []struct {
		name, contentType, body string
		status, code            int
		mention                 string
	}{
		{"missing type", "application/json", `{"id":"x","content":{}}`, 400, 14, "type"},
		{"lk data not object", "application/json", `{"type":"t","data":[1]}`, 400, 15, "data"},
		{"bad timestamp", "application/json", `{"type":"t","timestamp":"yesterday"}`, 400, 15, "timestamp"},
		{"bad creationTimestamp", "application/json", `{"type":"t","creationTimestamp":"soon"}`, 400, 15, "creationTimestamp"},
		{"unparsable", "application/json", `{"type":`, 400, 22, "JSON"},
		{"empty", "application/json", ``, 400, 13, "empty"},
		{"cloudevent without source", "application/cloudevents+json", `{"specversion":"1.0","id":"x","type":"t"}`, 400, 0, "source"},
		{"type too long", "application/json", `{"type":"` + strings.Repeat("t", 300) + `"}`, 400, 15, "type"},
		{"NUL in type", "application/json", `{"type":"a\u0000b"}`, 400, 15, "type"},
		// JSON decoding turns a lone surrogate, or a byte that is not
		// UTF-8, into U+FFFD: "sg\ud800" and "sg\udc00" would be one id,
		// and the second event a duplicate, never dispatched.
		// The CloudEvents JSON format: data and data_base64 exclude each
		// other. Before, data was dropped without a word.
		{"cloudevent with data and data_base64", "application/cloudevents+json",
			`{"specversion":"1.0","id":"c9","source":"s","type":"t","data":{},"data_base64":"YQ=="}`, 400, 0, "data_base64"},
		{"batch with data and data_base64", "application/cloudevents-batch+json",
			`[{"specversion":"1.0","id":"a","source":"s","type":"t"},{"specversion":"1.0","id":"b","source":"s","type":"t","data":1,"data_base64":"YQ=="}]`,
			400, 0, "[1].data_base64: a CloudEvent holds data or data_base64, not both"},
		// The SDK keeps the last; a gateway reading the first would see
		// another type. Before, accepted (security probe).
		{"cloudevent with type twice", "application/cloudevents+json",
			`{"specversion":"1.0","id":"c7","source":"s","type":"mailinj","type":"simple"}`, 400, 0, "type: given twice; a CloudEvent gives each attribute once"},
		{"cloudevent with an escaped id twice", "application/cloudevents+json",
			`{"specversion":"1.0","id":"c6","source":"s","type":"t","\u0069d":"c5"}`, 400, 0, "id: given twice"},
		// Another event leaves data out: the count of "data" is the batch's.
		{"batch with data twice", "application/cloudevents-batch+json",
			`[{"specversion":"1.0","id":"a","source":"s","type":"t","data":{"v":1},"data":{"v":2}},{"specversion":"1.0","id":"b","source":"s","type":"t"}]`,
			400, 0, "[0].data: given twice"},
		{"batch with source twice", "application/cloudevents-batch+json",
			`[{"specversion":"1.0","id":"a","source":"s","type":"t"},{"specversion":"1.0","id":"b","source":"s","type":"t","source":"x"}]`,
			400, 0, "[1].source: given twice"},
		{"cloudevent whose JSON data is not JSON", "application/cloudevents+json",
			`{"specversion":"1.0","id":"c8","source":"s","type":"t","datacontenttype":"application/json","data_base64":"e2JhZA=="}`, 400, 0, "data: is not JSON"},
		{"lone surrogate in id", "application/json", `{"id":"sg\ud800","type":"t"}`, 400, 15, "id: must not contain U+FFFD"},
		{"invalid UTF-8 in id", "application/json", "{\"id\":\"u8\xff\",\"type\":\"t\"}", 400, 15, "id: must not contain U+FFFD"},
		// Before, taken, and its dispatch found by no search for its id.
		{"double quote in id", "application/json", `{"id":"a\"b","type":"t"}`, 400, 15, "id: must not contain a double quote, a backslash or a control character"},
		{"backslash in a CloudEvent's id", "application/cloudevents+json", `{"specversion":"1.0","id":"a\\b","source":"s","type":"t"}`, 400, 0, "id: must not contain a double quote"},
		{"invalid UTF-8 in a CloudEvent's type", "application/cloudevents+json", "{\"specversion\":\"1.0\",\"id\":\"x\",\"source\":\"s\",\"type\":\"t\xfe\"}", 400, 0, "type: must not contain"},
		{"creationTimestamp in year 10000", "application/json", `{"type":"t","creationTimestamp":253402300800000}`, 400, 15, "9999"},
		{"too large", "application/json", `{"type":"t","content":{"x":"` + strings.Repeat("y", 3000) + `"}}`, 413, 24, "limit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := hs.post("/events/v1", tc.contentType, tc.body, nil)
			var body map[string]any
			_ = json.Unmarshal(rec.Body.Bytes(), &body)
			if tc.code == 0 {
				if rec.Code != tc.status || !strings.Contains(body["message"].(string), tc.mention) {
					t.Fatalf("got %d %s", rec.Code, rec.Body)
				}
				return
			}
			wantError(t, rec.Code, body, tc.status, tc.code, tc.mention)
		})
	}
	if len(hs.starter.events) != 0 {
		t.Fatalf("refused events were started: %v", hs.starter.events)
	}

	// Found by FuzzEvents: the CloudEvents SDK panicked on it (a 500).
	rec := hs.post("/events/v1", "application/json", `{}`, map[string]string{
		"ce-specversion": "1.0", "ce-id": "b1", "ce-type": "t", "ce-source": "/s", "ce-": "x"})
	var noName map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &noName)
	wantError(t, rec.Code, noName, 400, 15, `header "ce-"`)

	// A Ce-* header that does not percent-decode, or decodes to what is
	// not UTF-8, is refused, naming the header.
	for v, want := range map[string]string{"b%2": "header ce-id: ", "b%zz": "header ce-id: ", "b%ff": "header ce-id: "} {
		rec = hs.post("/events/v1", "application/json", `{}`, map[string]string{
			"ce-specversion": "1.0", "ce-id": v, "ce-type": "t", "ce-source": "/s"})
		var enc map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &enc)
		wantError(t, rec.Code, enc, 400, 15, want)
	}

	// A binary CloudEvent whose Content-Type says JSON holds JSON: broken
	// JSON is refused. Before, it was taken as a string, which templates
	// reading .content.x then failed on.
	rec = hs.post("/events/v1", "application/json", `{bad`, map[string]string{
		"ce-specversion": "1.0", "ce-id": "b4", "ce-type": "t", "ce-source": "/s"})
	var badJSON map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &badJSON)
	wantError(t, rec.Code, badJSON, 400, 15, "data: is not JSON")

	hs.starter.err = dispatcher.Errorf(dispatcher.EUNAVAILABLE, "temporal is unavailable: connection refused")
	rec = hs.post("/events/v1", "application/json", `{"type":"t"}`, nil)
	var body map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	wantError(t, rec.Code, body, 503, 503, "temporal")
	// Producers honour it (README, "Producing events from Go"): before,
	// only a 429 said when to come back.
	if got := rec.Header().Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After = %q, want 1", got)
	}
}

// TestEventBatchSize shows that a CloudEvents batch may hold
// dispatcher.MaxEventBatch events, and that a larger one is refused whole,
// with the field and the limit named, before any event is started.
func TestEventBatchSize(t *testing.T) {
	starter := &fakeStarter{}
	h, err := NewServer(t.Context(), Config{Auth: AuthConfig{Disabled: true}, MaxBodyBytes: 4096, MaxEventBytes: 1 << 20},
		Deps{Starter: starter, Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	batch := func(n int) string {
		evs := make([]string, n)
		for i := range evs {
			evs[i] = fmt.Sprintf(`{"specversion":"1.0","id":"e-%d-%d","source":"s","type":"t"}`, n, i)
		}
		return "[" + strings.Join(evs, ",") + "]"
	}
	post := func(body string) (int, map[string]any) {
		req := httptest.NewRequest("POST", "/events/v1", strings.NewReader(body))
		req.Host = "localhost"
		req.Header.Set("Content-Type", "application/cloudevents-batch+json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var out map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &out)
		return rec.Code, out
	}
	if code, _ := post(batch(dispatcher.MaxEventBatch)); code != http.StatusAccepted || len(starter.events) != dispatcher.MaxEventBatch {
		t.Fatalf("a batch of %d = %d, %d started", dispatcher.MaxEventBatch, code, len(starter.events))
	}
	starter.events = nil
	code, body := post(batch(dispatcher.MaxEventBatch + 1))
	wantError(t, code, body, 400, 15, fmt.Sprintf("batch: holds %d CloudEvents; a batch may hold at most %d", dispatcher.MaxEventBatch+1, dispatcher.MaxEventBatch))
	if len(starter.events) != 0 {
		t.Fatalf("%d events of a refused batch were started", len(starter.events))
	}
}
