package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/dispatcherhq/dispatcher"
)

// syncFileOf reads a file given as JSON text.
func syncFileOf(t *testing.T, src string) *syncFile {
	t.Helper()
	f, err := readSyncFile("d.json", strings.NewReader(src))
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return f
}

// remoteOf builds an install's state from the API's answers as JSON.
func remoteOf(t *testing.T, dispatchers, templates, functions string) *remoteState {
	t.Helper()
	s := &remoteState{}
	for _, part := range []struct {
		src string
		v   any
	}{{dispatchers, &s.Dispatchers}, {templates, &s.Templates}, {functions, &s.Functions}} {
		if part.src == "" {
			continue
		}
		if err := decodeNumbers([]byte(part.src), part.v); err != nil {
			t.Fatalf("remote %s: %v", part.src, err)
		}
	}
	return s
}

// planLines writes each change on a line: what it is and the fields it
// changes.
func planLines(p *plan) []string {
	var out []string
	for _, c := range p.Changes {
		line := describe(c)
		var fields []string
		for _, f := range c.Fields {
			fields = append(fields, f.Field)
		}
		if len(fields) > 0 {
			line += ": " + strings.Join(fields, ",")
		}
		out = append(out, line)
	}
	return out
}

func envOf(kv ...string) func(string) string {
	return func(k string) string {
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i] == k {
				return kv[i+1]
			}
		}
		return ""
	}
}

const (
	tplWelcome = `{"id": "aaaaaaaaaaaaaaaaaaaaaaaa", "name": "welcome", "subject": "Hi", "text": "Hello"}`
	fnErase    = `{"id": "bbbbbbbbbbbbbbbbbbbbbbbb", "name": "erase", "kind": "http", "url": "https://erase.example.com/", "timeoutSeconds": 30, "hasSecret": false}`
)

// TestSyncPlanCreates: on an empty install everything is created, templates
// and functions before the dispatchers that name them; the managed tag is
// added; a template created by the same plan is left for the API to
// resolve by name.
func TestSyncPlanCreates(t *testing.T) {
	f := syncFileOf(t, `{
	  "templates": [{"name": "welcome", "subject": "Hi {{ .content.name }}", "text": "Hello"}],
	  "functions": [{"name": "erase", "url": "https://erase.example.com/", "secretEnv": "DISPATCHER_SECRET_ERASE", "headersEnv": {"X-Api-Key": "DISPATCHER_HEADER_ERASE_X_API_KEY"}}],
	  "dispatchers": [{"eventType": "user_deleted", "name": "gdpr", "tags": ["pii"], "actions": [
	    {"type": "mail", "name": "mail", "recipients": {"to": ["a@example.com"]}, "templateName": "welcome"},
	    {"type": "task", "name": "erase", "functionName": "erase", "data": {"k": 1}}]}]}`)
	p, err := makePlan(f, &remoteState{}, planOptions{Getenv: envOf("DISPATCHER_SECRET_ERASE", "s3cr3t", "DISPATCHER_HEADER_ERASE_X_API_KEY", "k3y")})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`+ template "welcome"`, `+ function "erase"`, `+ dispatcher "gdpr"`}
	if got := planLines(p); !slices.Equal(got, want) {
		t.Fatalf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	fn := p.Changes[1].body.(map[string]any)
	if fn["secret"] != "s3cr3t" || canon(fn["headers"]) != `{"X-Api-Key":"k3y"}` || fn["timeoutSeconds"] != 30 {
		t.Errorf("function body %v", fn)
	}
	d := p.Changes[2].body.(map[string]any)
	if canon(d["tags"]) != `["pii","EXH_CLI_MANAGED"]` || !slices.Equal(p.Changes[2].Actions, []string{"mail", "erase"}) {
		t.Errorf("dispatcher body %v, actions %v", canon(d), p.Changes[2].Actions)
	}
	mail := d["actions"].([]any)[0].(map[string]any)
	if mail["templateName"] != "welcome" || mail["templateId"] != nil {
		t.Errorf("mail action %v: want templateName left for the API", mail)
	}
	if p.count(opCreate) != 3 || p.Changes[0].Status != statusPlanned {
		t.Errorf("count %d, status %q", p.count(opCreate), p.Changes[0].Status)
	}
}

// ehDocsRemote is the Extra Horizon CLI documentation's example as this
// API answers it once synced.
const ehDocsRemote = `[{"id": "cccccccccccccccccccccccc", "name": "my-unique-dispatcher-name", "description": "A Dispatcher that handles my-event-type",
  "eventType": "my-event-type", "tags": ["tag1", "tag2", "EXH_CLI_MANAGED"], "creationTimestamp": 1, "updateTimestamp": 2,
  "actions": [
    {"id": "dddddddddddddddddddddddd", "type": "task", "name": "my-task-action", "description": "Create a task that handles my-event-type",
     "functionName": "my-function-name", "data": {"customStringField": "myStringHere", "customNumberField": 42},
     "tags": ["tag1", "tag2"], "startTimestamp": "2024-01-01T00:00:00.000Z", "creationTimestamp": 1, "updateTimestamp": 1},
    {"id": "eeeeeeeeeeeeeeeeeeeeeeee", "type": "mail", "name": "my-mail-action", "description": "Send an email about my-event-type",
     "recipients": {"to": ["john.doe@example.com"], "cc": ["jane.doe@example.com"], "bcc": ["bcc@example.com"]},
     "templateId": "abcdef0123456789abcdef013456789ab", "creationTimestamp": 1, "updateTimestamp": 1}]}]`

// TestSyncPlanNothingOnceApplied: the documentation's file against the
// install it made plans nothing, whatever the API writes differently
// (ids, timestamps, the managed tag).
func TestSyncPlanNothingOnceApplied(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "sync", "exh-docs-dispatchers.json"))
	if err != nil {
		t.Fatal(err)
	}
	remote := remoteOf(t, ehDocsRemote,
		`[{"id": "abcdef0123456789abcdef013456789ab", "name": "docs", "subject": "s", "text": "t"}]`,
		`[{"id": "ffffffffffffffffffffffff", "name": "my-function-name", "kind": "http", "url": "https://f.example.com", "timeoutSeconds": 30}]`)
	p, err := makePlan(syncFileOf(t, string(b)), remote, planOptions{Clean: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Changes) != 0 {
		t.Fatalf("a second run plans %v", planLines(p))
	}
	// Nor is a tag named twice, which the API keeps once.
	f := syncFileOf(t, strings.Replace(string(b), `"tags": ["tag1", "tag2"]`, `"tags": ["tag1", "tag2", "tag1"]`, 1))
	if p, err := makePlan(f, remote, planOptions{}); err != nil || len(p.Changes) != 0 {
		t.Fatalf("a tag named twice: %v %v", err, planLines(p))
	}
	// The same instant written as epoch milliseconds is no change either.
	f = syncFileOf(t, strings.Replace(string(b), `"2024-01-01T00:00:00.000Z"`, `1704067200000`, 1))
	if p, err := makePlan(f, remote, planOptions{}); err != nil || len(p.Changes) != 0 {
		t.Fatalf("epoch ms start: %v %v", err, p)
	}
}

