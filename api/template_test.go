package api

import (
	"fmt"
	"strings"
	"testing"

	"github.com/dispatcherhq/dispatcher/internal/testenv"
)

func TestTemplateRenderDryRun(t *testing.T) {
	hs := newHarness(t, testenv.SQLite(t))
	tmpl := hs.must(200, "POST", "/templates/v1", `{"name":"bye","subject":"Goodbye {{ .event.content.name }}",
		"text":"Bye {{ .content.name }}","html":"<p>{{ .content.name }}</p>"}`)
	id := tmpl["id"].(string)

	out := hs.must(200, "POST", "/templates/v1/"+id+"/render", `{"event":{"type":"user_deleted","content":{"name":"<Ann>"}}}`)
	if out["subject"] != "Goodbye <Ann>" || out["text"] != "Bye <Ann>" || out["html"] != "<p>&lt;Ann&gt;</p>" {
		t.Fatalf("rendered %v", out)
	}
	if len(hs.starter.events) != 0 {
		t.Fatal("a dry run started a dispatch")
	}
	code, body := hs.do("POST", "/templates/v1/"+id+"/render", `{"event":{"type":"user_deleted","content":{}}}`)
	wantError(t, code, body, 400, 15, `"name"`)
	// The sample event's own fields are named under it. Before, both
	// answered "type: is required".
	code, body = hs.do("POST", "/templates/v1/"+id+"/render", `{"content":{"name":"Ann"}}`)
	wantError(t, code, body, 400, 14, "event: is required")
	code, body = hs.do("POST", "/templates/v1/"+id+"/render", `{"event":{}}`)
	wantError(t, code, body, 400, 14, "event.type: is required")
	// Given, but not an object: not "required". Before, it was.
	code, body = hs.do("POST", "/templates/v1/"+id+"/render", `{"event":"user_deleted"}`)
	wantError(t, code, body, 400, 15, "event: must be a JSON object")
	code, body = hs.do("POST", "/templates/v1/"+id+"/render", `{"event":null}`)
	wantError(t, code, body, 400, 14, "event: is required, a JSON object")
	// An event the intake takes, an escaped surrogate alone in its content
	// kept as it came, renders too. Before, a 400 for the whole body.
	if out := hs.must(200, "POST", "/templates/v1/"+id+"/render", `{"event":{"type":"user_deleted","content":{"name":"Ann\ud800"}}}`); !strings.HasPrefix(out["subject"].(string), "Goodbye Ann") {
		t.Errorf("rendered %v, want the event with the surrogate alone", out)
	}
	// Not a body the API stores, though.
	code, body = hs.do("POST", "/templates/v1", `{"name":"half","subject":"x\ud800"}`)
	wantError(t, code, body, 400, 22, "half of a surrogate pair alone")

	code, body = hs.do("POST", "/templates/v1", `{"name":"broken","subject":"ok","text":"line one\n{{ if }}"}`)
	wantError(t, code, body, 400, 15, "line 2")
	code, body = hs.do("POST", "/templates/v1", `{"name":"bye","subject":"x","text":"y"}`)
	wantError(t, code, body, 400, 17, "bye")
	code, body = hs.do("POST", "/templates/v1", `{"name":"nobody","subject":"x"}`)
	wantError(t, code, body, 400, 14, "body")

	hs.must(200, "PUT", "/templates/v1/"+id, `{"subject":"Farewell"}`)
	if got := hs.must(200, "GET", "/templates/v1/"+id, ""); got["subject"] != "Farewell" || got["text"] != "Bye {{ .content.name }}" {
		t.Fatalf("after PUT: %v", got)
	}
}

