package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSyncFetchStatePages: the lists are read page by page, as RQL
// limit(limit,offset) serves them, until page.total.
func TestSyncFetchStatePages(t *testing.T) {
	const total = 120
	limitRE := regexp.MustCompile(`limit\((\d+),(\d+)\)`)
	var queries []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(401)
			return
		}
		queries = append(queries, r.URL.Path+"?"+r.URL.RawQuery)
		m := limitRE.FindStringSubmatch(r.URL.RawQuery)
		if m == nil || !strings.Contains(r.URL.RawQuery, "sort(id)") {
			t.Errorf("query %q: want sort(id)&limit(n,offset)", r.URL.RawQuery)
			w.WriteHeader(400)
			return
		}
		limit, _ := strconv.Atoi(m[1])
		offset, _ := strconv.Atoi(m[2])
		n := total
		if r.URL.Path != "/dispatchers/v1" {
			n = 0
		}
		data := []any{}
		for i := offset; i < n && i < offset+limit; i++ {
			data = append(data, map[string]any{"id": fmt.Sprintf("%024x", i), "name": fmt.Sprintf("d%03d", i), "eventType": "e", "actions": []any{}, "tags": []any{}})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"page": map[string]any{"total": n, "offset": offset, "limit": limit}, "data": data})
	}))
	defer srv.Close()
	c := &apiClient{base: srv.URL, token: "tok", http: &http.Client{Timeout: 10 * time.Second}}
	var progress bytes.Buffer
	s, err := fetchState(context.Background(), c, &progress)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Dispatchers) != total || text(s.Dispatchers[total-1]["name"]) != "d119" {
		t.Fatalf("%d dispatchers, last %v", len(s.Dispatchers), s.Dispatchers[len(s.Dispatchers)-1])
	}
	want := []string{"/dispatchers/v1?sort(id)&limit(50,0)", "/dispatchers/v1?sort(id)&limit(50,50)", "/dispatchers/v1?sort(id)&limit(50,100)",
		"/templates/v1?sort(id)&limit(50,0)", "/functions/v1?sort(id)&limit(50,0)"}
	if strings.Join(queries, " ") != strings.Join(want, " ") {
		t.Errorf("queries:\n%s\nwant:\n%s", strings.Join(queries, "\n"), strings.Join(want, "\n"))
	}
	if got := progress.String(); !strings.Contains(got, "reading /dispatchers/v1: 120/120") {
		t.Errorf("progress: %q", got)
	}
}
