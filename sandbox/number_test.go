package sandbox

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// An event's numbers are kept as written, but printf's numeric verbs and
// the comparisons take them by value. Before, {{ printf "%.2f" .total }}
// mailed "%!f(sandbox.number=12.5)" and {{ if gt .count 5 }} failed.
func TestNumbersByValue(t *testing.T) {
	d, err := NewData(Event{ID: "e", Type: "t", Time: time.Unix(0, 0), Content: []byte(
		`{"n": 7, "total": 12.5, "exact": 12.50, "sci": 1e3, "neg": -3, "big": 12345678901234567890,
		  "huge": 1e400, "code": 200, "s": "7", "flag": true, "obj": {}}`)})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ src, want string }{
		{`{{ .content.exact }} {{ .content.sci }}`, "12.50 1e3"},
		{`{{ printf "%d|%05d|%x|%+d" .content.n .content.n .content.n .content.neg }}`, "7|00007|7|-3"},
		{`{{ printf "%.2f|%6.1f|%g" .content.total .content.n .content.sci }}`, "12.50|   7.0|1000"},
		{`{{ printf "%d" .content.big }}`, "12345678901234567890"},
		{`{{ printf "%f" .content.huge }}`, "+Inf"},
		{`{{ printf "%v|%s|%q|%5v" .content.exact .content.exact .content.n .content.n }}`, `12.50|12.50|"7"|    7`},
		{`{{ printf "%v" .content }}`, `{"big":12345678901234567890,"code":200,"exact":12.50,"flag":true,"huge":1e400,"n":7,"neg":-3,"obj":{},"s":"7","sci":1e3,"total":12.5}`},
		{`{{ print .content.total }}`, "12.5"},
		{`{{ if gt .content.n 5 }}a{{ end }}{{ if lt .content.total 12 }}b{{ end }}{{ if gt .content.total 12 }}c{{ end }}`, "ac"},
		{`{{ if eq .content.sci 1000 }}a{{ end }}{{ if eq .content.sci 1000.0 }}b{{ end }}{{ if eq .content.exact .content.total }}c{{ end }}`, "abc"},
		{`{{ if ge .content.neg -3 }}a{{ end }}{{ if le .content.n 6 }}b{{ end }}{{ if ne .content.n 8 }}c{{ end }}`, "ac"},
		{`{{ if eq .content.n 1 2 7 }}a{{ end }}{{ if eq .content.n 1 2 }}b{{ end }}`, "a"},
		{`{{ if gt .content.big .content.n }}a{{ end }}{{ if lt .content.n .content.huge }}b{{ end }}`, "ab"},
		{`{{ if eq .content.n (len .content.s) }}{{ else }}a{{ end }}{{ if eq 1 (len .content.s) }}b{{ end }}`, "ab"},
		// A number and a string compare as text, as they did.
		{`{{ if eq .content.code "200" }}a{{ end }}{{ if eq .content.s "7" }}b{{ end }}{{ if lt "a" "b" }}c{{ end }}`, "abc"},
		{`{{ if eq .content.flag true }}a{{ end }}{{ if ne .content.flag false }}b{{ end }}`, "ab"},
	}
	for _, tt := range tests {
		for _, html := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/html=%v", tt.src, html), func(t *testing.T) {
				got, err := d.Render("text", tt.src, html)
				if err != nil {
					t.Fatal(err)
				}
				want := tt.want
				if html {
					want = strings.NewReplacer(`"`, "&#34;", "+", "&#43;").Replace(want)
				}
				if got != want {
					t.Fatalf("got %q, want %q", got, want)
				}
			})
		}
	}
}

