package api

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/testenv"
)

// TestExtraHorizonFlow drives the dispatcher API the way the Extra Horizon
// SDK and CLI do, through every endpoint of the reference.
func TestExtraHorizonFlow(t *testing.T) {
	hs := newHarness(t, testenv.Postgres(t))
	tmpl := hs.seed()

	created := hs.must(200, "POST", "/dispatchers/v1/", fmt.Sprintf(`{
		"name": "erase-pii", "description": "d", "eventType": "user_deleted", "tags": ["EXH_CLI_MANAGED"],
		"actions": [
			{"type": "mail", "name": "bye", "recipients": {"to": ["a@example.com"], "cc": ["b@example.com"]}, "templateId": %q, "templateName": "welcome"},
			{"type": "task", "name": "erase", "functionName": "erase", "data": {"z": 1, "a": {"b": [1, "x"]}}, "tags": ["pii"], "startTimestamp": 1893456000000}
		]}`, tmpl))
	id := created["id"].(string)
	actions := created["actions"].([]any)
	if len(id) != 24 || len(actions) != 2 || len(actions[0].(map[string]any)["id"].(string)) != 24 {
		t.Fatalf("created = %v", created)
	}
	task := actions[1].(map[string]any)
	if task["startTimestamp"] != "2030-01-01T00:00:00.000Z" || fmt.Sprint(task["data"]) != "map[a:map[b:[1 x]] z:1]" {
		t.Fatalf("task = %v", task)
	}
	if _, ok := created["creationTimestamp"].(float64); !ok {
		t.Fatalf("creationTimestamp must be a number: %v", created["creationTimestamp"])
	}
	hs.must(200, "POST", "/dispatchers/v1", `{"name": "other", "eventType": "user_created"}`)

	page := hs.must(200, "GET", "/dispatchers/v1/?eq(tags,EXH_CLI_MANAGED)&limit(50)", "")
	if p := page["page"].(map[string]any); p["total"] != 1.0 || p["limit"] != 50.0 || p["offset"] != 0.0 {
		t.Fatalf("page = %v", page["page"])
	}
	// The SDK encodes values twice.
	page = hs.must(200, "GET", "/dispatchers/v1/?eq(id,"+url.PathEscape(url.PathEscape(id))+")", "")
	if data := page["data"].([]any); len(data) != 1 || data[0].(map[string]any)["name"] != "erase-pii" {
		t.Fatalf("find by id = %v", page)
	}
	page = hs.must(200, "GET", "/dispatchers/v1?select(id,name)&sort(-name)&limit(100)", "")
	if p := page["page"].(map[string]any); p["total"] != 2.0 || p["limit"] != 50.0 {
		t.Fatalf("limit must clamp to 50: %v", p)
	}
	if first := page["data"].([]any)[0].(map[string]any); first["name"] != "other" || len(first) != 2 {
		t.Fatalf("select/sort: %v", first)
	}
	if got := hs.must(200, "GET", "/dispatchers/v1/"+id, ""); got["name"] != "erase-pii" {
		t.Fatalf("GET by id = %v", got)
	}

	before := created["updateTimestamp"].(float64)
	// The CLI sends the whole object, actions included, which are ignored.
	// Whatever their shape: an action the API would refuse in a POST
	// (recipients.to not a list) made the update a 400.
	res := hs.must(200, "PUT", "/dispatchers/v1/"+id, `{"name":"erase-pii-2","eventType":"user_removed","tags":["EXH_CLI_MANAGED","x"],"actions":[{"bogus":true,"recipients":{"to":"x"}}],"unknown":1}`)
	if res["affectedRecords"] != 1.0 {
		t.Fatalf("PUT = %v", res)
	}
	got := hs.must(200, "GET", "/dispatchers/v1/"+id, "")
	if got["name"] != "erase-pii-2" || got["eventType"] != "user_removed" || len(got["actions"].([]any)) != 2 || got["updateTimestamp"].(float64) <= before {
		t.Fatalf("after PUT = %v", got)
	}

	byName := hs.must(200, "POST", "/dispatchers/v1/"+id+"/actions", `{"type":"mail","name":"by-name","recipients":{"to":["c@example.com"]},"templateName":"welcome"}`)
	if byName["templateId"] != tmpl {
		t.Fatalf("templateName not resolved: %v", byName)
	}
	hs.must(200, "DELETE", "/dispatchers/v1/"+id+"/actions/"+byName["id"].(string), "")
	action := hs.must(200, "POST", "/dispatchers/v1/"+id+"/actions", `{"type":"task","name":"later","functionName":"erase","startTimestamp":"2031-05-06T07:08:09Z"}`)
	aid := action["id"].(string)
	if action["startTimestamp"] != "2031-05-06T07:08:09.000Z" || len(aid) != 24 {
		t.Fatalf("action = %v", action)
	}
	hs.must(200, "PUT", "/dispatchers/v1/"+id+"/actions/"+aid, `{"description":"now","startTimestamp":null,"data":{"k":"v"}}`)
	got = hs.must(200, "GET", "/dispatchers/v1/"+id, "")
	updated := got["actions"].([]any)[2].(map[string]any)
	if updated["description"] != "now" || updated["startTimestamp"] != nil || updated["functionName"] != "erase" {
		t.Fatalf("updated action = %v", updated)
	}
	hs.must(200, "DELETE", "/dispatchers/v1/"+id+"/actions/"+aid, "")
	if got := hs.must(200, "GET", "/dispatchers/v1/"+id, ""); len(got["actions"].([]any)) != 2 {
		t.Fatalf("after action delete: %v", got["actions"])
	}
	hs.must(200, "DELETE", "/dispatchers/v1/"+id, "")
	code, _ := hs.do("GET", "/dispatchers/v1/"+id, "")
	if code != 404 {
		t.Fatalf("deleted dispatcher answers %d", code)
	}
}

