package api

import (
	"testing"

	"github.com/dispatcherhq/dispatcher/internal/testenv"
)

// A dispatcher's filter and enabled flag over the API: saved, shown,
// updated, listed by RQL, and a filter that does not compile refused with
// 400 naming the field and the position. A client that sends neither
// gets an enabled dispatcher without a filter.
func TestDispatcherFilterAndEnabled(t *testing.T) {
	hs := newHarness(t, testenv.Postgres(t))
	plain := hs.must(200, "POST", "/dispatchers/v1", `{"name":"plain","eventType":"e"}`)
	if _, has := plain["filter"]; has || plain["enabled"] != true {
		t.Fatalf("a dispatcher created without filter or enabled: %v", plain)
	}
	d := hs.must(200, "POST", "/dispatchers/v1", `{"name":"big","eventType":"e","filter":"event.content.amount > 100","enabled":false}`)
	id := d["id"].(string)
	if d["filter"] != "event.content.amount > 100" || d["enabled"] != false {
		t.Fatalf("created = %v", d)
	}

	code, body := hs.do("POST", "/dispatchers/v1", `{"eventType":"e","filter":"event.content.amount >"}`)
	wantError(t, code, body, 400, 15, "filter: line 1, column 23: Syntax error")
	code, body = hs.do("PUT", "/dispatchers/v1/"+id, `{"filter":"event.amount > 1"}`)
	wantError(t, code, body, 400, 15, "filter: line 1, column 1: undeclared reference to 'event': an event has event.type")

	page := hs.must(200, "GET", "/dispatchers/v1?eq(enabled,false)&select(name,enabled,filter)", "")
	if data := page["data"].([]any); len(data) != 1 || data[0].(map[string]any)["name"] != "big" || len(data[0].(map[string]any)) != 3 {
		t.Fatalf("eq(enabled,false) = %v", page)
	}
	code, body = hs.do("GET", "/dispatchers/v1?eq(enabled,maybe)", "")
	wantError(t, code, body, 400, 19, "enabled")

	hs.must(200, "PUT", "/dispatchers/v1/"+id, `{"enabled":true,"filter":""}`)
	got := hs.must(200, "GET", "/dispatchers/v1/"+id, "")
	if _, has := got["filter"]; has || got["enabled"] != true {
		t.Fatalf("after enabling and removing the filter: %v", got)
	}
	// An update without the fields leaves them alone.
	hs.must(200, "PUT", "/dispatchers/v1/"+id, `{"enabled":false,"filter":"has(event.content.amount)"}`)
	hs.must(200, "PUT", "/dispatchers/v1/"+id, `{"description":"x"}`)
	if got := hs.must(200, "GET", "/dispatchers/v1/"+id, ""); got["enabled"] != false || got["filter"] != "has(event.content.amount)" {
		t.Fatalf("an update of the description changed them: %v", got)
	}
}
