package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// syncCLI runs a command of the real binary against the system's API with
// its admin token and more environment variables; unlike cli it returns
// a failure for the test to look at.
func (s *system) syncCLI(env []string, args ...string) (string, error) {
	s.t.Helper()
	cmd := exec.Command(s.bin, args...)
	cmd.Env = append(append(s.env, "DISPATCHER_URL="+s.url, "DISPATCHER_TOKEN="+s.token), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// mustSync runs sync (or export) and fails the test if it fails.
func (s *system) mustSync(env []string, args ...string) string {
	s.t.Helper()
	out, err := s.syncCLI(env, args...)
	if err != nil {
		s.t.Fatalf("dispatcher %v: %v\n%s", args, err, out)
	}
	return out
}

// dispatchersByName lists the install's dispatchers by name.
func (s *system) dispatchersByName() map[string]map[string]any {
	s.t.Helper()
	out := map[string]map[string]any{}
	for _, d := range s.call("GET", "/dispatchers/v1?limit(50)", nil, 200)["data"].([]any) {
		m := d.(map[string]any)
		out[m["name"].(string)] = m
	}
	return out
}

// writeFile writes a test's file and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "sync", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustContain(t *testing.T, what, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Fatalf("%s lacks %q:\n%s", what, w, out)
		}
	}
}

// TestSyncExtraHorizonDocsFile syncs the Extra Horizon CLI documentation's
// example file through the real binary. Verbatim, it names the template
// id abcdef0123456789abcdef013456789ab, a placeholder (33 characters; no
// install of either product has such an id): sync refuses it before
// changing anything and says which field of which dispatcher. With that
// id replaced by a template of this install, and nothing else changed,
// it syncs, and a second run plans nothing.
func TestSyncExtraHorizonDocsFile(t *testing.T) {
	s := startSystem(t)
	s.call("POST", "/functions/v1", map[string]any{"name": "my-function-name", "url": "http://127.0.0.1:9/"}, 200)
	docs := readTestdata(t, "exh-docs-dispatchers.json")
	verbatim := writeFile(t, "dispatchers.json", docs)

	out, err := s.syncCLI(nil, "sync", "--file", verbatim)
	if err == nil {
		t.Fatalf("the placeholder template id synced:\n%s", out)
	}
	mustContain(t, "sync of the verbatim docs file", out, verbatim+`: dispatcher "my-unique-dispatcher-name" (dispatchers[0]): actions[1].templateId: no template with id "abcdef0123456789abcdef013456789ab" on the install`,
		"nothing was changed")
	if n := len(s.dispatchersByName()); n != 0 {
		t.Fatalf("a refused file created %d dispatchers", n)
	}

	tmpl := s.call("POST", "/templates/v1", map[string]any{"name": "docs", "subject": "About {{ .event.type }}", "text": "It happened."}, 200)["id"].(string)
	file := writeFile(t, "dispatchers.json", strings.Replace(docs, "abcdef0123456789abcdef013456789ab", tmpl, 1))
	out = s.mustSync(nil, "sync", "--file", file)
	mustContain(t, "sync", out, `+ dispatcher "my-unique-dispatcher-name"`, `+ action "my-task-action"`, `+ action "my-mail-action"`,
		"Plan: 1 to create (2 actions with their dispatchers), 0 to update, 0 to delete.", "[1/1] + dispatcher", "Applied 1 change.")
	d := s.dispatchersByName()["my-unique-dispatcher-name"]
	if d == nil || canon(d["tags"]) != `["tag1","tag2","EXH_CLI_MANAGED"]` || d["eventType"] != "my-event-type" || len(d["actions"].([]any)) != 2 {
		t.Fatalf("synced dispatcher %v", d)
	}
	task := d["actions"].([]any)[0].(map[string]any)
	if canon(task["data"]) != `{"customNumberField":42,"customStringField":"myStringHere"}` || task["startTimestamp"] != "2024-01-01T00:00:00.000Z" || canon(task["tags"]) != `["tag1","tag2"]` {
		t.Fatalf("task action %v", task)
	}
	out = s.mustSync(nil, "sync", "--file", file, "--clean")
	mustContain(t, "second sync", out, "No changes")
}

