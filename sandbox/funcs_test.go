package sandbox

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestPrintf(t *testing.T) {
	d, err := NewData(Event{ID: "e", Type: "t", Content: []byte(`{"n":42,"s":"ab"}`), Time: time.Unix(0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, format, args string
		want               string // fmt's own result when wantErr is ""
		wantErr            string
	}{
		{"plain", `"%d-%s"`, `7 .content.s`, fmt.Sprintf("%d-%s", 7, "ab"), ""},
		{"width and precision", `"%8.3f|%-5s|%05d"`, `3.14159 "x" 42`, fmt.Sprintf("%8.3f|%-5s|%05d", 3.14159, "x", 42), ""},
		{"width at the limit", `"%1000d"`, `1`, fmt.Sprintf("%1000d", 1), ""},
		{"leading zeros are a flag", `"%0001000d"`, `1`, fmt.Sprintf("%0001000d", 1), ""},
		{"percent sign", `"100%% %v"`, `.content.n`, "100% 42", ""},
		{"argument index", `"%[2]v %[1]v"`, `1 2`, fmt.Sprintf("%[2]v %[1]v", 1, 2), ""},
		{"missing argument", `"%d %d"`, `1`, "", "printf: the format takes 2 arguments, not 1"},
		{"extra argument", `"%d"`, `1 2`, "", "printf: the format takes 1 argument, not 2"},
		{"missing indexed argument", `"%[2]d"`, `1`, "", "printf: the format takes 2 arguments, not 1"},
		{"a bad argument index", `"%[x]d"`, `1`, "", "printf: an argument index of the format is not a number"},
		{"a fraction for a whole number", `"%d"`, `12.5`, "", "printf: %d prints whole numbers only"},
		{"indexed arguments may repeat and skip", `"%[2]d %[2]d"`, `1 2`, "2 2", ""},
		{"a percent sign without a verb", `"100%"`, ``, "", "printf: the format ends in a % without a verb"},
		{"a type name", `"%T"`, `1`, "", "printf: %T is not supported"},
		{"an error's verb", `"%w"`, `1`, "", "printf: %w is not supported"},
		{"a string for a number", `"%.2f"`, `.content.s`, "", "printf: %f cannot print a string"},
		{"a number for a string", `"%s|%q|%x"`, `.content.n .content.n 255`, `42|"42"|ff`, ""},
		{"a literal for a boolean", `"%t"`, `1`, "", "printf: %t cannot print a number"},
		{"an object", `"%v|%s"`, `.content .content`, `{"n":42,"s":"ab"}|{"n":42,"s":"ab"}`, ""},
		{"an object for a number", `"%d"`, `.content`, "", "printf: %d cannot print an object"},
		{"unicode around verbs", `"é%vü"`, `1`, "é1ü", ""},
		{"a gigabyte of width", `"%999999999d"`, `1`, "", "printf: width or precision 999999999 is more than 1000"},
		{"ten megabytes of width", `"%9999999d"`, `1`, "", "width or precision 9999999 is more than 1000"},
		{"width above the limit", `"%1001d"`, `1`, "", "width or precision 1001 is more than 1000"},
		{"precision above the limit", `"%.5000f"`, `1.5`, "", "width or precision 5000 is more than 1000"},
		{"star width", `"%*d"`, `5 1`, "", "printf: * widths and precisions are not supported"},
		{"star precision", `"%.*f"`, `5 1.5`, "", "* widths and precisions are not supported"},
		{"indexed star", `"%[2]*[1]d"`, `1 5`, "", "* widths and precisions are not supported"},
		{"a memory address", `"%p"`, `.`, "", "%p is not supported"},
		{"a memory address, with flags", `"%#08p"`, `.`, "", "%p is not supported"},
	}
	for _, tt := range tests {
		for _, html := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/html=%v", tt.name, html), func(t *testing.T) {
				// A declaration writes nothing, so the output limit does
				// not catch a huge width: printf itself must.
				src := fmt.Sprintf(`{{$s := printf %s %s}}{{if lt (len $s) 1000}}{{$s}}{{else}}{{len $s}}{{end}}`, tt.format, tt.args)
				got, err := d.Render("text", src, html)
				if tt.wantErr != "" {
					wantError(t, err, "text", tt.wantErr)
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				want := tt.want
				if len(want) >= 1000 {
					want = fmt.Sprint(len(want))
				}
				if !html && got != want {
					t.Fatalf("got %q, want %q", got, want)
				}
			})
		}
	}
	// The check runs when the format comes from the event, too.
	d, _ = NewData(Event{Content: []byte(`{"f":"%9999999d"}`)})
	_, err = d.Render("text", `{{$s := printf .content.f 1}}`, false)
	wantError(t, err, "text", "width or precision 9999999 is more than 1000")
}

