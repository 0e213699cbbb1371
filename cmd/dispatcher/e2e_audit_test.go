package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// changeCall is a call that changed something, as recordChanges saw it.
type changeCall struct {
	method, path, requestID string
	status                  int
}

// recordChanges puts a proxy in front of the system's API, through which
// every request of the test goes (its own, the CLI's, the SDK's), and
// checks when the test ends that every call that changed something left
// its record in the audit trail, found by its X-Request-Id, and that
// `dispatcher audit verify` finds the trail intact. Calls that change
// nothing are left out: reads, events (dispatches are not changes of the
// configuration), renders, the codec, dry runs, and replays that answered
// with the replay another request started.
func (s *system) recordChanges() {
	s.t.Helper()
	target, err := url.Parse(s.url)
	if err != nil {
		s.t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		calls []changeCall
		n     atomic.Int64
	)
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.SetXForwarded()
		if r.Out.Header.Get("X-Request-Id") == "" {
			r.Out.Header.Set("X-Request-Id", fmt.Sprintf("e2e-%d", n.Add(1)))
		}
	}}
	proxy.ModifyResponse = func(res *http.Response) error {
		if !changes(res.Request.Method, res.Request.URL.Path) || res.StatusCode/100 != 2 {
			return nil
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		res.Body = io.NopCloser(bytes.NewReader(body))
		if err != nil {
			return err
		}
		if bytes.Contains(body, []byte(`"alreadyStarted":true`)) || bytes.Contains(body, []byte(`"dryRun":true`)) {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, changeCall{method: res.Request.Method, path: res.Request.URL.Path,
			requestID: res.Header.Get("X-Request-Id"), status: res.StatusCode})
		return nil
	}
	srv := httptest.NewServer(proxy)
	s.url = srv.URL
	// Cleanups run last first: this one before the proxy closes and the
	// processes stop.
	s.t.Cleanup(srv.Close)
	s.t.Cleanup(func() {
		if s.t.Failed() {
			return // the test's own failure says more
		}
		mu.Lock()
		defer mu.Unlock()
		recorded := s.auditRequestIDs()
		for _, c := range calls {
			if !recorded[c.requestID] {
				s.t.Errorf("%s %s (request %s) answered %d but is not in the audit trail", c.method, c.path, c.requestID, c.status)
			}
		}
		if out := s.run("audit", "verify"); !strings.Contains(out, "audit trail intact") {
			s.t.Errorf("dispatcher audit verify:\n%s", out)
		}
	})
}

// changes tells the calls that may change something by method and path.
func changes(method, path string) bool {
	switch {
	case method == http.MethodGet, method == http.MethodHead, method == http.MethodOptions:
		return false
	case strings.HasPrefix(path, "/events/v1"), strings.HasPrefix(path, "/codec/"), strings.HasSuffix(path, "/render"):
		return false
	}
	return true
}

// databaseURL is the system's DATABASE_URL.
func (s *system) databaseURL() string {
	for _, kv := range slices.Backward(s.env) { // the last one counts, as for the processes
		if v, ok := strings.CutPrefix(kv, "DATABASE_URL="); ok {
			return v
		}
	}
	s.t.Fatal("the system has no DATABASE_URL")
	return ""
}

// sql runs statements on the system's database.
func (s *system) sql(query string, args ...any) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.databaseURL())
	if err != nil {
		s.t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, query, args...); err != nil {
		s.t.Fatalf("%s: %v", query, err)
	}
}

// auditRequestIDs returns the request ids of every audit record, of
// every tenant, read from the database.
func (s *system) auditRequestIDs() map[string]bool {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.databaseURL())
	if err != nil {
		s.t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT request_id FROM audit_log")
	if err != nil {
		s.t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		s.t.Fatal(err)
	}
	out := make(map[string]bool, len(ids))
	for _, id := range ids {
		out[id] = true
	}
	return out
}