// TestErrors provokes every error code of the reference.
// TestTagsNamedTwiceAreKeptOnce keeps a tag sent twice once, in the order
// sent, in a dispatcher's create and update and an action's: both were
// stored twice, and a tool that appends its own tag to a list that holds
// it must not be refused for it either.
func TestTagsNamedTwiceAreKeptOnce(t *testing.T) {
	hs := newHarness(t, testenv.SQLite(t))
	hs.seed()
	tags := func(v map[string]any) string {
		var out []string
		for _, t := range v["tags"].([]any) {
			out = append(out, t.(string))
		}
		return strings.Join(out, ",")
	}
	d := hs.must(200, "POST", "/dispatchers/v1", `{"eventType":"e","tags":["b","EXH_CLI_MANAGED","b","EXH_CLI_MANAGED"],
		"actions":[{"type":"task","functionName":"erase","tags":["x","x"]}]}`)
	id := d["id"].(string)
	if got := tags(d); got != "b,EXH_CLI_MANAGED" {
		t.Errorf("created with tags %s", got)
	}
	if got := tags(d["actions"].([]any)[0].(map[string]any)); got != "x" {
		t.Errorf("action created with tags %s", got)
	}
	hs.must(200, "PUT", "/dispatchers/v1/"+id, `{"tags":["c","c","d"]}`)
	if got := tags(hs.must(200, "GET", "/dispatchers/v1/"+id, "")); got != "c,d" {
		t.Errorf("updated to tags %s", got)
	}
	a := hs.must(200, "POST", "/dispatchers/v1/"+id+"/actions", `{"type":"task","functionName":"erase","tags":["y","z","y"]}`)
	if got := tags(a); got != "y,z" {
		t.Errorf("action added with tags %s", got)
	}
	hs.must(200, "PUT", "/dispatchers/v1/"+id+"/actions/"+a["id"].(string), `{"tags":["w","w"]}`)
	for _, act := range hs.must(200, "GET", "/dispatchers/v1/"+id, "")["actions"].([]any) {
		if act.(map[string]any)["id"] == a["id"] && tags(act.(map[string]any)) != "w" {
			t.Errorf("action updated to tags %s", tags(act.(map[string]any)))
		}
	}
}

