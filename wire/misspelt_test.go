package wire_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/dispatcherhq/dispatcher/wire"
)

func TestNearly(t *testing.T) {
	for _, tt := range []struct {
		key, name string
		want      bool
	}{
		{"enabeld", "enabled", true},    // two letters swapped
		{"secrt", "secret", true},       // one dropped
		{"dat", "data", true},           // three letters are enough
		{"EventTyp", "eventType", true}, // case does not count
		{"evntTyp", "eventType", true},  // two edits in a long name
		{"bc", "bcc", true},             // under three letters: one dropped
		{"t", "to", true},
		{"ab", "to", false}, // but not changed
		{"tp", "to", false},
		{"", "a", false},
		{"templateName", "templateId", false},
		{"creationTimestamp", "startTimestamp", false},
		{strings.Repeat("x", 1<<20), "name", false}, // far longer: at once
	} {
		if got := wire.Nearly(tt.key, tt.name); got != tt.want {
			t.Errorf("Nearly(%.20q, %q) = %v, want %v", tt.key, tt.name, got, tt.want)
		}
	}
}

// TestMisspelt walks nested objects, arrays and Optional values to the
// misspelt key; an embedded request's field shadowed by a raw one (the
// actions of an update) is not walked; unknown keys far from every field
// are the client's own.
func TestMisspelt(t *testing.T) {
	for _, tt := range []struct {
		body       string
		v          any
		path, name string
	}{
		{`{"name":"d","enabeld":false}`, &wire.DispatcherRequest{}, "enabeld", "enabled"},
		{`{"actions":[{"type":"task"},{"type":"mail","recipients":{"to":[],"bbc":[]}}]}`, &wire.DispatcherRequest{}, "actions[1].recipients.bbc", "bcc"},
		{`{"ordering":{"kye":"content.id"}}`, &wire.DispatcherRequest{}, "ordering.kye", "key"},
		{`{"rateLimit":{"perSecnd":5}}`, &wire.FunctionRequest{}, "rateLimit.perSecnd", "perSecond"},
		{`{"actions":[{"dat":1}],"name":"d","creationTimestamp":1,"id":"x"}`, &wire.DispatcherUpdate{}, "", ""},
		{`{"headers":{"X-Secrt":"v"},"templateName":"t","updateTimestamp":2}`, &wire.FunctionRequest{}, "", ""},
		{`{"name":"d","eventType":"a","EventType":"b"}`, &wire.DispatcherRequest{}, "EventType", "eventType"},
		{`{"actions":[{"type":"task","FunctionName":"f"}]}`, &wire.DispatcherRequest{}, "actions[0].FunctionName", "functionName"},
	} {
		path, name := wire.Misspelt([]byte(tt.body), tt.v)
		if path != tt.path || name != tt.name {
			t.Errorf("Misspelt(%s) = %q, %q; want %q, %q", tt.body, path, name, tt.path, tt.name)
		}
	}
}

// TestTwice finds a field named twice in one object, by the same key or
// in another case, of which encoding/json keeps the last; other keys, and
// the keys of values that are the sender's own (content), are left alone.
func TestTwice(t *testing.T) {
	for _, tt := range []struct{ body, path, name string }{
		{`{"id":"e1","type":"user_deleted","TYPE":"other"}`, "TYPE", "type"},
		{`{"id":"e1","type":"a","type":"b"}`, "type", "type"},
		{`{"type":"t","source":{"userId":"u","UserID":"v"}}`, "source.UserID", "userId"},
		// Keys the bytes do not spell as the field: an escape, a rune
		// that folds to ASCII (ſ is s).
		{`{"id":"e1","type":"a","\u0074ype":"b"}`, "type", "type"},
		{"{\"type\":\"t\",\"source\":{},\"\u017fource\":{}}", "\u017fource", "source"},
		{`{"ID":"e1","Type":"t","source":{"UserID":"u"}}`, "", ""},
		{`{"id":"e1","type":"t","tpye":"x","content":{"a":1,"a":2,"A":3}}`, "", ""},
	} {
		path, name := wire.Twice([]byte(tt.body), &wire.Event{})
		if path != tt.path || name != tt.name {
			t.Errorf("Twice(%s) = %q, %q; want %q, %q", tt.body, path, name, tt.path, tt.name)
		}
	}
	if path, name := wire.Twice([]byte(`{"actions":[{"type":"task"},{"type":"task","name":"a","name":"b"}]}`), &wire.DispatcherRequest{}); path != "actions[1].name" || name != "name" {
		t.Errorf("Twice in an array = %q, %q; want actions[1].name", path, name)
	}
}

