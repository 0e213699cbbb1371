package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dispatcherhq/dispatcher"
)

// TestListPagesKeepWithinTheirBytes: a list page of large items holds
// those that fit in maxPageBytes, at least one, and its page.limit says
// how many, so that a client taking the next page at offset + limit (the
// Extra Horizon SDK) reads every item once. Before, a page of 50
// templates of a MiB was a 50 MB answer that took 280 MB to build.
func TestListPagesKeepWithinTheirBytes(t *testing.T) {
	s := newAuthzServer(t, AuthConfig{})
	admin := s.admin("")
	for i := range 5 {
		s.mustAs(admin, 200, "POST", "/templates/v1", fmt.Sprintf(`{"name": "big%d", "subject": "s", "text": %q}`, i, strings.Repeat("a", 20<<10)))
	}
	defer func(b int) { maxPageBytes = b }(maxPageBytes)
	maxPageBytes = 50 << 10 // two templates, or two audit records of one each

	for _, path := range []string{"/templates/v1", "/audit/v1"} {
		seen := map[string]bool{}
		for offset := 0; ; {
			out := s.mustAs(admin, 200, "GET", fmt.Sprintf("%s?limit(50,%d)", path, offset), "")
			p, data := out["page"].(map[string]any), out["data"].([]any)
			if len(data) > 2 {
				t.Fatalf("%s at %d: %d items, want at most 2", path, offset, len(data))
			}
			if offset+len(data) < 5 && p["limit"] != float64(len(data)) {
				t.Fatalf("%s at %d: page %v with %d items: the limit must say how many", path, offset, p, len(data))
			}
			if p["total"] != float64(5) {
				t.Fatalf("%s: total %v, want 5", path, p["total"])
			}
			for _, d := range data {
				id := d.(map[string]any)["id"].(string)
				if seen[id] {
					t.Fatalf("%s: %s twice", path, id)
				}
				seen[id] = true
			}
			offset += int(p["limit"].(float64))
			if offset >= 5 {
				break
			}
		}
		if len(seen) != 5 {
			t.Errorf("%s: read %d items page by page, want 5", path, len(seen))
		}
	}

	// An item larger than the whole budget still comes, alone.
	maxPageBytes = 1 << 10
	out := s.mustAs(admin, 200, "GET", "/templates/v1?limit(3)", "")
	if n := len(out["data"].([]any)); n != 1 || out["page"].(map[string]any)["limit"] != float64(1) {
		t.Errorf("a page of items larger than its budget: %d items, page %v", n, out["page"])
	}
}

// A template deleted while its list page loads, chunk by chunk, is left
// out, and the page goes on with the next ones: each item once. (The
// first cut of the chunks started the next one at the items shown, not
// the ids loaded, and showed one twice; a review found it.)
func TestListPageOfItemsDeletedMeanwhile(t *testing.T) {
	s := newAuthzServer(t, AuthConfig{})
	admin := s.admin("")
	for i := range 12 {
		s.mustAs(admin, 200, "POST", "/templates/v1", fmt.Sprintf(`{"name": "t%02d", "subject": "s", "text": "x"}`, i))
	}
	col := (&Server{store: s.store}).templates()
	load, calls := col.load, 0
	col.load = func(st Store, ctx context.Context, ids []string) ([]dispatcher.Template, error) {
		if calls++; calls == 1 { // someone else deletes one meanwhile
			if err := st.DeleteTemplate(ctx, ids[3], time.Time{}); err != nil {
				t.Fatal(err)
			}
		}
		return load(st, ctx, ids)
	}
	rec := httptest.NewRecorder()
	c, _ := gin.CreateTestContext(rec)
	c.Request = httptest.NewRequest("GET", "/templates/v1?limit(12)&sort(+name)", nil).WithContext(
		dispatcher.WithCaller(context.Background(), dispatcher.Caller{Subject: "x"}))
	col.listAll(c)
	var out struct{ Data []map[string]any }
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, d := range out.Data {
		if name := d["name"].(string); seen[name] {
			t.Errorf("%s twice in the page", name)
		} else {
			seen[name] = true
		}
	}
	if len(seen) != 11 || calls < 2 {
		t.Errorf("%d items in %d loads, want the 11 left, in chunks", len(seen), calls)
	}
}

// limit(0) asks for the count alone, also of the audit trail.
func TestAuditCountAlone(t *testing.T) {
	s := newAuthzServer(t, AuthConfig{})
	admin := s.admin("")
	for i := range 3 {
		s.mustAs(admin, 200, "POST", "/templates/v1", fmt.Sprintf(`{"name": "z%d", "subject": "s", "text": "x"}`, i))
	}
	out := s.mustAs(admin, 200, "GET", "/audit/v1?limit(0)", "")
	if p := out["page"].(map[string]any); p["total"] != float64(3) || len(out["data"].([]any)) != 0 {
		t.Errorf("audit limit(0): %v", out)
	}
}

// Each list pages by id too, as sync and export read them: gt(id,last)
// with sort(id) answers those after last, in id order, and counts them.
func TestListAfterAnID(t *testing.T) {
	s := newAuthzServer(t, AuthConfig{})
	admin := s.admin("")
	bodies := map[string]string{
		"/dispatchers/v1": `{"name":"d%d","eventType":"e%[1]d"}`,
		"/templates/v1":   `{"name":"t%d","subject":"s","text":"x"}`,
		"/functions/v1":   `{"name":"f%d","url":"http://127.0.0.1:9/f"}`,
	}
	for path, body := range bodies {
		var ids []string
		for i := range 3 {
			ids = append(ids, s.mustAs(admin, 200, "POST", path, fmt.Sprintf(body, i))["id"].(string))
		}
		slices.Sort(ids)
		out := s.mustAs(admin, 200, "GET", path+"?gt(id,"+ids[0]+")&sort(id)&limit(50)", "")
		var got []string
		for _, d := range out["data"].([]any) {
			got = append(got, d.(map[string]any)["id"].(string))
		}
		if !slices.Equal(got, ids[1:]) || out["page"].(map[string]any)["total"] != float64(2) {
			t.Errorf("%s after %s: %v, page %v; want %v, total 2", path, ids[0], got, out["page"], ids[1:])
		}
	}
}
