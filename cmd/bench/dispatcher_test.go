package main

import "testing"

func TestListening(t *testing.T) {
	for line, want := range map[string]string{
		"dispatcher API listening on http://127.0.0.1:41234":                       "http://127.0.0.1:41234",
		"dispatcher worker health and metrics listening on http://127.0.0.1:41235": "http://127.0.0.1:41235",
		"dispatcher worker polling task queue \"bench-split\" on 127.0.0.1:7233":   "",
		// DISPATCHER_LOG_FORMAT=json
		`{"time":"2026-12-05T10:00:00Z","level":"INFO","msg":"dispatcher API listening on http://127.0.0.1:41236"}`: "http://127.0.0.1:41236",
	} {
		got := ""
		if m := listening.FindStringSubmatch(line); m != nil {
			got = m[1]
		}
		if got != want {
			t.Errorf("%q: got %q, want %q", line, got, want)
		}
	}
}
