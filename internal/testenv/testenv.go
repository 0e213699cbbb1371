// Package testenv gives tests the real services they run against: a fresh
// PostgreSQL schema, a Temporal dev server, an SMTP sink. When a service is
// missing a test is skipped under a plain `go test`, but fails under `make
// test` (DISPATCHER_TEST_STRICT, after `make services` provided them all)
// and under CI (CI set), so neither can pass by skipping.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/dispatcherhq/dispatcher/dispatch"
)

// DefaultDatabaseURL is used when TEST_DATABASE_URL is unset.
const DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/dispatcher_test?sslmode=disable"

// Missing skips the test for want of a service, or fails it under `make
// test` and CI.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" || os.Getenv("DISPATCHER_TEST_STRICT") != "" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// Postgres returns the URL of a new, empty schema in the test database,
// dropped when the test ends, so tests never see each other's rows.
func Postgres(t testing.TB) string {
	t.Helper()
	base := os.Getenv("TEST_DATABASE_URL")
	if base == "" {
		base = DefaultDatabaseURL
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		Missing(t, "postgres at TEST_DATABASE_URL is unavailable: %v", err)
		return ""
	}
	schema := "test_" + randomHex(6)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		conn.Close(ctx)
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		conn.Close(ctx)
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("TEST_DATABASE_URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// SQLite returns the URL of a new SQLite database in the test's temp dir.
func SQLite(t testing.TB) string {
	t.Helper()
	return "sqlite:" + filepath.Join(t.TempDir(), "test.db")
}

// TemporalCLI returns the path of the Temporal CLI binary that `make
// tools` builds: $TEMPORAL_CLI, or bin/temporal at the repository root.
func TemporalCLI(t testing.TB) string {
	t.Helper()
	path := os.Getenv("TEMPORAL_CLI")
	if path == "" {
		path = filepath.Join(Root(), "bin", "temporal")
	}
	if _, err := os.Stat(path); err != nil {
		Missing(t, "temporal CLI not found at %s (run `make tools`): %v", path, err)
	}
	return path
}

// Temporal starts a headless Temporal dev server on a free port for the
// test and returns it; it stops with the test. extraArgs go to `temporal
// server start-dev` (e.g. "--search-attribute", "Name=Keyword").
func Temporal(t testing.TB, extraArgs ...string) *testsuite.DevServer {
	t.Helper()
	cli := TemporalCLI(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
		ExistingPath: cli,
		LogLevel:     "error",
		ExtraArgs:    extraArgs,
		Stdout:       io.Discard,
		Stderr:       io.Discard,
	})
	if err != nil {
		t.Fatalf("start temporal dev server: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Logf("stop temporal dev server: %v", err)
		}
	})
	return srv
}

// TemporalServer starts a Temporal dev server for the test with the
// dispatch search attributes registered. extraArgs go to `temporal server
// start-dev`, as with Temporal.
func TemporalServer(t testing.TB, extraArgs ...string) *testsuite.DevServer {
	t.Helper()
	args := slices.Clone(extraArgs)
	for name, typ := range dispatch.SearchAttributes() {
		args = append(args, "--search-attribute", name+"="+typ.String())
	}
	return Temporal(t, args...)
}

// TemporalClient returns a client of a TemporalServer started for the test.
func TemporalClient(t testing.TB, extraArgs ...string) client.Client {
	t.Helper()
	return TemporalServer(t, extraArgs...).Client()
}

// Root returns the repository root (the folder holding go.mod).
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Binary returns the path of the dispatcher binary: $DISPATCHER_BIN, or one
// built into the test's temp dir.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("DISPATCHER_BIN"); p != "" {
		return p
	}
	out := filepath.Join(t.TempDir(), "dispatcher")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/dispatcher")
	cmd.Dir = Root()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build dispatcher: %v\n%s", err, b)
	}
	return out
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