func TestErrors(t *testing.T) {
	hs := newHarness(t, testenv.Postgres(t))
	tmpl := hs.seed()
	d := hs.must(200, "POST", "/dispatchers/v1", `{"name":"taken","eventType":"e","actions":[{"type":"task","name":"t","functionName":"erase"}]}`)
	id := d["id"].(string)
	aid := d["actions"].([]any)[0].(map[string]any)["id"].(string)
	unknown := "0123456789abcdef01234567"
	expired, err := SignToken([]byte(harnessSecret), TokenClaims{Subject: "x", Permissions: Permissions(), TTL: time.Minute}, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	viewOnly := hs.tokenWith(PermViewDispatchers)
	big := `{"eventType":"e","description":"` + strings.Repeat("x", 5000) + `"}`

	cases := []struct {
		name, token, method, path, body string
		status, code                    int
		mention                         string
	}{
		{"no permission", viewOnly, "POST", "/dispatchers/v1", `{"eventType":"e"}`, 403, 10, "CREATE_DISPATCHERS"},
		{"bad id", "", "GET", "/dispatchers/v1/nothex", "", 400, 12, "dispatcherId"},
		{"bad action id", "", "DELETE", "/dispatchers/v1/" + id + "/actions/xyz", "", 400, 12, "actionId"},
		{"empty body", "", "POST", "/dispatchers/v1", "", 400, 13, "empty"},
		{"empty update", "", "PUT", "/dispatchers/v1/" + id, `{"actions":[]}`, 400, 13, "changes nothing"},
		// Before, it said "changes nothing" of a body that named a field.
		{"null name", "", "PUT", "/dispatchers/v1/" + id, `{"name":null}`, 400, 13, "null leaves name, eventType, tags and enabled as they are, and removes description"},
		{"missing eventType", "", "POST", "/dispatchers/v1", `{"name":"n"}`, 400, 14, "eventType"},
		{"missing recipients", "", "POST", "/dispatchers/v1/" + id + "/actions", `{"type":"mail","templateId":"` + tmpl + `"}`, 400, 14, "recipients.to"},
		{"missing functionName", "", "POST", "/dispatchers/v1", `{"eventType":"e","actions":[{"type":"task"}]}`, 400, 14, "actions[0].functionName"},
		{"tag too long", "", "POST", "/dispatchers/v1", `{"eventType":"e","tags":["` + strings.Repeat("t", 300) + `"]}`, 400, 15, "tags[0]"},
		{"eventType too long", "", "PUT", "/dispatchers/v1/" + id, `{"eventType":"` + strings.Repeat("e", 300) + `"}`, 400, 15, "eventType"},
		{"NUL in a name", "", "POST", "/dispatchers/v1", `{"eventType":"e","name":"a\u0000b"}`, 400, 15, "name"},
		{"NUL in a recipient", "", "POST", "/dispatchers/v1/" + id + "/actions", `{"type":"mail","recipients":{"to":["a\u0000@example.com"]},"templateId":"` + tmpl + `"}`, 400, 15, "recipients.to"},
		{"wrong type", "", "POST", "/dispatchers/v1", `{"eventType":42}`, 400, 15, "eventType"},
		// Before, "actions.tags": which action, which tag?
		{"wrong type in an array", "", "POST", "/dispatchers/v1", `{"eventType":"e","actions":[{"type":"task","functionName":"erase","tags":["a",1]}]}`, 400, 15, "actions[0].tags[1]: must be a string, not number"},
		{"bad action type", "", "POST", "/dispatchers/v1/" + id + "/actions", `{"type":"sms"}`, 400, 15, "type"},
		{"type change", "", "PUT", "/dispatchers/v1/" + id + "/actions/" + aid, `{"type":"mail"}`, 400, 15, "type"},
		{"bad email", "", "POST", "/dispatchers/v1/" + id + "/actions", `{"type":"mail","recipients":{"to":["nope"]},"templateId":"` + tmpl + `"}`, 400, 15, "recipients.to[0]"},
		{"bad startTimestamp", "", "POST", "/dispatchers/v1/" + id + "/actions", `{"type":"task","functionName":"erase","startTimestamp":"tomorrow"}`, 400, 15, "startTimestamp"},
		{"data not an object", "", "POST", "/dispatchers/v1/" + id + "/actions", `{"type":"task","functionName":"erase","data":[1]}`, 400, 15, "data"},
		{"unknown template", "", "POST", "/dispatchers/v1/" + id + "/actions", `{"type":"mail","recipients":{"to":["a@example.com"]},"templateId":"` + unknown + `"}`, 400, 15, "templateId"},
		{"unknown templateName", "", "POST", "/dispatchers/v1", `{"eventType":"e","actions":[{"type":"mail","recipients":{"to":["a@example.com"]},"templateName":"nope"}]}`, 400, 15, "actions[0].templateName"},
		// Before, templateName was ignored beside a templateId, and a
		// task action's was refused as a templateId.
		{"templateName of another template than templateId", "", "POST", "/dispatchers/v1/" + id + "/actions", `{"type":"mail","recipients":{"to":["a@example.com"]},"templateId":"` + unknown + `","templateName":"welcome"}`, 400, 15, `templateName: template "welcome" is ` + tmpl + `, not the templateId ` + unknown},
		{"templateName of a task action", "", "POST", "/dispatchers/v1/" + id + "/actions", `{"type":"task","functionName":"erase","templateName":"welcome"}`, 400, 15, "templateName: a task action has no template"},
		// Before, refused for the templateId it was resolved to, which the
		// client had not sent.
		{"templateName in a task action's update", "", "PUT", "/dispatchers/v1/" + id + "/actions/" + aid, `{"templateName":"welcome"}`, 400, 15, "templateName: "},
		{"unknown function", "", "POST", "/dispatchers/v1/" + id + "/actions", `{"type":"task","functionName":"nope"}`, 400, 15, "functionName"},
		{"unknown dispatcher", "", "PUT", "/dispatchers/v1/" + unknown, `{"name":"x"}`, 404, 16, "unknown"},
		{"unknown action", "", "DELETE", "/dispatchers/v1/" + id + "/actions/" + unknown, "", 404, 16, "unknown"},
		{"delete unknown", "", "DELETE", "/dispatchers/v1/" + unknown, "", 404, 16, "unknown"},
		// Each names what is missing. Before, these answered only
		// "Requested resource is unknown".
		{"update an unknown action", "", "PUT", "/dispatchers/v1/" + id + "/actions/" + unknown, `{"name":"x"}`, 404, 16, "no action with id " + unknown + " in dispatcher " + id},
		{"update an unknown template", "", "PUT", "/templates/v1/" + unknown, `{"subject":"x"}`, 404, 16, "no template with id " + unknown},
		{"render an unknown template", "", "POST", "/templates/v1/" + unknown + "/render", `{"event":{"type":"e"}}`, 404, 16, "no template with id " + unknown},
		{"update an unknown function", "", "PUT", "/functions/v1/" + unknown, `{"timeoutSeconds":5}`, 404, 16, "no function with id " + unknown},
		{"name taken", "", "POST", "/dispatchers/v1", `{"name":"taken","eventType":"e"}`, 400, 17, "taken"},
		{"action name taken", "", "POST", "/dispatchers/v1/" + id + "/actions", `{"type":"task","name":"t","functionName":"erase"}`, 400, 17, `"t"`},
		{"bad rql", "", "GET", "/dispatchers/v1?eq(colour,red)", "", 400, 19, "colour"},
		{"rql with too many values", "", "GET", "/dispatchers/v1?in(id," + strings.Repeat("a,", 70000) + "b)", "", 400, 19, "too many values"},
		// Before, a 500 on SQLite, 30 s of PostgreSQL then a 503.
		{"rql with too many conditions", "", "GET", "/dispatchers/v1?select(id)&" + strings.Repeat("contains(name)&", 1100) + "eq(name,x)", "", 400, 19, "too many conditions (1102); a query takes at most 100"},
		{"startTimestamp in year 10000", "", "POST", "/dispatchers/v1/" + id + "/actions", `{"type":"task","functionName":"erase","startTimestamp":253402300800000}`, 400, 15, "9999"},
		// Before, the key was dropped, and the mail went without its bcc.
		{"recipients bc", "", "POST", "/dispatchers/v1/" + id + "/actions", `{"type":"mail","templateId":"` + unknown + `","recipients":{"to":["a@example.com"],"bc":["b@example.com"]}}`, 400, 15, `recipients.bc: unknown field; did you mean "bcc"?`},
		// Temporal would fire it early, at its longest timer.
		{"startTimestamp past 100 years", "", "POST", "/dispatchers/v1/" + id + "/actions", `{"type":"task","functionName":"erase","startTimestamp":"2300-01-01T00:00:00Z"}`, 400, 15, "startTimestamp: must be at most 36,500 days ahead, until 2"}, // a date in full: before, only its year,
		{"data not UTF-8", "", "POST", "/dispatchers/v1/" + id + "/actions", "{\"type\":\"task\",\"functionName\":\"erase\",\"data\":{\"k\":\"\xff\"}}", 400, 22, "not UTF-8"},
		{"huge retry interval", "", "POST", "/dispatchers/v1/" + id + "/actions", `{"type":"task","functionName":"erase","retryPolicy":{"initialIntervalMs":9223372036854775807}}`, 400, 15, "retryPolicy"},
		{"rql gt on tags", "", "GET", "/dispatchers/v1?gt(tags,a)", "", 400, 19, "tags"},
		{"unparsable json", "", "POST", "/dispatchers/v1", `{"eventType":`, 400, 22, "JSON"},
		{"not an object", "", "POST", "/dispatchers/v1", `["x"]`, 400, 22, "object"},
		{"template in use", "", "DELETE", "/templates/v1/" + tmpl, "", 200, 0, ""}, // unused so far: succeeds
		{"too large", "", "POST", "/dispatchers/v1", big, 413, 24, "limit"},
		{"no token", "-", "GET", "/dispatchers/v1", "", 401, 104, "bearer"},
		{"garbage token", "garbage", "GET", "/dispatchers/v1", "", 401, 117, ""},
		{"expired token", expired, "GET", "/dispatchers/v1", "", 401, 118, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			token := tc.token
			switch token {
			case "":
				token = hs.token
			case "-":
				token = ""
			}
			code, body := hs.doAs(token, tc.method, tc.path, tc.body)
			if tc.code == 0 {
				if code != tc.status {
					t.Fatalf("got %d %v, want %d", code, body, tc.status)
				}
				return
			}
			wantError(t, code, body, tc.status, tc.code, tc.mention)
		})
	}
	// Nothing half-written: the failed requests left one dispatcher with
	// its one action.
	page := hs.must(200, "GET", "/dispatchers/v1", "")
	if page["page"].(map[string]any)["total"] != 1.0 || len(page["data"].([]any)[0].(map[string]any)["actions"].([]any)) != 1 {
		t.Fatalf("failed requests changed the store: %v", page)
	}
}