// TestTypeErrorIn names the element of an array a value of the wrong type
// is in, where Go's path ("actions.tags") leaves the indices out.
func TestTypeErrorIn(t *testing.T) {
	for _, tt := range []struct {
		body string
		v    any
		want string
	}{
		{`{"actions":[{"type":"task","tags":[1,2]}]}`, &wire.DispatcherRequest{}, "actions[0].tags[0]: must be a string, not number"},
		{`{"actions":[{"type":"task"},{"type":"mail","recipients":{"to":["a@b.c"],"bcc":"x@y.z"}}]}`, &wire.DispatcherRequest{}, "actions[1].recipients.bcc: must be an array, not string"},
		{`{"name":"d","tags":["a", {"x":[1]}]}`, &wire.DispatcherRequest{}, "tags[1]: must be a string, not object"},
		{`{"name":"d", "eventType" : 42}`, &wire.DispatcherRequest{}, "eventType: must be a string, not number"},
		// Go's path leaves out the keys of maps too: before, "headers".
		{`{"name":"f","url":"http://x","headers":{"X-A":"a","X-B":5}}`, &wire.FunctionRequest{}, "headers.X-B: must be a string, not number"},
		// A field that decodes itself reports the offset within its own
		// value, which would point at another: Go's path is kept.
		{`{"name":"f","url":"http://x","maxConcurrency":"3"}`, &wire.FunctionRequest{}, "maxConcurrency: must be a number, not string"},
		// Before: "must be a number, not number 2.0".
		{`{"name":"f","url":"http://x","maxConcurrency":2.0}`, &wire.FunctionRequest{}, "maxConcurrency: must be a whole number written in digits, not 2.0"},
		{`{"name":"f","url":"http://x","timeoutSeconds":1e2}`, &wire.FunctionRequest{}, "timeoutSeconds: must be a whole number written in digits, not 1e2"},
		// Before, a number too large for its field was asked to be a
		// whole number written in digits, which it was.
		{`{"name":"f","url":"http://x","timeoutSeconds":99999999999999999999}`, &wire.FunctionRequest{}, "timeoutSeconds: 99999999999999999999 is out of range"},
		{`{"f":1e309}`, &struct {
			F float64 `json:"f"`
		}{}, "f: 1e309 is out of range"},
		{`{"name":"f","rateLimit":{"perSecond":"5"}}`, &wire.FunctionRequest{}, "rateLimit.perSecond: must be a number, not string"},
		// An Optional in an array: its offset falls on a[0]'s number, not
		// on a[1]'s string; the value's kind tells them apart.
		{`{"a":[{"r":{"n":1}},{"r":{         "n":"x"}}]}`, &struct {
			A []struct {
				R wire.Optional[struct {
					N int `json:"n"`
				}] `json:"r"`
			} `json:"a"`
		}{}, "a.r.n: must be a number, not string"},
		// A number beyond float64 before the error does not stop the walk.
		{`{"actions":[{"type":"task","data":{"big":1e999}},{"type":"task","tags":[2]}]}`, &wire.DispatcherRequest{}, "actions[1].tags[0]: must be a string, not number"},
	} {
		var typ *json.UnmarshalTypeError
		if err := json.Unmarshal([]byte(tt.body), tt.v); !errors.As(err, &typ) {
			t.Fatalf("%s: %v, want a type error", tt.body, err)
		}
		if got := wire.TypeErrorIn([]byte(tt.body), typ); got != tt.want {
			t.Errorf("TypeErrorIn(%s) = %q, want %q", tt.body, got, tt.want)
		}
	}
}
