package api

import (
	"cmp"
	"fmt"
	"strings"
	"testing"

	"github.com/dispatcherhq/dispatcher/internal/testenv"
)

// TestBatchAppliesAllOrNothing changes a dispatcher and its actions in one
// request: all of the changes, or, when one is refused, none of them.
// One request per change (as sync made them before) left the dispatcher
// halfway: its new filter, its old action deleted, the new one refused.
func TestBatchAppliesAllOrNothing(t *testing.T) {
	hs := newHarness(t, testenv.Postgres(t))
	tmpl := hs.seed()
	d := hs.must(200, "POST", "/dispatchers/v1", `{"name":"gdpr","eventType":"user_deleted","actions":[
		{"type":"task","name":"notify","functionName":"erase"},
		{"type":"task","name":"erase","functionName":"erase","data":{"v":1}}]}`)
	id := d["id"].(string)
	actions := d["actions"].([]any)
	notify, erase := actions[0].(map[string]any)["id"].(string), actions[1].(map[string]any)["id"].(string)
	path := "/dispatchers/v1/" + id + "/batch"

	// A refused change, the last, refuses those before it.
	code, body := hs.do("POST", path, fmt.Sprintf(`{"dispatcher":{"filter":"event.content.eu"},"deleteActions":[%q],
		"updateActions":[{"id":%q,"data":{"v":2}}],"createActions":[{"type":"task","name":"notify","functionName":"nope"}]}`, notify, erase))
	wantError(t, code, body, 400, 15, "createActions[0].functionName")
	if got := hs.must(200, "GET", "/dispatchers/v1/"+id, ""); got["filter"] != nil || got["updateTimestamp"] != d["updateTimestamp"] ||
		fmt.Sprint(got["actions"]) != fmt.Sprint(d["actions"]) {
		t.Fatalf("a refused batch changed the dispatcher:\nbefore %v\nafter  %v", d, got)
	}

	// The action named notify changes type: deleted, and created again
	// under its name, in the same transaction.
	rec := hs.send(hs.token, "POST", path, fmt.Sprintf(`{"dispatcher":{"filter":"event.content.eu"},"deleteActions":[%q],
		"updateActions":[{"id":%q,"data":{"v":2}}],
		"createActions":[{"type":"mail","name":"notify","recipients":{"to":["a@example.com"]},"templateName":"welcome"}]}`, notify, erase))
	got := hs.decode(rec, "POST", path)
	if rec.Code != 200 {
		t.Fatalf("batch = %d %v", rec.Code, got)
	}
	if got["filter"] != "event.content.eu" || len(got["actions"].([]any)) != 2 {
		t.Fatalf("batch answered %v", got)
	}
	kept, added := got["actions"].([]any)[0].(map[string]any), got["actions"].([]any)[1].(map[string]any)
	if kept["id"] != erase || fmt.Sprint(kept["data"]) != "map[v:2]" || added["name"] != "notify" || added["type"] != "mail" ||
		added["templateId"] != tmpl || added["id"] == notify {
		t.Fatalf("actions after the batch: %v", got["actions"])
	}
	if etag := rec.Header().Get("ETag"); etag != fmt.Sprintf(`"%.0f"`, got["updateTimestamp"]) {
		t.Fatalf("ETag %s, updateTimestamp %v", etag, got["updateTimestamp"])
	}
	if again := hs.must(200, "GET", "/dispatchers/v1/"+id, ""); fmt.Sprint(again) != fmt.Sprint(got) {
		t.Fatalf("GET after the batch = %v, the batch answered %v", again, got)
	}

	// Made against the version before it, a batch is refused.
	rec = hs.send(hs.token, "POST", path, `{"dispatcher":{"description":"late"}}`, "If-Match", fmt.Sprintf(`"%.0f"`, d["updateTimestamp"]))
	wantError(t, rec.Code, hs.decode(rec, "POST", path), 412, 412, "is at version")
}