func TestReferencedTemplateAndFunctionCannotBeDeleted(t *testing.T) {
	hs := newHarness(t, testenv.Postgres(t))
	tmpl := hs.seed()
	fns := hs.must(200, "GET", "/functions/v1", "")
	fn := fns["data"].([]any)[0].(map[string]any)
	if _, leaked := fn["secret"]; leaked {
		t.Fatalf("function secret must be write-only: %v", fn)
	}
	d := hs.must(200, "POST", "/dispatchers/v1", fmt.Sprintf(`{"name":"uses","eventType":"e","actions":[
		{"type":"mail","recipients":{"to":["a@example.com"]},"templateId":%q},{"type":"task","functionName":"erase"}]}`, tmpl))
	code, body := hs.do("DELETE", "/templates/v1/"+tmpl, "")
	wantError(t, code, body, 400, 23, d["id"].(string))
	code, body = hs.do("DELETE", "/functions/v1/"+fn["id"].(string), "")
	wantError(t, code, body, 400, 23, d["id"].(string))
}

// TestTypeErrorsNameTheField: a value of the wrong type is refused with
// 400 code 15, its message beginning with the field as the client spells
// it. Before, Go's names leaked in ("DispatcherRequest.name", "Go struct
// field RetryPolicy.maximumAttempts of type int"), and a pausedUntil that
// is no time was "not valid JSON" (code 22).
func TestTypeErrorsNameTheField(t *testing.T) {
	hs := newHarness(t, testenv.SQLite(t))
	hs.seed()
	id := hs.must(200, "POST", "/dispatchers/v1", `{"name":"d","eventType":"e","actions":[{"type":"task","name":"t","functionName":"erase"}]}`)["id"].(string)
	fn := hs.must(200, "GET", "/functions/v1", "")["data"].([]any)[0].(map[string]any)["id"].(string)
	for _, tc := range []struct{ method, path, body, want string }{
		{"PUT", "/dispatchers/v1/" + id, `{"name":1}`, "name: must be a string"},
		{"PUT", "/dispatchers/v1/" + id, `{"ordering":{"key":1}}`, "ordering.key: must be a string"},
		{"POST", "/dispatchers/v1/" + id + "/actions", `{"type":"task","functionName":"erase","retryPolicy":{"maximumAttempts":"x"}}`, "retryPolicy.maximumAttempts: must be a number"},
		{"PUT", "/functions/v1/" + fn, `{"pausedUntil":"tomorrow"}`, "pausedUntil: "},
	} {
		code, body := hs.do(tc.method, tc.path, tc.body)
		wantError(t, code, body, 400, 15, tc.want)
		if msg := body["message"].(string); !strings.HasPrefix(msg, tc.want) {
			t.Errorf("%s %s: the message %q does not begin with %q", tc.method, tc.body, msg, tc.want)
		}
	}
}

