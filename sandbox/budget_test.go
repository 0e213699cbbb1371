package sandbox

import (
	"encoding/json"
	"fmt"
	htmltemplate "html/template"
	"strings"
	"testing"
	"text/template"
	"time"
)

// fast fails the test if fn takes more than a second: the shapes it runs
// took seconds to minutes before the budget.
func fast(t *testing.T, fn func()) {
	t.Helper()
	done := make(chan struct{})
	start := time.Now()
	go func() { defer close(done); fn() }()
	select {
	case <-done:
		if took := time.Since(start); took > time.Second {
			t.Fatalf("rendering took %v, want at most a second", took)
		}
	case <-time.After(time.Second):
		t.Fatal("rendering took more than a second")
	}
}

// bigData is an event with a list and a map bigger than the limits, two
// long strings that differ only at the end, and a map with the second as
// its key.
func bigData(t *testing.T) *Data {
	t.Helper()
	list := make([]int, 5000)
	m := map[string]int{}
	for i := range 2000 {
		m[fmt.Sprintf("k%04d", i)] = i
	}
	s := strings.Repeat("x", 60000)
	content, err := json.Marshal(map[string]any{"a": list, "m": m, "s": s + "1", "t": s + "2", "l": map[string]int{s + "2": 1}})
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewData(Event{ID: "e", Type: "t", Content: content, Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// The shapes that ran long without writing anything now stop at the
// budget, with an error that names the line.
func TestStepBudget(t *testing.T) {
	d := bigData(t)
	const tooMany = "the template took more than 100000 steps"
	tests := []struct{ name, text, mention string }{
		{"nested ranges over lists", "{{range .content.a}}{{range $.content.a}}{{end}}{{end}}", "line 1: " + tooMany},
		{"nested ranges over maps", "\n{{range .content.m}}{{range $.content.m}}{{end}}{{end}}", "line 2: " + tooMany},
		{"nested ranges that break at once", "{{range .content.a}}{{range $.content.m}}{{break}}{{end}}{{end}}", tooMany},
		{"formatting the event again and again", `{{range .content.a}}{{range $.content.a}}{{$s := printf "%v" $.content}}{{end}}{{end}}`, tooMany},
		{"printing it again and again", `{{range .content.a}}{{range $.content.a}}{{$s := print $.content $.content}}{{end}}{{end}}`, tooMany},
		{"escaping it again and again", `{{range .content.a}}{{range $.content.a}}{{if js $.content}}{{end}}{{end}}{{end}}`, tooMany},
		{"comparing long strings", `{{range .content.a}}{{range $.content.a}}{{if eq $.content.s $.content.t}}{{end}}{{end}}{{end}}`, tooMany},
		{"comparing long strings many times in one call", `{{$s := .content.s}}{{$t := .content.t}}{{range .content.a}}{{if eq $s` + strings.Repeat(" $t", 90) + `}}{{end}}{{end}}`, tooMany},
		{"comparing a piped long string", `{{$s := .content.s}}{{$t := .content.t}}{{range .content.a}}{{if $t | lt $s}}{{end}}{{if $t | ne $s}}{{end}}{{end}}`, tooMany},
		{"indexing by a long key", `{{$m := .content.l}}{{$t := .content.t}}{{range .content.a}}{{if index $m $t}}{{end}}{{if $t | index $m}}{{end}}{{end}}`, tooMany},
		{"one printf of many copies", `{{$s := printf "` + strings.Repeat("%[1]v", 5000) + `" $.content}}`, tooMany},
		{"one print of many copies", `{{$s := print` + strings.Repeat(" $.content", 5000) + `}}`, tooMany},
		{"long time layouts", `{{range .content.a}}{{range $.content.a}}{{$s := formatTime $.event.time $.content.s}}{{end}}{{end}}`, tooMany},
	}
	for _, tt := range tests {
		for _, html := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/html=%v", tt.name, html), func(t *testing.T) {
				name := map[bool]string{false: "text", true: "html"}[html]
				fast(t, func() {
					_, err := d.Render(name, tt.text, html)
					wantError(t, err, name, tt.mention)
				})
			})
		}
	}
	// Values share one budget: many templated strings cannot each spend a
	// budget of their own.
	var raw strings.Builder
	raw.WriteString("{")
	for i := range 500 {
		fmt.Fprintf(&raw, `"k%d":"{{range .content.a}}{{range $.content.a}}{{end}}{{end}}",`, i)
	}
	raw.WriteString(`"z":1}`)
	fast(t, func() {
		_, err := d.ResolveJSON(json.RawMessage(raw.String()), "data")
		wantError(t, err, "data.k0", tooMany)
	})
}

