package dispatcher_test

import (
	"encoding/json"
	netmail "net/mail"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
)

// fuzzEvent is an event whose content is raw when it is a JSON object, and
// an empty object otherwise (intake refuses other content).
func fuzzEvent(raw []byte) dispatcher.Event {
	content := json.RawMessage(`{}`)
	var obj map[string]any
	if json.Unmarshal(raw, &obj) == nil && obj != nil {
		content = json.RawMessage(raw)
	}
	return dispatcher.Event{ID: "ev-1", Type: "t", Source: "fuzz", Content: content, Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

// wantInvalid fails unless err is an EINVALID or EREQUIRED *Error with a
// message: what an admin or a producer can be told.
func wantInvalid(t *testing.T, what string, err error) {
	t.Helper()
	if c := dispatcher.ErrorCode(err); (c != dispatcher.EINVALID && c != dispatcher.EREQUIRED) || dispatcher.ErrorMessage(err) == "" {
		t.Fatalf("%s: %v (code %q) is not a client error with a message", what, err, c)
	}
}

// FuzzTemplate checks that validating any template, and rendering any
// template that validates against any event, ends without a panic, and
// with nothing worse than an EINVALID error that names what is wrong.
func FuzzTemplate(f *testing.F) {
	for _, s := range [][4]string{
		{"Hi {{ .event.content.name }}", "Hello {{ .content.name }}", "<p>{{ .content.name }}</p>", `{"name":"<Ann>"}`},
		{"{{ range .content.items }}{{ . }}{{ end }}", "{{ printf \"%05d\" .content.n }}", "", `{"items":[1,2,3],"n":7}`},
		{"{{ if .content.ok }}yes{{ else }}no{{ end }}", "{{ .event.id }} {{ .event.type }} {{ .event.time }}", "", `{"ok":true}`},
		{"{{ .nope }}", "text", "", `{}`},
		{"{{ range 1000000 }}x{{ end }}", "t", "", `{}`},
		{"{{ define \"x\" }}{{ end }}", "t", "", `{}`},
		{"subject", "", "<a href=\"{{ .content.url }}\">link</a>", `{"url":"javascript:alert(1)"}`},
		{"{{ .content.a.b.c }}", "{{ len .content.list }}", "", `{"a":{"b":{"c":null}},"list":[]}`},
	} {
		f.Add(s[0], s[1], s[2], []byte(s[3]))
	}
	f.Fuzz(func(t *testing.T, subject, text, html string, content []byte) {
		tmpl := dispatcher.Template{Name: "fuzz", Subject: subject, Text: text, HTML: html}
		if err := tmpl.Validate(); err != nil {
			wantInvalid(t, "Validate", err)
			return
		}
		if _, err := dispatcher.RenderMail(tmpl, fuzzEvent(content)); err != nil {
			wantInvalid(t, "RenderMail", err)
		}
	})
}

// FuzzResolve checks that templated recipients and action data resolve
// against any event without a panic, to at most MaxResolvedRecipients
// addresses that parse, or to valid JSON, or fail with EINVALID.
func FuzzResolve(f *testing.F) {
	for _, s := range [][3]string{
		{"{{ .event.content.email }}", `{"user":"{{ .content.userId }}","fixed":true}`, `{"email":"ann@example.com","userId":42}`},
		{"Copy of {{ .event.id }} <{{ .content.email }}>", `{"a":["x","{{ .content.list }}"]}`, `{"email":"a@example.com","list":[1,2]}`},
		{"{{ .content.emails }}", `{"n":"{{ .content.n }}"}`, `{"emails":["a@example.com","b@example.com"],"n":null}`},
		{"{{ .content.emails }}", `"{{ .content }}"`, `{"emails":["a@example.com",3]}`},
		{"plain@example.com", `[1,"{{ .nope }}"]`, `{}`},
		{"{{ .content.gone }}", `{"k":"{{ .content.gone }}"}`, `{"gone":null}`},
	} {
		f.Add(s[0], []byte(s[1]), []byte(s[2]))
	}
	f.Fuzz(func(t *testing.T, recipient string, data, content []byte) {
		ev := fuzzEvent(content)
		r, err := dispatcher.ResolveRecipients(dispatcher.Recipients{To: []string{recipient}, CC: []string{recipient}}, ev)
		if err != nil {
			wantInvalid(t, "ResolveRecipients", err)
		} else {
			all := append(append(append([]string(nil), r.To...), r.CC...), r.BCC...)
			if len(all) == 0 || len(all) > dispatcher.MaxResolvedRecipients {
				t.Fatalf("ResolveRecipients(%q) = %d addresses; want 1 to %d", recipient, len(all), dispatcher.MaxResolvedRecipients)
			}
			for _, a := range all {
				if _, err := netmail.ParseAddress(a); err != nil {
					t.Fatalf("ResolveRecipients(%q) gave %q, which does not parse: %v", recipient, a, err)
				}
			}
		}
		out, err := dispatcher.ResolveValue(data, ev)
		switch {
		case err != nil:
			wantInvalid(t, "ResolveValue", err)
		case json.Valid(data) && !json.Valid(out):
			t.Fatalf("ResolveValue(%s) = %s, not JSON", data, out)
		}
	})
}
