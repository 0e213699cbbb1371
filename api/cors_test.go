package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

const adminApp = "https://admin.example.com"

// TestAPICORS: the pages of DISPATCHER_CORS_ORIGINS may call the API from
// a browser: their preflights are answered without a token, and every
// answer, a refusal included, is readable by them. Other origins' are not,
// and the codec endpoint keeps its own origins.
func TestAPICORS(t *testing.T) {
	h, err := NewServer(t.Context(), Config{Auth: AuthConfig{Secret: []byte(harnessSecret)}, MaxBodyBytes: 4096, MaxEventBytes: 2048,
		CodecOrigins: []string{codecUI}, CORSOrigins: []string{adminApp}}, Deps{Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	call := func(method, path, origin, token string, header ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, nil)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	preflight := func(path, origin string) *httptest.ResponseRecorder {
		return call(http.MethodOptions, path, origin, "", "Access-Control-Request-Method", "PUT",
			"Access-Control-Request-Headers", "authorization,content-type,x-user-agent")
	}

	for _, origin := range []string{adminApp, "HTTPS://Admin.example.com"} {
		rec := preflight("/dispatchers/v1/0123456789abcdef01234567", origin)
		if rec.Code != http.StatusNoContent || rec.Header().Get("Access-Control-Allow-Origin") != origin {
			t.Fatalf("preflight from %s: %d, Allow-Origin %q; want 204 and the origin", origin, rec.Code, rec.Header().Get("Access-Control-Allow-Origin"))
		}
		if m := rec.Header().Get("Access-Control-Allow-Methods"); !strings.Contains(m, "PUT") || !strings.Contains(m, "DELETE") {
			t.Errorf("Access-Control-Allow-Methods %q", m)
		}
		if got := rec.Header().Get("Access-Control-Allow-Headers"); got != "authorization,content-type,x-user-agent" {
			t.Errorf("Access-Control-Allow-Headers %q, want the headers asked for", got)
		}
		// The SDK's proxy client sends every request with credentials.
		if got := rec.Header().Get("Access-Control-Allow-Credentials"); got != "true" {
			t.Errorf("Access-Control-Allow-Credentials %q, want true", got)
		}
	}

	// A refusal is readable, with its reason.
	rec := call(http.MethodGet, "/dispatchers/v1/", adminApp, "")
	if rec.Code != http.StatusUnauthorized || rec.Header().Get("Access-Control-Allow-Origin") != adminApp ||
		!strings.Contains(rec.Header().Get("Access-Control-Expose-Headers"), "WWW-Authenticate") {
		t.Errorf("GET without a token from the app: %d, headers %v", rec.Code, rec.Header())
	}
	rec = call(http.MethodGet, "/auth/v1/me", adminApp, tokenWith(t, PermViewDispatchers))
	if rec.Code != http.StatusOK || rec.Header().Get("Access-Control-Allow-Origin") != adminApp {
		t.Errorf("GET /auth/v1/me from the app: %d %s, headers %v", rec.Code, rec.Body, rec.Header())
	}

	// Other origins: no CORS headers, their preflight is an unknown method.
	for _, origin := range []string{"https://evil.example.com", "https://admin.example.com.evil.example", codecUI} {
		rec := preflight("/dispatchers/v1/", origin)
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("preflight from %s: %d, Allow-Origin %q; want 405 and none", origin, rec.Code, rec.Header().Get("Access-Control-Allow-Origin"))
		}
		if rec := call(http.MethodGet, "/auth/v1/me", origin, tokenWith(t)); rec.Header().Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("GET from %s is readable by its page", origin)
		}
		if !strings.Contains(rec.Header().Get("Vary"), "Origin") {
			t.Errorf("no Vary: Origin for %s: a cache would serve one origin's answer to another", origin)
		}
	}
	// The codec endpoint answers its own origins only.
	if rec := preflight("/codec/decode", adminApp); rec.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("the app's page may call the codec endpoint: %v", rec.Header())
	}
	if rec := preflight("/codec/decode", codecUI); rec.Header().Get("Access-Control-Allow-Origin") != codecUI {
		t.Errorf("the Temporal UI may no longer call the codec endpoint: %d %v", rec.Code, rec.Header())
	}
}

// TestAPICORSWithoutAuthentication: with authentication off the API
// answers no page of another origin, but those the operator named.
func TestAPICORSWithoutAuthentication(t *testing.T) {
	h, err := NewServer(t.Context(), Config{Auth: AuthConfig{Disabled: true}, MaxBodyBytes: 4096, MaxEventBytes: 2048,
		CORSOrigins: []string{"http://localhost:3000"}}, Deps{Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	for origin, want := range map[string]int{"http://localhost:3000": http.StatusOK, "http://localhost:3001": http.StatusForbidden} {
		req := httptest.NewRequest(http.MethodGet, "/auth/v1/me", nil)
		req.Host = "127.0.0.1:8080"
		req.Header.Set("Origin", origin)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("GET from a page of %s: %d %s, want %d", origin, rec.Code, rec.Body, want)
		}
	}
}
