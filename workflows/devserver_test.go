package workflows_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/dispatcherhq/dispatcher/workflows"
)

// startDevServer starts a real Temporal dev server (the CLI binary from
// $TEMPORAL_CLI, else ../bin/temporal as `make bin/temporal` builds it)
// with the dispatch search attributes registered. Without the binary the
// test is skipped, or fails on CI, where skipping would hide it.
func startDevServer(t *testing.T) client.Client {
	t.Helper()
	path := os.Getenv("TEMPORAL_CLI")
	if path == "" {
		path = filepath.Join("..", "bin", "temporal")
	}
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no Temporal CLI at %s (set TEMPORAL_CLI or run `make bin/temporal`): %v", path, err)
		}
		t.Skipf("no Temporal CLI at %s (set TEMPORAL_CLI or run `make bin/temporal`)", path)
	}
	var args []string
	for name, typ := range workflows.SearchAttributes() {
		args = append(args, "--search-attribute", name+"="+typ.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
		ExistingPath: path,
		LogLevel:     "error",
		ExtraArgs:    args,
		Stdout:       io.Discard, // the banner; errors go to stderr
	})
	if err != nil {
		t.Fatalf("starting the Temporal dev server: %v", err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	return srv.Client()
}