// An event's number that is zero is false where the template decides, as
// the template's own 0 is. Before, {{ if .unread }} was true for 0: the
// number is kept as the text "0".
func TestZeroNumbersAreFalse(t *testing.T) {
	d, err := NewData(Event{ID: "e", Type: "t", Time: time.Unix(0, 0), Content: []byte(
		`{"zero": 0, "zeros": 0.00, "negzero": -0, "tiny": 0.001, "n": 3, "s": "0", "items": [0, 2], "under": 1e-400, "zexp": 0.0e5}`)})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ src, want string }{
		{`{{ if .content.zero }}a{{ else }}b{{ end }}{{ if .content.zeros }}c{{ end }}{{ if .content.negzero }}d{{ end }}`, "b"},
		{`{{ if .content.tiny }}a{{ end }}{{ if .content.n }}b{{ end }}{{ if .content.s }}c{{ end }}`, "abc"},
		{`{{ with .content.zero }}a{{ else }}b{{ end }}{{ with .content.n }}{{ . }}{{ end }}{{ with $x := .content.zeros }}{{ else }}c{{ end }}`, "b3c"},
		{`{{ if not .content.zero }}a{{ end }}{{ if not .content.n }}b{{ end }}{{ if .content.zero | not }}c{{ end }}`, "ac"},
		{`{{ or .content.zero "none" }} {{ or .content.n "none" }} {{ and .content.n .content.zeros }} {{ and .content.s .content.n }}`, "none 3 false 3"},
		{`{{ if and .content.n (not .content.zero) }}a{{ end }}{{ if or .content.zero (index .content.items 0) }}b{{ end }}`, "a"},
		{`{{ range .content.items }}{{ if . }}{{ . }}{{ else }}-{{ end }}{{ end }}`, "-2"},
		{`{{ if index .content.items 1 }}a{{ end }}{{ if eq .content.zero 0 }}b{{ end }}{{ .content.zeros }}`, "ab0.00"},
		// Read by its digits: 1e-400 is no zero, though it is one as a float.
		{`{{ if .content.under }}a{{ end }}{{ if .content.zexp }}b{{ end }}`, "a"},
	}
	for _, tt := range tests {
		for _, html := range []bool{false, true} {
			got, err := d.Render("text", tt.src, html)
			if err != nil || got != tt.want {
				t.Errorf("%s (html=%v) = %q, %v; want %q", tt.src, html, got, err, tt.want)
			}
		}
	}
	// The functions it inserts are not the admin's to call, nor to see.
	wantError(t, Check("text", `{{ _sandboxTruth .content.n }}`, false), "text", `function "_sandboxTruth" not defined`)
	for src, want := range map[string]string{
		`{{ html (or .content.zero (index .content "k")) }}`: `line 1: at <or .content.zero (index .content "k")>: index: the map has no entry`,
		`{{ or .content.zero (index .content "k") }}`:        `line 1: index: the map has no entry`,
	} {
		_, err = d.Render("text", src, false)
		if err == nil || strings.Contains(err.Error(), "_sandbox") || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %s", src, err, want)
		}
	}
}

// A number of many digits, or a time of many, pays for them where if reads
// the one and formatTime the other. Before, 9,000 ifs of a number of
// 250,000 digits took 13 s, and formatTime of a fraction of a megabyte of
// digits 2.7 s; neither paid.
func TestLongNumbersAndTimesPay(t *testing.T) {
	items := strings.Repeat("0,", 8999) + "0"
	for _, tt := range []struct{ field, value, src string }{
		{"n", "1" + strings.Repeat("0", 250000), `{{ range .content.items }}{{ if $.content.n }}{{ end }}{{ end }}`},
		{"t", `"2026-01-02T15:04:05.` + strings.Repeat("1", 250000) + `Z"`, `{{ range .content.items }}{{ if formatTime $.content.t "x" }}{{ end }}{{ end }}`},
	} {
		d, err := NewData(Event{ID: "e", Type: "t", Time: time.Unix(0, 0), Content: []byte(`{"` + tt.field + `": ` + tt.value + `, "items": [` + items + `]}`)})
		if err != nil {
			t.Fatal(err)
		}
		fast(t, func() {
			_, err := d.Render("text", tt.src, false)
			wantError(t, err, "text", "the template took more than 100000 steps")
		})
	}
}

func TestComparisonErrors(t *testing.T) {
	d, err := NewData(Event{ID: "e", Type: "t", Time: time.Unix(0, 0), Content: []byte(`{"n": 7, "flag": true, "obj": {"a": 1}, "list": [1]}`)})
	if err != nil {
		t.Fatal(err)
	}
	for src, want := range map[string]string{
		`{{ if lt .content.flag 1 }}{{ end }}`:             "cannot compare true or false with a number",
		`{{ if eq .content.obj 1 }}{{ end }}`:              "cannot compare an object with a number",
		`{{ if eq .content.list .content.list }}{{ end }}`: "cannot compare a list with a list",
		`{{ if lt true false }}{{ end }}`:                  "cannot compare true or false with true or false",
		`{{ if eq .content.n }}{{ end }}`:                  "missing argument for comparison",
		`{{ if gt .content.n .content.nokey }}{{ end }}`:   "map has no entry for key",
	} {
		for _, html := range []bool{false, true} {
			_, err := d.Render("text", src, html)
			if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "sandbox.") {
				t.Errorf("%s (html=%v): %v, want it to say %q", src, html, err, want)
			}
		}
	}
}

// len counts the items of a list or object and the bytes of a string; an
// event's number has none. Before, len of 12345 was 5, its digits.
func TestLen(t *testing.T) {
	d, err := NewData(Event{ID: "e", Type: "t", Time: time.Unix(0, 0), Content: []byte(`{"n": 12345, "s": "abc", "o": {"a": 1}, "l": [1, 2], "flag": true}`)})
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.Render("text", `{{ len .content.s }} {{ len .content.o }} {{ len .content.l }} {{ .content.l | len }}`, false)
	if err != nil || got != "3 1 2 2" {
		t.Errorf("got %q, %v", got, err)
	}
	for src, want := range map[string]string{
		`{{ len .content.n }}`:                    "len: a number has no length",
		`{{ len .content.flag }}`:                 "len: true or false has no length",
		`{{ len (index .content "nokey") }}`:      "has no entry for the key",
		`{{ if gt (len .content.n) 3 }}{{ end }}`: "len: a number has no length",
	} {
		if _, err := d.Render("text", src, false); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want it to say %q", src, err, want)
		}
	}
}

