package dispatcher_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
)

func testEvent(t *testing.T) dispatcher.Event {
	t.Helper()
	return dispatcher.Event{
		ID:   "ev-1",
		Type: "user_deleted",
		Content: json.RawMessage(`{"name":"<Ann>","userId":1234567890123,"email":"ann@example.com",` +
			`"active":true,"profile":{"b":2,"a":1},"emails":["a@example.com","b@example.com"],"gone":null,` +
			`"team":["a@example.com","nobody"],"ids":["a@example.com",7]}`),
		Time:   time.Date(2026, 11, 22, 5, 40, 0, 0, time.UTC),
		Source: "test",
	}
}

// wantError checks err against a wanted message fragment: "" means no
// error; otherwise err must be an EINVALID *Error containing want.
func wantError(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error, want one containing %q", want)
	}
	if code := dispatcher.ErrorCode(err); code != dispatcher.EINVALID {
		t.Fatalf("error code = %q (%v), want %q", code, err, dispatcher.EINVALID)
	}
	if !strings.Contains(dispatcher.ErrorMessage(err), want) {
		t.Fatalf("error = %q, want it to contain %q", dispatcher.ErrorMessage(err), want)
	}
}

// A field read from a value that is not an object says so in words.
// Before, the template package's "can't evaluate field name in type
// interface {}" reached the failed action.
func TestRenderFieldOfNotAnObject(t *testing.T) {
	ev := testEvent(t)
	ev.Content = json.RawMessage(`"hello"`)
	_, err := dispatcher.RenderMail(dispatcher.Template{Subject: "Hi {{ .content.name }}"}, ev)
	wantError(t, err, `subject: line 1: at <.content.name>: no field "name": the value it is read from is not an object`)
}

