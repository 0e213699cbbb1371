package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/wire"
	"github.com/prometheus/client_golang/prometheus"
)

// Envelopes of FuzzEvents, chosen by its first argument modulo their number.
const (
	fuzzJSON       = iota // Extra Horizon or lk-dispatch: a JSON object, application/json
	fuzzStructured        // CloudEvents structured mode
	fuzzBatch             // CloudEvents batch mode
	fuzzBinary            // CloudEvents binary mode: "header: value" lines, an empty line, the data
	fuzzNoType            // no Content-Type at all
	fuzzEnvelopes
)

// acceptAll is a Starter that starts nothing and keeps nothing, so that a
// long fuzz run does not grow.
type acceptAll struct{}

func (acceptAll) Start(_ context.Context, ev dispatcher.Event) (dispatcher.StartResult, error) {
	return dispatcher.StartResult{WorkflowID: dispatcher.WorkflowID(ev.ID), RunID: "run"}, nil
}

// FuzzEvents sends arbitrary bodies (and, in binary mode, headers) through
// the real event intake in every envelope. Whatever arrives, the answer is
// 202 with the accepted events or a 4xx error that says what is wrong:
// never a panic, never a 5xx for the client's mistake.
func FuzzEvents(f *testing.F) {
	for _, s := range []struct {
		envelope uint8
		body     string
	}{
		{fuzzJSON, `{"id":"e1","type":"user_deleted","content":{"userId":"u1"},"creationTimestamp":1700000000000}`},
		{fuzzJSON, `{"id":"f47ac10b","type":"user_deleted","timestamp":"2016-01-01T00:00:00.000Z","data":{"k":"v"},"source":{"userId":"u","producerId":"p"}}`},
		{fuzzJSON, `{"type":"t","creationTimestamp":253402300800000}`},
		{fuzzJSON, `{"type":"t","timestamp":"yesterday"}`},
		{fuzzStructured, `{"specversion":"1.0","id":"c1","type":"t","source":"/s","time":"2024-02-03T04:05:06Z","datacontenttype":"application/json","data":{"a":1}}`},
		{fuzzStructured, `{"specversion":"1.0","id":"c2","type":"t","source":"/s","data_base64":"aGVsbG8="}`},
		{fuzzBatch, `[{"specversion":"1.0","id":"a","type":"t","source":"s"},{"specversion":"1.0","id":"b","type":"t","source":"s","data":"plain"}]`},
		{fuzzBatch, `[]`},
		{fuzzBinary, "ce-specversion: 1.0\nce-id: b1\nce-type: t\nce-source: /s\nce-time: 2024-02-03T04:05:06Z\ncontent-type: application/json\n\n{\"userId\":\"u3\"}"},
		{fuzzBinary, "ce-specversion: 1.0\nce-id: b2\nce-type: t\nce-source: /s\ncontent-type: text/plain\n\nhello"},
		{fuzzNoType, `{"type":"t"}`},
	} {
		f.Add(s.envelope, []byte(s.body))
	}
	h, err := NewServer(context.Background(), Config{Auth: AuthConfig{Disabled: true}, MaxBodyBytes: 1 << 16, MaxEventBytes: 1 << 16},
		Deps{Starter: acceptAll{}, Registry: prometheus.NewRegistry()})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, envelope uint8, body []byte) {
		req := fuzzEventRequest(int(envelope)%fuzzEnvelopes, body)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusAccepted:
			out := bytes.TrimSpace(rec.Body.Bytes())
			if !json.Valid(out) || (out[0] != '{' && out[0] != '[') {
				t.Fatalf("202 with a body that is not an accepted event or a list of them: %s", out)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			var e wire.Error
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Code == 0 || !strings.HasSuffix(e.Name, "_EXCEPTION") || e.Message == "" {
				t.Fatalf("%d without a well-formed error (%v): %s", rec.Code, err, rec.Body)
			}
		default:
			t.Fatalf("answered %d: %s", rec.Code, rec.Body)
		}
	})
}

// fuzzEventRequest builds the request of one FuzzEvents input.
func fuzzEventRequest(envelope int, body []byte) *http.Request {
	header := http.Header{}
	switch envelope {
	case fuzzJSON:
		header.Set("Content-Type", "application/json")
	case fuzzStructured:
		header.Set("Content-Type", "application/cloudevents+json")
	case fuzzBatch:
		header.Set("Content-Type", "application/cloudevents-batch+json")
	case fuzzBinary:
		head, data, _ := bytes.Cut(body, []byte("\n\n"))
		for line := range strings.SplitSeq(string(head), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) != "" {
				header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
			}
		}
		if header.Get("ce-specversion") == "" {
			header.Set("ce-specversion", "1.0") // binary mode is recognised by it
		}
		body = data
	}
	req := httptest.NewRequest("POST", "/events/v1", bytes.NewReader(body))
	req.Host = "localhost"
	for k, vs := range header {
		req.Header[k] = vs
	}
	return req
}
