package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
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

// wantError checks that err is an *Error on path whose message mentions
// mention.
func wantError(t *testing.T, err error, path, mention string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Path != path || !strings.Contains(e.Msg, mention) {
		t.Fatalf("got %v, want an *Error on %s mentioning %q", err, path, mention)
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
		{"big literal in a chain", "{{(index .a 100000).b}}", "beyond"},
		{"the budget's functions", "{{if _sandboxStep -100000}}{{end}}", `function "_sandboxStep" not defined`},
		{"the budget's range function", "{{_sandboxRange -5 .content.a}}", `function "_sandboxRange" not defined`},
		// What every rendering would refuse is refused when saved: a
		// printf format over the limits, formatTime with a wrong count of
		// arguments. Before, each mail of the template failed.
		{"printf width", `{{ printf "%1001d" 1 }}`, "width or precision 1001 is more than 1000"},
		{"printf star", `{{ printf "%*d" 10 1 }}`, "* widths and precisions are not supported"},
		{"printf without an argument for a verb", `{{ printf "%s and %s" .content.a }}`, "printf: the format takes 2 arguments, not 1"},
		{"printf with an argument without a verb", `{{ .content.b | printf "%s" .content.a }}`, "printf: the format takes 1 argument, not 2"},
		{"formatTime without a layout", "{{ formatTime .event.time }}", "formatTime takes 2 arguments, not 1"},
		{"formatTime piped, with two", `{{ .event.time | formatTime "a" "b" }}`, "formatTime takes 2 arguments, not 3"},
		// A field path no event has, wherever dot is the data: each
		// rendering would fail on it. Before, it was saved.
		{"misspelt root", "Hi {{ .evnt.content.name }}", "no event has .evnt: a template sees .event (id, type, content"},
		{"unknown root", "{{ .nothing }}", "no event has .nothing"},
		{"range over an unknown root", "{{ range .foo }}{{ end }}", "no event has .foo"},
		{"misspelt event field", "{{ .event.contnt.email }}", "no event has .event.contnt: .event has id, type, content"},
		{"a field of a string", "{{ .event.type.name }}", ".event.type has no field name"},
		{"from the root variable", "{{ range .content.items }}{{ $.evnt }}{{ end }}", "no event has .evnt"},
		{"in an if", "{{ if .content.a }}{{ .evnt }}{{ end }}", "no event has .evnt"},
		{"after a with", "{{ with .content.a }}{{ .x }}{{ end }}{{ .x }}", "no event has .x"},
		{"in a with's else", "{{ with .content.a }}{{ .x }}{{ else }}{{ .x }}{{ end }}", "no event has .x"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, Check("text", tc.text, false), "text", tc.mention)
			wantError(t, Check("html", tc.text, true), "html", tc.mention)
		})
	}
	// What stays allowed.
	for _, ok := range []string{
		"{{range .content.items}}{{.name}}{{end}}",
		"{{range $i, $o := .content.orders}}{{range $o.lines}}{{.sku}}{{end}}{{end}}",
		"{{range $.content.items}}x{{end}}",
		"{{if gt (len .content.items) 3}}many{{end}} {{ formatTime .event.time \"2006-01-02\" }}",
		`{{ .event.time | formatTime "2006" }} {{ printf "%5.2f|%-10s" .content.a .content.b }} {{ printf .content.format }}`,
		`{{ .content.b | printf "%s-%s" .content.a }} {{ printf "%[1]s %[1]s" .content.a }}`,
		// Within a range or a with, dot is the item or the value.
		"{{ with .content.user }}{{ .name }}{{ end }} {{ range .event.content.items }}{{ .anything }}{{ end }}",
		"{{ .event }} {{ .content }} {{ .event.id }}{{ .event.type }}{{ .event.creationTimestamp }}{{ .event.source }} {{ $.event.content.a.b }}",
		"{{ $u := .content.user }}{{ $u.name }}",
	} {
		if err := Check("text", ok, false); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
}

// A field path no event has is refused when a template is saved, not
// when one saved before renders: in a branch no event takes, it rendered,
// and renders still (and a recorded dispatch that resolved it replays).
func TestFieldPathsCheckedWhenSavedOnly(t *testing.T) {
	src := "{{ if .content.a }}{{ .foo }}{{ end }}{{ if and .content.a .evnt }}x{{ end }}ok"
	wantError(t, Check("text", src, false), "text", "no event has .foo")
	d, err := NewData(Event{ID: "e", Type: "t", Content: json.RawMessage(`{"a":false}`)})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := d.Render("text", src, false); err != nil || out != "ok" {
		t.Errorf("rendered %q, %v; want ok", out, err)
	}
	if v, err := d.ResolveJSON(json.RawMessage(`{"k":"{{ if .content.a }}{{ .foo }}{{ end }}ok"}`), "data"); err != nil || string(v) != `{"k":"ok"}` {
		t.Errorf("resolved %s, %v; want ok", v, err)
	}
}

