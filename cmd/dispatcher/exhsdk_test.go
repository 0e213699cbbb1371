package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/testenv"
)

// TestExtraHorizonSDK runs the real Extra Horizon JavaScript SDK (pinned in
// testdata/exhsdk) against the real binary: the compatibility the product
// promises, checked by the client that existing tools use. It needs node
// and the npm registry (make services installs node).
func TestExtraHorizonSDK(t *testing.T) {
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Missing(t, "%s is not installed", tool)
		}
	}
	dir := t.TempDir()
	for _, f := range []string{"package.json", "package-lock.json", "flow.js"} {
		b, err := os.ReadFile(filepath.Join("testdata", "exhsdk", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	install := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
	install.Dir = dir
	if out, err := install.CombinedOutput(); err != nil {
		testenv.Missing(t, "npm ci failed (is the npm registry reachable?): %v\n%s", err, out)
	}

	s := startSystem(t)
	flow := exec.CommandContext(ctx, "node", "flow.js")
	flow.Dir = dir
	// The SDK takes a host containing "localhost" as it is. VIEW_TOKEN
	// lacks CREATE_DISPATCHERS: the 403 the dispatcher answers (Extra
	// Horizon answers 401) must still be the SDK's NoPermissionError.
	viewer := strings.TrimSpace(s.run("token", "--permissions", "VIEW_DISPATCHERS", "--subject", "viewer"))
	flow.Env = append(os.Environ(), "HOST="+localhost(s.url), "TOKEN="+s.token, "VIEW_TOKEN="+viewer)
	out, err := flow.CombinedOutput()
	if err != nil {
		t.Fatalf("the Extra Horizon SDK flow failed: %v\n%s\nlogs:\n%s", err, out, s.logs)
	}
	t.Logf("%s", out)
}

// localhost rewrites http://127.0.0.1:PORT to http://localhost:PORT.
func localhost(url string) string {
	const ip = "http://127.0.0.1:"
	if len(url) > len(ip) && url[:len(ip)] == ip {
		return "http://localhost:" + url[len(ip):]
	}
	return url
}
