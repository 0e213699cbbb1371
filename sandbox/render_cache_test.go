package sandbox

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// countingTemplates is a template cache that counts its parses.
func countingTemplates(html bool) (*templates, *int) {
	n := new(int)
	var mu sync.Mutex
	return &templates{parse: func(name, src string, b *budget) (executor, error) {
		mu.Lock()
		*n++
		mu.Unlock()
		if html {
			return parseHTML(name, src, b)
		}
		return parseText(name, src, b)
	}}, n
}

func rowsData(t testing.TB, rows int, name string) *Data {
	t.Helper()
	list := make([]map[string]any, rows)
	for i := range list {
		list[i] = map[string]any{"a": i, "b": "x", "c": "y"}
	}
	content, _ := json.Marshal(map[string]any{"name": name, "rows": list})
	d, err := NewData(Event{ID: "e", Type: "t", Content: content, Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// A template is parsed once and rendered many times, each rendering with
// the whole step budget: one that takes more than half of it renders
// twice in a row. Before, every mail parsed its subject, text and HTML.
func TestRenderParsesOnce(t *testing.T) {
	c, parses := countingTemplates(true)
	// 1,000 rows (NewData's most) of 21 fields: about 64,000 steps.
	loop := `{{range .content.rows}}<i>` + strings.Repeat(`{{.a}}{{.b}}{{.c}}`, 7) + `</i>{{end}}`
	src := `<p>{{.content.name}}</p>` + loop
	d := rowsData(t, 1000, "Ann & Bob")
	var first string
	for i := range 3 {
		out, err := c.render("html", src, d.printable)
		if err != nil {
			t.Fatalf("rendering %d: %v", i+1, err)
		}
		if i == 0 {
			first = out
		} else if out != first {
			t.Fatalf("rendering %d differs from the first", i+1)
		}
	}
	if !strings.HasPrefix(first, "<p>Ann &amp; Bob</p><i>0xy0xy") {
		t.Fatalf("rendered %.60q…, want it escaped", first)
	}
	if *parses != 1 && !raceEnabled {
		t.Fatalf("parsed %d times for 3 renderings, want once", *parses)
	}
	// Twice the loop is over budget, and refused each time.
	for range 2 {
		if _, err := c.render("html", src+loop, d.printable); err == nil || !strings.Contains(err.Error(), errTooManySteps.Error()) {
			t.Fatalf("the loop twice: %v, want %v", err, errTooManySteps)
		}
	}
}

// Renderings of one template run concurrently, each with its own data
// and budget.
func TestRenderConcurrently(t *testing.T) {
	c, _ := countingTemplates(true)
	src := `<b>{{.content.name}}</b>{{range .content.rows}}{{.a}}{{end}}`
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				name := fmt.Sprintf("n%d-%d", g, i)
				out, err := c.render("html", src, rowsData(t, 3, name).printable)
				if want := "<b>" + name + "</b>012"; err != nil || out != want {
					t.Errorf("rendered %q, %v; want %q", out, err, want)
				}
			}
		})
	}
	wg.Wait()
}

// The sources kept are bounded: past maxCachedBytes the cache starts
// over, and renders as before; a source over maxCachedSource is parsed
// for each rendering and never kept.
func TestRenderCacheBounded(t *testing.T) {
	c, parses := countingTemplates(false)
	d := rowsData(t, 1, "Ann")
	pad := strings.Repeat(" ", 60<<10) // a kept source of 60 KiB
	n := maxCachedBytes/len(pad) + 10
	for i := range n {
		src := fmt.Sprintf("%d {{.content.name}}", i) + pad
		if out, err := c.render("subject", src, d.printable); err != nil || out != src[:strings.Index(src, " ")]+" Ann"+pad {
			t.Fatalf("%d: %.20q, %v", i, out, err)
		}
	}
	if c.bytes > maxCachedBytes {
		t.Fatalf("%d bytes of sources kept, want at most %d", c.bytes, maxCachedBytes)
	}
	big := "{{.content.name}}" + strings.Repeat(" ", maxCachedSource)
	before := *parses
	for range 2 {
		if _, err := c.render("subject", big, d.printable); err != nil {
			t.Fatal(err)
		}
	}
	if *parses-before != 2 {
		t.Fatalf("a source over %d bytes: parsed %d times for 2 renderings, want each time", maxCachedSource, *parses-before)
	}
	if _, kept := c.pools.Load(templateKey{"subject", big}); kept {
		t.Fatal("a source over maxCachedSource was kept")
	}
}