// TestBatchErrors: each mistake in a batch is named where it is, and
// changes nothing.
func TestBatchErrors(t *testing.T) {
	hs := newHarness(t, testenv.Postgres(t))
	hs.seed()
	d := hs.must(200, "POST", "/dispatchers/v1", `{"name":"gdpr","eventType":"user_deleted","actions":[{"type":"task","name":"erase","functionName":"erase"}]}`)
	hs.must(200, "POST", "/dispatchers/v1", `{"name":"taken","eventType":"user_deleted"}`)
	id, aid := d["id"].(string), d["actions"].([]any)[0].(map[string]any)["id"].(string)
	unknown := "0123456789abcdef01234567"
	path := "/dispatchers/v1/" + id + "/batch"
	cases := []struct {
		name, token, body string
		status, code      int
		mention           string
	}{
		{"nothing", "", `{}`, 400, 13, "changes nothing"},
		{"empty lists", "", `{"dispatcher":{},"deleteActions":[],"createActions":[]}`, 400, 13, "changes nothing"},
		{"misspelt", "", `{"createAction":[{"type":"task","functionName":"erase"}]}`, 400, 15, `did you mean "createActions"`},
		{"actions of the dispatcher", "", `{"dispatcher":{"name":"x","actions":[]}}`, 400, 15, "dispatcher.actions"},
		{"taken name", "", `{"dispatcher":{"name":"taken"}}`, 400, 17, "dispatcher.name"},
		{"taken action name", "", `{"createActions":[{"type":"task","name":"erase","functionName":"erase"}]}`, 400, 17, "createActions[0].name"},
		{"bad id", "", `{"deleteActions":["xyz"]}`, 400, 15, `deleteActions[0]: "xyz" is not a valid id`},
		{"changed twice", "", fmt.Sprintf(`{"deleteActions":[%q],"updateActions":[{"id":%q,"name":"x"}]}`, aid, aid), 400, 15, "updateActions[0].id: action " + aid + " is changed at deleteActions[0] already"},
		{"update of nothing", "", fmt.Sprintf(`{"updateActions":[{"id":%q}]}`, aid), 400, 15, "updateActions[0]: changes nothing"},
		{"type change", "", fmt.Sprintf(`{"updateActions":[{"id":%q,"type":"mail"}]}`, aid), 400, 15, "updateActions[0].type"},
		{"templateName of a task", "", fmt.Sprintf(`{"updateActions":[{"id":%q,"templateName":"welcome"}]}`, aid), 400, 15, "updateActions[0].templateName: a task action has none"},
		{"wrong type", "", `{"createActions":[{"type":"task","functionName":"erase","tags":[1]}]}`, 400, 15, "createActions[0].tags[0]"},
		{"unknown action", "", fmt.Sprintf(`{"deleteActions":[%q]}`, unknown), 404, 16, "deleteActions[0]: Requested resource is unknown: no action with id " + unknown},
		{"unknown action to update", "", fmt.Sprintf(`{"updateActions":[{"id":%q,"name":"x"}]}`, unknown), 404, 16, "updateActions[0]: Requested resource is unknown: no action with id " + unknown},
		{"unknown dispatcher", "", "", 404, 16, "no dispatcher with id " + unknown},
		{"no permission", hs.tokenWith(PermViewDispatchers, PermCreateDispatchers), `{"dispatcher":{"name":"x"}}`, 403, 10, "UPDATE_DISPATCHERS"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, body := path, c.body
			if c.name == "unknown dispatcher" {
				p, body = "/dispatchers/v1/"+unknown+"/batch", `{"dispatcher":{"name":"x"}}`
			}
			code, out := hs.doAs(cmp.Or(c.token, hs.token), "POST", p, body)
			wantError(t, code, out, c.status, c.code, c.mention)
		})
	}
	if got := hs.must(200, "GET", "/dispatchers/v1/"+id, ""); got["updateTimestamp"] != d["updateTimestamp"] {
		t.Fatalf("a refused batch changed the dispatcher: %v", got)
	}

	// A limit of the dispatcher's actions names the action that would
	// pass it. Before, "createActions[0].actions: ...", a field the action
	// does not have.
	full := hs.must(200, "POST", "/dispatchers/v1", `{"name":"full","eventType":"e","actions":[`+
		strings.TrimSuffix(strings.Repeat(`{"type":"task","functionName":"erase"},`, 50), ",")+`]}`)
	code, out := hs.do("POST", "/dispatchers/v1/"+full["id"].(string)+"/batch", `{"createActions":[{"type":"task","functionName":"erase"}]}`)
	wantError(t, code, out, 400, 15, "createActions[0]: a dispatcher holds at most 50 actions")
}
