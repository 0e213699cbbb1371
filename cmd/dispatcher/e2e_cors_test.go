package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestEndToEndBrowserApp: an admin tool's web app on another origin calls
// the API from a real browser, as the Extra Horizon SDK does there: a
// token in Authorization and its X-User-Agent header, which make the
// browser ask first (a preflight), sent with credentials as its proxy
// client sends every request (withCredentials). The app's origin is in
// DISPATCHER_CORS_ORIGINS: it creates a dispatcher, lists it and reads a
// refusal's reason. A page of any other origin gets nothing: its browser
// refuses it the answers. Before, every preflight was a 405 and no
// browser app could use the API; and until credentials were allowed, the
// SDK's proxy client could not.
func TestEndToEndBrowserApp(t *testing.T) {
	page := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<!doctype html><title>admin tool</title>")
	})
	app, other := httptest.NewServer(page), httptest.NewServer(page)
	t.Cleanup(app.Close)
	t.Cleanup(other.Close)
	s := startSystem(t, withEnv("DISPATCHER_CORS_ORIGINS="+app.URL))
	b := startBrowser(t, s.url)

	// fetch calls the API from the page and answers "<status> <body>", or
	// "refused" when the browser keeps the answer from the page.
	fetch := func(method, path, token, body string) string {
		t.Helper()
		init := fmt.Sprintf(`{method: %q, credentials: "include", headers: {"Content-Type": "application/json", "X-User-Agent": "admin-tool/1.0"}}`, method)
		js := fmt.Sprintf(`(() => { const init = %s;
			if (%q) init.headers.Authorization = "Bearer " + %q;
			if (%q) init.body = %q;
			return fetch(%q, init).then((r) => r.text().then((t) => r.status + " " + t), () => "refused"); })()`,
			init, token, token, body, body, s.url+path)
		got, err := eval[string](b, js, chromedp.EvalAwaitPromise)
		if err != nil {
			t.Fatalf("%s %s from the page: %v", method, path, err)
		}
		return got
	}

	b.do("open the app", chromedp.Navigate(app.URL))
	if got := fetch("POST", "/dispatchers/v1/", s.token, `{"eventType": "from_the_browser", "name": "browser"}`); !strings.HasPrefix(got, "200 ") || !strings.Contains(got, `"id"`) {
		t.Fatalf("the app created a dispatcher: %s", got)
	}
	if got := fetch("GET", "/dispatchers/v1/?eq(eventType,from_the_browser)", s.token, ""); !strings.HasPrefix(got, "200 ") || !strings.Contains(got, `"name":"browser"`) {
		t.Errorf("the app listed the dispatchers: %s", got)
	}
	if got := fetch("POST", "/dispatchers/v1/", s.token, `{"name": "no type"}`); !strings.HasPrefix(got, "400 ") || !strings.Contains(got, "eventType") {
		t.Errorf("the app reads a refusal and its reason: %s", got)
	}
	if got := fetch("GET", "/dispatchers/v1/", "", ""); !strings.HasPrefix(got, "401 ") {
		t.Errorf("the app without a token: %s", got)
	}

	// Another origin: the browser keeps every answer from the page, and
	// nothing it asked for was done.
	b.do("open another site", chromedp.Navigate(other.URL))
	if got := fetch("POST", "/dispatchers/v1/", s.token, `{"eventType": "from_elsewhere"}`); got != "refused" {
		t.Errorf("a page of another origin called the API: %s", got)
	}
	if got := fetch("GET", "/dispatchers/v1/", s.token, ""); got != "refused" {
		t.Errorf("a page of another origin read the dispatchers: %s", got)
	}
	if n := len(s.call("GET", "/dispatchers/v1/?eq(eventType,from_elsewhere)", nil, 200)["data"].([]any)); n != 0 {
		t.Errorf("the other origin's page created %d dispatchers", n)
	}
}