// TestMisspeltKeysAreRefused: a key that nearly spells a field of the
// request is a 400 naming both, and nothing is written; other keys are
// still ignored, as Extra Horizon clients send their own. Before, a
// misspelt key was dropped: "enabeld": false left the dispatcher running,
// "secrt" left the function's calls unsigned.
func TestMisspeltKeysAreRefused(t *testing.T) {
	hs := newHarness(t, testenv.SQLite(t))
	hs.seed()
	d := hs.must(200, "POST", "/dispatchers/v1", `{"name":"d","eventType":"e","actions":[{"type":"task","name":"t","functionName":"erase"}]}`)
	id, aid := d["id"].(string), d["actions"].([]any)[0].(map[string]any)["id"].(string)
	for _, tc := range []struct{ method, path, body, want string }{
		{"POST", "/dispatchers/v1", `{"name":"d2","eventType":"e","enabeld":false}`, `enabeld: unknown field; did you mean "enabled"?`},
		{"POST", "/dispatchers/v1", `{"name":"d2","eventType":"e","actions":[{"type":"task","functionName":"erase","dat":{"a":1}}]}`, `actions[0].dat: unknown field; did you mean "data"?`},
		{"PUT", "/dispatchers/v1/" + id, `{"evenType":"f"}`, `evenType: unknown field; did you mean "eventType"?`},
		{"POST", "/dispatchers/v1/" + id + "/actions", `{"type":"mail","templateName":"welcome","recipients":{"to":["a@example.com"],"bbc":["b@example.com"]}}`, `recipients.bbc: unknown field; did you mean "bcc"?`},
		{"POST", "/functions/v1", `{"name":"signed","url":"http://127.0.0.1:9/s","secrt":"abc"}`, `secrt: unknown field; did you mean "secret"?`},
		{"POST", "/functions/v1", `{"name":"limited","url":"http://127.0.0.1:9/s","rateLimit":{"perSecnd":5}}`, `rateLimit.perSecnd: unknown field; did you mean "perSecond"?`},
		{"POST", "/templates/v1", `{"name":"t2","subjet":"s","text":"t"}`, `subjet: unknown field; did you mean "subject"?`},
		{"POST", "/dispatchers/v1", `{"name":"d2","eventType":"e","EventType":"order_paid"}`, `EventType: unknown field; did you mean "eventType"?`},
		{"POST", "/dispatchers/v1", `{"name":"d2","eventType":"e","eventType":"order_paid"}`, `eventType: sets "eventType" again; give each field once`},
		// Inside a retry policy too, which is decoded apart: before, the
		// last key won.
		{"POST", "/dispatchers/v1", `{"name":"d2","eventType":"e","actions":[{"type":"task","functionName":"erase","retryPolicy":{"maximumAttempts":2,"maximumAttempts":99}}]}`, `actions[0].retryPolicy.maximumAttempts: sets "maximumAttempts" again; give each field once`},
		{"POST", "/dispatchers/v1/" + id + "/actions", `{"type":"task","functionName":"erase","retryPolicy":{"MAXIMUMATTEMPTS":5}}`, `retryPolicy.MAXIMUMATTEMPTS: unknown field; did you mean "maximumAttempts"?`},
		{"PUT", "/dispatchers/v1/" + id + "/actions/" + aid, `{"retryPolicy":{"backoffCoefficient":2,"BackoffCoefficient":3}}`, `retryPolicy.BackoffCoefficient: unknown field; did you mean "backoffCoefficient"?`},
	} {
		code, body := hs.do(tc.method, tc.path, tc.body)
		wantError(t, code, body, 400, 15, tc.want)
	}
	if n := len(hs.must(200, "GET", "/dispatchers/v1", "")["data"].([]any)); n != 1 {
		t.Errorf("%d dispatchers after the refusals, want the first alone", n)
	}
	// An Extra Horizon client's own keys, and the actions of a dispatcher
	// it updates, are not fields of the request: still ignored.
	hs.must(200, "PUT", "/dispatchers/v1/"+id, `{"name":"d","id":"`+id+`","creationTimestamp":1,"updateTimestamp":2,"actions":[{"id":"x","typo":1}]}`)
	hs.must(200, "POST", "/dispatchers/v1/"+id+"/actions", `{"type":"task","functionName":"erase","headers":{"X-Secrt":"v"},"data":{"secrt":1}}`)
}