func TestRenderMail(t *testing.T) {
	tests := []struct {
		name    string
		tmpl    dispatcher.Template
		want    dispatcher.RenderedMail
		wantErr string
	}{
		{
			name: "event and content",
			tmpl: dispatcher.Template{
				Subject: "Goodbye {{ .event.content.name }}",
				Text:    "Hi {{ .content.name }}, id {{ .content.userId }}, event {{ .event.id }} of {{ .event.type }} at {{ formatTime .event.time \"2006-01-02\" }}",
				HTML:    "<p>Bye {{ .event.content.name }}</p>",
			},
			want: dispatcher.RenderedMail{
				Subject: "Goodbye <Ann>",
				Text:    "Hi <Ann>, id 1234567890123, event ev-1 of user_deleted at 2026-11-22",
				HTML:    "<p>Bye &lt;Ann&gt;</p>",
			},
		},
		{
			name: "null renders empty, not <no value>",
			tmpl: dispatcher.Template{Subject: "[{{ .content.gone }}]", HTML: "[{{ .content.gone }}]"},
			want: dispatcher.RenderedMail{Subject: "[]", HTML: "[]"},
		},
		{
			name: "conditionals and range work on content",
			tmpl: dispatcher.Template{Text: "{{ if .content.active }}on{{ end }}{{ range .content.emails }} {{ . }}{{ end }}"},
			want: dispatcher.RenderedMail{Text: "on a@example.com b@example.com"},
		},
		{
			name:    "missing key in subject",
			tmpl:    dispatcher.Template{Subject: "Hi {{ .event.content.nope }}"},
			wantErr: `subject: line 1: at <.event.content.nope>: map has no entry for key "nope"`,
		},
		{
			name:    "missing key in text names the line",
			tmpl:    dispatcher.Template{Subject: "ok", Text: "a\nb\n{{ .content.nope }}"},
			wantErr: `text: line 3:`,
		},
		{
			name:    "missing key in html",
			tmpl:    dispatcher.Template{HTML: "<b>{{ .nope }}</b>"},
			wantErr: `html: line 1: at <.nope>: map has no entry for key "nope"`,
		},
		{
			name:    "syntax error",
			tmpl:    dispatcher.Template{Subject: "{{ .event.id "},
			wantErr: `subject: line 1:`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := dispatcher.RenderMail(tt.tmpl, testEvent(t))
			wantError(t, err, tt.wantErr)
			if err == nil && got != tt.want {
				t.Errorf("RenderMail = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestRenderMailContentNotObject(t *testing.T) {
	ev := testEvent(t)
	ev.Content = json.RawMessage(`"just a string"`)
	_, err := dispatcher.RenderMail(dispatcher.Template{Subject: "{{ .content.name }}"}, ev)
	wantError(t, err, "subject: line 1:")

	ev.Content = json.RawMessage(`{not json`)
	_, err = dispatcher.RenderMail(dispatcher.Template{Subject: "x"}, ev)
	wantError(t, err, "event content: is not JSON")
}

func TestParseTemplate(t *testing.T) {
	tests := []struct {
		name    string
		tmpl    dispatcher.Template
		wantErr string
	}{
		{"valid", dispatcher.Template{Subject: "Hi {{ .event.content.name }}", Text: "{{ if .content.x }}y{{ end }}", HTML: "<a href=\"/u/{{ .content.id }}\">x</a>"}, ""},
		{"empty parts are fine", dispatcher.Template{Subject: "plain"}, ""},
		{"subject unclosed", dispatcher.Template{Subject: "{{ .event.id "}, "subject: line 1:"},
		{"text unknown function", dispatcher.Template{Subject: "s", Text: "\n\n{{ nope .x }}"}, `text: line 3: function "nope" not defined`},
		{"html missing end", dispatcher.Template{Subject: "s", HTML: "<p>\n{{ if .x }}"}, "html: line 2:"},
		{"html ambiguous context found at save time", dispatcher.Template{Subject: "s", HTML: "{{ if .x }}<a href=\"{{ end }}\">"}, "html: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantError(t, dispatcher.ParseTemplate(tt.tmpl), tt.wantErr)
		})
	}
}

func TestResolveValue(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		want    string
		wantErr string
	}{
		{"no templates keeps bytes", `{"b": 1,  "a": "x"}`, `{"b": 1,  "a": "x"}`, ""},
		{"number keeps type and digits", `{"id":"{{ .event.content.userId }}"}`, `{"id":1234567890123}`, ""},
		{"whitespace around single action", `{"id":"  {{.content.userId}} "}`, `{"id":1234567890123}`, ""},
		{"bool keeps type", `{"on":"{{ .content.active }}"}`, `{"on":true}`, ""},
		{"object keeps type", `{"p":"{{ .content.profile }}"}`, `{"p":{"a":1,"b":2}}`, ""},
		{"array keeps type", `{"e":"{{ .content.emails }}"}`, `{"e":["a@example.com","b@example.com"]}`, ""},
		{"null keeps type", `{"g":"{{ .content.gone }}"}`, `{"g":null}`, ""},
		{"string", `{"n":"{{ .event.content.name }}"}`, `{"n":"<Ann>"}`, ""},
		{"mixed text becomes a string", `{"n":"user {{ .content.userId }}"}`, `{"n":"user 1234567890123"}`, ""},
		{"two actions become a string", `{"n":"{{ .content.userId }}{{ .content.userId }}"}`, `{"n":"12345678901231234567890123"}`, ""},
		{"time formatted", `{"y":"{{ formatTime .event.time \"2006\" }}"}`, `{"y":"2026"}`, ""},
		// As README "Values from the event" documents it, for a function's
		// own Mustache text.
		{"literal braces", `{"g":"Hello {{\"{{\"}}name}}"}`, `{"g":"Hello {{name}}"}`, ""},
		// One expression keeps its value's type too. Before, an object
		// reached the function as "map[a:1 b:2]" and a number as a string.
		{"index to an element keeps its type", `{"e":"{{ index .content.emails 1 }}","p":"{{ index .content \"profile\" }}"}`, `{"e":"b@example.com","p":{"a":1,"b":2}}`, ""},
		{"an expression's number and bool", `{"n":"{{ index .content.profile \"b\" }}","on":"{{ not .content.active }}","l":"{{ len .content.emails }}"}`, `{"n":2,"on":false,"l":2}`, ""},
		{"printf gives a string", `{"s":"{{ printf \"%05d\" .content.profile.a }}","t":"{{ .content.profile.a | printf \"%d\" }}"}`, `{"s":"00001","t":"1"}`, ""},
		{"an object in text is JSON", `{"s":"p={{ .content.profile }} e={{ .content.emails }}"}`, `{"s":"p={\"a\":1,\"b\":2} e=[\"a@example.com\",\"b@example.com\"]"}`, ""},
		// Before, a null inside read "" there, and one expression's null was "".
		{"nulls stay null", `{"s":"c={{ .content }}","g":"{{ index .content \"gone\" }}"}`,
			`{"s":"c={\"active\":true,\"email\":\"ann@example.com\",\"emails\":[\"a@example.com\",\"b@example.com\"],\"gone\":null,\"ids\":[\"a@example.com\",7],\"name\":\"<Ann>\",\"profile\":{\"a\":1,\"b\":2},\"team\":[\"a@example.com\",\"nobody\"],\"userId\":1234567890123}","g":null}`, ""},
		{"an absent key is an error", `{"a":"{{ index .content.profile \"c\" }}"}`, "", `data.a: line 1: index: the map has no entry`},
		{"event fields", `{"t":"{{ .event.type }}","id":"{{ .event.id }}"}`, `{"t":"user_deleted","id":"ev-1"}`, ""},
		{"nested and ordered", `{"z":1,"a":[{"k":"{{ .content.email }}"},2,null,false],"m":{"q":"{{.event.source}}"}}`, `{"z":1,"a":[{"k":"ann@example.com"},2,null,false],"m":{"q":"test"}}`, ""},
		{"keys are not templates", `{"{{ .x }}":"v"}`, `{"{{ .x }}":"v"}`, ""},
		{"missing key", `{"user":{"id":"{{ .event.content.nope }}"}}`, "", `data.user.id: line 1: at <.event.content.nope>: map has no entry for key "nope"`},
		{"missing key in array", `{"a":["x","{{ .nope }}"]}`, "", `data.a[1]: line 1:`},
		{"syntax error", `{"a":"{{ .x "}`, "", `data.a: line 1:`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := dispatcher.ResolveValue(json.RawMessage(tt.raw), testEvent(t))
			wantError(t, err, tt.wantErr)
			if err == nil && string(got) != tt.want {
				t.Errorf("ResolveValue = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestResolveRecipients(t *testing.T) {
	tests := []struct {
		name    string
		in      dispatcher.Recipients
		want    dispatcher.Recipients
		wantErr string
	}{
		{
			name: "plain addresses",
			in:   dispatcher.Recipients{To: []string{"a@example.com"}, BCC: []string{"Audit <audit@example.com>"}},
			want: dispatcher.Recipients{To: []string{"a@example.com"}, BCC: []string{"Audit <audit@example.com>"}},
		},
		{
			name: "from the event",
			in:   dispatcher.Recipients{To: []string{"{{ .event.content.email }}"}, CC: []string{"Copy of {{ .event.id }} <copy-{{ .content.email }}>"}},
			want: dispatcher.Recipients{To: []string{"ann@example.com"}, CC: []string{"Copy of ev-1 <copy-ann@example.com>"}},
		},
		{
			name: "a list expands",
			in:   dispatcher.Recipients{To: []string{"first@example.com", "{{ .content.emails }}"}},
			want: dispatcher.Recipients{To: []string{"first@example.com", "a@example.com", "b@example.com"}},
		},
		{
			// Before, each went to the server, which may deliver a copy each.
			name: "an address once, where it comes first",
			in:   dispatcher.Recipients{To: []string{"a@example.com", "A@EXAMPLE.COM"}, CC: []string{"Ann <a@example.com>", "c@example.com"}, BCC: []string{"c@example.com", "d@example.com"}},
			want: dispatcher.Recipients{To: []string{"a@example.com"}, CC: []string{"c@example.com"}, BCC: []string{"d@example.com"}},
		},
		{
			// Its domain as it is sent: before, each went to the server
			// twice, as xn--bcher-kva.de and ff.de (a probe).
			name: "an address once, whichever way its domain is written",
			in:   dispatcher.Recipients{To: []string{"a@bücher.de", "a@xn--bcher-kva.de"}, CC: []string{"b@ﬀ.de", "b@ff.de"}},
			want: dispatcher.Recipients{To: []string{"a@bücher.de"}, CC: []string{"b@ﬀ.de"}},
		},
		{
			name:    "not an address",
			in:      dispatcher.Recipients{To: []string{"ok@example.com"}, CC: []string{"{{ .event.type }}"}},
			wantErr: `recipients.cc[0]: resolves to a string that is not an email address`,
		},
		{
			name:    "number is not an address",
			in:      dispatcher.Recipients{To: []string{"{{ .content.userId }}"}},
			wantErr: `recipients.to[0]: resolves to a number, not an email address`,
		},
		{
			// Named, not quoted: failures are shown to whoever may read
			// executions, who may not read events.
			name:    "an object is not an address, and not shown",
			in:      dispatcher.Recipients{To: []string{"{{ .content }}"}},
			wantErr: `recipients.to[0]: resolves to an object, not an email address`,
		},
		{
			name:    "missing key",
			in:      dispatcher.Recipients{To: []string{"{{ .content.nope }}"}},
			wantErr: `recipients.to[0]: line 1:`,
		},
		{
			// Which item of the list is wrong: before, only to[1].
			name:    "an item of a list is not an address",
			in:      dispatcher.Recipients{To: []string{"ok@example.com", "{{ .content.team }}"}},
			wantErr: `recipients.to[1]: resolves to a list holding a string at [1] that is not an email address`,
		},
		{
			name:    "an item of a list is not a string",
			in:      dispatcher.Recipients{To: []string{"{{ .content.ids }}"}},
			wantErr: `recipients.to[0]: resolves to a list holding a number at [1], not an email address`,
		},
		{
			name:    "null leaves no address",
			in:      dispatcher.Recipients{To: []string{"{{ .content.gone }}"}},
			wantErr: `recipients.to[0]: resolves to null, not an email address`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := dispatcher.ResolveRecipients(tt.in, testEvent(t))
			wantError(t, err, tt.wantErr)
			if err != nil {
				return
			}
			if strings.Join(got.To, ",") != strings.Join(tt.want.To, ",") ||
				strings.Join(got.CC, ",") != strings.Join(tt.want.CC, ",") ||
				strings.Join(got.BCC, ",") != strings.Join(tt.want.BCC, ",") {
				t.Errorf("ResolveRecipients = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestResolveRecipientsCap shows that a templated recipient cannot expand a
// mail beyond MaxResolvedRecipients, however many addresses the event holds,
// and that the error names the list that crossed the limit.
func TestResolveRecipientsCap(t *testing.T) {
	event := func(n int) dispatcher.Event {
		t.Helper()
		content, err := json.Marshal(map[string]any{"emails": addresses(n)})
		if err != nil {
			t.Fatal(err)
		}
		return dispatcher.Event{ID: "ev-1", Type: "t", Content: content, Time: time.Now()}
	}
	max := dispatcher.MaxResolvedRecipients
	tests := []struct {
		name    string
		in      dispatcher.Recipients
		n       int
		wantErr string
	}{
		{"exactly the limit", dispatcher.Recipients{To: []string{"{{ .content.emails }}"}}, max, ""},
		{"one over in to", dispatcher.Recipients{To: []string{"{{ .content.emails }}"}}, max + 1,
			fmt.Sprintf("recipients.to: to, cc and bcc resolve to %d addresses together; a mail may go to at most %d", max+1, max)},
		{"over once bcc adds up", dispatcher.Recipients{To: []string{"a@example.com"}, BCC: []string{"{{ .content.emails }}"}}, max,
			fmt.Sprintf("recipients.bcc: to, cc and bcc resolve to %d addresses together", max+1)},
		{"many over", dispatcher.Recipients{To: []string{"{{ .content.emails }}"}, CC: []string{"{{ .content.emails }}"}}, 900,
			"recipients.to: to, cc and bcc resolve to 1800 addresses together"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := dispatcher.ResolveRecipients(tt.in, event(tt.n))
			wantError(t, err, tt.wantErr)
			if err == nil && len(got.To)+len(got.CC)+len(got.BCC) > max {
				t.Errorf("resolved %d addresses, above the limit %d", len(got.To)+len(got.CC)+len(got.BCC), max)
			}
		})
	}
}

// An Extra Horizon event is {id, type, content, creationTimestamp}
// (milliseconds), and its templates and task functions read
// event.creationTimestamp: both see it, beside event.time. Before, a
// template using it failed ("map has no entry"), and a function got none.
func TestEventCreationTimestamp(t *testing.T) {
	ev := testEvent(t)
	want := fmt.Sprint(ev.Time.UnixMilli())
	mail, err := dispatcher.RenderMail(dispatcher.Template{Subject: "at {{ .event.creationTimestamp }}"}, ev)
	if err != nil || mail.Subject != "at "+want {
		t.Errorf("subject %q, %v; want %q", mail.Subject, err, "at "+want)
	}
	p, err := dispatcher.NewTaskPayload(dispatcher.TaskInput{Event: ev, Data: json.RawMessage(`{"at":"{{ .event.creationTimestamp }}"}`)}, 1)
	if err != nil {
		t.Fatal(err)
	}
	var data struct {
		At    json.Number `json:"at"`
		Event struct {
			CreationTimestamp json.Number `json:"creationTimestamp"`
			Time              string      `json:"time"`
		} `json:"event"`
	}
	if err := json.Unmarshal(p.Data, &data); err != nil {
		t.Fatal(err)
	}
	if data.At.String() != want || data.Event.CreationTimestamp.String() != want || data.Event.Time != "2026-11-22T05:40:00Z" {
		t.Errorf("task data %s: want at and event.creationTimestamp %s, event.time kept", p.Data, want)
	}
}