// The sample event of a dry run is read as intake reads an event: any of
// the three envelopes, with its time. Before, a CloudEvent was refused for
// its string source, and a "time" was silently ignored (the dry run
// rendered the time of the request).
func TestTemplateRenderDryRunEnvelopes(t *testing.T) {
	hs := newHarness(t, testenv.SQLite(t))
	tmpl := hs.must(200, "POST", "/templates/v1", `{"name":"when","subject":"{{ .event.type }} {{ .event.id }} at {{ formatTime .event.time \"2006-01-02 15:04\" }}",
		"text":"{{ .event.content.name }} from {{ .event.source }}"}`)
	id := tmpl["id"].(string)
	for _, tt := range []struct{ envelope, event, subject, text string }{
		{"Extra Horizon", `{"id":"e1","type":"user_deleted","content":{"name":"Ann"},"creationTimestamp":1764824767000}`,
			"user_deleted e1 at 2025-12-04 05:06", "Ann from "},
		{"lk", `{"id":"e2","type":"user_deleted","data":{"name":"Bo"},"timestamp":"2026-03-01T10:00:00Z","source":{"producerId":"crm"}}`,
			"user_deleted e2 at 2026-03-01 10:00", "Bo from crm"},
		{"CloudEvents", `{"specversion":"1.0","id":"e3","type":"user_deleted","source":"/crm","time":"2026-05-06T07:08:00Z","data":{"name":"Cy"}}`,
			"user_deleted e3 at 2026-05-06 07:08", "Cy from /crm"},
	} {
		out := hs.must(200, "POST", "/templates/v1/"+id+"/render", `{"event":`+tt.event+`}`)
		if out["subject"] != tt.subject || out["text"] != tt.text {
			t.Errorf("%s: rendered %q / %q, want %q / %q", tt.envelope, out["subject"], out["text"], tt.subject, tt.text)
		}
	}
	code, body := hs.do("POST", "/templates/v1/"+id+"/render", `{"event":{"type":"user_deleted","content":{},"time":"2026-05-06T07:08:00Z"}}`)
	wantError(t, code, body, 400, 15, "event.time: an Extra Horizon event gives its time as creationTimestamp")
	code, body = hs.do("POST", "/templates/v1/"+id+"/render", `{"event":{"specversion":"1.0","type":"user_deleted","id":"e4"}}`)
	wantError(t, code, body, 400, 14, "event.source")
	code, body = hs.do("POST", "/templates/v1/"+id+"/render", `{"event":{"type":"user_deleted","content":{},"creationTimestamp":"soon"}}`)
	wantError(t, code, body, 400, 15, "event.creationTimestamp")
}

func TestFunctionValidation(t *testing.T) {
	hs := newHarness(t, testenv.SQLite(t))
	cases := []struct {
		body         string
		status, code int
		mention      string
	}{
		{`{"name":"f","url":"ftp://x"}`, 400, 15, "url"},
		{`{"name":"f","url":"http://x","timeoutSeconds":100000}`, 400, 15, "timeoutSeconds"},
		// Only a field left out means the default: 0 was taken as 30.
		{`{"name":"f","url":"http://x","timeoutSeconds":0}`, 400, 15, "timeoutSeconds: must be between 1 and 600"},
		{`{"name":"f","kind":"temporal"}`, 400, 14, "taskQueue"},
		{`{"name":"f","kind":"lambda","url":"http://x"}`, 400, 15, "kind"},
		{`{"url":"http://x"}`, 400, 14, "name"},
		{`{"name":"f","url":"http://x","timeoutSeconds":9223372037}`, 400, 15, "timeoutSeconds"},
		{`{"name":"f","url":"https://user:pw@example.com/hook"}`, 400, 15, "credentials"},
		{`{"name":"BulkReplay","kind":"temporal","taskQueue":"dispatcher"}`, 400, 15, "workflow of the dispatcher"},
		{`{"name":"f","url":"http://x","headers":{"bad header":"v"}}`, 400, 15, "headers"},
		// An http function's taskQueue went unchecked, and PostgreSQL's
		// VARCHAR(256) made a longer one a 500.
		{`{"name":"f","url":"https://example.com","taskQueue":"` + strings.Repeat("q", 300) + `"}`, 400, 15, "taskQueue"},
	}
	for _, tc := range cases {
		code, body := hs.do("POST", "/functions/v1", tc.body)
		wantError(t, code, body, tc.status, tc.code, tc.mention)
	}
	withKey := hs.must(200, "POST", "/functions/v1", `{"name":"keyed","url":"https://example.com","headers":{"X-Api-Key":"k3y","X-Team":"a"}}`)
	if names, _ := withKey["headerNames"].([]any); len(names) != 2 || names[0] != "X-Api-Key" || strings.Contains(fmt.Sprint(withKey), "k3y") {
		t.Fatalf("header values must be write-only: %v", withKey)
	}
	// As the README says: {} removes the headers, "" the secret, null
	// leaves each as it is.
	hs.must(200, "PUT", "/functions/v1/"+withKey["id"].(string), `{"secret":"s3cret"}`)
	hs.must(200, "PUT", "/functions/v1/"+withKey["id"].(string), `{"headers":{},"secret":null}`)
	if got := hs.must(200, "GET", "/functions/v1/"+withKey["id"].(string), ""); got["headerNames"] != nil && len(got["headerNames"].([]any)) != 0 || got["hasSecret"] != true {
		t.Fatalf("after headers {} and secret null: %v", got)
	}
	hs.must(200, "PUT", "/functions/v1/"+withKey["id"].(string), `{"secret":""}`)
	if got := hs.must(200, "GET", "/functions/v1/"+withKey["id"].(string), ""); got["hasSecret"] != false {
		t.Fatalf(`after secret "": %v`, got)
	}
	// Write-only values go to another endpoint only when sent again:
	// whoever may edit a function could otherwise read them at a host, or
	// a path on a shared host (a webhook relay), of theirs. Before, a PUT
	// of the url alone kept them, and then one on the same host.
	moved := hs.must(200, "POST", "/functions/v1", `{"name":"moved","url":"https://example.com/a","secret":"s","headers":{"X-Api-Key":"k"}}`)["id"].(string)
	hs.must(200, "PUT", "/functions/v1/"+moved, `{"url":"https://EXAMPLE.com/a"}`) // the same endpoint
	for _, tc := range []struct{ body, mention string }{
		{`{"url":"https://attacker.example/"}`, "secret, headers: are required when url changes"},
		{`{"url":"https://example.com/attacker"}`, "secret, headers: are required when url changes"},
		{`{"url":"https://example.com/a?to=attacker"}`, "secret, headers: are required when url changes"},
		{`{"url":"https://attacker:x@example.com/a"}`, "secret, headers: are required when url changes"}, // a relay routing by user
		{`{"url":"https://example.com:8443/a","headers":{}}`, "secret: is required when url changes"},
		{`{"url":"http://example.com/a","headers":{}}`, "secret: is required when url changes"},
		{`{"url":"https://attacker.example/","secret":"s2"}`, "headers: is required when url changes"},
	} {
		code, body := hs.do("PUT", "/functions/v1/"+moved, tc.body)
		wantError(t, code, body, 400, 14, tc.mention)
	}
	if got := hs.must(200, "GET", "/functions/v1/"+moved, ""); got["url"] != "https://EXAMPLE.com/a" {
		t.Fatalf("a refused move changed the function: %v", got)
	}
	hs.must(200, "PUT", "/functions/v1/"+moved, `{"url":"https://other.example/","secret":"s2","headers":{}}`)
	f := hs.must(200, "POST", "/functions/v1", `{"name":"child","kind":"temporal","taskQueue":"pii"}`)
	if f["kind"] != "temporal" || f["taskQueue"] != "pii" || f["hasSecret"] != false {
		t.Fatalf("temporal function = %v", f)
	}
}

