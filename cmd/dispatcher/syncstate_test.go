package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSyncFetchStatePages: the lists are read page by page, in id order,
// each page after the last id read, until page.total. One deleted from an
// earlier page in between moves none out of reach: before, paged by
// offset, d050 moved up onto the first page once d005 went, and was
// never read.
func TestSyncFetchStatePages(t *testing.T) {
	queryRE := regexp.MustCompile(`^(?:gt\(id,([0-9a-f]+)\)&)?sort\(id\)&limit\((\d+)(?:,(\d+))?\)$`)
	var ids []string
	for i := range 120 {
		ids = append(ids, fmt.Sprintf("%024x", i))
	}
	var queries []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(401)
			return
		}
		queries = append(queries, r.URL.Path+"?"+r.URL.RawQuery)
		m := queryRE.FindStringSubmatch(r.URL.RawQuery)
		if m == nil {
			t.Errorf("query %q: want [gt(id,last)&]sort(id)&limit(n[,offset])", r.URL.RawQuery)
			w.WriteHeader(400)
			return
		}
		var rest []string
		if r.URL.Path == "/dispatchers/v1" {
			for _, id := range ids {
				if id > m[1] {
					rest = append(rest, id)
				}
			}
		}
		limit, _ := strconv.Atoi(m[2])
		offset, _ := strconv.Atoi(m[3])
		data := []any{}
		for _, id := range rest[min(offset, len(rest)):min(offset+limit, len(rest))] {
			data = append(data, map[string]any{"id": id, "name": "d" + strings.TrimLeft(id, "0"), "eventType": "e", "actions": []any{}, "tags": []any{}})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"page": map[string]any{"total": len(rest), "offset": offset, "limit": limit}, "data": data})
		if len(queries) == 1 { // someone deletes one of the first page
			ids = slices.Delete(ids, 5, 6)
		}
	}))
	defer srv.Close()
	c := &apiClient{base: srv.URL, token: "tok", http: &http.Client{Timeout: 10 * time.Second}}
	var progress bytes.Buffer
	s, err := fetchState(context.Background(), c, &progress)
	if err != nil {
		t.Fatal(err)
	}
	var read []string
	for _, d := range s.Dispatchers {
		read = append(read, text(d["id"]))
	}
	if want := slices.Concat(ids[:5], []string{fmt.Sprintf("%024x", 5)}, ids[5:]); !slices.Equal(read, want) {
		t.Fatalf("read %d dispatchers:\n%v\nwant %d:\n%v", len(read), read, len(want), want)
	}
	want := []string{"/dispatchers/v1?sort(id)&limit(50)", "/dispatchers/v1?gt(id,000000000000000000000031)&sort(id)&limit(50)",
		"/dispatchers/v1?gt(id,000000000000000000000063)&sort(id)&limit(50)", "/templates/v1?sort(id)&limit(50)", "/functions/v1?sort(id)&limit(50)"}
	if strings.Join(queries, " ") != strings.Join(want, " ") {
		t.Errorf("queries:\n%s\nwant:\n%s", strings.Join(queries, "\n"), strings.Join(want, "\n"))
	}
	if got := progress.String(); !strings.Contains(got, "reading /dispatchers/v1: 120/120") {
		t.Errorf("progress: %q", got)
	}
}