// TestSyncPlanChanges: what each kind of difference plans.
func TestSyncPlanChanges(t *testing.T) {
	const gdpr = `{"id": "111111111111111111111111", "name": "gdpr", "eventType": "user_deleted", "description": "old", "tags": ["a", "EXH_CLI_MANAGED"], "actions": [
	  {"id": "222222222222222222222222", "type": "task", "name": "erase", "functionName": "erase", "data": {"k": 1}},
	  {"id": "333333333333333333333333", "type": "mail", "name": "old-mail", "recipients": {"to": ["a@example.com"]}, "templateId": "aaaaaaaaaaaaaaaaaaaaaaaa"},
	  {"id": "444444444444444444444444", "type": "mail", "name": "notify", "recipients": {"to": ["a@example.com"]}, "templateId": "aaaaaaaaaaaaaaaaaaaaaaaa"}]}`
	const gdprFile = `{"eventType": "user_deleted", "name": "gdpr", "description": "new", "tags": ["a", "b"], "actions": [
	  {"type": "task", "name": "erase", "functionName": "erase", "data": {"k": 2}},
	  {"type": "task", "name": "notify", "functionName": "erase"},
	  {"type": "task", "name": "sms", "functionName": "erase"}]}`
	for _, tt := range []struct {
		name        string
		remote      string // dispatchers
		file        string // dispatchers
		opts        planOptions
		want        []string
		wantProblem string
	}{
		{name: "fields and actions", remote: "[" + gdpr + "]", file: "[" + gdprFile + "]", want: []string{
			`~ dispatcher "gdpr": description,tags`,
			`- action "old-mail" of dispatcher "gdpr"`,
			`- action "notify" of dispatcher "gdpr"`, // its type changes: deleted, then created again
			`~ action "erase" of dispatcher "gdpr": data`,
			`+ action "notify" of dispatcher "gdpr"`,
			`+ action "sms" of dispatcher "gdpr"`,
		}},
		{name: "unmanaged dispatcher of the same name", remote: `[{"id": "111111111111111111111111", "name": "gdpr", "eventType": "user_deleted", "tags": [], "actions": []}]`,
			file: `[{"eventType": "user_deleted", "name": "gdpr", "actions": []}]`, wantProblem: `d.json: dispatcher "gdpr" (dispatchers[0]): name: the install has a dispatcher named "gdpr" (id 111111111111111111111111) that sync does not manage`},
		// Its other problems in the same run. Before, only after --adopt.
		{name: "unmanaged, and naming a template that does not exist", remote: `[{"id": "111111111111111111111111", "name": "gdpr", "eventType": "user_deleted", "tags": [], "actions": []}]`,
			file:        `[{"eventType": "user_deleted", "name": "gdpr", "actions": [{"type": "mail", "name": "m", "recipients": {"to": ["a@example.com"]}, "templateName": "nope"}]}]`,
			wantProblem: `actions[0].templateName: no template named "nope"`},
		{name: "adopted", remote: `[{"id": "111111111111111111111111", "name": "gdpr", "eventType": "user_deleted", "tags": [], "actions": []}]`,
			file: `[{"eventType": "user_deleted", "name": "gdpr", "actions": []}]`, opts: planOptions{Adopt: true},
			want: []string{`~ dispatcher "gdpr": tags`}},
		{name: "clean deletes managed only", remote: `[
			{"id": "111111111111111111111111", "name": "legacy", "eventType": "e", "tags": ["EXH_CLI_MANAGED"], "actions": []},
			{"id": "555555555555555555555555", "name": "manual", "eventType": "e", "tags": ["x"], "actions": []}]`,
			file: `[]`, opts: planOptions{Clean: true}, want: []string{`- dispatcher "legacy"`}},
		// One without a name by its id, as a nameless action: a probe's
		// plan said dispatcher "".
		{name: "clean deletes a nameless one", remote: `[{"id": "111111111111111111111111", "eventType": "e", "tags": ["EXH_CLI_MANAGED"], "actions": []}]`,
			file: `[]`, opts: planOptions{Clean: true}, want: []string{`- dispatcher "(no name, id 111111111111111111111111)"`}},
		{name: "clean with an empty dispatchers list", remote: `[{"id": "111111111111111111111111", "name": "legacy", "eventType": "e", "tags": ["EXH_CLI_MANAGED"], "actions": []}]`,
			file: `{"dispatchers": []}`, opts: planOptions{Clean: true}, want: []string{`- dispatcher "legacy"`}},
		// Before, a file of templates alone deleted every managed one.
		{name: "clean without a dispatchers list", remote: `[{"id": "111111111111111111111111", "name": "legacy", "eventType": "e", "tags": ["EXH_CLI_MANAGED"], "actions": []}]`,
			file: `{"templates": []}`, opts: planOptions{Clean: true}, wantProblem: `d.json: --clean deletes the managed dispatchers that the file lacks, and it has no "dispatchers"`},
		{name: "no clean, no delete", remote: `[{"id": "111111111111111111111111", "name": "legacy", "eventType": "e", "tags": ["EXH_CLI_MANAGED"], "actions": []}]`,
			file: `[]`},
		{name: "rename", remote: `[{"id": "111111111111111111111111", "name": "old", "eventType": "e", "tags": ["EXH_CLI_MANAGED"], "actions": []}]`,
			file: `[{"eventType": "e", "name": "new", "actions": []}]`, opts: planOptions{Renames: map[string]string{"old": "new"}, Clean: true},
			want: []string{`~ dispatcher "new": name`}},
		{name: "rename made already", remote: `[{"id": "111111111111111111111111", "name": "new", "eventType": "e", "tags": ["EXH_CLI_MANAGED"], "actions": []}]`,
			file: `[{"eventType": "e", "name": "new", "actions": []}]`, opts: planOptions{Renames: map[string]string{"old": "new"}}},
		{name: "rename to a name not in the file", file: `[{"eventType": "e", "name": "new", "actions": []}]`, opts: planOptions{Renames: map[string]string{"old": "newer"}},
			wantProblem: `d.json: --rename old=newer: the file has no dispatcher named "newer"`},
		{name: "extensions set and cleared", remote: `[
			{"id": "111111111111111111111111", "name": "a", "eventType": "e", "tags": ["EXH_CLI_MANAGED"], "actions": [], "enabled": false, "ordering": {"key": "content.userId", "onFailure": "block"}},
			{"id": "555555555555555555555555", "name": "b", "eventType": "e", "tags": ["EXH_CLI_MANAGED"], "actions": [], "ordering": {"key": "content.userId", "onFailure": "block"}}]`,
			file: `[{"eventType": "e", "name": "a", "actions": []}, {"eventType": "e", "name": "b", "actions": [], "enabled": false, "filter": "event.content.x > 1", "ordering": {"key": "content.userId"}}]`,
			want: []string{`~ dispatcher "a": enabled,ordering`, `~ dispatcher "b": enabled,filter`}},
		// Before, in the file's order: the change of a's key failed while b
		// still held the old one, at every run (a probe).
		{name: "an ordering removed goes first", remote: `[
			{"id": "111111111111111111111111", "name": "a", "eventType": "e", "tags": ["EXH_CLI_MANAGED"], "actions": [], "ordering": {"key": "content.a", "onFailure": "block"}},
			{"id": "555555555555555555555555", "name": "b", "eventType": "e", "tags": ["EXH_CLI_MANAGED"], "actions": [], "ordering": {"key": "content.a", "onFailure": "block"}}]`,
			file: `[{"eventType": "e", "name": "a", "actions": [], "ordering": {"key": "content.b"}}, {"eventType": "e", "name": "b", "actions": []}]`,
			want: []string{`~ dispatcher "b": ordering`, `~ dispatcher "a": ordering`}},
		// With its actions' changes, which go in one request with it.
		{name: "an ordering removed goes first with its actions", remote: `[
			{"id": "111111111111111111111111", "name": "a", "eventType": "e", "tags": ["EXH_CLI_MANAGED"], "actions": [], "ordering": {"key": "content.a", "onFailure": "block"}},
			{"id": "555555555555555555555555", "name": "b", "eventType": "e", "tags": ["EXH_CLI_MANAGED"], "actions": [], "ordering": {"key": "content.a", "onFailure": "block"}}]`,
			file: `[{"eventType": "e", "name": "a", "actions": [], "ordering": {"key": "content.b"}}, {"eventType": "e", "name": "b", "actions": [{"type": "task", "name": "t", "functionName": "erase"}]}]`,
			want: []string{`~ dispatcher "b": ordering`, `+ action "t" of dispatcher "b"`, `~ dispatcher "a": ordering`}},
		// Likewise an ordered dispatcher --clean deletes (a review).
		{name: "an ordered dispatcher deleted goes first", remote: `[
			{"id": "111111111111111111111111", "name": "a", "eventType": "e", "tags": ["EXH_CLI_MANAGED"], "actions": [], "ordering": {"key": "content.a", "onFailure": "block"}},
			{"id": "555555555555555555555555", "name": "b", "eventType": "e", "tags": ["EXH_CLI_MANAGED"], "actions": [], "ordering": {"key": "content.a", "onFailure": "block"}}]`,
			file: `[{"eventType": "e", "name": "a", "actions": [], "ordering": {"key": "content.b"}}]`, opts: planOptions{Clean: true},
			want: []string{`- dispatcher "b"`, `~ dispatcher "a": ordering`}},
		{name: "a field sync does not know passes through", remote: `[{"id": "111111111111111111111111", "name": "a", "eventType": "e", "tags": ["EXH_CLI_MANAGED"], "actions": [], "priority": 5}]`,
			file: `[{"eventType": "e", "name": "a", "actions": [], "priority": 5}, {"eventType": "e", "name": "b", "actions": [], "priority": 7}]`,
			want: []string{`+ dispatcher "b"`}},
		{name: "unknown template id", file: `[{"eventType": "e", "name": "a", "actions": [{"type": "mail", "name": "m", "recipients": {"to": ["a@example.com"]}, "templateId": "abcdef0123456789abcdef013456789ab"}]}]`,
			wantProblem: `d.json: dispatcher "a" (dispatchers[0]): actions[0].templateId: no template with id "abcdef0123456789abcdef013456789ab" on the install`},
		{name: "unknown template name", file: `[{"eventType": "e", "name": "a", "actions": [{"type": "mail", "name": "m", "recipients": {"to": ["a@example.com"]}, "templateName": "bye"}]}]`,
			wantProblem: `actions[0].templateName: no template named "bye"`},
		{name: "template name resolved", file: `[{"eventType": "e", "name": "a", "actions": [{"type": "mail", "name": "m", "recipients": {"to": ["a@example.com"]}, "templateName": "welcome"}]}]`,
			remote: `[{"id": "111111111111111111111111", "name": "a", "eventType": "e", "tags": ["EXH_CLI_MANAGED"], "actions": [{"id": "222222222222222222222222", "type": "mail", "name": "m", "recipients": {"to": ["a@example.com"]}, "templateId": "aaaaaaaaaaaaaaaaaaaaaaaa"}]}]`},
		// An action without a name cannot be matched (export leaves it
		// out): its deletion names it by id, and says why.
		{name: "an action without a name", remote: `[{"id": "111111111111111111111111", "name": "a", "eventType": "e", "tags": ["EXH_CLI_MANAGED"], "actions": [{"id": "222222222222222222222222", "type": "task", "functionName": "erase"}]}]`,
			file: `[{"eventType": "e", "name": "a", "actions": []}]`,
			want: []string{`- action "(no name, id 222222222222222222222222)" of dispatcher "a"`}},
		{name: "unknown function", file: `[{"eventType": "e", "name": "a", "actions": [{"type": "task", "name": "t", "functionName": "nope"}]}]`,
			wantProblem: `actions[0].functionName: no function named "nope"`},
		{name: "the API's own validation", file: `[{"eventType": "e", "name": "a", "actions": [{"type": "mail", "name": "m", "recipients": {"to": ["not an address"]}, "templateName": "welcome"}]}]`,
			wantProblem: `d.json: dispatcher "a" (dispatchers[0]): actions[0].recipients.to[0]: "not an address" is not an email address`},
		{name: "bad start time", file: `[{"eventType": "e", "name": "a", "actions": [{"type": "task", "name": "t", "functionName": "erase", "startTimestamp": "tomorrow"}]}]`,
			wantProblem: `actions[0].startTimestamp: "tomorrow" is not an ISO-8601 date-time`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := syncFileOf(t, tt.file)
			p, err := makePlan(f, remoteOf(t, tt.remote, "["+tplWelcome+"]", "["+fnErase+"]"), tt.opts)
			if tt.wantProblem != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantProblem) {
					t.Fatalf("error %v, want %q", err, tt.wantProblem)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := planLines(p); !slices.Equal(got, tt.want) {
				t.Fatalf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestSyncPlanSaysScheduledActionsStillRun: deleting a dispatcher, or an
// action (also to create it again as another type), that runs at a startTimestamp says that what its dispatches
// scheduled still runs, and how to call it off; one without says nothing
// of it. Before, the plan said nothing, and the calls came all the same.
func TestSyncPlanSaysScheduledActionsStillRun(t *testing.T) {
	const remote = `[
		{"id": "111111111111111111111111", "name": "later", "eventType": "e", "tags": ["EXH_CLI_MANAGED"], "actions": [
		  {"id": "222222222222222222222222", "type": "task", "name": "t", "functionName": "erase", "startTimestamp": "2030-01-01T00:00:00.000Z"}]},
		{"id": "555555555555555555555555", "name": "now", "eventType": "e", "tags": ["EXH_CLI_MANAGED"], "actions": [
		  {"id": "666666666666666666666666", "type": "task", "name": "t", "functionName": "erase"},
		  {"id": "777777777777777777777777", "type": "task", "name": "later", "functionName": "erase", "startTimestamp": "2030-01-01T00:00:00.000Z"},
		  {"id": "888888888888888888888888", "type": "task", "name": "retyped", "functionName": "erase", "startTimestamp": "2030-01-01T00:00:00.000Z"}]}]`
	p, err := makePlan(syncFileOf(t, `[{"eventType": "e", "name": "now", "actions": [
		  {"type": "mail", "name": "retyped", "recipients": {"to": ["a@example.com"]}, "templateName": "welcome"}]}]`),
		remoteOf(t, remote, "["+tplWelcome+"]", "["+fnErase+"]"), planOptions{Clean: true})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		`- dispatcher "later"`:                   "--status scheduled --dispatcher-id 111111111111111111111111",
		`- action "later" of dispatcher "now"`:   "--status scheduled --dispatcher-id 555555555555555555555555",
		`- action "t" of dispatcher "now"`:       "",
		`- action "retyped" of dispatcher "now"`: "--status scheduled --dispatcher-id 555555555555555555555555",
		`+ action "retyped" of dispatcher "now"`: "",
	}
	lines := planLines(p)
	if len(lines) != len(want) {
		t.Fatalf("plan %q, want %d changes", lines, len(want))
	}
	for i, c := range p.Changes {
		w, ok := want[lines[i]]
		if !ok || w == "" && strings.Contains(c.Note, "scheduled") || w != "" && !strings.Contains(c.Note, "still run: `dispatcher executions list "+w+"`") {
			t.Errorf("%s: note %q, want one naming %q", lines[i], c.Note, w)
		}
	}
}

// Names the install holds from before control characters were refused
// (a tab) do not refuse a file that names them as they are, exported from
// it; a new one does. Before, the whole plan was refused (a review).
func TestSyncPlanTakesStoredNamesWithControlCharacters(t *testing.T) {
	remote := remoteOf(t, `[{"id": "111111111111111111111111", "name": "a\tb", "eventType": "e", "tags": ["EXH_CLI_MANAGED"],
		"actions": [{"id": "222222222222222222222222", "type": "task", "name": "x\ty", "functionName": "e\tf"}]}]`,
		`[{"id": "aaaaaaaaaaaaaaaaaaaaaaaa", "name": "w\tx", "subject": "Hi", "text": "Hello"}]`,
		`[{"id": "bbbbbbbbbbbbbbbbbbbbbbbb", "name": "e\tf", "kind": "http", "url": "https://erase.example.com/", "timeoutSeconds": 30, "hasSecret": false}]`)
	file := `{"templates": [{"name": "w\tx", "subject": "Hi", "text": "Hello"}],
		"functions": [{"name": "e\tf", "url": "https://erase.example.com/", "timeoutSeconds": 30}],
		"dispatchers": [{"eventType": "e", "name": "a\tb", "actions": [{"type": "task", "name": "x\ty", "functionName": "e\tf"}]}]}`
	p, err := makePlan(syncFileOf(t, file), remote, planOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := planLines(p); len(got) != 0 {
		t.Errorf("plan:\n%s\nwant no change", strings.Join(got, "\n"))
	}
	file = `[{"eventType": "e", "name": "a\tb", "actions": [{"type": "task", "name": "x\tz", "functionName": "e\tf"}]}]`
	if _, err := makePlan(syncFileOf(t, file), remote, planOptions{}); err == nil || !strings.Contains(err.Error(), "actions[0].name: must not contain control characters") {
		t.Errorf("a new action named with a tab: %v, want it refused", err)
	}
}

// Every problem of a dispatcher is listed, once: before, a bad
// startTimestamp was listed twice (sync's check and the API's), and the
// API's check stopped there, hiding a bad filter.
func TestSyncPlanListsEachProblemOnce(t *testing.T) {
	file := `[{"eventType": "e", "name": "a", "filter": "event.typo == 1", "actions": [{"type": "task", "name": "t", "functionName": "erase", "startTimestamp": "tomorrow"}]}]`
	_, err := makePlan(syncFileOf(t, file), remoteOf(t, "", "["+tplWelcome+"]", "["+fnErase+"]"), planOptions{})
	if err == nil {
		t.Fatal("no problem")
	}
	msg := err.Error()
	if n := strings.Count(msg, `actions[0].startTimestamp: "tomorrow" is not an ISO-8601 date-time`); n != 1 {
		t.Errorf("the start time is listed %d times, want once:\n%s", n, msg)
	}
	if !strings.Contains(msg, "filter: ") {
		t.Errorf("the filter's problem is not listed:\n%s", msg)
	}
}

// A problem in each of several actions, and in the dispatcher's own
// fields, is listed at once. Before, the API's check stopped at the
// first: a file with five took five runs to fix.
func TestSyncPlanListsEveryActionsProblem(t *testing.T) {
	file := `[{"eventType": "e", "name": "a", "ordering": {"key": "nope"}, "actions": [
		{"type": "task", "name": "t1", "functionName": "erase", "retryPolicy": {"maximumAttempts": 1000}},
		{"type": "task", "name": "t2", "functionName": "erase", "retryPolicy": {"backoffCoefficient": 0.5}},
		{"type": "mail", "name": "m", "templateName": "welcome", "recipients": {"to": ["not an address"]}}]}]`
	_, err := makePlan(syncFileOf(t, file), remoteOf(t, "", "["+tplWelcome+"]", "["+fnErase+"]"), planOptions{})
	if err == nil {
		t.Fatal("no problem")
	}
	msg := err.Error()
	for _, want := range []string{"ordering.key: ", "actions[0].retryPolicy.maximumAttempts: ", "actions[1].retryPolicy.backoffCoefficient: ", "actions[2].recipients.to"} {
		if strings.Count(msg, want) != 1 {
			t.Errorf("%q is not listed once:\n%s", want, msg)
		}
	}
}

// TestSyncPlanUpdateBodies: an update sends only what changed, and what a file
// leaves out returns to its default.
func TestSyncPlanUpdateBodies(t *testing.T) {
	remote := remoteOf(t, `[{"id": "111111111111111111111111", "name": "a", "eventType": "e", "tags": ["EXH_CLI_MANAGED"], "enabled": false,
	  "ordering": {"key": "content.userId", "onFailure": "block"}, "actions": [
	  {"id": "222222222222222222222222", "type": "task", "name": "t", "functionName": "erase", "data": {"k": 1}, "startTimestamp": "2030-01-01T00:00:00.000Z", "retryPolicy": {"maximumAttempts": 3}}]}]`,
		"", "["+fnErase+"]")
	f := syncFileOf(t, `[{"eventType": "e", "name": "a", "description": "d", "actions": [{"type": "task", "name": "t", "functionName": "erase"}]}]`)
	p, err := makePlan(f, remote, planOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Changes) != 2 {
		t.Fatalf("plan %v", planLines(p))
	}
	if got := canon(p.Changes[0].body); got != `{"description":"d","enabled":true,"ordering":{}}` {
		t.Errorf("dispatcher PUT body %s", got)
	}
	if got := canon(p.Changes[1].body); got != `{"data":null,"retryPolicy":null,"startTimestamp":null}` {
		t.Errorf("action PUT body %s", got)
	}
	if p.Changes[0].method != "PUT" || p.Changes[0].path != "/dispatchers/v1/111111111111111111111111" ||
		p.Changes[1].path != "/dispatchers/v1/111111111111111111111111/actions/222222222222222222222222" {
		t.Errorf("calls %s %s, %s", p.Changes[0].method, p.Changes[0].path, p.Changes[1].path)
	}
}

// TestSyncPlanSecrets: secrets come from the environment and are written only
// when the API lacks them, or with --update-secrets; a file without one
// removes it.
func TestSyncPlanSecrets(t *testing.T) {
	withSecret := `{"id": "bbbbbbbbbbbbbbbbbbbbbbbb", "name": "erase", "kind": "http", "url": "https://erase.example.com/", "timeoutSeconds": 30, "hasSecret": true, "headerNames": ["X-Api-Key"]}`
	file := `{"functions": [{"name": "erase", "url": "https://erase.example.com/", "secretEnv": "DISPATCHER_SECRET_ERASE", "headersEnv": {"X-Api-Key": "DISPATCHER_HEADER_ERASE_X_API_KEY"}}]}`
	for _, tt := range []struct {
		name, remote, file string
		opts               planOptions
		want               string // the plan's lines, or the problem
	}{
		{"not set", fnErase, file, planOptions{}, `d.json: function "erase" (functions[0]): secretEnv: the environment variable DISPATCHER_SECRET_ERASE is not set`},
		// A dry run plans without secrets (a pull request's check has
		// none): the same function is planned, and warned of.
		{"not set, in a dry run", fnErase, file, planOptions{DryRun: true}, `~ function "erase": secret,headers`},
		{"written when the API lacks it", fnErase, file, planOptions{Getenv: envOf("DISPATCHER_SECRET_ERASE", "s", "DISPATCHER_HEADER_ERASE_X_API_KEY", "k")}, `~ function "erase": secret,headers`},
		{"the API has it", withSecret, file, planOptions{}, ``},
		{"--update-secrets", withSecret, file, planOptions{UpdateSecrets: true, Getenv: envOf("DISPATCHER_SECRET_ERASE", "s", "DISPATCHER_HEADER_ERASE_X_API_KEY", "k")}, `~ function "erase": secret,headers`},
		// The API keeps them for the same URL only, its host in any case.
		{"url in another case", withSecret, strings.Replace(file, "erase.example.com/", "ERASE.example.com/", 1), planOptions{}, `~ function "erase": url`},
		{"url on another path", withSecret, strings.Replace(file, "example.com/", "example.com/v2", 1),
			planOptions{UpdateSecrets: true, Getenv: envOf("DISPATCHER_SECRET_ERASE", "s", "DISPATCHER_HEADER_ERASE_X_API_KEY", "k")}, `~ function "erase": url,secret,headers`},
		{"url on another host", withSecret, strings.Replace(file, "erase.example.com/", "erase.example.org/", 1),
			planOptions{UpdateSecrets: true, Getenv: envOf("DISPATCHER_SECRET_ERASE", "s", "DISPATCHER_HEADER_ERASE_X_API_KEY", "k")}, `~ function "erase": url,secret,headers`},
		// Before, the function's own variables went to whatever URL the
		// file named: a pull request changing the URL alone sent them there.
		{"url on another host, unasked", withSecret, strings.Replace(file, "erase.example.com/", "attacker.example.org/", 1),
			planOptions{Getenv: envOf("DISPATCHER_SECRET_ERASE", "s", "DISPATCHER_HEADER_ERASE_X_API_KEY", "k")},
			`d.json: function "erase" (functions[0]): url: moves function "erase" to another URL, where its secret and header values would be sent; the file chooses that URL, so sync sends them there only with --update-secrets`},
		{"url on another host, no secret kept", fnErase, strings.Replace(file, "erase.example.com/", "erase.example.org/", 1),
			planOptions{Getenv: envOf("DISPATCHER_SECRET_ERASE", "s", "DISPATCHER_HEADER_ERASE_X_API_KEY", "k")}, `~ function "erase": url,secret,headers`},
		{"removed", withSecret, `{"functions": [{"name": "erase", "url": "https://erase.example.com/", "timeoutSeconds": 10}]}`, planOptions{}, `~ function "erase": timeoutSeconds,secret,headers`},
		// A file from a pull request must not send the sync's own
		// credentials, or the server's, to a URL of its choosing.
		{"the sync's token", fnErase, `{"functions": [{"name": "erase", "url": "https://erase.example.com/", "secretEnv": "DISPATCHER_TOKEN"}]}`,
			planOptions{Getenv: envOf("DISPATCHER_TOKEN", "t")}, `d.json: function "erase" (functions[0]): secretEnv: DISPATCHER_TOKEN configures dispatcher itself; a function's secret is read from a variable of its own`},
		{"the server's key, as a header", fnErase, `{"functions": [{"name": "erase", "url": "https://erase.example.com/", "headersEnv": {"X-Key": "DISPATCHER_ENCRYPTION_KEY"}}]}`,
			planOptions{DryRun: true}, `d.json: function "erase" (functions[0]): headersEnv.X-Key: DISPATCHER_ENCRYPTION_KEY configures dispatcher itself; a function's secret is read from a variable of its own`},
		// … nor the runner's other credentials, nor another function's:
		// only the function's own variables, as export names them, and
		// those --allow-env allows.
		{"another variable", fnErase, `{"functions": [{"name": "erase", "url": "https://erase.example.com/", "headersEnv": {"X-Key": "AWS_SECRET_ACCESS_KEY"}}]}`,
			planOptions{Getenv: envOf("AWS_SECRET_ACCESS_KEY", "k")}, `d.json: function "erase" (functions[0]): headersEnv.X-Key: AWS_SECRET_ACCESS_KEY is not this function's variable: sync reads it from DISPATCHER_HEADER_ERASE_X_KEY (as export names it), or from a variable named with --allow-env`},
		{"another variable, in a dry run", fnErase, `{"functions": [{"name": "erase", "url": "https://erase.example.com/", "secretEnv": "ERASE_SECRET"}]}`,
			planOptions{DryRun: true}, `d.json: function "erase" (functions[0]): secretEnv: ERASE_SECRET is not this function's variable: sync reads it from DISPATCHER_SECRET_ERASE`},
		{"another function's secret", withSecret, `{"functions": [{"name": "erase", "url": "https://erase.example.com/", "secretEnv": "DISPATCHER_SECRET_ERASE"}, {"name": "audit-hook", "url": "https://attacker.example/", "secretEnv": "DISPATCHER_SECRET_ERASE"}]}`,
			planOptions{Getenv: envOf("DISPATCHER_SECRET_ERASE", "s")}, `d.json: function "audit-hook" (functions[1]): secretEnv: DISPATCHER_SECRET_ERASE is not this function's variable: sync reads it from DISPATCHER_SECRET_AUDIT_HOOK`},
		{"another function's header", withSecret, `{"functions": [{"name": "audit-hook", "url": "https://attacker.example/", "headersEnv": {"X-Trace": "DISPATCHER_HEADER_ERASE_X_API_KEY"}}]}`,
			planOptions{Getenv: envOf("DISPATCHER_HEADER_ERASE_X_API_KEY", "k")}, `d.json: function "audit-hook" (functions[0]): headersEnv.X-Trace: DISPATCHER_HEADER_ERASE_X_API_KEY is not this function's variable: sync reads it from DISPATCHER_HEADER_AUDIT_HOOK_X_TRACE`},
		// Export's names are not one to one: a function named to be
		// given another's variable is refused.
		{"another function's secret, by its name", withSecret, `{"functions": [{"name": "Erase", "url": "https://attacker.example/", "secretEnv": "DISPATCHER_SECRET_ERASE"}]}`,
			planOptions{Getenv: envOf("DISPATCHER_SECRET_ERASE", "s")}, `d.json: function "Erase" (functions[0]): secretEnv: DISPATCHER_SECRET_ERASE is also the variable of function "erase"`},
		{"another function's header, by its name", withSecret, `{"functions": [{"name": "erase-x", "url": "https://attacker.example/", "headersEnv": {"Api-Key": "DISPATCHER_HEADER_ERASE_X_API_KEY"}}]}`,
			planOptions{Getenv: envOf("DISPATCHER_HEADER_ERASE_X_API_KEY", "k")}, `d.json: function "erase-x" (functions[0]): headersEnv.Api-Key: DISPATCHER_HEADER_ERASE_X_API_KEY is also the variable of function "erase"`},
		{"another variable, allowed", fnErase, `{"functions": [{"name": "erase", "url": "https://erase.example.com/", "secretEnv": "ERASE_SECRET"}]}`,
			planOptions{AllowEnv: []string{"ERASE_SECRET"}, Getenv: envOf("ERASE_SECRET", "s")}, `~ function "erase": secret`},
		// A bare --allow-env does not let a file send the variable to a
		// URL of its choosing: a new function's, or a new one of erase.
		{"an allowed variable, to a new function", fnErase, `{"functions": [{"name": "erase", "url": "https://erase.example.com/", "secretEnv": "ERASE_SECRET"}, {"name": "audit-hook", "url": "https://attacker.example/", "secretEnv": "ERASE_SECRET"}]}`,
			planOptions{AllowEnv: []string{"ERASE_SECRET"}, Getenv: envOf("ERASE_SECRET", "s")}, `d.json: function "audit-hook" (functions[1]): secretEnv: --allow-env ERASE_SECRET allows it to a function the install has, at the URL it has; this one is new or moves to another URL, which the file chooses: allow it to this function alone with --allow-env audit-hook=ERASE_SECRET`},
		// The same endpoint, spelt otherwise, is where the secret goes
		// already. Before, it counted as a new URL, and the sync failed.
		{"an allowed variable, its host in another case", withSecret, `{"functions": [{"name": "erase", "url": "https://ERASE.example.com/", "secretEnv": "ERASE_SECRET"}]}`,
			planOptions{AllowEnv: []string{"ERASE_SECRET"}}, `~ function "erase": url`},
		{"an allowed variable, to a new URL", fnErase, `{"functions": [{"name": "erase", "url": "https://attacker.example/", "secretEnv": "ERASE_SECRET"}]}`,
			planOptions{AllowEnv: []string{"ERASE_SECRET"}, Getenv: envOf("ERASE_SECRET", "s")}, `d.json: function "erase" (functions[0]): secretEnv: --allow-env ERASE_SECRET allows it to a function the install has`},
		{"an allowed variable, to one function", fnErase, `{"functions": [{"name": "audit-hook", "url": "https://audit.example/", "secretEnv": "ERASE_SECRET"}]}`,
			planOptions{AllowEnv: []string{"audit-hook=ERASE_SECRET"}, Getenv: envOf("ERASE_SECRET", "s")}, `+ function "audit-hook"`},
		{"an allowed variable, to another function", fnErase, `{"functions": [{"name": "audit-hook", "url": "https://audit.example/", "secretEnv": "ERASE_SECRET"}]}`,
			planOptions{AllowEnv: []string{"erase=ERASE_SECRET"}, Getenv: envOf("ERASE_SECRET", "s")}, `d.json: function "audit-hook" (functions[0]): secretEnv: ERASE_SECRET is not this function's variable`},
		// Checked whether or not this sync writes it: before, such a
		// file passed every sync until one with --update-secrets.
		{"the sync's token, while the API has a secret", withSecret, `{"functions": [{"name": "erase", "url": "https://erase.example.com/", "secretEnv": "DISPATCHER_TOKEN"}]}`,
			planOptions{}, `d.json: function "erase" (functions[0]): secretEnv: DISPATCHER_TOKEN configures dispatcher itself`},
		{"another function's header, while the API has its headers", withSecret, `{"functions": [{"name": "erase", "url": "https://erase.example.com/", "headersEnv": {"X-Api-Key": "DISPATCHER_HEADER_AUDIT_X_API_KEY"}}]}`,
			planOptions{}, `d.json: function "erase" (functions[0]): headersEnv.X-Api-Key: DISPATCHER_HEADER_AUDIT_X_API_KEY is not this function's variable`},
		{"--allow-env does not allow dispatcher's own", fnErase, `{"functions": [{"name": "erase", "url": "https://erase.example.com/", "secretEnv": "DATABASE_URL"}]}`,
			planOptions{AllowEnv: []string{"DATABASE_URL"}, Getenv: envOf("DATABASE_URL", "postgres://")}, `d.json: function "erase" (functions[0]): secretEnv: DATABASE_URL configures dispatcher itself`},
		{"outbound safety is the server's", fnErase, `{"functions": [{"name": "erase", "url": "ftp://erase.example.com/"}]}`, planOptions{}, `d.json: function "erase" (functions[0]): url: not an absolute http(s) URL`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := planFunctionsOf(t, tt.remote, tt.file, tt.opts, tt.want)
			if p != nil && tt.opts.DryRun {
				want := []string{`d.json: function "erase" (functions[0]): secretEnv: the environment variable DISPATCHER_SECRET_ERASE is not set (or empty); it holds the value, which is never written in the file; the sync itself needs it`,
					`d.json: function "erase" (functions[0]): headersEnv.X-Api-Key: the environment variable DISPATCHER_HEADER_ERASE_X_API_KEY is not set (or empty); it holds the value, which is never written in the file; the sync itself needs it`}
				if !slices.Equal(p.Warnings, want) {
					t.Errorf("warnings %q, want %q", p.Warnings, want)
				}
			}
			if p != nil {
				for _, c := range p.Changes {
					for _, f := range c.Fields {
						if strings.Contains(canon(f), `"s"`) || strings.Contains(canon(f), `"k"`) {
							t.Errorf("a plan line shows a secret: %v", f)
						}
					}
				}
			}
		})
	}
}

// TestSyncExportThenPlanNothing: an export of an install, synced back to it,
// plans nothing; read back from YAML it is the same file; its JSON is the
// Extra Horizon CLI's shape, named templates, no managed tag, no secrets.
func TestSyncExportThenPlanNothing(t *testing.T) {
	remote := remoteOf(t, `[
	  {"id": "111111111111111111111111", "name": "gdpr", "eventType": "user_deleted", "tags": ["pii", "EXH_CLI_MANAGED"], "enabled": true,
	   "ordering": {"key": "content.userId", "onFailure": "skip"}, "actions": [
	    {"id": "222222222222222222222222", "type": "mail", "name": "mail", "recipients": {"to": ["{{ .event.content.email }}"]}, "templateId": "aaaaaaaaaaaaaaaaaaaaaaaa"},
	    {"id": "333333333333333333333333", "type": "task", "name": "erase", "functionName": "erase", "data": {"n": 1.50}, "startTimestamp": "2030-01-01T00:00:00.000Z", "retryPolicy": {"maximumAttempts": 3}}]},
	  {"id": "444444444444444444444444", "name": "manual", "eventType": "order_paid", "tags": [], "ordering": {"key": "content.orderId", "onFailure": "block"}, "actions": [
	    {"id": "555555555555555555555555", "type": "task", "name": "ship", "functionName": "erase", "retryPolicy": {}}]}]`,
		`[`+tplWelcome+`, {"id": "999999999999999999999999", "name": "unused", "subject": "<b>s</b>", "html": "<p>x</p>"}]`,
		`[{"id": "bbbbbbbbbbbbbbbbbbbbbbbb", "name": "erase", "kind": "http", "url": "https://erase.example.com/", "timeoutSeconds": 45, "hasSecret": true, "headerNames": ["X-Api-Key"]},
		  {"id": "cccccccccccccccccccccccc", "name": "wf", "kind": "temporal", "taskQueue": "jobs"}]`)

	doc, notes := exportDoc(remote, true)
	b, err := encodeExport(doc, "json")
	if err != nil {
		t.Fatal(err)
	}
	want := `{
  "dispatchers": [
    {
      "eventType": "user_deleted",
      "name": "gdpr",
      "actions": [
        {
          "type": "mail",
          "name": "mail",
          "recipients": {
            "to": [
              "{{ .event.content.email }}"
            ]
          },
          "templateName": "welcome"
        },
        {
          "type": "task",
          "name": "erase",
          "functionName": "erase",
          "data": {
            "n": 1.50
          },
          "startTimestamp": "2030-01-01T00:00:00.000Z",
          "retryPolicy": {
            "maximumAttempts": 3
          }
        }
      ],
      "tags": [
        "pii"
      ],
      "ordering": {
        "key": "content.userId",
        "onFailure": "skip"
      }
    }
  ],
  "templates": [
    {
      "name": "welcome",
      "subject": "Hi",
      "text": "Hello"
    }
  ],
  "functions": [
    {
      "name": "erase",
      "url": "https://erase.example.com/",
      "timeoutSeconds": 45,
      "secretEnv": "DISPATCHER_SECRET_ERASE",
      "headersEnv": {
        "X-Api-Key": "DISPATCHER_HEADER_ERASE_X_API_KEY"
      }
    }
  ]
}
`
	if string(b) != want {
		t.Fatalf("export --managed-only:\n%s\nwant:\n%s", b, want)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "DISPATCHER_SECRET_ERASE") {
		t.Errorf("notes %v", notes)
	}

	all, _ := exportDoc(remote, false)
	for _, format := range []string{"json", "yaml"} {
		b, err := encodeExport(all, format)
		if err != nil {
			t.Fatal(err)
		}
		f, err := readSyncFile("export."+format, strings.NewReader(string(b)))
		if err != nil {
			t.Fatalf("%s export does not read back: %v\n%s", format, err, b)
		}
		// The unmanaged dispatcher is adopted; everything else is as it is.
		p, err := makePlan(f, remote, planOptions{Adopt: true, Clean: true})
		if err != nil {
			t.Fatal(err)
		}
		if got := planLines(p); !slices.Equal(got, []string{`~ dispatcher "manual": tags`}) {
			t.Errorf("%s export synced back plans %v", format, got)
		}
		if format == "yaml" && (!strings.Contains(string(b), "subject: <b>s</b>") || !strings.Contains(string(b), `"n": 1.50`)) {
			t.Errorf("YAML export:\n%s", b)
		}
		// Defaults are left out, as the README says: an empty retry
		// policy, ordering's onFailure block.
		if format == "json" && (!strings.Contains(string(b), `"key": "content.orderId"`) || strings.Contains(string(b), `"block"`) || strings.Contains(string(b), `"retryPolicy": {}`)) {
			t.Errorf("JSON export holds a default:\n%s", b)
		}
	}
}

// TestSyncPlanWarnsUnknownFields: a field that neither sync nor any
// dispatcher of the install knows is sent on creation, with a warning (a
// typo?), and not compared: before, the next run planned it as changed,
// every time, and the API refused the update (an empty body), stopping
// the changes after it.
func TestSyncPlanWarnsUnknownFields(t *testing.T) {
	const file = `[{"eventType": "e", "name": "a", "enabled": false, "prioritty": 1, "actions": [{"type": "task", "name": "t", "functionName": "erase", "delay": 5}]}]`
	p, err := makePlan(syncFileOf(t, file), remoteOf(t, "", "", "["+fnErase+"]"), planOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`d.json: dispatcher "a": prioritty: a field neither sync nor the install knows; it is sent on creation, and not compared`,
		`d.json: dispatcher "a": actions[0].delay: a field neither sync nor the install knows; it is sent on creation, and not compared`,
	}
	if !slices.Equal(p.Warnings, want) {
		t.Fatalf("warnings %q, want %q", p.Warnings, want)
	}
	body := p.Changes[0].body.(map[string]any)
	if body["prioritty"] == nil || body["enabled"] != false {
		t.Errorf("create body %v", body)
	}

	// The install created it without them: the next run plans nothing.
	created := `[{"id": "111111111111111111111111", "name": "a", "eventType": "e", "enabled": false, "tags": ["EXH_CLI_MANAGED"], "actions": [
	  {"id": "222222222222222222222222", "type": "task", "name": "t", "functionName": "erase"}]}]`
	p, err = makePlan(syncFileOf(t, file), remoteOf(t, created, "", "["+fnErase+"]"), planOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if lines := planLines(p); len(lines) != 0 {
		t.Errorf("second run plans %q, want nothing", lines)
	}

	// A field the install knows (a newer API's) is compared.
	knows := strings.Replace(created, `"enabled": false,`, `"enabled": false, "prioritty": 2,`, 1)
	p, err = makePlan(syncFileOf(t, file), remoteOf(t, knows, "", "["+fnErase+"]"), planOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if lines := planLines(p); len(lines) != 1 || !strings.Contains(lines[0], "prioritty") {
		t.Errorf("plan %q, want prioritty updated", lines)
	}
}

// TestSyncParseRenames checks --rename's form.
func TestSyncParseRenames(t *testing.T) {
	if m, err := parseRenames([]string{"a=b", "c=d=e"}); err != nil || m["a"] != "b" || m["c"] != "d=e" {
		t.Errorf("parseRenames = %v, %v", m, err)
	}
	for _, bad := range [][]string{{"a"}, {"=b"}, {"a="}, {"a=a"}, {"a=b", "a=c"}, {"a=c", "b=c"}} {
		if _, err := parseRenames(bad); err == nil {
			t.Errorf("parseRenames(%v) accepted", bad)
		}
	}
	// Said as it is: before, "b" was "renamed twice".
	if _, err := parseRenames([]string{"a=c", "b=c"}); err == nil || !strings.Contains(err.Error(), `two dispatchers are renamed "c"`) {
		t.Errorf("parseRenames(a=c, b=c): %v", err)
	}
}

// TestSyncPlanFlowControl: a function's rate limit, concurrency and
// circuit breaker are the file's, defaults filled in as the API fills
// them (a file that leaves them out of an object plans nothing); left
// out, they are removed; a pause is not the file's.
func TestSyncPlanFlowControl(t *testing.T) {
	withFlow := `{"id": "bbbbbbbbbbbbbbbbbbbbbbbb", "name": "erase", "kind": "http", "url": "https://erase.example.com/", "timeoutSeconds": 30,
		"rateLimit": {"perSecond": 5, "burst": 1}, "maxConcurrency": 2, "circuitBreaker": {"failures": 3, "windowSeconds": 60, "probeIntervalSeconds": 30},
		"pausedUntil": "2030-01-01T00:00:00.000Z"}`
	flowFile := `{"functions": [{"name": "erase", "url": "https://erase.example.com/", "rateLimit": {"perSecond": 5}, "maxConcurrency": 2, "circuitBreaker": {"failures": 3}}]}`
	bare := `{"functions": [{"name": "erase", "url": "https://erase.example.com/"}]}`
	for _, tt := range []struct {
		name, remote, file string
		want               string // the plan's lines, or the problem
		body               string // of the one change
	}{
		{"set", fnErase, flowFile, `~ function "erase": rateLimit,maxConcurrency,circuitBreaker`,
			`{"circuitBreaker":{"failures":3,"windowSeconds":60,"probeIntervalSeconds":30},"maxConcurrency":2,"rateLimit":{"perSecond":5,"burst":1}}`},
		{"the same, defaults left out", withFlow, flowFile, ``, ``},
		{"removed", withFlow, bare, `~ function "erase": rateLimit,maxConcurrency,circuitBreaker`,
			`{"circuitBreaker":null,"maxConcurrency":0,"rateLimit":null}`},
		{"created with it", ``, flowFile, `+ function "erase"`,
			`{"circuitBreaker":{"failures":3,"windowSeconds":60,"probeIntervalSeconds":30},"kind":"http","maxConcurrency":2,"name":"erase","rateLimit":{"perSecond":5,"burst":1},"taskQueue":"","timeoutSeconds":30,"url":"https://erase.example.com/"}`},
		// 0 is "no limit", as in the API; the file's schema refused it.
		{"removed with 0", withFlow, `{"functions": [{"name": "erase", "url": "https://erase.example.com/", "maxConcurrency": 0}]}`,
			`~ function "erase": rateLimit,maxConcurrency,circuitBreaker`, `{"circuitBreaker":null,"maxConcurrency":0,"rateLimit":null}`},
		{"refused as the API would", fnErase, `{"functions": [{"name": "erase", "url": "https://erase.example.com/", "rateLimit": {"perSecond": 5000000}}]}`,
			`d.json: function "erase" (functions[0]): rateLimit.perSecond: must be between 1/86400`, ``},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := planFunctionsOf(t, tt.remote, tt.file, planOptions{}, tt.want)
			if tt.body != "" {
				if len(p.Changes) != 1 || canon(p.Changes[0].body) != tt.body {
					t.Fatalf("changes %v, want one with the body %s", planLines(p), tt.body)
				}
			}
		})
	}
}

// planFunctionsOf plans file against an install whose one function is
// remote ("" for none) and checks that the plan's lines, or the problem,
// contain want ("": no change at all). It returns the plan, nil for a
// problem.
func planFunctionsOf(t *testing.T, remote, file string, opts planOptions, want string) *plan {
	t.Helper()
	if remote != "" {
		remote = "[" + remote + "]"
	}
	p, err := makePlan(syncFileOf(t, file), remoteOf(t, "", "", remote), opts)
	got := ""
	if err != nil {
		got = err.Error()
	} else {
		got = strings.Join(planLines(p), "\n")
	}
	if !strings.Contains(got, want) || (want == "" && got != "") {
		t.Fatalf("got %q, want %q", got, want)
	}
	return p
}

// TestSyncPlanWithinTheDispatcherLimit: a tenant at the limit gets its
// --clean deletions before the creation that would pass it (in the order
// of the plan, the creation would fail, and so would every later run),
// and a plan that would leave more than the limit is refused up front.
func TestSyncPlanWithinTheDispatcherLimit(t *testing.T) {
	full := func(tags ...any) *remoteState {
		s := &remoteState{}
		for i := range dispatcher.MaxDispatchers {
			// Of event types of their own: 10,000 would pass the
			// bytes one event type may hold (fitEventTypes).
			s.Dispatchers = append(s.Dispatchers, map[string]any{"id": fmt.Sprintf("%024x", i+1), "name": fmt.Sprintf("old-%d", i),
				"eventType": fmt.Sprintf("e%d", i), "tags": tags, "actions": []any{}})
		}
		return s
	}
	file := syncFileOf(t, `{"dispatchers": [{"eventType": "e", "name": "new", "actions": []}]}`)

	p, err := makePlan(file, full(managedTag), planOptions{Clean: true})
	if err != nil {
		t.Fatal(err)
	}
	lines := planLines(p)
	if len(lines) != dispatcher.MaxDispatchers+1 || lines[len(lines)-1] != `+ dispatcher "new"` {
		t.Fatalf("%d changes, the last %q; want the %d deletions, then the creation", len(lines), lines[len(lines)-1], dispatcher.MaxDispatchers)
	}
	if c := p.Changes[0]; c.Op != opDelete || !strings.Contains(c.Note, "deleted before the creations") {
		t.Errorf("first change %s %s (note %q), want a deletion that says why it comes first", c.Op, c.Name, c.Note)
	}

	_, err = makePlan(file, full("x"), planOptions{Clean: true})
	if want := fmt.Sprintf("the tenant has %d dispatchers and would have %d after this plan (1 created, 0 deleted): a tenant may hold %d",
		dispatcher.MaxDispatchers, dispatcher.MaxDispatchers+1, dispatcher.MaxDispatchers); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("plan past the limit: %v, want a problem saying %q", err, want)
	}

	// A tenant already past the limit (one lowered since) that only deletes.
	over := full(managedTag)
	over.Dispatchers = append(over.Dispatchers, map[string]any{"id": "ffffffffffffffffffffffff", "name": "new", "eventType": "e", "tags": []any{managedTag}, "actions": []any{}})
	if p, err = makePlan(file, over, planOptions{Clean: true}); err != nil || p.count(opDelete) != dispatcher.MaxDispatchers || p.count(opCreate) != 0 {
		t.Errorf("tenant past the limit, deletions only: %v; want %d deletions and no creation", err, dispatcher.MaxDispatchers)
	}

	// Below the limit, deletions stay last.
	remote := full(managedTag)
	remote.Dispatchers = remote.Dispatchers[1:]
	if p, err = makePlan(file, remote, planOptions{Clean: true}); err != nil {
		t.Fatal(err)
	}
	if lines := planLines(p); lines[0] != `+ dispatcher "new"` {
		t.Errorf("first change %q, want the creation: deletions come last when there is room", lines[0])
	}
}

// TestSyncPlanRenameOfNothing: a --rename whose OLD the install lacks,
// and whose NEW it lacks too, plans NEW's creation with a warning: a
// misspelt OLD would otherwise go unnoticed, and --clean delete the real
// old dispatcher, its id and history with it.
func TestSyncPlanRenameOfNothing(t *testing.T) {
	remote := `[{"id": "111111111111111111111111", "name": "gdpr", "eventType": "e", "tags": ["EXH_CLI_MANAGED"], "actions": []}]`
	p, err := makePlan(syncFileOf(t, `[{"eventType": "e", "name": "gdpr-v2", "actions": []}]`),
		remoteOf(t, remote, "["+tplWelcome+"]", "["+fnErase+"]"), planOptions{Renames: map[string]string{"gpdr": "gdpr-v2"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`--rename gpdr=gdpr-v2: the install has no dispatcher named "gpdr" (nor "gdpr-v2"): "gdpr-v2" is created as new; is "gpdr" misspelt?`,
		// and the one it meant stays beside it (warnLeftBehind)
		`dispatcher "gdpr", managed by sync, is not in the file and stays (without --clean): it acts on event type "e" as "gdpr-v2" does; --rename gdpr=gdpr-v2 renames it instead, --clean deletes it`}
	if !slices.Equal(p.Warnings, want) {
		t.Errorf("warnings %q, want %q", p.Warnings, want)
	}
	if got := planLines(p); !slices.Equal(got, []string{`+ dispatcher "gdpr-v2"`}) {
		t.Errorf("plan %q", got)
	}
}

// TestSyncPlanLeftBehindOnEveryRun: a dispatcher renamed in the file
// without --rename is warned of on every run while the old one stays, and
// a --rename that comes after the new one was created is refused, naming
// both. Before, the second run said "No changes", with or without it, and
// both acted on every event.
func TestSyncPlanLeftBehindOnEveryRun(t *testing.T) {
	remote := remoteOf(t, `[{"id": "111111111111111111111111", "name": "w1", "eventType": "e", "tags": ["EXH_CLI_MANAGED"], "actions": []},
	  {"id": "222222222222222222222222", "name": "w2", "eventType": "e", "tags": ["EXH_CLI_MANAGED"], "actions": []}]`, "", "")
	file := syncFileOf(t, `[{"eventType": "e", "name": "w2", "actions": []}]`)
	p, err := makePlan(file, remote, planOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`dispatcher "w1", managed by sync, is not in the file and stays (without --clean): it acts on event type "e" as "w2" does; --clean deletes it`}
	if lines := planLines(p); len(lines) != 0 || !slices.Equal(p.Warnings, want) {
		t.Errorf("plan %q, warnings %q; want no change and %q", lines, p.Warnings, want)
	}
	_, err = makePlan(file, remote, planOptions{Renames: map[string]string{"w1": "w2"}})
	if want := `--rename w1=w2: the install has both "w1" (id 111111111111111111111111) and "w2" (id 222222222222222222222222)`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("--rename onto a dispatcher that exists: %v, want a problem saying %q", err, want)
	}
	// An w1 sync does not manage took the name after a rename: done.
	remote.Dispatchers[0]["tags"] = []any{}
	if p, err := makePlan(file, remote, planOptions{Renames: map[string]string{"w1": "w2"}}); err != nil || len(planLines(p)) != 0 {
		t.Errorf("--rename, renamed already and the old name taken by hand: %v, want no change", err)
	}
}

// TestSyncPlanFitsEventTypes: a plan that would leave an event type over
// its size limit, or ordered by two keys, is refused before anything
// changes, counting the install's other dispatchers of the type but those
// --clean deletes. Before, it failed at the write that passed the limit,
// the changes before it applied.
func TestSyncPlanFitsEventTypes(t *testing.T) {
	data := `{"blob": "` + strings.Repeat("x", 60_000) + `"}`
	dispatcherOf := func(name, extra string) string {
		return `{"eventType": "big", "name": "` + name + `"` + extra + `, "actions": [{"type": "task", "name": "a", "functionName": "erase", "data": ` + data + `}]}`
	}
	var five []string
	for i := range 5 {
		five = append(five, dispatcherOf(fmt.Sprint("big", i), ""))
	}
	fns := "[" + fnErase + "]"
	_, err := makePlan(syncFileOf(t, "["+strings.Join(five, ",")+"]"), remoteOf(t, "[]", "", fns), planOptions{})
	if want := `event type "big": its dispatchers would hold about 30`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("five of 60 KB: %v, want a problem saying %q", err, want)
	}
	four := syncFileOf(t, "["+strings.Join(five[:4], ",")+"]")
	if _, err := makePlan(four, remoteOf(t, "[]", "", fns), planOptions{}); err != nil {
		t.Errorf("four of 60 KB: %v, want them planned", err)
	}

	// The install's fifth counts, unless --clean deletes it.
	remote := remoteOf(t, `[{"id": "111111111111111111111111", "name": "old", "eventType": "big", "tags": ["EXH_CLI_MANAGED"], "enabled": true,
	  "actions": [{"id": "222222222222222222222222", "type": "task", "name": "a", "functionName": "erase", "data": `+data+`}]}]`, "", fns)
	if _, err := makePlan(four, remote, planOptions{}); err == nil || !strings.Contains(err.Error(), `event type "big"`) {
		t.Errorf("four beside the install's fifth: %v, want the event type refused", err)
	}
	// Deleted first: applied in order, the creations would pass the limit
	// while it stays, and the plan stop before its deletion, every run.
	p, err := makePlan(four, remote, planOptions{Clean: true})
	if err != nil {
		t.Fatalf("four, the install's fifth deleted by --clean: %v, want them planned", err)
	}
	if lines := planLines(p); len(lines) != 5 || lines[0] != `- dispatcher "old"` || !strings.Contains(p.Changes[0].Note, `deleted before the changes of the file's dispatchers`) {
		t.Errorf("plan %q (first note %q), want the deletion first, saying why", lines, p.Changes[0].Note)
	}
	// With room for all five, the deletion stays last.
	three := syncFileOf(t, "["+strings.Join(five[:3], ",")+"]")
	if p, err := makePlan(three, remote, planOptions{Clean: true}); err != nil || planLines(p)[3] != `- dispatcher "old"` {
		t.Errorf("three and the fifth deleted: %v, %q; want the deletion last", err, planLines(p))
	}

	_, err = makePlan(syncFileOf(t, `[{"eventType": "o", "name": "o1", "ordering": {"key": "content.a"}, "actions": []},
	  {"eventType": "o", "name": "o2", "ordering": {"key": "content.b"}, "actions": []}]`), remoteOf(t, "[]", "", fns), planOptions{})
	if want := `event type "o": its dispatchers would be ordered by "content.a" ("o1") and by "content.b" ("o2")`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("two keys: %v, want a problem saying %q", err, want)
	}
}

// A bare --allow-env is warned of: any function the install has may read
// the variable so, which FUNCTION=NAME would not allow.
func TestSyncPlanWarnsOfABareAllowEnv(t *testing.T) {
	file := `{"functions": [{"name": "erase", "url": "https://erase.example.com/", "secretEnv": "ERASE_SECRET"}]}`
	p := planFunctionsOf(t, fnErase, file, planOptions{AllowEnv: []string{"ERASE_SECRET"}, Getenv: envOf("ERASE_SECRET", "s")}, `~ function "erase": secret`)
	if want := `--allow-env erase=ERASE_SECRET allows it to this one alone`; len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0], want) {
		t.Errorf("warnings %q, want one saying %q", p.Warnings, want)
	}
	p = planFunctionsOf(t, fnErase, file, planOptions{AllowEnv: []string{"erase=ERASE_SECRET"}, Getenv: envOf("ERASE_SECRET", "s")}, `~ function "erase": secret`)
	if len(p.Warnings) != 0 {
		t.Errorf("warnings %q for a bound --allow-env", p.Warnings)
	}
}