// TestListsQueryTheirOwnFields: templates, functions and API keys are
// filtered, sorted and selected on their own fields; a query naming
// another's is refused (400 code 19) whether or not the list has items.
// Before, they were parsed with the dispatchers' schema: select(actions)
// answered empty objects, and a filter on actions.functionName was
// accepted on an empty list and refused once it had an item.
func TestListsQueryTheirOwnFields(t *testing.T) {
	hs := newHarness(t, testenv.SQLite(t))
	for _, path := range []string{"/templates/v1", "/functions/v1", "/apikeys/v1"} {
		for _, q := range []string{"select(actions,eventType)", "eq(actions.functionName,x)", "eq(eventType,x)", "sort(+creationTimestamp)"} {
			code, body := hs.do("GET", path+"?"+q, "")
			wantError(t, code, body, 400, 19, "")
		}
	}
	hs.seed()
	for _, tc := range []struct{ path, want string }{
		{"/templates/v1?select(name,subject)&eq(name,welcome)", `[{"name":"welcome","subject":"Hi {{ .event.content.name }}"}]`},
		{"/functions/v1?select(name,url)&sort(-name)", `[{"name":"erase","url":"http://127.0.0.1:9/erase"}]`},
		{"/templates/v1?select(actions)", ""},
		{"/functions/v1?eq(actions.functionName,erase)", ""},
	} {
		code, body := hs.do("GET", tc.path, "")
		if tc.want == "" {
			wantError(t, code, body, 400, 19, "")
			continue
		}
		if got, _ := json.Marshal(body["data"]); code != 200 || string(got) != tc.want {
			t.Errorf("GET %s = %d %s, want %s", tc.path, code, got, tc.want)
		}
	}
}

