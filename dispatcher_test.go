package dispatcher_test

import (
	"strings"
	"testing"

	"github.com/dispatcherhq/dispatcher"
)

// TestBlankValues: an eventType or functionName of spaces is none, and a
// name of spaces, which would look like none yet be unique, is refused;
// "" is still no name. Before, all were saved.
func TestBlankValues(t *testing.T) {
	action := func(name, function string) []dispatcher.Action {
		return []dispatcher.Action{{Type: dispatcher.ActionTask, Name: name, FunctionName: function}}
	}
	for _, tt := range []struct {
		name      string
		d         dispatcher.Dispatcher
		code, msg string // "" for valid
	}{
		{"eventType of spaces", dispatcher.Dispatcher{EventType: "   "}, dispatcher.EREQUIRED, "eventType: is required"},
		{"eventType of other blanks", dispatcher.Dispatcher{EventType: "\t\n\u00a0"}, dispatcher.EREQUIRED, "eventType: is required"},
		{"name of spaces", dispatcher.Dispatcher{EventType: "e", Name: "  "}, dispatcher.EINVALID, "name: must not be blank; leave it out for no name"},
		{"action name of spaces", dispatcher.Dispatcher{EventType: "e", Actions: action("  ", "f")}, dispatcher.EINVALID, "actions[0].name: must not be blank; leave it out for no name"},
		{"functionName of spaces", dispatcher.Dispatcher{EventType: "e", Actions: action("", " ")}, dispatcher.EREQUIRED, "actions[0].functionName: is required"},
		{"no names", dispatcher.Dispatcher{EventType: "e", Actions: action("", "f")}, "", ""},
		{"values with spaces", dispatcher.Dispatcher{EventType: " e ", Name: " d ", Actions: action(" a ", "f")}, "", ""},
	} {
		err := tt.d.Validate()
		if dispatcher.ErrorCode(err) != tt.code || tt.code != "" && dispatcher.ErrorMessage(err) != tt.msg {
			t.Errorf("%s: %v, want %s: %s", tt.name, err, tt.code, tt.msg)
		}
	}
	blank := "  "
	d := dispatcher.Dispatcher{EventType: "e"}
	if err := (dispatcher.DispatcherUpdate{EventType: &blank}).Apply(&d); dispatcher.ErrorCode(err) != dispatcher.EREQUIRED {
		t.Errorf("an update to an eventType of spaces: %v, want EREQUIRED", err)
	}
	d = dispatcher.Dispatcher{EventType: "e"}
	if err := (dispatcher.DispatcherUpdate{Name: &blank}).Apply(&d); dispatcher.ErrorCode(err) != dispatcher.EINVALID {
		t.Errorf("an update to a name of spaces: %v, want EINVALID", err)
	}
}

// A dispatcher or an action stored before the rules on names and tags
// tightened still takes an update that leaves those alone: a pause in an
// incident must not need a rename first.
func TestUpdateOfWhatWasStoredBefore(t *testing.T) {
	paused := true
	d := dispatcher.Dispatcher{EventType: "e", Name: "  "}
	if err := (dispatcher.DispatcherUpdate{Paused: &paused}).Apply(&d); err != nil {
		t.Errorf("pausing a dispatcher named %q: %v", d.Name, err)
	}
	a := dispatcher.Action{Type: dispatcher.ActionTask, Name: "  ", FunctionName: "f", Tags: []string{string(make([]byte, 300))}}
	fn := "g"
	if err := (dispatcher.ActionUpdate{FunctionName: &fn}).Apply(&a); err != nil {
		t.Errorf("updating the function of an action named %q with a long tag: %v", a.Name, err)
	}
	tags := []string{"x\x00y"}
	if err := (dispatcher.ActionUpdate{Tags: &tags}).Apply(&a); dispatcher.ErrorCode(err) != dispatcher.EINVALID {
		t.Errorf("an update that sets a tag with a NUL: %v, want EINVALID", err)
	}
}

