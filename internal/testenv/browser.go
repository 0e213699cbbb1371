package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Chromium returns the path of a Chromium (or Chrome) for browser tests:
// $CHROMIUM_BIN, else the first of chromium, chromium-browser,
// google-chrome on the PATH. `make services` installs Debian's chromium.
func Chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM_BIN"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	Missing(t, "no chromium for the browser tests (apt-get install chromium, or `make services`; or set CHROMIUM_BIN)")
	return ""
}

// Mailcatcher returns the path of the mail catcher of `make run`:
// $MAILCATCHER_BIN, or one built into the test's temp dir.
func Mailcatcher(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("MAILCATCHER_BIN"); p != "" {
		return p
	}
	out := filepath.Join(t.TempDir(), "mailcatcher")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/mailcatcher")
	cmd.Dir = Root()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build mailcatcher: %v\n%s", err, b)
	}
	return out
}