func TestTemplateListRQL(t *testing.T) {
	hs := newHarness(t, testenv.SQLite(t))
	for _, name := range []string{"welcome", "bye", "bye-again"} {
		hs.must(200, "POST", "/templates/v1", `{"name":"`+name+`","subject":"s","text":"t"}`)
	}
	cases := []struct {
		query string
		total int
		names []string
	}{
		{"", 3, []string{"bye", "bye-again", "welcome"}},
		{"?eq(name,bye)", 1, []string{"bye"}},
		{"?like(name,bye*)&sort(-name)", 2, []string{"bye-again", "bye"}},
		// Anywhere in the name, as the Extra Horizon SDK documents like
		// ("contains the substring"); before, only a match of the whole.
		{"?like(name,again)", 1, []string{"bye-again"}},
		{"?like(name,Y*GAI)", 1, []string{"bye-again"}},
		{"?or(eq(name,welcome),eq(name,bye))&limit(1,1)", 2, []string{"welcome"}},
		{"?ne(name,bye)&select(name)", 2, []string{"bye-again", "welcome"}},
		{"?contains(name)&limit(1)", 3, []string{"bye"}},
		{"?excludes(name)", 0, nil},
	}
	for _, tc := range cases {
		page := hs.must(200, "GET", "/templates/v1"+tc.query, "")
		var names []string
		for _, d := range page["data"].([]any) {
			item := d.(map[string]any)
			names = append(names, item["name"].(string))
			// The page's templates are loaded whole (a list chooses them
			// on ids and names), unless select() keeps less.
			if _, selected := item["text"]; selected == strings.Contains(tc.query, "select") {
				t.Errorf("%s: %s came with text %v", tc.query, item["name"], item["text"])
			}
		}
		if page["page"].(map[string]any)["total"] != float64(tc.total) || strings.Join(names, ",") != strings.Join(tc.names, ",") {
			t.Errorf("%s: total %v, names %v; want %d, %v", tc.query, page["page"], names, tc.total, tc.names)
		}
	}
	code, body := hs.do("GET", "/templates/v1?eq(eventType,x)", "")
	wantError(t, code, body, 400, 19, "eventType")
	code, body = hs.do("GET", "/functions/v1?eq(colour,x)", "")
	wantError(t, code, body, 400, 19, "colour")
}