// TestActionsRefuseTheOtherTypesFields: a field of the other type of
// action that holds something is a 400 naming it; empty ones (null, [],
// {}), as a client sending every field gives them, are left out. Before,
// they were stored and shown unchecked (a task with a recipient that is no
// address), and later dropped without a word: a mail with a startTimestamp
// was sent at once.
func TestActionsRefuseTheOtherTypesFields(t *testing.T) {
	hs := newHarness(t, testenv.SQLite(t))
	tmpl := hs.seed()
	mailAction := `{"type":"mail","name":"m","templateId":"` + tmpl + `","recipients":{"to":["a@example.com"]}`
	for body, field := range map[string]string{
		`{"type":"task","name":"t","functionName":"erase","templateId":"nope"}`:                  "actions[0].templateId: a task action has none",
		`{"type":"task","name":"t","functionName":"erase","recipients":{"to":["not an email"]}}`: "actions[0].recipients: a task action has none",
		mailAction + `,"startTimestamp":"2030-01-01T00:00:00Z"}`:                                 "actions[0].startTimestamp: a mail action has none",
		mailAction + `,"data":{"k":1}}`:                                                          "actions[0].data: a mail action has none",
		mailAction + `,"functionName":"erase"}`:                                                  "actions[0].functionName: a mail action has none",
	} {
		code, out := hs.do("POST", "/dispatchers/v1", `{"name":"x","eventType":"e","actions":[`+body+`]}`)
		wantError(t, code, out, 400, 15, field)
	}
	d := hs.must(200, "POST", "/dispatchers/v1", `{"name":"x","eventType":"e","actions":[`+
		`{"type":"task","name":"t","functionName":"erase","templateId":null,"recipients":null},`+
		mailAction+`,"functionName":null,"data":{},"tags":[],"startTimestamp":null}]}`)
	want := map[string][]string{
		"task": {"description", "functionName", "id", "name", "type"},
		"mail": {"description", "id", "name", "recipients", "templateId", "type"},
	}
	check := func(actions []any) {
		t.Helper()
		for _, a := range actions {
			a := a.(map[string]any)
			var keys []string
			for k := range a {
				if k != "creationTimestamp" && k != "updateTimestamp" {
					keys = append(keys, k)
				}
			}
			slices.Sort(keys)
			if w := want[a["type"].(string)]; !slices.Equal(keys, slices.DeleteFunc(slices.Clone(w), func(k string) bool { return a[k] == nil })) {
				t.Errorf("the %s action has %v, want only %v", a["type"], keys, w)
			}
		}
	}
	check(d["actions"].([]any))
	id := d["id"].(string)
	mail := d["actions"].([]any)[1].(map[string]any)["id"].(string)
	code, out := hs.do("PUT", "/dispatchers/v1/"+id+"/actions/"+mail, `{"startTimestamp":"2030-01-01T00:00:00Z"}`)
	wantError(t, code, out, 400, 15, "startTimestamp: a mail action has none")
	check(hs.must(200, "GET", "/dispatchers/v1/"+id, "")["actions"].([]any))
}