// What an action prints pays for its size: html/template's escaper reads
// all of it, and where the value cannot go (an attribute's name, CSS, a
// a style) writes "ZgotmplZ" instead, so the output's limit did not
// stop a loop printing one long string or a large map there. One such
// loop of a thousand turns took 5,000 steps; one inside another ran for a
// minute.
func TestPrintedValuesPay(t *testing.T) {
	list := make([]int, 1000)
	m := map[string]int{}
	for i := range 2000 {
		m[fmt.Sprintf("k%04d", i)] = i
	}
	content, err := json.Marshal(map[string]any{"a": list, "m": m, "s": ";" + strings.Repeat("A", 60000)})
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewData(Event{ID: "e", Type: "t", Content: content, Time: time.Unix(0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{
		`{{range .content.a}}<div {{$.content.s}}=1></div>{{end}}`,
		`{{range .content.a}}<div {{$.content.m}}=1></div>{{end}}`,
		`<style>{{range .content.a}}p { color: {{$.content.s}} }{{end}}</style>`,
		`{{range .content.a}}<div {{$.content.s | print}}=1></div>{{end}}`,
		`{{range .content.a}}<div {{$.content.s | html}}=1></div>{{end}}`,
	} {
		_, err := d.Render("html", src, true)
		if err == nil || !strings.Contains(err.Error(), "the template took more than 100000 steps") {
			t.Errorf("%s: %v, want it out of steps", src, err)
		}
	}
	// Printing a short value costs what it did: its action's step.
	if got, err := d.Render("html", `{{range .content.a}}<div {{"x;y"}}=1></div>{{end}}`, true); err != nil || !strings.Contains(got, "ZgotmplZ") {
		t.Errorf("a short value printed a thousand times: %.40q, %v", got, err)
	}
}

// Field paths copy parts of the event into a value; all of them together
// stop at maxOutput.
func TestResolvedValueSize(t *testing.T) {
	d := bigData(t)
	raw := `{"a":"{{.content.s}}","b":"{{.content.s}}"}`
	if _, err := d.ResolveJSON(json.RawMessage(raw), "data"); err != nil {
		t.Fatalf("two copies of 60 KB: %v", err)
	}
	raw = "{" + strings.Repeat(`"a":"{{.content}}",`, 30) + `"z":1}`
	fast(t, func() {
		_, err := d.ResolveJSON(json.RawMessage(raw), "data")
		wantError(t, err, "data", "resolves to more than 1048576 bytes of JSON")
	})
}

// The budget's nodes change nothing a template writes: the sandbox and
// the plain template packages render the same, escaping included.
func TestBudgetKeepsOutput(t *testing.T) {
	content := json.RawMessage(`{"name":"<Ann & \"Bob\">","url":"javascript:alert(1)","items":["a<b","c'd",3],` +
		`"m":{"b":"</script>","a":1},"on":true,"n":12.50,"empty":""}`)
	d, err := NewData(Event{ID: "e", Type: "t", Content: content, Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	sources := []string{
		"Hi {{.content.name}}!",
		"{{range $i, $e := .content.items}}{{if $i}}, {{end}}{{$e}}{{else}}none{{end}}",
		"{{range $k, $v := .content.m}}{{$k}}={{$v}};{{end}}{{with .content.on}}on{{end}}",
		`<a href="{{.content.url}}" title="{{.content.name}}">{{.content.name}}</a>`,
		`<script>var items = [{{range .content.items}}{{.}},{{end}}]; var n = {{.content.name}};</script>`,
		`<style>p { color: {{.content.name}} }</style><p style="width: {{.content.n}}px">x</p>`,
		`<a href="/u?q={{.content.name}}&r={{range .content.items}}{{.}}{{end}}">{{printf "%5.1f|%-4s|%%" 3.14159 "ab"}}</a>`,
		`{{$x := 1}}{{range .content.items}}{{$x = .}}{{if eq (printf "%v" .) "3"}}{{break}}{{end}}{{continue}}{{end}}{{$x}}`,
		`{{print "a" 1 .content.on}}{{println .content.name}}{{html .content.name}}{{js .content.name}}{{urlquery .content.name}}`,
		`{{if not .content.on}}no{{else if .content.n}}n{{end}}{{with .content.empty}}e{{else with .content.name}}{{.}}{{end}}`,
		`{{ formatTime .event.time "2006-01-02" }} {{len .content.items}} {{index .content.items 1}} {{slice .content.name 1 4}}`,
		`<p>{{.content.name | html}}</p><a href="/?q={{.content.name | urlquery}}">{{.content.name | print | len}}</a>`,
		`{{if eq .content.name "x" .content.empty}}x{{end}}{{.content.n | eq "12.50"}} {{lt .content.name (index .content.items 0)}} {{index .content.m "b" | ge "a"}} {{ne .event.id .event.type}}`,
	}
	builtin := map[string]any{"formatTime": newBudget().funcs()["formatTime"]}
	for _, src := range sources {
		for _, html := range []bool{false, true} {
			got, err := d.Render("t", src, html)
			if err != nil {
				t.Fatalf("%q (html %v): %v", src, html, err)
			}
			var want strings.Builder
			if html {
				err = htmltemplate.Must(htmltemplate.New("t").Option("missingkey=error").Funcs(builtin).Parse(src)).Execute(&want, d.printable)
			} else {
				err = template.Must(template.New("t").Option("missingkey=error").Funcs(builtin).Parse(src)).Execute(&want, d.printable)
			}
			if err != nil {
				t.Fatalf("%q (html %v) with the plain package: %v", src, html, err)
			}
			if got != want.String() {
				t.Errorf("%q (html %v):\n got %q\nwant %q", src, html, got, want.String())
			}
		}
	}
}

// A big but ordinary mail stays far within the budget: a table of 500
// rows of 10 fields.
func TestOrdinaryTemplateWithinBudget(t *testing.T) {
	rows := make([]map[string]any, 500)
	for i := range rows {
		rows[i] = map[string]any{"sku": fmt.Sprint("sku-", i), "name": "A thing", "qty": i % 7, "price": 12.5,
			"tax": 0.21, "total": 15.13, "note": "", "warehouse": "north", "eta": "2026-01-05", "gift": i%2 == 0}
	}
	content, _ := json.Marshal(map[string]any{"customer": map[string]any{"name": "Ann"}, "rows": rows})
	d, err := NewData(Event{ID: "e", Type: "t", Content: content, Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	src := `<p>Dear {{.content.customer.name}},</p><table>{{range $i, $r := .content.rows}}<tr>
<td>{{$i}}</td><td>{{$r.sku}}</td><td>{{$r.name}}</td><td>{{$r.qty}}</td><td>{{printf "%.2f" $r.price}}</td>
<td>{{$r.tax}}</td><td>{{$r.total}}</td><td>{{if $r.note}}{{$r.note}}{{else}}-{{end}}</td><td>{{$r.warehouse}}</td>
<td>{{$r.eta}}</td><td>{{if $r.gift}}yes{{end}}</td></tr>{{end}}</table><p>Sent {{formatTime .event.time "2006-01-02"}}</p>`
	b := newBudget()
	tmpl, err := parseHTML("html", src, b)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := tmpl.Execute(&out, d.printable); err != nil {
		t.Fatal(err)
	}
	used := maxSteps - b.left
	t.Logf("%d steps for %d bytes", used, out.Len())
	if used > maxSteps/4 {
		t.Fatalf("an ordinary mail took %d of %d steps", used, maxSteps)
	}
}