// Event types are what the dispatches of a type are searched by, and
// Temporal's visibility finds none of a type with a double quote, a
// backslash or a control character: such a type is refused, of an event
// and of a dispatcher. Before, both were taken, and their dispatches could
// be neither listed nor bulk replayed. One stored before still takes a
// pause.
func TestEventTypesAreSearchable(t *testing.T) {
	for _, typ := range []string{`a"b`, `a\b`, "a\nb", "a\tb", "a\x7fb", "a\u0085b"} {
		ev := dispatcher.Event{ID: "e", Type: typ}
		if err := ev.Validate(); dispatcher.ErrorCode(err) != dispatcher.EINVALID || !strings.HasPrefix(dispatcher.ErrorMessage(err), "type: must not contain a double quote") {
			t.Errorf("event of type %q: %v, want it refused naming type", typ, err)
		}
		d := dispatcher.Dispatcher{EventType: typ}
		if err := d.Validate(); dispatcher.ErrorCode(err) != dispatcher.EINVALID || !strings.HasPrefix(dispatcher.ErrorMessage(err), "eventType: must not contain a double quote") {
			t.Errorf("dispatcher of event type %q: %v, want it refused naming eventType", typ, err)
		}
		paused := true
		if err := (dispatcher.DispatcherUpdate{Paused: &paused}).Apply(&d); err != nil {
			t.Errorf("pausing a dispatcher of event type %q stored before: %v", typ, err)
		}
		if err := (dispatcher.DispatcherUpdate{EventType: &typ}).Apply(&dispatcher.Dispatcher{EventType: "e"}); dispatcher.ErrorCode(err) != dispatcher.EINVALID {
			t.Errorf("an update to event type %q: %v, want EINVALID", typ, err)
		}
	}
	for _, typ := range []string{"user_deleted", "a'b", "com.example.user.deleted/v1", "ユーザー削除", "a b"} {
		if ev := (dispatcher.Event{ID: "e", Type: typ}); ev.Validate() != nil {
			t.Errorf("event of type %q refused: %v", typ, ev.Validate())
		}
	}
}

// TestNamesWithoutControlCharacters: a name holding a newline or a tab
// is refused, naming the character; one stored before the rule still
// takes an update that leaves it alone. Before, all were saved (a probe).
func TestNamesWithoutControlCharacters(t *testing.T) {
	const want = `name: must not contain control characters (a newline, a tab, …); it has '\n' at byte 1`
	task := func(name string) []dispatcher.Action {
		return []dispatcher.Action{{Type: dispatcher.ActionTask, Name: name, FunctionName: "f"}}
	}
	for _, tt := range []struct {
		name string
		err  error
		msg  string
	}{
		{"dispatcher", (&dispatcher.Dispatcher{EventType: "e", Name: "a\nb"}).Validate(), want},
		{"action", (&dispatcher.Dispatcher{EventType: "e", Actions: task("a\nb")}).Validate(), "actions[0]." + want},
		{"template", (&dispatcher.Template{Name: "a\nb", Subject: "s", Text: "t"}).Validate(), want},
		{"function", (&dispatcher.Function{Name: "a\nb", URL: "https://example.com/f"}).Validate(), want},
		{"a tab", (&dispatcher.Dispatcher{EventType: "e", Name: "a\tb"}).Validate(), `name: must not contain control characters (a newline, a tab, …); it has '\t' at byte 1`},
	} {
		if dispatcher.ErrorCode(tt.err) != dispatcher.EINVALID || dispatcher.ErrorMessage(tt.err) != tt.msg {
			t.Errorf("%s: %v, want EINVALID: %s", tt.name, tt.err, tt.msg)
		}
	}
	for _, ok := range []string{"a b", "ä – ß", "名前"} {
		if err := (&dispatcher.Dispatcher{EventType: "e", Name: ok}).Validate(); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	subject := "new"
	tpl := dispatcher.Template{Name: "a\nb", Subject: "s", Text: "t"}
	if err := (dispatcher.TemplateUpdate{Subject: &subject}).Apply(&tpl); err != nil {
		t.Errorf("an update of a stored template's subject: %v", err)
	}
	url := "https://example.com/g"
	fn := dispatcher.Function{Name: "a\nb", URL: "https://example.com/f"}
	if err := (dispatcher.FunctionUpdate{URL: &url}).Apply(&fn); err != nil {
		t.Errorf("an update of a stored function's url: %v", err)
	}
}