// Before, each of these allocated ten megabytes a million times.
func TestPrintfWidthInALoop(t *testing.T) {
	d := bigData(t)
	fast(t, func() {
		_, err := d.Render("text", `{{range .content.a}}{{range $.content.a}}{{$s := printf "%9999999d" 1}}{{end}}{{end}}`, false)
		wantError(t, err, "text", "width or precision 9999999 is more than 1000")
	})
}

// Errors never quote the event's content: they reach whoever may read
// executions (an action's last error, the failures view, Temporal's
// failures), who may not read events. Before, formatTime quoted the value
// it could not parse.
func TestErrorsDoNotQuoteContent(t *testing.T) {
	const secret = "SSN-123-45-6789"
	d, err := NewData(Event{ID: "e", Type: "t", Content: []byte(`{"s":"` + secret + `","n":1}`), Time: time.Unix(0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{
		`{{ formatTime .content.s "2006" }}`,
		`{{ .content.s.x }}`,
		`{{ eq .content.s 1 }}`,
		`{{ printf "%d" .content.s }}`,
		`{{ range .content.s }}{{ end }}`,
	} {
		for _, html := range []bool{false, true} {
			_, err := d.Render("text", src, html)
			if err == nil {
				t.Errorf("%s: no error", src)
			} else if strings.Contains(err.Error(), secret) {
				t.Errorf("%s: the error quotes the content: %v", src, err)
			}
		}
	}
	if _, err := d.ResolveJSON([]byte(`{"y":"{{ formatTime .content.s \"2006\" }}"}`), "data"); err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("a resolved value's error: %v", err)
	}
}

// An error names the action as the template wrote it, not with the reads
// that meter the comparisons: before, {{ eq .content.name 1 }} failed "at
// <eq (_sandboxRead .content.name) 1>", a function the admin cannot call.
func TestErrorsShowTheActionAsWritten(t *testing.T) {
	d, err := NewData(Event{ID: "e", Type: "t", Content: []byte(`{"name":"Ann","n":3}`), Time: time.Unix(0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	for src, want := range map[string]string{
		`{{ eq .content.name 1 }}`:                        "at <eq .content.name 1>",
		`{{ if lt (index .content "name") 1 }}x{{ end }}`: `at <lt (index .content "name") 1>`,
		`{{ .content.name | ge 2 }}`:                      "at <ge 2>",
		`{{ range .content.name }}{{ end }}`:              "at <range .content.name>: range can't iterate over a string",
		`{{ .content.nope }}`:                             "at <.content.nope>: map has no entry",
		`{{ call .content.n }}`:                           "at <call .content.n>: error calling call: non-function .content.n of type number",
	} {
		_, err := d.Render("text", src, false)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "_sandbox") || strings.Contains(err.Error(), "sandbox.") {
			t.Errorf("%s: %v, want it to name %s", src, err, want)
		}
	}
}

// A template refused when saved quotes its action as written: html/template
// quotes the whole action in its errors, the budget's print included.
func TestCheckErrorShowsTheActionAsWritten(t *testing.T) {
	err := Check("html", `<a href="{{if .content.c}}/foo?{{else}}/bar/{{end}}{{.content.name}}">`, true)
	if err == nil || strings.Contains(err.Error(), "_sandbox") || !strings.Contains(err.Error(), "{{.content.name}}") {
		t.Errorf("got %v, want the action as written", err)
	}
}

// index is strict where it prints: a key an event's map lacks is an
// error, as a missing field is. Before, {{ index .content.m "nokey" }}
// printed "<no value>", in a mail's subject and in a task's data alike.
// It still tests for an optional key, with with and if.
func TestIndexIsStrict(t *testing.T) {
	d, err := NewData(Event{ID: "e", Type: "t", Content: []byte(`{"m":{"a":"x","n":{"b":"y"}},"k":"a","items":["p","q"],"i":1,"f":1.5}`), Time: time.Unix(0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	for src, want := range map[string]string{
		`{{ index .content.m "a" }}`:                                            "x",
		`{{ index .content.m .content.k }}`:                                     "x",
		`{{ index .content.m "n" "b" }}`:                                        "y",
		`{{ index .content.items 1 }}`:                                          "q",
		`{{ index .content.items .content.i }}`:                                 "q",
		`{{ if index .content.m "a" }}yes{{ end }}`:                             "yes",
		`{{ with index .content.m "nokey" }}{{ . }}{{ else }}none{{ end }}`:     "none",
		`{{ with index .content.m "nokey" "b" }}{{ . }}{{ else }}none{{ end }}`: "none",
		`{{ if not (index .content.m "nokey") }}none{{ end }}`:                  "none",
		`{{ $v := index .content.m "nokey" }}{{ if $v }}{{ $v }}{{ end }}`:      "",
	} {
		for _, html := range []bool{false, true} {
			if got, err := d.Render("t", src, html); err != nil || got != want {
				t.Errorf("%s (html %v) = %q, %v; want %q", src, html, got, err, want)
			}
		}
	}
	for src, want := range map[string]string{
		`{{ index .content.m "nokey" }}`:                "index: the map has no entry for the key",
		`{{ index .content.m "n" "nokey" }}`:            "no entry for the key",
		`{{ $v := index .content.m "nokey" }}{{ $v }}`:  "no entry for the key",
		`{{ index .content.m "nokey" | printf "%v" }}`:  "no entry for the key",
		`{{ printf "%s!" (index .content.m "nokey") }}`: "no entry for the key",
		`{{ print (index .content.m "nokey") }}`:        "no entry for the key",
		`{{ html (index .content.m "nokey") }}`:         "no entry for the key",
		`{{ index .content.items 2 }}`:                  "index: out of range",
		`{{ index .content.items -1 }}`:                 "out of range",
		`{{ index .content.items .content.f }}`:         "must be a whole number (of 64 bits at most), not a number",
		`{{ index .content.items "a" }}`:                "must be a whole number (of 64 bits at most), not a string",
		`{{ index .content.m 1 }}`:                      "an object's key must be a string, not a number",
		`{{ index .content.k 0 | printf "%c" }}`:        "",
		`{{ index .content.i 0 }}`:                      "cannot index a number",
		`{{ print nil }}`:                               "nil is not a value a template may use",
		`{{ html nil }}`:                                "nil is not a value",
		`{{ printf "%v" nil }}`:                         "nil is not a value",
		`{{ with nil }}x{{ end }}`:                      "nil is not a value",
	} {
		for _, html := range []bool{false, true} {
			got, err := d.Render("t", src, html)
			switch {
			case want == "" && err != nil:
				t.Errorf("%s (html %v): %v", src, html, err)
			case want != "" && (err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "sandbox.")):
				t.Errorf("%s (html %v) = %q, %v; want an error saying %q", src, html, got, err, want)
			}
		}
	}
	// A task's data: a value that prints it is refused too.
	if out, err := d.ResolveJSON([]byte(`{"x":"{{ index .content.m \"nokey\" }}"}`), "data"); err == nil || !strings.Contains(err.Error(), "no entry for the key") {
		t.Errorf("data with an absent key resolved to %s, %v; want it refused", out, err)
	}
}
