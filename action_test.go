package dispatcher_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
)

// TestActionFieldsOfTheOtherType: a field only the other type of action
// has is refused, not dropped: a mail action with a startTimestamp was
// saved without it and sent at once. Empty ones (null, [], {}) are left
// out as before, as a client sending every field gives them.
func TestActionFieldsOfTheOtherType(t *testing.T) {
	later := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	mail := func() dispatcher.Action {
		return dispatcher.Action{Type: dispatcher.ActionMail, TemplateID: "t", Recipients: dispatcher.Recipients{To: []string{"a@example.com"}}}
	}
	task := func() dispatcher.Action {
		return dispatcher.Action{Type: dispatcher.ActionTask, FunctionName: "f"}
	}
	for field, a := range map[string]dispatcher.Action{
		"startTimestamp": func() dispatcher.Action { a := mail(); a.StartTimestamp = &later; return a }(),
		"functionName":   func() dispatcher.Action { a := mail(); a.FunctionName = "f"; return a }(),
		"data":           func() dispatcher.Action { a := mail(); a.Data = json.RawMessage(`{"a":1}`); return a }(),
		"tags":           func() dispatcher.Action { a := mail(); a.Tags = []string{"x"}; return a }(),
		"templateId":     func() dispatcher.Action { a := task(); a.TemplateID = "t"; return a }(),
		"recipients":     func() dispatcher.Action { a := task(); a.Recipients.CC = []string{"a@example.com"}; return a }(),
	} {
		if err := a.Validate(); err == nil || !strings.Contains(err.Error(), field+": a "+a.Type+" action has none") {
			t.Errorf("a %s action with %s: %v, want it refused", a.Type, field, err)
		}
	}
	for _, data := range []string{"null", "{}", " { } ", "[]", "[ ]"} {
		a := mail()
		a.Data, a.Tags = json.RawMessage(data), []string{}
		if err := a.Validate(); err != nil || a.Data != nil || a.Tags != nil {
			t.Errorf("a mail action with data %s and no tags: %v, %+v", data, err, a)
		}
	}
}

// TestTaskActionTags: a task action's tags are checked as a dispatcher's
// are. Before, only "" was refused: a NUL, which PostgreSQL cannot store,
// and a tag of 5,000 characters were accepted.
func TestTaskActionTags(t *testing.T) {
	for _, tt := range []struct {
		tags []string
		want string // "" for valid
	}{
		{[]string{"pii", "\x00"}, "tags[1]: must not contain NUL characters or invalid UTF-8"},
		{[]string{strings.Repeat("x", 5000)}, "tags[0]: must be 1 to 256 characters"},
		{[]string{""}, "tags[0]: must be 1 to 256 characters"},
		{make([]string, dispatcher.MaxTags+1), "tags: at most 50 tags, not 51"},
		{[]string{"pii", strings.Repeat("é", 256)}, ""},
	} {
		a := dispatcher.Action{Type: dispatcher.ActionTask, FunctionName: "f", Tags: tt.tags}
		d := dispatcher.Dispatcher{EventType: "e", Tags: tt.tags}
		for what, err := range map[string]error{"a task action": a.Validate(), "a dispatcher": d.Validate()} {
			got := ""
			if err != nil {
				got = dispatcher.ErrorMessage(err)
			}
			if got != tt.want {
				t.Errorf("%s with tags %.20q: %q, want %q", what, tt.tags, got, tt.want)
			}
		}
	}
}

// TestTaskDataReadable: a task's data holds nothing JSON's readers
// disagree on, and the error names where. Before, a number beyond a
// float64 and a key given twice were saved and sent as they were; a
// JavaScript client's round trip turned the number into null.
func TestTaskDataReadable(t *testing.T) {
	for _, tt := range []struct {
		data, want string // want "" for valid
	}{
		{`{"a":1.7976931348623157e308,"b":-1e-999999,"c":12345678901234567890123,"d":[{"a":1},{"a":2}],"e":{"a":{"a":1}},"a2":"a"}`, ""},
		{`{"a":1e999999}`, "data.a: 1e999999 is out of range: JSON's readers hold numbers up to about 1.8e308 (JavaScript reads it as Infinity)"},
		{`{"a":{"b":[1,{"c":2},[3,-2e308]]}}`, "data.a.b[2][1]: -2e308 is out of range: JSON's readers hold numbers up to about 1.8e308 (JavaScript reads it as Infinity)"},
		{`{"dup":1,"x":[],"dup":2}`, `data: sets "dup" twice; a key may be given once`},
		{`{"x":[0,{"k":"{{ .event.id }}","k":"v"}]}`, `data.x[1]: sets "k" twice; a key may be given once`},
		{`{"x":{"k":1},"y":{"k":1}}`, ""},
	} {
		a := dispatcher.Action{Type: dispatcher.ActionTask, FunctionName: "f", Data: json.RawMessage(tt.data)}
		got := ""
		if err := a.Validate(); err != nil {
			got = dispatcher.ErrorMessage(err)
		}
		if got != tt.want {
			t.Errorf("data %s: %q, want %q", tt.data, got, tt.want)
		}
	}
}

// TestTaskDataReadableOnlyWhenSet: an action stored with such data before
// the rule still takes an update of its other fields; one that sets its
// data is checked.
func TestTaskDataReadableOnlyWhenSet(t *testing.T) {
	stored := dispatcher.Action{Type: dispatcher.ActionTask, FunctionName: "f", Data: json.RawMessage(`{"dup":1,"dup":2}`)}
	desc := "kept"
	if err := (dispatcher.ActionUpdate{Description: &desc}).Apply(&stored); err != nil {
		t.Errorf("an update of the description of an action stored with a key twice in its data: %v", err)
	}
	data := json.RawMessage(`{"a":1e999}`)
	if err := (dispatcher.ActionUpdate{Data: &data}).Apply(&stored); err == nil || !strings.Contains(dispatcher.ErrorMessage(err), "data.a: 1e999 is out of range") {
		t.Errorf("an update that sets such data: %v, want it refused", err)
	}
}

// TestTaskDataDepth: a task's data nests at most MaxDataDepth levels.
// Before, data 9,996 levels deep was saved, and every dispatch of its
// event type failed, the dispatch's input past the JSON decoder's limit.
func TestTaskDataDepth(t *testing.T) {
	nested := func(n int, leaf string) string {
		return strings.Repeat(`{"a":`, n) + leaf + strings.Repeat("}", n)
	}
	for _, tt := range []struct {
		data, want string // want "" for valid
	}{
		{nested(dispatcher.MaxDataDepth, "1"), ""},
		{nested(dispatcher.MaxDataDepth-1, `[1]`), ""},
		{nested(2, `"{[{[{[ \" ]}]}]}"`), ""}, // brackets in a string are text
		{nested(dispatcher.MaxDataDepth+1, "1"), "data: nests 101 levels deep; at most 100 are allowed"},
		{nested(dispatcher.MaxDataDepth, `[1]`), "data: nests 101 levels deep; at most 100 are allowed"},
		{nested(9996, "1"), "data: nests 9996 levels deep; at most 100 are allowed"},
	} {
		a := dispatcher.Action{Type: dispatcher.ActionTask, FunctionName: "f", Data: json.RawMessage(tt.data)}
		got := ""
		if err := a.Validate(); err != nil {
			got = dispatcher.ErrorMessage(err)
		}
		if got != tt.want {
			t.Errorf("data %.40s…: %q, want %q", tt.data, got, tt.want)
		}
	}
}