// formatTime takes an RFC 3339 time, or milliseconds since 1970 as Extra
// Horizon's creationTimestamp and many events' own fields are written.
// Before, {{ formatTime .event.creationTimestamp "2006" }} failed: "wrong
// type for value; expected string; got int64".
func TestFormatTime(t *testing.T) {
	d, err := NewData(Event{ID: "e", Type: "t", Time: time.Date(2026, 12, 4, 5, 6, 7, 0, time.UTC), Content: []byte(
		`{"ms": 1764824767000, "at": "2026-12-04T06:06:07+01:00", "frac": 1.5, "s": "soon"}`)})
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.Render("text", `{{ formatTime .event.time "2006-01-02 15:04" }}|{{ formatTime .event.creationTimestamp "15:04:05" }}|{{ formatTime .content.ms "2006-01-02" }}|{{ formatTime .content.at "15:04 -07:00" }}`, false)
	if want := "2026-12-04 05:06|05:06:07|2025-12-04|06:06 +01:00"; err != nil || got != want {
		t.Errorf("got %q, %v; want %q", got, err, want)
	}
	for _, src := range []string{`{{ formatTime .content.frac "2006" }}`, `{{ formatTime .content.s "2006" }}`, `{{ formatTime .content "2006" }}`} {
		if _, err := d.Render("text", src, false); err == nil || !strings.Contains(err.Error(), "formatTime: the value is neither an RFC 3339 time") {
			t.Errorf("%s: %v", src, err)
		}
	}
}

// Printing a number as %f writes every digit of its whole part, and the
// budget counts them before printf builds them.
func TestPrintfWideNumbersPay(t *testing.T) {
	for n, want := range map[number]int{"7": 1, "12.50": 5, "1e300": 5 + 300, "1E+20": 5 + 20, "1e-5": 4, "1e999999": 8 + 310} {
		if got := n.width(); got != want {
			t.Errorf("width of %s = %d, want %d", n, got, want)
		}
		if got := len(fmt.Sprintf("%f", n)); got > n.width()+7 {
			t.Errorf("%%f of %s writes %d bytes, more than its width %d and the six decimals", n, got, n.width())
		}
	}
}

// An object or a list prints as JSON, its nulls as null. Before, a mail
// read map[k:v], and then {"z":""}; a null alone prints nothing, as it did.
func TestObjectsPrintAsJSON(t *testing.T) {
	d, err := NewData(Event{ID: "e", Type: "t", Time: time.Unix(0, 0), Content: []byte(
		`{"o": {"k": "v", "n": 1.50, "z": null}, "l": [1, "<a>", {"x": true}], "e": {}}`)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		src, text, html string
	}{
		{`{{ .content.o }}`, `{"k":"v","n":1.50,"z":null}`, `{&#34;k&#34;:&#34;v&#34;,&#34;n&#34;:1.50,&#34;z&#34;:null}`},
		{`[{{ .content.o.z }}]{{ if .content.o.z }}true{{ end }}{{ if eq .content.o.z "" }}empty{{ end }} {{ printf "%v|%s" .content.o .content.o.z }}`,
			`[]empty {"k":"v","n":1.50,"z":null}|`, `[]empty {&#34;k&#34;:&#34;v&#34;,&#34;n&#34;:1.50,&#34;z&#34;:null}|`},
		{`{{ .content.l }} {{ .content.e }}`, `[1,"<a>",{"x":true}] {}`, `[1,&#34;&lt;a&gt;&#34;,{&#34;x&#34;:true}] {}`},
		{`{{ range .content.l }}{{ . }};{{ end }}`, `1;<a>;{"x":true};`, `1;&lt;a&gt;;{&#34;x&#34;:true};`},
		// The other functions that print too. Before, map[k:v z:].
		{`{{ print .content.o }}|{{ println .content.l }}`, "{\"k\":\"v\",\"n\":1.50,\"z\":null}|[1,\"<a>\",{\"x\":true}]\n",
			"{&#34;k&#34;:&#34;v&#34;,&#34;n&#34;:1.50,&#34;z&#34;:null}|[1,&#34;&lt;a&gt;&#34;,{&#34;x&#34;:true}]\n"},
	} {
		for html, want := range map[bool]string{false: tt.text, true: tt.html} {
			if got, err := d.Render("text", tt.src, html); err != nil || got != want {
				t.Errorf("%s (html=%v) = %q, %v; want %q", tt.src, html, got, err, want)
			}
		}
	}
}
