package workflows_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestUngatedChangesFailReplay shows that the recorded histories guard
// the workflows: each change below, made to the workflow code without a
// version gate, makes TestReplay fail. The change is applied with go's
// -overlay, so the sources stay as they are.
func TestUngatedChangesFailReplay(t *testing.T) {
	for _, tt := range []struct {
		name, file, from, to string
	}{
		{"the dispatch gate removed: version 0 runs take version 1's path", "action.go",
			"if d.version < dispatchV1 {\n\t\treturn d.attemptV0(", "if false {\n\t\treturn d.attemptV0("},
		{"an ungated timer at the start of every dispatch", "dispatch.go",
			"\tlogger := workflow.GetLogger(ctx)\n",
			"\tlogger := workflow.GetLogger(ctx)\n\t_ = workflow.Sleep(ctx, time.Millisecond)\n"},
		{"the input's version ignored: version 3 runs ask a marker", "dispatch.go",
			"case v >= dispatchV3:\n\t\td.version = v", "case false:\n\t\td.version = v"},
		{"gated calls made without their permits", "action.go",
			"if d.version >= dispatchV4 && fn.Gated {", "if false {"},
		{"a gate whose circuit never opens", "gate.go",
			"if len(g.Failures) == cb.Failures && now.Sub(g.Failures[0]) <= cb.Window {", "if false {"},
		{"the bulk replay gate removed", "bulkreplay.go",
			"b.version = workflow.GetVersion(ctx, changeBulkReplay, workflow.DefaultVersion, bulkReplayLatest)",
			"b.version = bulkReplayLatest"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src, err := os.ReadFile(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(src), tt.from) {
				t.Fatalf("%s no longer holds %q: update this test with the code", tt.file, tt.from)
			}
			changed := filepath.Join(t.TempDir(), tt.file)
			if err := os.WriteFile(changed, []byte(strings.Replace(string(src), tt.from, tt.to, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			abs, err := filepath.Abs(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			overlay, _ := json.Marshal(map[string]map[string]string{"Replace": {abs: changed}})
			overlayPath := filepath.Join(t.TempDir(), "overlay.json")
			if err := os.WriteFile(overlayPath, overlay, 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command("go", "test", "-overlay="+overlayPath, "-count=1", "-run", "^TestReplay$", ".").CombinedOutput()
			if err == nil {
				t.Fatalf("the recorded histories replayed with the change:\n%s", out)
			}
			if !strings.Contains(string(out), "--- FAIL: TestReplay") || !strings.Contains(string(out), "TMPRL1100") {
				t.Fatalf("TestReplay did not fail for nondeterminism (TMPRL1100):\n%s", out)
			}
		})
	}
}
