package api

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"

	"github.com/gin-gonic/gin"
)

// consoleFiles are the console's files: plain HTML, CSS and JavaScript
// modules, embedded so the binary serves them with nothing to build or
// fetch at run time. The console is a client of the public API like any
// other: it sends the user's token with every request, and the API checks
// each one.
//
//go:embed console
var consoleFiles embed.FS

// consoleCSP is the console's Content-Security-Policy: its own scripts and
// styles only (no inline script, no eval), requests to this origin only,
// and Trusted Types with no policy, so that no code — ours by mistake, or
// injected — can assign a string to innerHTML or any other HTML sink:
// everything shown is set as text. Mail previews are blob: documents in a
// sandboxed frame, which inherit this policy inside the frame, and begin
// with a policy of their own that runs nothing for when they are opened
// on their own (templates.js).
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-src blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; " +
	"require-trusted-types-for 'script'; trusted-types 'none'"

// consoleAsset is one file of the console, ready to serve.
type consoleAsset struct {
	body        []byte
	contentType string
	etag        string
}

// consoleTypes are the content types of the console's files, by extension.
var consoleTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
}

// loadConsole reads the embedded files once, keyed by their path under
// console/.
func loadConsole() (map[string]consoleAsset, error) {
	assets := map[string]consoleAsset{}
	err := fs.WalkDir(consoleFiles, "console", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := consoleFiles.ReadFile(p)
		if err != nil {
			return err
		}
		ct, ok := consoleTypes[path.Ext(p)]
		if !ok {
			ct = "application/octet-stream"
		}
		sum := sha256.Sum256(body)
		assets[strings.TrimPrefix(p, "console/")] = consoleAsset{body: body, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	return assets, err
}

// serveConsole answers GET /console and GET /console/{path}: a file of the
// console, or its page for any path without an extension (the console's
// own links), so that a reload or a shared link opens the same view.
func serveConsole(assets map[string]consoleAsset) gin.HandlerFunc {
	return func(c *gin.Context) {
		h := c.Writer.Header()
		h.Set("Content-Security-Policy", consoleCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		// Revalidated on every load: a new binary's console is seen at once.
		h.Set("Cache-Control", "no-cache")
		name := strings.TrimPrefix(c.Param("path"), "/")
		a, ok := assets[name]
		if !ok && path.Ext(name) == "" {
			a, ok = assets["index.html"]
		}
		if !ok {
			c.Data(http.StatusNotFound, "text/plain; charset=utf-8", []byte("404 page not found\n"))
			return
		}
		h.Set("ETag", a.etag)
		if c.GetHeader("If-None-Match") == a.etag {
			c.Status(http.StatusNotModified)
			return
		}
		c.Data(http.StatusOK, a.contentType, a.body)
	}
}
