package workflows

import (
	"fmt"
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/workflow"
)

// The newest versions of Dispatch and BulkReplay have recorded histories
// for TestReplay to replay. make record-histories files them under the
// versions record_test.go names, which are bumped with versions.go's:
// before, BulkReplay's was not, and its newest version went unrecorded.
func TestNewestVersionsRecorded(t *testing.T) {
	for name, v := range map[string]workflow.Version{"dispatch": dispatchLatest, "bulk-replay": bulkReplayLatest} {
		dir := filepath.Join("testdata", "histories", name, fmt.Sprintf("v%d", v))
		if files, _ := filepath.Glob(filepath.Join(dir, "*.json*")); len(files) == 0 {
			t.Errorf("no histories in %s: bump the recorder's version in record_test.go, then make record-histories", dir)
		}
	}
}