// TestSyncPlanStartTimestampAsInstant: a startTimestamp finer than the
// API's milliseconds, or written as epoch milliseconds, is the instant the
// API answers with. Before, "…00.123456Z" was planned as changed on every
// run.
func TestSyncPlanStartTimestampAsInstant(t *testing.T) {
	remote := remoteOf(t, `[{"id": "111111111111111111111111", "name": "a", "eventType": "e", "tags": ["EXH_CLI_MANAGED"], "actions": [
	  {"id": "222222222222222222222222", "type": "task", "name": "t", "functionName": "erase", "startTimestamp": "2030-01-01T00:00:00.123Z"}]}]`, "", "["+fnErase+"]")
	for _, start := range []string{`"2030-01-01T00:00:00.123456Z"`, `"2030-01-01T01:00:00.123+01:00"`, `1893456000123`} {
		f := syncFileOf(t, `[{"eventType": "e", "name": "a", "actions": [{"type": "task", "name": "t", "functionName": "erase", "startTimestamp": `+start+`}]}]`)
		p, err := makePlan(f, remote, planOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if lines := planLines(p); len(lines) != 0 {
			t.Errorf("startTimestamp %s: plan %q, want nothing", start, lines)
		}
	}
}

// TestExportYAMLQuotesWhatYAML11Reads: strings that a YAML 1.1 reader
// (PyYAML) takes for a boolean, a null, a number or a date are quoted in
// the YAML export, and read back as the same strings; the others stay
// plain. Before, a dispatcher named "no" was read as false.
func TestExportYAMLQuotesWhatYAML11Reads(t *testing.T) {
	values := []string{"no", "On", "y", "null", "~", "", "<<", "1e400", "0123", "2024-01-01", "-x", ".5", "plain", "user_deleted"}
	var doc ordered
	for i, v := range values {
		doc = append(doc, field{key: fmt.Sprint("k", i), value: v})
	}
	b, err := encodeExport(doc, "yaml")
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range values {
		quoted := strings.Contains(string(b), fmt.Sprintf("k%d: %q\n", i, v))
		if want := v != "plain" && v != "user_deleted"; quoted != want {
			t.Errorf("%q: quoted %v, want %v, in\n%s", v, quoted, want, b)
		}
	}
	var back map[string]any
	if err := yaml.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	for i, v := range values {
		if got := back[fmt.Sprint("k", i)]; got != v {
			t.Errorf("k%d read back as %#v, want %q", i, got, v)
		}
	}
}

// After a sync stops halfway, it says why: the API's refusal, or an
// interrupt. Before, an interrupted sync said the API had refused the
// next change.
func TestPrintFailureSaysWhy(t *testing.T) {
	p := &plan{Changes: []*change{
		{Op: opCreate, Kind: "dispatcher", Name: "first", Status: statusApplied},
		{Op: opCreate, Kind: "dispatcher", Name: "second", Status: statusNotApplied},
	}}
	for _, tt := range []struct {
		interrupted bool
		want, not   string
	}{
		{false, "Applied 1 of 2 changes; the API refused the next request", "interrupted"},
		{true, "Applied 1 of 2 changes; it was interrupted before the next request", "refused"},
	} {
		var out strings.Builder
		printFailure(&out, p, tt.interrupted)
		if !strings.Contains(out.String(), tt.want) || strings.Contains(out.String(), tt.not) {
			t.Errorf("interrupted %v: printed\n%s\nwant %q, not %q", tt.interrupted, out.String(), tt.want, tt.not)
		}
	}
}

// A file's template with errors in two parts is told both in one run, and
// a dispatcher naming it is not told that it does not exist. Before, the
// subject's alone, then the text's in the next run, and "no template
// named" besides.
func TestSyncPlanTemplateProblems(t *testing.T) {
	f := syncFileOf(t, `{"templates": [{"name": "bad-tpl", "subject": "Hi {{ .event.content.name ", "text": "x {{ if }}"}],
	  "dispatchers": [{"eventType": "e", "name": "d", "actions": [{"type": "mail", "name": "m", "recipients": {"to": ["a@example.com"]}, "templateName": "bad-tpl"}]}]}`)
	_, err := makePlan(f, remoteOf(t, `[]`, `[]`, `[]`), planOptions{})
	if err == nil {
		t.Fatal("planned a template that does not parse")
	}
	msg := err.Error()
	for _, want := range []string{"subject: line 1: unclosed action", "text: line 1: missing value for if"} {
		if !strings.Contains(msg, want) {
			t.Errorf("problems %q: want %q", msg, want)
		}
	}
	if strings.Contains(msg, "no template named") {
		t.Errorf("problems %q: the template is in the file", msg)
	}
}