func TestTemplateLimitsAtRenderTime(t *testing.T) {
	big := make([]int, 50000)
	content, _ := json.Marshal(map[string]any{"n": 100000000000, "items": big})
	d, err := NewData(Event{ID: "e", Type: "t", Content: content, Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, text, mention string }{
		// Numbers and times have no methods that return integers.
		{"range over a number's method", "{{range .content.n.Int64}}{{end}}", "Int64"},
		{"range over a time's method", "{{range .event.time.UnixNano}}{{end}}", "UnixNano"},
		// Output is capped.
		{"huge output", "{{range .content.items}}xxxxxxxxxxxxxxxxxxxxxxxxx{{end}}", "longer than"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bounded(t, func() {
				_, err := d.Render("text", tc.text, false)
				wantError(t, err, "text", tc.mention)
			})
		})
	}
	// Ranges over event lists see every element, and len counts them all
	// (before, lists were cut to 1,000 elements: len said 1000); nested,
	// that is billions of iterations that write nothing, which the step
	// budget stops.
	bounded(t, func() {
		out, err := d.Render("text", "{{range .content.items}}.{{end}}{{len .content.items}}", false)
		if err != nil || out != strings.Repeat(".", 50000)+"50000" {
			t.Errorf("got %d bytes ending %q, %v; want every element", len(out), out[max(0, len(out)-10):], err)
		}
		_, err = d.Render("text", "{{range .content.items}}{{range $.content.items}}{{end}}{{end}}{{len .content.items}}", false)
		wantError(t, err, "text", "line 1: the template took more than 100000 steps")
	})
	// Values resolve under the same limits.
	bounded(t, func() {
		_, err := d.ResolveJSON(json.RawMessage(`{"a":"{{range .content.n.Int64}}x{{end}}"}`), "data")
		wantError(t, err, "data.a", "Int64")
	})
}

// TestLargeMapsKeepEveryKey: a key of an event's map is there for a
// template however many keys the map has, and a range over all of them is
// bounded by the step budget, not by dropping keys. Before, maps were cut
// to their first 1,000 keys in sorted order, so {{.content.zz}} of an
// event with 1,000 other keys failed as a variable the event lacks: every
// mail of such an event failed for good.
func TestLargeMapsKeepEveryKey(t *testing.T) {
	m := map[string]any{"zz": "present"}
	for i := range 5000 {
		m[fmt.Sprintf("k%04d", i)] = i
	}
	content, _ := json.Marshal(m)
	d, err := NewData(Event{ID: "e", Type: "t", Content: content})
	if err != nil {
		t.Fatal(err)
	}
	bounded(t, func() {
		if out, err := d.Render("text", "v={{ .content.zz }}", false); err != nil || out != "v=present" {
			t.Errorf("got %q, %v; want v=present", out, err)
		}
		if out, err := d.Render("text", "{{range $k, $v := .content}}.{{end}}", false); err != nil || len(out) != 5001 {
			t.Errorf("a range over the map wrote %d bytes, %v; want one per key, 5001", len(out), err)
		}
		_, err := d.Render("text", "{{range .content}}{{range $.content}}{{end}}{{end}}", false)
		wantError(t, err, "text", "the template took more than 100000 steps")
	})
}

// An html template that ends inside a tag, an attribute, a comment or a
// script is refused naming its last line and what is open. Before, the
// error was html/template's state: "ends in a non-text context:
// {stateURL delimDoubleQuote urlPartNone jsCtxRegexp [] attrURL …}".
func TestUnclosedHTMLSaysWhat(t *testing.T) {
	for src, want := range map[string]string{
		"<p>hi</p>\n<a href=\"{{.content.x}}": `line 2: the template ends inside an attribute's value: its closing " is missing`,
		"<p>\n\n<!-- {{.content.x}}":          "line 3: the template ends inside a comment: --> is missing",
		"<script>var a = {{.content.x}};":     "line 1: the template ends inside a <script>: </script> is missing",
		"<p {{.content.x}}":                   "line 1: the template ends inside a tag: its > is missing",
		"<textarea>\n{{.content.x}}":          "line 2: the template ends inside a <textarea>: </textarea> is missing",
		"<style>p{color: {{.content.x}}}":     "line 1: the template ends inside a <style>: </style> is missing",
	} {
		err := Check("html", src, true)
		wantError(t, err, "html", want)
		if err != nil && strings.Contains(err.Error(), "state") {
			t.Errorf("%q: %v names html/template's state", src, err)
		}
	}
}