// TestSyncLifecycle: a YAML file with templates, functions and
// dispatchers is created, then synced again (nothing), renamed, loses an
// action, is cleaned (unmanaged dispatchers stay), dry-run changes nothing,
// an invalid file applies nothing, and a change the API refuses midway is
// reported with exactly what was applied.
func TestSyncLifecycle(t *testing.T) {
	s := startSystem(t)
	secret := []string{"DISPATCHER_SECRET_ERASE=e2e-erase-secret"}
	app := readTestdata(t, "app.yaml")
	file := writeFile(t, "app.yaml", app)

	// An unmanaged dispatcher, made by hand: sync never touches it.
	tmpl := s.call("POST", "/templates/v1", map[string]any{"name": "manual", "subject": "S", "text": "T"}, 200)["id"].(string)
	s.call("POST", "/dispatchers/v1", map[string]any{"name": "manual", "eventType": "order_paid",
		"actions": []any{map[string]any{"type": "mail", "name": "m", "recipients": map[string]any{"to": []string{"a@example.com"}}, "templateId": tmpl}}}, 200)

	// A secret the environment lacks stops sync before anything changes.
	out, err := s.syncCLI(nil, "sync", "-f", file)
	if err == nil {
		t.Fatalf("sync without DISPATCHER_SECRET_ERASE:\n%s", out)
	}
	mustContain(t, "sync without the secret", out, file+`: function "erase" (functions[0]): secretEnv: the environment variable DISPATCHER_SECRET_ERASE is not set`)

	// Dry run: the plan, and nothing changes; it needs no secret (a pull
	// request's check has none), and says the sync will.
	for _, env := range [][]string{secret, nil} {
		out = s.mustSync(env, "sync", "-f", file, "--dry-run")
		mustContain(t, "dry run", out, `+ template "goodbye"`, `+ function "erase"`, `+ dispatcher "gdpr"`, `+ dispatcher "welcome"`,
			"Plan: 4 to create (4 actions with their dispatchers), 0 to update, 0 to delete.", "--dry-run: nothing was changed.")
		if len(s.dispatchersByName()) != 1 {
			t.Fatal("--dry-run changed the dispatchers")
		}
	}
	mustContain(t, "dry run without the secret", out, `warning: `+file+`: function "erase" (functions[0]): secretEnv: the environment variable DISPATCHER_SECRET_ERASE is not set`)
	// A drift check in CI: exit 2 while the plan has changes, with the
	// plan and nothing on standard error; before, 0 either way.
	out, err = s.syncCLI(nil, "sync", "-f", file, "--dry-run", "--exit-code")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(out, "Plan: 4 to create") || strings.Contains(out, "dispatcher: ") {
		t.Fatalf("a drift check with changes pending: %v\n%s", err, out)
	}
	if out, err := s.syncCLI(secret, "sync", "-f", file, "--exit-code"); err == nil || !strings.Contains(out, "--exit-code goes with --dry-run") {
		t.Fatalf("--exit-code without --dry-run: %v\n%s", err, out)
	}

	// A token that may create templates but not dispatchers changes
	// nothing. Before, the template was created, then the dispatcher
	// refused: half applied.
	out, err = s.syncCLI(append(slices.Clone(secret), "DISPATCHER_TOKEN="+s.tokenWith("templates-only", "CREATE_DISPATCHERS")), "sync", "-f", file)
	if err == nil || !strings.Contains(out, "the token lacks CREATE_DISPATCHERS, which the plan needs; nothing was changed") {
		t.Fatalf("sync with a token that may not create dispatchers: %v\n%s", err, out)
	}
	if got := s.call("GET", "/templates/v1?eq(name,goodbye)", nil, 200)["data"].([]any); len(got) != 0 {
		t.Fatalf("the template was created by a sync refused: %v", got)
	}

	out = s.mustSync(secret, "sync", "-f", file)
	mustContain(t, "first sync", out, "[1/4] + template", "[4/4] + dispatcher", "Applied 4 changes.")
	if strings.Contains(out, "warning:") {
		t.Fatalf("the first sync warns:\n%s", out)
	}
	if strings.Contains(out, "e2e-erase-secret") {
		t.Fatalf("sync printed the secret:\n%s", out)
	}
	fn := s.call("GET", "/functions/v1?eq(name,erase)", nil, 200)["data"].([]any)[0].(map[string]any)
	if fn["hasSecret"] != true || fn["timeoutSeconds"] != 10.0 {
		t.Fatalf("function %v", fn)
	}
	before := s.dispatchersByName()
	gdprID := before["gdpr"]["id"].(string)
	mustContain(t, "second sync", s.mustSync(secret, "sync", "-f", file), "No changes")
	mustContain(t, "a drift check with none", s.mustSync(secret, "sync", "-f", file, "--dry-run", "--exit-code"), "No changes")
	// Secrets the API has are not needed again.
	mustContain(t, "sync without the secret, once applied", s.mustSync(nil, "sync", "-f", file), "No changes")

	// A rename keeps the dispatcher (its id, its history) with --rename.
	renamed := writeFile(t, "app.yaml", strings.Replace(app, "name: gdpr", "name: gdpr-v2", 1))
	// Without, the plan says that the old one stays beside the new, on
	// the same events; before, it showed the creation alone.
	out = s.mustSync(nil, "sync", "-f", renamed, "--dry-run")
	mustContain(t, "rename without --rename", out, `+ dispatcher "gdpr-v2"`,
		`warning: dispatcher "gdpr", managed by sync, is not in the file and stays (without --clean): it acts on event type`,
		"--rename gdpr=gdpr-v2 renames it instead, --clean deletes it")
	out = s.mustSync(nil, "sync", "-f", renamed, "--rename", "gdpr=gdpr-v2", "--dry-run")
	mustContain(t, "rename plan", out, `~ dispatcher "gdpr-v2" (renamed from "gdpr" by --rename)`, `name: "gdpr" → "gdpr-v2"`, "Plan: 0 to create, 1 to update, 0 to delete.")
	if s.dispatchersByName()["gdpr"] == nil {
		t.Fatal("--dry-run renamed")
	}
	s.mustSync(nil, "sync", "-f", renamed, "--rename", "gdpr=gdpr-v2")
	if d := s.dispatchersByName()["gdpr-v2"]; d == nil || d["id"] != gdprID {
		t.Fatalf("renamed dispatcher %v, want id %s", d, gdprID)
	}
	mustContain(t, "rename again", s.mustSync(nil, "sync", "-f", renamed, "--rename", "gdpr=gdpr-v2"), "No changes")

	// An action deleted from the file is deleted; one changed is updated.
	edited := strings.Replace(app, "name: gdpr", "name: gdpr-v2", 1)
	edited = strings.Replace(edited, `      - type: task
        name: notify-crm
        functionName: erase
        tags: [crm]
        startTimestamp: 2030-01-01T09:00:00.000Z
`, "", 1)
	edited = strings.Replace(edited, "hard: true", "hard: false", 1)
	out = s.mustSync(nil, "sync", "-f", writeFile(t, "app.yaml", edited))
	mustContain(t, "action changes", out, `~ dispatcher "gdpr-v2"`, `- action "notify-crm" (task)`, `~ action "erase" (task)`, `data: {"hard":true,"userId":"{{ .event.content.userId }}","weight":1.50} → {"hard":false,`)
	actions := s.dispatchersByName()["gdpr-v2"]["actions"].([]any)
	if len(actions) != 2 || canon(actions[1].(map[string]any)["data"]) != `{"hard":false,"userId":"{{ .event.content.userId }}","weight":1.5}` {
		t.Fatalf("actions after the sync: %v", actions)
	}

	// --clean deletes the managed dispatcher the file lost, never "manual".
	noWelcome := edited[:strings.Index(edited, "  - eventType: user_created")]
	cleanFile := writeFile(t, "app.yaml", noWelcome)
	mustContain(t, "without --clean", s.mustSync(nil, "sync", "-f", cleanFile), "No changes")
	out = s.mustSync(nil, "sync", "-f", cleanFile, "--clean")
	mustContain(t, "clean", out, `- dispatcher "welcome" (--clean: managed by sync, not in the file)`, "Plan: 0 to create, 0 to update, 1 to delete.")
	after := s.dispatchersByName()
	if after["welcome"] != nil || after["manual"] == nil || len(after) != 2 {
		t.Fatalf("after --clean: %v", after)
	}

	// An invalid file names the file, the dispatcher and the field, and
	// applies nothing, not even its valid changes.
	bad := strings.Replace(noWelcome, "description: Erase what we hold about a user", "description: changed", 1) +
		"  - eventType: order_paid\n    name: broken\n    actions:\n      - {type: task, name: t, functionName: nope}\n      - {type: mail, name: m, recipients: {to: [not-an-address]}, templateName: goodbye}\n"
	badFile := writeFile(t, "bad.yaml", bad)
	out, err = s.syncCLI(nil, "sync", "-f", badFile)
	if err == nil {
		t.Fatalf("an invalid file synced:\n%s", out)
	}
	mustContain(t, "invalid file", out, badFile+`: dispatcher "broken" (dispatchers[1]): actions[0].functionName: no function named "nope"`, "nothing was changed")
	if d := s.dispatchersByName()["gdpr-v2"]; d["description"] != "Erase what we hold about a user" {
		t.Fatalf("an invalid file applied a change: %v", d)
	}

	// The API refuses a function's URL (outbound safety is the server's):
	// sync stops there and says what was applied, what failed and what was
	// not applied.
	refused := `{"templates": [{"name": "refund", "subject": "Refund", "text": "Refunded."}],
	  "functions": [{"name": "billing", "url": "https://10.1.2.3/refund"}],
	  "dispatchers": [{"eventType": "order_refunded", "name": "refunds", "actions": [
	    {"type": "mail", "name": "mail", "recipients": {"to": ["a@example.com"]}, "templateName": "refund"},
	    {"type": "task", "name": "billing", "functionName": "billing"}]}]}`
	out, err = s.syncCLI(nil, "sync", "-f", writeFile(t, "refused.json", refused), "--json")
	if err == nil {
		t.Fatalf("a refused function synced:\n%s", out)
	}
	var res syncResult
	if err := json.NewDecoder(strings.NewReader(out[strings.Index(out, "{\n"):])).Decode(&res); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	var statuses []string
	for _, c := range res.Changes {
		statuses = append(statuses, describe(c)+": "+c.Status)
	}
	if got := strings.Join(statuses, "; "); got != `+ template "refund": applied; + function "billing": failed; + dispatcher "refunds": not applied` ||
		!strings.Contains(res.Error, "the API refused change 2 of 3") || res.Summary["applied"] != 1 {
		t.Fatalf("statuses %s, error %q, summary %v", got, res.Error, res.Summary)
	}
	if s.dispatchersByName()["refunds"] != nil || len(s.call("GET", "/templates/v1?eq(name,refund)", nil, 200)["data"].([]any)) != 1 {
		t.Fatal("the report does not match what the API holds")
	}
	// A field the API ignores: sync warns, creates the dispatcher, and
	// leaves the field out of its comparisons. Before, every later run
	// planned it, and the API refused the update, stopping the changes
	// after it.
	typo := writeFile(t, "typo.json", `[{"eventType": "e", "name": "typo", "prioritty": 1, "actions": []}]`)
	out = s.mustSync(nil, "sync", "-f", typo)
	mustContain(t, "a field the API ignores", out, `: dispatcher "typo": prioritty: a field neither sync nor the install knows`, "Applied 1 change.")
	if strings.Contains(out, "still differs") {
		t.Fatalf("a field the API ignores, after applying:\n%s", out)
	}
	mustContain(t, "a field the API ignores, again", s.mustSync(nil, "sync", "-f", typo), "No changes")

	out, _ = s.syncCLI(nil, "sync", "-f", writeFile(t, "refused.json", refused))
	mustContain(t, "refused again, in text", out, "Applied 0 of 2 changes; the API refused the next request, and none after it was sent:",
		`failed:      + function "billing": `, `not applied: + dispatcher "refunds"`)
}

