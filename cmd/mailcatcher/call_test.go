package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// post sends body to path and returns the status and the answer.
func (c catcher) post(t *testing.T, path, body string, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.web+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// calls returns GET /api/calls.
func (c catcher) calls(t *testing.T) []apiCall {
	t.Helper()
	resp, body := c.get(t, "/api/calls")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/calls: %s %s", resp.Status, body)
	}
	var list []apiCall
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatalf("GET /api/calls: %v in %s", err, body)
	}
	return list
}

// TestFunctionCalls: a call to /fn/{name} is answered 200, or with the
// status ?status= asks for, and shown in the JSON API and the web UI,
// escaped, beside the mails; the Authorization header is not kept.
func TestFunctionCalls(t *testing.T) {
	c := startCatcher(t)
	c.sendRaw(t, "a@example.com", "b@example.com", "a mail", "body")
	status, answer := c.post(t, "/fn/erase-pii", `{"taskId":"t1","data":{"userId":42,"note":"<script>alert(1)</script>"}}`,
		map[string]string{"Idempotency-Key": "dispatch-evt-1/a1", "Authorization": "Bearer secret-token", "Content-Type": "application/json"})
	if status != http.StatusOK || !strings.Contains(answer, `"ok":true`) {
		t.Fatalf("call: %d %s, want 200 ok", status, answer)
	}
	if status, _ := c.post(t, "/fn/erase-pii?status=422", `not json`, nil); status != 422 {
		t.Fatalf("call with ?status=422: %d", status)
	}
	if status, _ := c.post(t, "/fn/erase-pii?status=abc", `{}`, nil); status != http.StatusBadRequest {
		t.Fatalf("call with ?status=abc: %d, want 400", status)
	}

	list := c.calls(t)
	if len(list) != 2 {
		t.Fatalf("%d calls recorded, want 2 (the refused one is not a call): %+v", len(list), list)
	}
	failed, ok := list[0], list[1]
	var body struct {
		Data struct{ UserID int }
	}
	_ = json.Unmarshal(ok.Body, &body)
	if ok.Function != "erase-pii" || ok.Status != 200 || ok.Headers["Idempotency-Key"] != "dispatch-evt-1/a1" || body.Data.UserID != 42 {
		t.Errorf("first call = %+v", ok)
	}
	if _, kept := ok.Headers["Authorization"]; kept {
		t.Errorf("the Authorization header was kept: %+v", ok.Headers)
	}
	if failed.Status != 422 || failed.Text != "not json" || failed.Query != "status=422" {
		t.Errorf("second call = %+v", failed)
	}

	_, page := c.get(t, "/")
	for _, want := range []string{"Mail (1)", "Function calls (2)", "a mail", `href="/calls/1"`, "dispatch-evt-1/a1"} {
		if !strings.Contains(page, want) {
			t.Errorf("list page lacks %q:\n%s", want, page)
		}
	}
	resp, call := c.get(t, fmt.Sprintf("/calls/%d", ok.ID))
	if resp.StatusCode != http.StatusOK || !strings.Contains(call, "&lt;script&gt;alert(1)&lt;/script&gt;") || strings.Contains(call, "<script>") {
		t.Errorf("call page: %s, want the body escaped:\n%s", resp.Status, call)
	}
	if strings.Contains(call, "secret-token") {
		t.Errorf("call page shows the Authorization header:\n%s", call)
	}

	req, _ := http.NewRequest(http.MethodDelete, c.web+"/api/calls", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNoContent || len(c.calls(t)) != 0 {
		t.Errorf("DELETE /api/calls: %s, %d calls left", res.Status, len(c.calls(t)))
	}
}
