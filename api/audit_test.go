package api

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
)

// doWithID is do with an X-Request-Id.
func (hs *harness) doWithID(requestID, method, path, body string) (int, map[string]any) {
	hs.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Host = "localhost"
	req.Header.Set("Authorization", "Bearer "+hs.token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", requestID)
	rec := httptest.NewRecorder()
	hs.h.ServeHTTP(rec, req)
	var out map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Code, out
}

// auditPage answers GET /audit/v1?query: the seqs of its records, and its
// total.
func (hs *harness) auditPage(query string) (seqs string, total float64, data []any) {
	hs.t.Helper()
	page := hs.must(200, "GET", "/audit/v1?"+query, "")
	data = page["data"].([]any)
	var s []string
	for _, r := range data {
		s = append(s, fmt.Sprint(r.(map[string]any)["seq"]))
	}
	return strings.Join(s, " "), page["page"].(map[string]any)["total"].(float64), data
}

func TestAuditAPI(t *testing.T) {
	hs := newHarness(t, testenv.Postgres(t))
	// The changes of a session, each with its request id.
	code, tmpl := hs.doWithID("req-1", "POST", "/templates/v1", `{"name":"bye","subject":"Bye","text":"Bye"}`)
	if code != 200 {
		t.Fatalf("create template: %d %v", code, tmpl)
	}
	id := tmpl["id"].(string)
	code, d := hs.doWithID("req-2", "POST", "/dispatchers/v1", `{"name":"gdpr","eventType":"user_deleted"}`)
	if code != 200 {
		t.Fatalf("create dispatcher: %d %v", code, d)
	}
	if code, _ := hs.doWithID("req-3", "PUT", "/templates/v1/"+id, `{"subject":"Farewell"}`); code != 200 {
		t.Fatalf("update template: %d", code)
	}
	if code, _ := hs.doWithID("req-4", "DELETE", "/dispatchers/v1/"+d["id"].(string), ""); code != 200 {
		t.Fatalf("delete dispatcher: %d", code)
	}
	// Neither a refused change nor a read is recorded.
	hs.must(400, "POST", "/templates/v1", `{"name":"bye","subject":"Again","text":"x"}`)
	hs.must(200, "GET", "/templates/v1", "")

	seqs, total, data := hs.auditPage("")
	if seqs != "4 3 2 1" || total != 4 {
		t.Fatalf("the trail: seqs %q of %v, want 4 3 2 1", seqs, total)
	}
	update := data[1].(map[string]any)
	if update["action"] != "template.update" || update["target"] != id || update["actor"] != "test" ||
		update["requestId"] != "req-3" || update["clientAddr"] != "192.0.2.1" ||
		update["before"].(map[string]any)["subject"] != "Bye" || update["after"].(map[string]any)["subject"] != "Farewell" ||
		len(update["hash"].(string)) != 64 || update["prevHash"] != data[2].(map[string]any)["hash"] {
		t.Fatalf("the template's update: %v", update)
	}
	if _, ok := update["tenant"]; ok {
		t.Errorf("a record shows its tenant: %v", update)
	}

	for _, tc := range []struct {
		query string
		seqs  string
		total float64
	}{
		{"limit(2)", "4 3", 4},
		{"limit(2,2)", "2 1", 4},
		{"eq(action,template.update)", "3", 1},
		{"eq(target," + id + ")", "3 1", 2},
		{"like(action,dispatcher.*)&sort(+seq)", "2 4", 2},
		{"eq(requestId,req-2)", "2", 1},
		{"ge(seq,3)&le(seq,3)", "3", 1},
		{"gt(timestamp,0)&limit(1)", "4", 4},
		{"eq(actor,nobody)", "", 0},
	} {
		if seqs, total, _ := hs.auditPage(tc.query); seqs != tc.seqs || total != tc.total {
			t.Errorf("?%s: seqs %q of %v, want %q of %v", tc.query, seqs, total, tc.seqs, tc.total)
		}
	}
	if _, _, data := hs.auditPage("select(action,target)&limit(1)"); fmt.Sprint(data) != "[map[action:dispatcher.delete target:"+d["id"].(string)+"]]" {
		t.Errorf("select: %v", data)
	}

	// Malformed queries are refused naming what is wrong.
	for query, mention := range map[string]string{
		"eq(eventType,x)":   `unknown field "eventType"`,
		"sort(-name)":       `unknown field "name"`,
		"select(secret)":    `unknown field "secret"`,
		"gt(timestamp,now)": `timestamp: "now" is not a number (epoch milliseconds)`,
		"eq(seq,abc)":       `seq: "abc" is not a number`, // no time: it said "(epoch milliseconds)"
		"eq(actor,%00)":     `is not valid UTF-8 text without NUL characters`,
	} {
		code, body := hs.do("GET", "/audit/v1?"+query, "")
		wantError(t, code, body, 400, 19, mention)
		if msg := body["message"].(string); strings.HasPrefix(query, "eq(seq") && strings.Contains(msg, "epoch") {
			t.Errorf("?%s: %s", query, msg)
		}
	}

	// VIEW_AUDIT, and only it, opens the trail.
	code, body := hs.doAs(hs.tokenWith(PermViewDispatchers, PermViewTemplates), "GET", "/audit/v1", "")
	wantError(t, code, body, 403, 10, "permission VIEW_AUDIT is required")
	if code, _ := hs.doAs(hs.tokenWith(PermViewAudit), "GET", "/audit/v1/", ""); code != 200 {
		t.Errorf("with VIEW_AUDIT: %d", code)
	}

	// VIEW_AUDIT shows who did what; the documents only to those who may
	// read them elsewhere: here the template's, not the dispatcher's.
	code, page := hs.doAs(hs.tokenWith(PermViewAudit, PermViewTemplates), "GET", "/audit/v1?sort(+seq)", "")
	if code != 200 {
		t.Fatalf("with VIEW_AUDIT and VIEW_TEMPLATES: %d %v", code, page)
	}
	for _, r := range page["data"].([]any) {
		r := r.(map[string]any)
		_, shown := r["after"]
		if _, before := r["before"]; before {
			shown = true
		}
		if want := strings.HasPrefix(r["action"].(string), "template."); shown != want {
			t.Errorf("%s: documents shown = %v, want %v: %v", r["action"], shown, want, r)
		}
		// A hash covers its record's documents, and the next record's
		// prevHash that hash: either would confirm a guess at a hidden one.
		if r["hash"] != nil || r["prevHash"] != nil {
			t.Errorf("%s: hashes shown to a caller who may not read every document: %v", r["action"], r)
		}
	}
	code, page = hs.doAs(hs.tokenWith(PermViewAudit, PermViewDispatchers, PermViewTemplates, PermViewFunctions,
		PermViewAPIKeys, PermViewExecutions), "GET", "/audit/v1?sort(+seq)", "")
	if code != 200 {
		t.Fatalf("with VIEW_AUDIT and every view: %d %v", code, page)
	}
	prev := dispatcher.GenesisHash
	for _, r := range page["data"].([]any) {
		r := r.(map[string]any)
		if r["prevHash"] != prev || len(r["hash"].(string)) != 64 {
			t.Errorf("%s: prevHash %v (want %s), hash %v", r["action"], r["prevHash"], prev, r["hash"])
		}
		prev, _ = r["hash"].(string)
	}
}

// The client's X-Request-Id goes into the audit trail: one PostgreSQL
// cannot store (invalid UTF-8, or control characters) is replaced by an
// id of ours, and the write succeeds; a sane one is kept.
func TestOddRequestIDsAreReplaced(t *testing.T) {
	hs := newHarness(t, testenv.Postgres(t))
	for _, tc := range []struct{ sent, want string }{
		{"abc\xff\xfe", ""},
		{"line\x01break", ""},
		{"req-42", "req-42"},
	} {
		body := fmt.Sprintf(`{"name":"bye-%d","subject":"Bye","text":"Bye"}`, len(tc.sent))
		req := httptest.NewRequest("POST", "/templates/v1", strings.NewReader(body))
		req.Host = "localhost"
		req.Header.Set("Authorization", "Bearer "+hs.token)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Request-Id", tc.sent)
		rec := httptest.NewRecorder()
		hs.h.ServeHTTP(rec, req)
		got := rec.Header().Get("X-Request-Id")
		if rec.Code != 200 {
			t.Fatalf("X-Request-Id %q: %d %s", tc.sent, rec.Code, rec.Body)
		}
		if tc.want != "" && got != tc.want || tc.want == "" && (got == tc.sent || !saneRequestID(got)) {
			t.Errorf("X-Request-Id %q answered as %q", tc.sent, got)
		}
	}
}
