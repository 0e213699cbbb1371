package api

import (
	"fmt"
	"strings"
	"testing"
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