// TestEndToEndAuditTrail makes every kind of change through the real
// binary and reads the audit trail: one record per change, newest first,
// with who, from where, what and the request's id, secrets redacted; a
// token without VIEW_AUDIT is refused. `dispatcher audit verify` passes,
// fails naming the record once a row is edited in the database, and
// passes again once it is restored.
func TestEndToEndAuditTrail(t *testing.T) {
	s := startSystem(t)
	broken := &functionSink{statuses: []int{404, 404, 404, 404, 404, 404, 404, 404}}
	srv := httptest.NewServer(broken)
	t.Cleanup(srv.Close)

	fn := s.call("POST", "/functions/v1", map[string]any{"name": "erase", "url": srv.URL, "secret": "e2e-function-secret",
		"headers": map[string]string{"X-Api-Key": "e2e-header-value"}}, 200)["id"].(string)
	s.call("PUT", "/functions/v1/"+fn, map[string]any{"secret": "e2e-rotated-secret"}, 200)
	tmpl := s.call("POST", "/templates/v1", map[string]any{"name": "bye", "subject": "Bye", "text": "Bye"}, 200)["id"].(string)
	s.call("PUT", "/templates/v1/"+tmpl, map[string]any{"subject": "Farewell"}, 200)
	gdpr := s.call("POST", "/dispatchers/v1", map[string]any{"name": "gdpr", "eventType": "user_deleted",
		"actions": []any{map[string]any{"type": "task", "name": "erase", "functionName": "erase"}}}, 200)["id"].(string)
	s.call("PUT", "/dispatchers/v1/"+gdpr, map[string]any{"description": "erase PII"}, 200)
	mail := s.call("POST", "/dispatchers/v1/"+gdpr+"/actions", map[string]any{"type": "mail", "name": "mail", "templateId": tmpl,
		"recipients": map[string]any{"to": []string{"a@example.com"}}}, 200)["id"].(string)
	s.call("PUT", "/dispatchers/v1/"+gdpr+"/actions/"+mail, map[string]any{"description": "tell them"}, 200)
	s.call("DELETE", "/dispatchers/v1/"+gdpr+"/actions/"+mail, nil, 200)
	reminder := s.call("POST", "/dispatchers/v1", map[string]any{"name": "reminder", "eventType": "trial_started",
		"actions": []any{map[string]any{"type": "task", "functionName": "erase", "startTimestamp": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}}}, 200)["id"].(string)
	key := s.call("POST", "/apikeys/v1", map[string]any{"name": "producer", "permissions": []string{"CREATE_EVENTS"}}, 200)
	s.call("DELETE", "/apikeys/v1/"+key["id"].(string), nil, 200)

	// Three failed dispatches: one replayed, the others by a bulk
	// replay, slow enough to be canceled; a scheduled one canceled.
	var wids []string
	for i := range 3 {
		acc := s.call("POST", "/events/v1", map[string]any{"id": fmt.Sprint("gone-", i), "type": "user_deleted", "content": map[string]any{}}, 202)
		wid := acc["workflowId"].(string)
		if _, failed := s.result(wid, acc["runId"].(string)); !failed {
			t.Fatalf("dispatch %s did not fail", wid)
		}
		wids = append(wids, wid)
	}
	s.call("POST", "/executions/v1/"+wids[0]+"/replay", nil, 202)
	filter := map[string]any{"status": "failed", "dispatcherId": gdpr, "dryRun": true}
	s.poll("the failed dispatches in the list", func() bool {
		return s.call("POST", "/executions/v1/replays", filter, 200)["matched"].(float64) >= 2
	})
	filter["dryRun"], filter["rate"] = false, 0.01 // one replay per 100 s: it runs until canceled
	bulk := s.call("POST", "/executions/v1/replays", filter, 202)["id"].(string)
	s.call("POST", "/executions/v1/replays/"+bulk+"/cancel", nil, 202)
	sched := s.call("POST", "/events/v1", map[string]any{"id": "trial-1", "type": "trial_started", "content": map[string]any{}}, 202)["workflowId"].(string)
	s.poll("the scheduled dispatch to run", func() bool {
		return s.call("GET", "/executions/v1/"+sched, nil, 200)["status"] == "scheduled"
	})
	s.call("POST", "/executions/v1/"+sched+"/cancel", nil, 202)
	s.call("DELETE", "/templates/v1/"+tmpl, nil, 200)
	s.call("DELETE", "/dispatchers/v1/"+reminder, nil, 200)
	s.call("DELETE", "/dispatchers/v1/"+gdpr, nil, 200)
	s.call("DELETE", "/functions/v1/"+fn, nil, 200)
	// Refused changes are not recorded. (A cancel answers before the run
	// has closed: the second is refused once it has.)
	s.call("DELETE", "/dispatchers/v1/"+gdpr, nil, 404)
	s.poll("the canceled dispatch to close", func() bool {
		return s.call("GET", "/executions/v1/"+sched, nil, 200)["status"] == "canceled"
	})
	s.call("POST", "/executions/v1/"+sched+"/cancel", nil, 409)

	want := []struct{ action, target string }{
		{"function.create", fn}, {"function.update", fn}, {"template.create", tmpl}, {"template.update", tmpl},
		{"dispatcher.create", gdpr}, {"dispatcher.update", gdpr}, {"action.create", mail}, {"action.update", mail},
		{"action.delete", mail}, {"dispatcher.create", reminder}, {"apikey.create", key["id"].(string)},
		{"apikey.delete", key["id"].(string)}, {"execution.replay", wids[0]}, {"bulkreplay.start", bulk},
		{"bulkreplay.cancel", bulk}, {"execution.cancel", sched}, {"template.delete", tmpl},
		{"dispatcher.delete", reminder}, {"dispatcher.delete", gdpr}, {"function.delete", fn},
	}
	records := s.auditTrail()
	t.Logf("%d records in the audit trail", len(records))
	var requested []map[string]any // those of requests; the bulk replay's own replays have none
	for i, r := range records {
		if i+1 < len(records) && r["prevHash"] != records[i+1]["hash"] {
			t.Errorf("record %v does not follow record %v", r["seq"], records[i+1]["seq"])
		}
		if r["seq"] != float64(len(records)-i) {
			t.Errorf("record %d of the trail has seq %v", i, r["seq"])
		}
		all := fmt.Sprint(r)
		for _, secret := range []string{"e2e-function-secret", "e2e-rotated-secret", "e2e-header-value", key["key"].(string)} {
			if strings.Contains(all, secret) {
				t.Errorf("record %v holds the secret %q", r["seq"], secret)
			}
		}
		if r["requestId"] == nil {
			if r["action"] != "execution.replay" || r["after"].(map[string]any)["bulkReplayId"] != bulk || r["actor"] != "admin" {
				t.Errorf("a record without a request: %v", r)
			}
			continue
		}
		requested = append([]map[string]any{r}, requested...) // oldest first
	}
	if len(requested) != len(want) {
		t.Fatalf("%d records of requests, want %d:\n%v", len(requested), len(want), requested)
	}
	for i, w := range want {
		r := requested[i]
		if r["action"] != w.action || r["target"] != w.target || r["actor"] != "admin" || r["clientAddr"] != "127.0.0.1" ||
			!strings.HasPrefix(r["requestId"].(string), "e2e-") {
			t.Errorf("record %v = %v, want %s of %s by admin from 127.0.0.1", r["seq"], r, w.action, w.target)
		}
	}
	if after := requested[1]["after"].(map[string]any); after["secret"] != "REDACTED (changed)" ||
		fmt.Sprint(after["headers"]) != "map[X-Api-Key:REDACTED]" {
		t.Errorf("the function's update: %v", after)
	}
	if before, after := requested[5]["before"].(map[string]any), requested[5]["after"].(map[string]any); before["description"] != nil ||
		after["description"] != "erase PII" {
		t.Errorf("the dispatcher's update: before %v after %v", before, after)
	}
	if page := s.call("GET", "/audit/v1?eq(action,function.update)&select(action,target)", nil, 200); fmt.Sprint(page["data"]) !=
		"[map[action:function.update target:"+fn+"]]" {
		t.Errorf("the function's updates: %v", page)
	}
	viewer := strings.TrimSpace(s.run("token", "--permissions", "VIEW_DISPATCHERS"))
	req, _ := http.NewRequest("GET", s.url+"/audit/v1", nil)
	req.Header.Set("Authorization", "Bearer "+viewer)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 403 {
		t.Errorf("without VIEW_AUDIT: %d, want 403", res.StatusCode)
	}

	// verify: intact; broken by an edit or a deletion, naming the record;
	// intact again once the row is restored.
	if out, ok := s.verify(); !ok || !strings.Contains(out, "audit trail intact") || !strings.Contains(out, `tenant "": head seq`) {
		t.Fatalf("verify:\n%s", out)
	}
	// A tenant without records, misspelt or with its trail gone, is no
	// pass. Before: "audit trail intact: 0 records in 1 chain(s)".
	if out, ok := s.verify("--tenant", "nobody"); ok || !strings.Contains(out, `tenant "nobody" has no audit trail`) {
		t.Fatalf("verify --tenant nobody:\n%s", out)
	}
	for _, tc := range []struct {
		name, tamper, restore, want string
	}{
		{"edited", "UPDATE audit_log SET actor = 'mallory' WHERE tenant = '' AND seq = 3",
			"UPDATE audit_log SET actor = 'admin' WHERE tenant = '' AND seq = 3", `record 3: its fields do not hash to its hash`},
		{"deleted", "CREATE TABLE audit_saved AS SELECT * FROM audit_log WHERE tenant = '' AND seq = 5; DELETE FROM audit_log WHERE tenant = '' AND seq = 5",
			"INSERT INTO audit_log SELECT * FROM audit_saved; DROP TABLE audit_saved", "record 5 is missing (the next one is 6)"},
	} {
		s.sql(tc.tamper)
		out, ok := s.verify()
		if ok || !strings.Contains(out, tc.want) || !strings.Contains(out, "the audit trail is broken at record") {
			t.Errorf("verify after a row was %s: ok=%v\n%s", tc.name, ok, out)
		}
		s.sql(tc.restore)
		if out, ok := s.verify(); !ok {
			t.Errorf("verify after the %s row was restored:\n%s", tc.name, out)
		}
	}
}

// auditTrail reads the whole audit trail with the admin token, newest
// first.
func (s *system) auditTrail() []map[string]any {
	s.t.Helper()
	var out []map[string]any
	for offset := 0; ; offset += 50 {
		page := s.call("GET", fmt.Sprintf("/audit/v1?limit(50,%d)", offset), nil, 200)
		for _, r := range page["data"].([]any) {
			out = append(out, r.(map[string]any))
		}
		if float64(len(out)) >= page["page"].(map[string]any)["total"].(float64) {
			return out
		}
	}
}

// verify runs `dispatcher audit verify` and returns its output and
// whether it succeeded.
func (s *system) verify(args ...string) (string, bool) {
	s.t.Helper()
	cmd := exec.Command(s.bin, append([]string{"audit", "verify"}, args...)...)
	cmd.Env = s.env
	out, err := cmd.CombinedOutput()
	return string(out), err == nil
}
