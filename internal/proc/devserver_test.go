package proc_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/dispatcherhq/dispatcher/internal/proc"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
)

// TestDevServerSurvivesSIGKILL: a dev server on a file, killed without
// warning and started again from its Options, answers on the same
// address and still has the workflow started before the kill.
func TestDevServerSurvivesSIGKILL(t *testing.T) {
	cli := testenv.TemporalCLI(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := proc.StartDevServer(ctx, proc.DevServerOptions{
		CLI: cli, LogPath: filepath.Join(dir, "temporal-1.log"), DBFile: filepath.Join(dir, "temporal.db"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Kill)
	tc, err := s.Dial()
	if err != nil {
		t.Fatal(err)
	}
	run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "survivor", TaskQueue: "nobody-polls"}, "Anything")
	tc.Close()
	if err != nil {
		t.Fatal(err)
	}

	s.Kill()
	opts := s.Options
	opts.LogPath = filepath.Join(dir, "temporal-2.log")
	s2, err := proc.StartDevServer(ctx, opts)
	if err != nil {
		t.Fatalf("restart on %s: %v", s.Addr, err)
	}
	t.Cleanup(s2.Kill)
	if s2.Addr != s.Addr {
		t.Errorf("restarted on %s, want %s", s2.Addr, s.Addr)
	}
	tc, err = s2.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	d, err := tc.DescribeWorkflowExecution(ctx, "survivor", "")
	if err != nil {
		t.Fatalf("the workflow started before the kill is gone: %v", err)
	}
	if got := d.GetWorkflowExecutionInfo().GetExecution().GetRunId(); got != run.GetRunID() {
		t.Errorf("run id %s after the restart, want %s", got, run.GetRunID())
	}
}
