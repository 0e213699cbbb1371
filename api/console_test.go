package api

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"strings"
	"testing"
)

// TestConsoleServed: the console's files come with their types and a
// strict policy; a path without an extension is the console's page; an
// unknown file is 404; a file not changed answers 304.
func TestConsoleServed(t *testing.T) {
	engine := newOpenAPIEngine(t, AuthConfig{Secret: []byte(harnessSecret)})
	get := func(p string, header ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, p, nil)
		req.Host = "localhost"
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		rec := httptest.NewRecorder()
		engine.ServeHTTP(rec, req)
		return rec
	}
	for _, c := range []struct {
		path, contentType, contains string
		status                      int
	}{
		{"/console", "text/html; charset=utf-8", `<script type="module" src="/console/js/app.js">`, 200},
		{"/console/", "text/html; charset=utf-8", `id="main"`, 200},
		{"/console/executions/dispatch-evt-1", "text/html; charset=utf-8", `id="main"`, 200},
		{"/console/js/app.js", "text/javascript; charset=utf-8", "GET /auth/v1/me", 200},
		{"/console/console.css", "text/css; charset=utf-8", ":focus-visible", 200},
		{"/console/js/nope.js", "text/plain; charset=utf-8", "404", 404},
	} {
		rec := get(c.path)
		if rec.Code != c.status || rec.Header().Get("Content-Type") != c.contentType || !strings.Contains(rec.Body.String(), c.contains) {
			t.Errorf("GET %s = %d %q, want %d %q with %q", c.path, rec.Code, rec.Header().Get("Content-Type"), c.status, c.contentType, c.contains)
		}
		csp := rec.Header().Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'",
			"frame-ancestors 'none'", "base-uri 'none'", "require-trusted-types-for 'script'", "trusted-types 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("GET %s: the policy %q lacks %s", c.path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-") {
			t.Errorf("GET %s: the policy %q allows something unsafe", c.path, csp)
		}
		if rec.Header().Get("X-Content-Type-Options") != "nosniff" || rec.Header().Get("X-Frame-Options") != "DENY" {
			t.Errorf("GET %s: headers %v", c.path, rec.Header())
		}
	}
	etag := get("/console/js/app.js").Header().Get("ETag")
	if rec := get("/console/js/app.js", "If-None-Match", etag); etag == "" || rec.Code != http.StatusNotModified {
		t.Errorf("GET with If-None-Match %q = %d, want 304", etag, rec.Code)
	}
}

// forbiddenJS are what the console's scripts must never use: HTML
// parsing of strings (the data shown is attacker-controlled; the policy
// would throw anyway) and code from strings.
var forbiddenJS = regexp.MustCompile(`\.innerHTML|\.outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function\(|setTimeout\(\s*['"]|setInterval\(\s*['"]|srcdoc|DOMParser|createContextualFragment`)

// TestConsoleSources keeps the console's files as its policy needs them:
// no inline script or style, no event handler attributes, nothing loaded
// from elsewhere, no HTML parsing of strings; every module it imports
// exists.
func TestConsoleSources(t *testing.T) {
	assets, err := loadConsole()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := assets["index.html"]; !ok {
		t.Fatal("the console has no index.html")
	}
	page := string(assets["index.html"].body)
	for _, re := range []string{`<script(?:\s[^>]*)?>\s*[^<\s]`, `<style`, `\sstyle=`, `\son[a-z]+=`, `(?:src|href)="(?:https?:)?//`} {
		if regexp.MustCompile(re).MatchString(page) {
			t.Errorf("index.html matches %s: inline code, inline style or a file from elsewhere", re)
		}
	}
	for _, m := range regexp.MustCompile(`<script([^>]*)>`).FindAllStringSubmatch(page, -1) {
		if !strings.Contains(m[1], `src="/console/`) {
			t.Errorf("index.html has a script that is not one of the console's files: %s", m[0])
		}
	}
	imports := regexp.MustCompile(`(?m)^\s*import\s[^;]*?from\s+'([^']+)'`)
	n := 0
	_ = fs.WalkDir(consoleFiles, "console", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(p) != ".js" {
			return err
		}
		n++
		name := strings.TrimPrefix(p, "console/")
		src := string(assets[name].body)
		if m := forbiddenJS.FindString(src); m != "" {
			t.Errorf("%s uses %s", name, m)
		}
		// The SVG namespace is a name, not a place.
		if code := strings.ReplaceAll(src, "'http://www.w3.org/2000/svg'", ""); strings.Contains(code, "http://") || strings.Contains(code, "https://") {
			t.Errorf("%s names a URL elsewhere: the console loads nothing from outside", name)
		}
		for _, m := range imports.FindAllStringSubmatch(src, -1) {
			target := path.Join(path.Dir(name), m[1])
			if _, ok := assets[target]; !ok {
				t.Errorf("%s imports %s, which is not a file of the console", name, m[1])
			}
		}
		return nil
	})
	if n < 5 {
		t.Errorf("found %d scripts in the console, want its modules", n)
	}
}