// TestSyncAppliesToThePlannedVersion: a dispatcher changed by hand
// between sync's plan and its change is neither overwritten nor deleted:
// sync sends the version it planned on (If-Match), and the API refuses.
// Before, --clean deleted a dispatcher unmanaged by hand meanwhile.
func TestSyncAppliesToThePlannedVersion(t *testing.T) {
	s := startSystem(t)
	s.mustSync(nil, "sync", "-f", writeFile(t, "both.json", `[{"eventType": "e", "name": "keep", "actions": []}, {"eventType": "e", "name": "gone", "actions": []}]`))
	c := &apiClient{base: s.url, shown: s.url, token: s.token, http: &http.Client{Timeout: time.Minute}}
	planWith := func(file string, opts planOptions) *plan {
		remote, err := fetchState(t.Context(), c, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		p, err := makePlan(syncFileOf(t, file), remote, opts)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	plan := func(file string) *plan { return planWith(file, planOptions{Clean: true}) }

	// Planned: update keep, delete gone. Meanwhile gone is taken by hand.
	p := plan(`[{"eventType": "e", "name": "keep", "description": "new", "actions": []}]`)
	s.call("PUT", "/dispatchers/v1/"+s.dispatchersByName()["gone"]["id"].(string), map[string]any{"tags": []string{"hand-owned"}}, 200)
	if err := applyPlan(t.Context(), c, p, io.Discard); err == nil || !strings.Contains(err.Error(), "If-Match") {
		t.Fatalf("apply: %v; want the deletion refused for If-Match", err)
	}
	if d := s.dispatchersByName(); d["gone"] == nil || d["keep"]["description"] != "new" {
		t.Fatalf("after the plan: %v; want keep updated, gone kept", d)
	}

	// Planned: update keep. Meanwhile it is changed by hand.
	p = plan(`[{"eventType": "e", "name": "keep", "description": "newer", "actions": []}]`)
	s.call("PUT", "/dispatchers/v1/"+s.dispatchersByName()["keep"]["id"].(string), map[string]any{"description": "by hand"}, 200)
	if err := applyPlan(t.Context(), c, p, io.Discard); err == nil || !strings.Contains(err.Error(), "If-Match") {
		t.Fatalf("apply: %v; want the update refused for If-Match", err)
	}
	if d := s.dispatchersByName(); d["keep"]["description"] != "by hand" {
		t.Fatalf("keep %v; want the change by hand kept", d["keep"])
	}

	// Its actions too: an action's change is made at the dispatcher's
	// version, as the changes before it in the plan left it.
	s.call("POST", "/functions/v1", map[string]any{"name": "erase", "url": "http://127.0.0.1:1/erase"}, 200)
	withAction := func(description, data string) string {
		return `[{"eventType": "e", "name": "keep", "description": "` + description + `", "actions": [{"type": "task", "name": "t", "functionName": "erase", "data": ` + data + `}]}]`
	}
	s.mustSync(nil, "sync", "-f", writeFile(t, "action.json", withAction("by sync", `{"n": 1}`)))
	p = plan(withAction("by sync again", `{"n": 2}`)) // the dispatcher, then its action
	if err := applyPlan(t.Context(), c, p, io.Discard); err != nil {
		t.Fatalf("a dispatcher and its action in one plan: %v", err)
	}
	p = plan(withAction("by sync again", `{"n": 3}`)) // the action alone
	s.call("PUT", "/dispatchers/v1/"+s.dispatchersByName()["keep"]["id"].(string), map[string]any{"tags": []string{"hand-owned"}}, 200)
	if err := applyPlan(t.Context(), c, p, io.Discard); err == nil || !strings.Contains(err.Error(), `dispatcher "keep" was changed since the plan was made`) {
		t.Fatalf("apply: %v; want the action's change refused", err)
	}
	if a := s.dispatchersByName()["keep"]["actions"].([]any)[0].(map[string]any); a["data"].(map[string]any)["n"] != float64(2) {
		t.Fatalf("action %v; want it as the plan before left it", a)
	}

	// A dispatcher's changes apply together or not at all: when the API
	// refuses the last (the creation of an action whose type changes,
	// its template deleted since the plan), the dispatcher keeps its
	// fields and the action it had. Before, each change went by itself,
	// and the dispatcher was left with its new description and without
	// the action.
	s.call("POST", "/templates/v1", map[string]any{"name": "tpl", "subject": "S", "text": "by sync"}, 200)
	soonGone := s.call("POST", "/templates/v1", map[string]any{"name": "soon-gone", "subject": "S", "text": "T"}, 200)["id"].(string)
	keep := s.dispatchersByName()["keep"]["id"].(string)
	s.call("PUT", "/dispatchers/v1/"+keep, map[string]any{"tags": []string{managedTag}}, 200) // sync's again
	p = plan(`[{"eventType": "e", "name": "keep", "description": "with a mail", "actions": [{"type": "mail", "name": "t", "templateName": "soon-gone", "recipients": {"to": ["a@example.com"]}}]}]`)
	s.call("DELETE", "/templates/v1/"+soonGone, nil, 200)
	err := applyPlan(t.Context(), c, p, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `the API refused changes 1–3 of 3 (dispatcher "keep"'s, which apply together or not at all)`) ||
		!strings.Contains(err.Error(), "createActions[0].templateId: no template with id "+strconv.Quote(soonGone)) {
		t.Fatalf("apply: %v; want the dispatcher's changes refused together, naming the creation", err)
	}
	var statuses []string
	for _, ch := range p.Changes {
		statuses = append(statuses, ch.Status+" "+describe(ch))
	}
	if got := strings.Join(statuses, "; "); got != `not applied ~ dispatcher "keep"; not applied - action "t" of dispatcher "keep"; failed + action "t" of dispatcher "keep"` {
		t.Fatalf("statuses: %s", got)
	}
	d := s.dispatchersByName()["keep"]
	if actions := d["actions"].([]any); d["description"] != "by sync again" || len(actions) != 1 || actions[0].(map[string]any)["type"] != "task" {
		t.Fatalf("keep after a refused change: %v; want it as it was", d)
	}

	// Templates and functions: a change by hand after the plan is kept,
	// not overwritten.
	s.call("POST", "/functions/v1", map[string]any{"name": "hook", "url": "http://127.0.0.1:1/a"}, 200)
	p = planWith(`{"templates": [{"name": "tpl", "subject": "S", "text": "by sync, later"}]}`, planOptions{})
	tpl := s.call("GET", "/templates/v1?eq(name,tpl)", nil, 200)["data"].([]any)[0].(map[string]any)["id"].(string)
	s.call("PUT", "/templates/v1/"+tpl, map[string]any{"text": "hotfix by hand"}, 200)
	if err := applyPlan(t.Context(), c, p, io.Discard); err == nil || !strings.Contains(err.Error(), `template "tpl" was changed since the plan was made, and is left as it is`) {
		t.Fatalf("apply: %v; want the template's update refused", err)
	}
	if got := s.call("GET", "/templates/v1/"+tpl, nil, 200)["text"]; got != "hotfix by hand" {
		t.Fatalf("template text %q; want the change by hand kept", got)
	}
	hook := s.call("GET", "/functions/v1?eq(name,hook)", nil, 200)["data"].([]any)[0].(map[string]any)["id"].(string)
	p = planWith(`{"functions": [{"name": "hook", "url": "http://127.0.0.1:1/b"}]}`, planOptions{})
	s.call("PUT", "/functions/v1/"+hook, map[string]any{"url": "http://127.0.0.1:1/by-hand"}, 200)
	if err := applyPlan(t.Context(), c, p, io.Discard); err == nil || !strings.Contains(err.Error(), `function "hook" was changed since the plan was made, and is left as it is`) {
		t.Fatalf("apply: %v; want the function's update refused", err)
	}
	if got := s.call("GET", "/functions/v1/"+hook, nil, 200)["url"]; got != "http://127.0.0.1:1/by-hand" {
		t.Fatalf("function url %q; want the change by hand kept", got)
	}

	// Changed by another writer after sync applied its change, before it
	// checked (a sync run at the same time): it fails, naming what
	// differs. Before, it warned of "a field it ignores or rewrites?" and
	// exited 0, the install matching neither file.
	after := writerFunc(func(b []byte) (int, error) {
		if strings.Contains(string(b), "Applied") {
			s.call("PUT", "/dispatchers/v1/"+keep, map[string]any{"description": "another sync's"}, 200)
		}
		return len(b), nil
	})
	file := writeFile(t, "last.json", `[{"eventType": "e", "name": "keep", "description": "by sync, last", "actions": []}]`)
	err = runSync(t.Context(), c, nil, file, planOptions{}, false, &syncResult{}, after, io.Discard, false)
	if err == nil || !strings.Contains(err.Error(), `after applying, the API differs from the file: ~ dispatcher "keep"`) ||
		!strings.Contains(err.Error(), "another writer changed it meanwhile") {
		t.Fatalf("sync: %v; want a failure naming the dispatcher another writer changed", err)
	}
}

// writerFunc is an io.Writer that is a function.
type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// TestSyncExportRoundTrip: export an install, sync the file on an empty
// install, export that: the two exports are the same file.
func TestSyncExportRoundTrip(t *testing.T) {
	a := startSystem(t)
	a.call("POST", "/templates/v1", map[string]any{"name": "unmanaged", "subject": "S", "html": "<p>x & y</p>"}, 200)
	tmpl := a.call("POST", "/templates/v1", map[string]any{"name": "bye", "subject": "Bye", "text": "Bye"}, 200)["id"].(string)
	a.call("POST", "/dispatchers/v1", map[string]any{"name": "manual", "eventType": "order_paid", "description": "by hand",
		"actions": []any{map[string]any{"type": "mail", "name": "m", "recipients": map[string]any{"to": []string{"a@example.com"}, "cc": []string{"b@example.com"}}, "templateId": tmpl}}}, 200)
	a.mustSync([]string{"DISPATCHER_SECRET_ERASE=x"}, "sync", "-f", filepath.Join("testdata", "sync", "app.yaml"))
	a.call("POST", "/functions/v1", map[string]any{"name": "hooks", "url": "http://127.0.0.1:9/hooks", "headers": map[string]string{"X-Api-Key": "k"}}, 200)

	firstFile := filepath.Join(t.TempDir(), "export.json")
	a.mustSync(nil, "export", "-o", firstFile)
	b1, err := os.ReadFile(firstFile)
	if err != nil {
		t.Fatal(err)
	}
	first := string(b1)
	mustContain(t, "export", first, `"templateName": "goodbye"`, `"secretEnv": "DISPATCHER_SECRET_ERASE"`, `"X-Api-Key": "DISPATCHER_HEADER_HOOKS_X_API_KEY"`,
		`"html": "<p>x & y</p>"`, `"weight": 1.50`,
		`"perSecond": 5`, `"failures": 3`)
	if strings.Contains(first, managedTag) {
		t.Fatalf("export wrote the managed tag:\n%s", first)
	}
	// Flow control's defaults are left out, as the README says of
	// fields at their defaults; before, they were written out.
	for _, d := range []string{`"burst"`, `"windowSeconds"`, `"probeIntervalSeconds"`} {
		if strings.Contains(first, d) {
			t.Errorf("export wrote %s at its default:\n%s", d, first)
		}
	}
	managedOnly := a.mustSync(nil, "export", "--managed-only")
	if strings.Contains(managedOnly, `"manual"`) || strings.Contains(managedOnly, `"unmanaged"`) {
		t.Fatalf("--managed-only exported what sync does not manage:\n%s", managedOnly)
	}

	b := startSystem(t)
	env := []string{"DISPATCHER_SECRET_ERASE=x", "DISPATCHER_HEADER_HOOKS_X_API_KEY=k"}
	b.mustSync(env, "sync", "-f", firstFile)
	out := filepath.Join(t.TempDir(), "second.json")
	b.mustSync(nil, "export", "-o", out)
	second, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if string(second) != first {
		t.Fatalf("export → sync → export differs:\n%s\nwas:\n%s", second, first)
	}
	mustContain(t, "sync of the export again", b.mustSync(nil, "sync", "-f", firstFile), "No changes")
	// The YAML export is the same configuration.
	yamlFile := filepath.Join(t.TempDir(), "export.yaml")
	b.mustSync(nil, "export", "-o", yamlFile)
	mustContain(t, "sync of the YAML export", b.mustSync(nil, "sync", "-f", yamlFile), "No changes")
}

// TestSyncInterrupted: Ctrl-C during sync stops it between dispatchers,
// the change in flight answered: a dispatcher whose action's type
// changes (deleted, then created anew) gets both, and the dispatchers
// after it nothing. Before, the interrupt cancelled the request in
// flight, and could leave a dispatcher without its action.
func TestSyncInterrupted(t *testing.T) {
	s := startSystem(t)
	s.call("POST", "/templates/v1", map[string]any{"name": "tpl", "subject": "S", "text": "T"}, 200)
	s.call("POST", "/functions/v1", map[string]any{"name": "erase", "url": "http://127.0.0.1:1/erase"}, 200)
	file := func(typ, description string) string {
		action := `{"type": "task", "name": "a", "functionName": "erase"}`
		if typ == "mail" {
			action = `{"type": "mail", "name": "a", "templateName": "tpl", "recipients": {"to": ["a@example.com"]}}`
		}
		return `[{"eventType": "e", "name": "first", "actions": [` + action + `]}, {"eventType": "e", "name": "second", "description": "` + description + `", "actions": []}]`
	}
	s.mustSync(nil, "sync", "-f", writeFile(t, "before.json", file("task", "before")))
	c := &apiClient{base: s.url, shown: s.url, token: s.token, http: &http.Client{Timeout: time.Minute}}
	remote, err := fetchState(t.Context(), c, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	p, err := makePlan(syncFileOf(t, file("mail", "after")), remote, planOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, interrupt := context.WithCancel(t.Context())
	var lines []string
	progress := writerFunc(func(b []byte) (int, error) {
		lines = append(lines, strings.TrimSpace(string(b)))
		interrupt() // Ctrl-C, once the first change is done
		return len(b), nil
	})
	err = applyPlan(ctx, c, p, progress)
	if err == nil || !strings.Contains(err.Error(), "interrupted: the 2 changes before change 3 of 3") {
		t.Fatalf("apply: %v (%q); want it interrupted before the third change", err, lines)
	}
	d := s.dispatchersByName()
	if actions := d["first"]["actions"].([]any); len(actions) != 1 || actions[0].(map[string]any)["type"] != "mail" {
		t.Errorf("first has actions %v; want its action created anew as a mail", actions)
	}
	if d["second"]["description"] != "before" {
		t.Errorf("second is %v; want it left as it was", d["second"])
	}
}