// A dispatcher moved to an event type whose dispatchers are ordered by
// another key is refused, and the refusal names the key that type is
// ordered by. Before, it named the moved dispatcher's own key.
func TestOrderingConflictNamesTheTypesKey(t *testing.T) {
	hs := newHarness(t, testenv.SQLite(t))
	moved := hs.must(200, "POST", "/dispatchers/v1", `{"name":"or4","eventType":"or","ordering":{"key":"content.u"}}`)["id"].(string)
	hs.must(200, "POST", "/dispatchers/v1", `{"name":"or6","eventType":"or6","ordering":{"key":"content.a"}}`)
	for _, body := range []string{`{"eventType":"or6"}`, `{"eventType":"or6","ordering":{"key":"content.zz"}}`} {
		code, out := hs.do("PUT", "/dispatchers/v1/"+moved, body)
		if want := `the dispatchers of event type "or6" are ordered by "content.a"`; code != 400 || !strings.Contains(fmt.Sprint(out["message"]), want) {
			t.Errorf("PUT %s = %d %v, want 400 saying %s", body, code, out, want)
		}
	}
}

// An ordering is removed with null, as a function's settings are, or with
// {} (what dispatcher sync sends). Before, null was "the body changes
// nothing".
func TestOrderingRemoved(t *testing.T) {
	hs := newHarness(t, testenv.SQLite(t))
	for _, removal := range []string{`null`, `{}`} {
		id := hs.must(200, "POST", "/dispatchers/v1", `{"name":"o-`+removal+`","eventType":"o","ordering":{"key":"content.u"}}`)["id"].(string)
		hs.must(200, "PUT", "/dispatchers/v1/"+id, `{"ordering":`+removal+`}`)
		if d := hs.must(200, "GET", "/dispatchers/v1/"+id, ""); d["ordering"] != nil {
			t.Errorf("ordering %s: the dispatcher is still ordered: %v", removal, d["ordering"])
		}
	}
	// An empty key is a mistake, not a removal: it was taken for {}.
	id := hs.must(200, "POST", "/dispatchers/v1", `{"name":"o-empty","eventType":"o","ordering":{"key":"content.u"}}`)["id"].(string)
	code, body := hs.do("PUT", "/dispatchers/v1/"+id, `{"ordering":{"key":""}}`)
	wantError(t, code, body, 400, 15, `ordering.key: must be "partitionKey" or "content.<field>[.<field>…]", not ""`)
	if d := hs.must(200, "GET", "/dispatchers/v1/"+id, ""); d["ordering"] == nil {
		t.Error(`ordering {"key":""}: the ordering was removed`)
	}
}

// A filter is removed with null too, as an ordering is, or with "".
// Before, null left it as it was: beside another field it was accepted
// and the dispatcher went on filtering; alone it was "the body changes
// nothing".
func TestFilterRemoved(t *testing.T) {
	hs := newHarness(t, testenv.SQLite(t))
	for i, removal := range []string{`{"filter":null}`, `{"filter":null,"tags":["a"]}`, `{"filter":""}`} {
		id := hs.must(200, "POST", "/dispatchers/v1", fmt.Sprintf(`{"name":"f-%d","eventType":"f","filter":"event.content.u == 1"}`, i))["id"].(string)
		hs.must(200, "PUT", "/dispatchers/v1/"+id, removal)
		if d := hs.must(200, "GET", "/dispatchers/v1/"+id, ""); d["filter"] != nil {
			t.Errorf("%s: the dispatcher still filters: %v", removal, d["filter"])
		}
	}
}

// A description is removed with null too, a dispatcher's and an
// action's, as a filter is. Before, null was "the body changes nothing"
// (400), and an Extra Horizon client could not clear one.
func TestDescriptionRemovedWithNull(t *testing.T) {
	hs := newHarness(t, testenv.SQLite(t))
	hs.seed()
	d := hs.must(200, "POST", "/dispatchers/v1", `{"name":"d","eventType":"e","description":"old",
		"actions":[{"type":"task","functionName":"erase","description":"old too"}]}`)
	id, action := d["id"].(string), d["actions"].([]any)[0].(map[string]any)["id"].(string)
	hs.must(200, "PUT", "/dispatchers/v1/"+id, `{"description":null}`)
	hs.must(200, "PUT", "/dispatchers/v1/"+id+"/actions/"+action, `{"description":null}`)
	got := hs.must(200, "GET", "/dispatchers/v1/"+id, "")
	if got["description"] != nil || got["actions"].([]any)[0].(map[string]any)["description"] != nil {
		t.Errorf("descriptions left: %v", got)
	}
	// Absent, it stays.
	hs.must(200, "PUT", "/dispatchers/v1/"+id, `{"description":"kept"}`)
	hs.must(200, "PUT", "/dispatchers/v1/"+id, `{"tags":["t"]}`)
	if got := hs.must(200, "GET", "/dispatchers/v1/"+id, ""); got["description"] != "kept" {
		t.Errorf("a description absent from an update: %v", got["description"])
	}
}
