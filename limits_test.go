package dispatcher

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// bounded fails the test if fn does not return within a few seconds: a
// template that runs unbounded must never get that far.
func bounded(t *testing.T, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("rendering did not finish: unbounded template")
	}
}

func TestTemplateLimitsRefusedWhenSaved(t *testing.T) {
	cases := []struct{ name, text, mention string }{
		{"range over a number", "{{range 100000000000}}{{end}}", "range may only iterate over a field"},
		{"range over a small number", "{{range 5}}x{{end}}", "range may only iterate over a field"},
		{"range over len", "{{range len .content.items}}{{end}}", "range may only iterate over a field"},
		{"range over a variable", "{{$n := 7}}{{range $n}}{{end}}", "range may only iterate over a field"},
		{"big literal", "{{$n := 100000000}}{{$n}}", "beyond"},
		{"nested three deep", "{{range .a}}{{range .b}}{{range .c}}{{end}}{{end}}{{end}}", "nests deeper than 2"},
		{"define", `{{define "x"}}{{template "x" .}}{{end}}`, "not supported"},
		{"template", `{{template "x" .}}`, "not supported"},
		{"block", `{{block "x" .}}y{{end}}`, "not supported"},
		{"on line 2", "ok\n{{range 3}}{{end}}", "line 2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := ParseTemplate(Template{Name: "t", Subject: "s", Text: tc.text})
			if ErrorCode(err) != EINVALID || !strings.Contains(err.Error(), tc.mention) || !strings.Contains(err.Error(), "text") {
				t.Fatalf("got %v, want EINVALID on text mentioning %q", err, tc.mention)
			}
			err = ParseTemplate(Template{Name: "t", Subject: "s", HTML: tc.text})
			if ErrorCode(err) != EINVALID || !strings.Contains(err.Error(), tc.mention) {
				t.Fatalf("html: got %v, want EINVALID mentioning %q", err, tc.mention)
			}
		})
	}
	// What stays allowed.
	for _, ok := range []string{
		"{{range .content.items}}{{.name}}{{end}}",
		"{{range $i, $o := .content.orders}}{{range $o.lines}}{{.sku}}{{end}}{{end}}",
		"{{range $.content.items}}x{{end}}",
		"{{if gt (len .content.items) 3}}many{{end}} {{ formatTime .event.time \"2006-01-02\" }}",
	} {
		if err := ParseTemplate(Template{Name: "t", Subject: "s", Text: ok}); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
}

func TestTemplateLimitsAtRenderTime(t *testing.T) {
	big := make([]int, 50000)
	content, _ := json.Marshal(map[string]any{"n": 100000000000, "items": big})
	ev := Event{ID: "e", Type: "t", Content: content, Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	cases := []struct{ name, text, mention string }{
		// Numbers and times have no methods that return integers.
		{"range over a number's method", "{{range .content.n.Int64}}{{end}}", "Int64"},
		{"range over a time's method", "{{range .event.time.UnixNano}}{{end}}", "UnixNano"},
		// Output is capped.
		{"huge output", "{{range .content.items}}{{range $.content.items}}xxxxxxxxxxxxxxxxxxxx{{end}}{{end}}", "longer than"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bounded(t, func() {
				_, err := RenderMail(Template{Name: "t", Subject: "s", Text: tc.text}, ev)
				if ErrorCode(err) != EINVALID || !strings.Contains(err.Error(), tc.mention) {
					t.Errorf("got %v, want EINVALID mentioning %q", err, tc.mention)
				}
			})
		})
	}
	// Nested ranges over event lists see at most maxListLen elements each.
	bounded(t, func() {
		out, err := RenderMail(Template{Name: "t", Subject: "s", Text: "{{range .content.items}}{{range $.content.items}}{{end}}{{end}}{{len .content.items}}"}, ev)
		if err != nil || out.Text != "1000" {
			t.Errorf("got %q, %v; want the list cut to 1000", out.Text, err)
		}
	})
	// Values resolve under the same limits.
	bounded(t, func() {
		_, err := ResolveValue(json.RawMessage(`{"a":"{{range .content.n.Int64}}x{{end}}"}`), ev)
		if ErrorCode(err) != EINVALID {
			t.Errorf("got %v, want EINVALID", err)
		}
	})
}