// A templated field such as a recipient's "{{ .event.content.email }}" is
// parsed once per process, not once per event; what it resolves to still
// comes from each event, a missing key still fails naming its line, and
// what the cache keeps is bounded.
func TestFieldPathsParsedOnce(t *testing.T) {
	c := &fieldPathCache{}
	saved := fieldPaths
	fieldPaths = c
	t.Cleanup(func() { fieldPaths = saved })

	const path, text = "{{ .event.content.name }}", "Hi {{ .event.content.name }}"
	for _, name := range []string{"Ann", "Bob", "Cy"} {
		got, err := rowsData(t, 0, name).ResolveJSON([]byte(`{"n":"`+path+`","g":"`+text+`"}`), "data")
		if want := `{"n":"` + name + `","g":"Hi ` + name + `"}`; err != nil || string(got) != want {
			t.Fatalf("ResolveJSON = %s, %v; want %s", got, err, want)
		}
	}
	if n := c.bytes.Load(); n != int64(len(path)+16*3+len(text)) {
		t.Fatalf("kept %d bytes for 3 events with 2 templated strings, want those of the 2 and 3 identifiers", n)
	}
	if idents, _ := c.paths.Load(path); !slices.Equal(idents.([]string), []string{"event", "content", "name"}) {
		t.Fatalf("kept %v for %q", idents, path)
	}
	if idents, ok := c.paths.Load(text); !ok || idents.([]string) != nil {
		t.Fatalf("kept %v, %v for %q, which is not one field path; want nil, kept", idents, ok, text)
	}

	_, err := rowsData(t, 0, "Ann").ResolveJSON([]byte(`{"n":"{{ .event.content.nope }}"}`), "data")
	if err == nil || !strings.Contains(err.Error(), `data.n: line 1: at <.event.content.nope>: map has no entry for key "nope"`) {
		t.Fatalf("missing key: %v", err)
	}

	// A field path too long to keep is parsed each time, and still keeps
	// the type of what it points to.
	long := "{{ .event.content.rows" + strings.Repeat(" ", maxCachedPath) + "}}"
	if got, err := rowsData(t, 1, "Ann").ResolveJSON([]byte(`"`+long+`"`), "data"); err != nil || string(got) != `[{"a":0,"b":"x","c":"y"}]` {
		t.Fatalf("a long field path = %s, %v; want the list it points to", got, err)
	}
	if _, kept := c.paths.Load(long); kept {
		t.Fatalf("a string over %d bytes was kept", maxCachedPath)
	}
	c.bytes.Store(maxCachedPathBytes)
	c.of("{{ .event.id }}")
	if _, kept := c.paths.Load(path); kept || c.bytes.Load() != int64(len("{{ .event.id }}")+16*2) {
		t.Fatalf("past %d bytes the cache did not start over (%d bytes kept)", maxCachedPathBytes, c.bytes.Load())
	}
}

// BenchmarkRenderMail renders the bench's mail template (text and HTML
// parts) as Render does, and as it did before it kept parsed templates:
// parsed, checked and instrumented for every mail.
func BenchmarkRenderMail(b *testing.B) {
	d := rowsData(b, 0, "Ann")
	parts := []struct {
		name, src string
		html      bool
	}{{"subject", "Goodbye {{ .event.content.name }}", false},
		{"text", "Goodbye {{ .event.content.name }}, your account is gone.", false},
		{"html", "<p>Goodbye <b>{{ .event.content.name }}</b>, your account is gone.</p>", true}}
	b.Run("parsed once", func(b *testing.B) {
		for b.Loop() {
			for _, p := range parts {
				if _, err := d.Render(p.name, p.src, p.html); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("parsed every time", func(b *testing.B) {
		for b.Loop() {
			for _, p := range parts {
				c := textTemplates
				if p.html {
					c = htmlTemplates
				}
				fresh := &templates{parse: c.parse}
				if _, err := fresh.render(p.name, p.src, d.printable); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// BenchmarkResolveFields resolves the bench's recipient and task data as
// ResolveJSON and Addresses do, and as they did before field paths were
// kept: parsed for every event (then, once for each string; now, with an
// empty cache, the same).
func BenchmarkResolveFields(b *testing.B) {
	d := rowsData(b, 0, "ann@example.com")
	data := []byte(`{"userId":"{{ .event.id }}"}`)
	to := []string{"{{ .event.content.name }}"}
	resolve := func(b *testing.B) {
		if _, err := d.ResolveJSON(data, "data"); err != nil {
			b.Fatal(err)
		}
		if _, err := d.Addresses("recipients.to", to); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("parsed once", func(b *testing.B) {
		for b.Loop() {
			resolve(b)
		}
	})
	b.Run("parsed every time", func(b *testing.B) {
		saved := fieldPaths
		defer func() { fieldPaths = saved }()
		for b.Loop() {
			fieldPaths = &fieldPathCache{}
			resolve(b)
		}
	})
}
