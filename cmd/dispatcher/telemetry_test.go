package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace/noop"
)

// TestFunctionCallsDoNotFollowRedirectsToOtherHosts: a function's headers
// (API keys) and signature must not reach a host the admin did not name.
func TestFunctionCallsDoNotFollowRedirectsToOtherHosts(t *testing.T) {
	var leaked string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked = r.Header.Get("X-Api-Key")
	}))
	defer other.Close()
	// 127.0.0.1 and localhost are different hosts to the client.
	target := strings.Replace(other.URL, "127.0.0.1", "localhost", 1)
	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/same" {
			http.Redirect(w, r, "/final", http.StatusFound)
			return
		}
		if r.URL.Path == "/final" {
			w.WriteHeader(204)
			return
		}
		http.Redirect(w, r, target+"/steal", http.StatusTemporaryRedirect)
	}))
	defer fn.Close()

	c := tracedHTTPClient(noop.NewTracerProvider())
	req, _ := http.NewRequest("POST", fn.URL+"/cross", nil)
	req.Header.Set("X-Api-Key", "k3y")
	if _, err := c.Do(req); err == nil || !strings.Contains(err.Error(), "another host") {
		t.Fatalf("cross-host redirect: err = %v", err)
	}
	if leaked != "" {
		t.Fatalf("the API key reached the other host: %q", leaked)
	}
	res, err := c.Post(fn.URL+"/same", "application/json", nil)
	if err != nil || res.StatusCode != 204 {
		t.Fatalf("same-host redirect: %v, %v", res, err)
	}
}
