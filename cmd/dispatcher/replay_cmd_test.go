package main

import (
	"testing"

	"github.com/dispatcherhq/dispatcher/wire"
)

// TestProgressLine: the line replay --follow prints for a bulk replay. One
// that ended with its progress unknown says so; before, its closing line
// read "0/0 processed", as if it had replayed nothing.
func TestProgressLine(t *testing.T) {
	item := func(status string) wire.BulkReplayItem {
		return wire.BulkReplayItem{ID: "bulk-replay-1", Status: status}
	}
	some := wire.Progress{Matched: 3, Processed: 2, Replayed: 2, Succeeded: 1, Pending: 1}
	for _, tc := range []struct {
		name string
		b    wire.BulkReplay
		want string
	}{
		{"finding", wire.BulkReplay{BulkReplayItem: item("running")}, "finding the dispatches to replay"},
		{"running", wire.BulkReplay{BulkReplayItem: item("running"), Progress: some},
			"2/3 processed: 2 replayed, 0 skipped; 1 succeeded, 0 failed, 1 pending"},
		{"paused", wire.BulkReplay{BulkReplayItem: item("running"), Progress: wire.Progress{Matched: 3, Paused: true}},
			"paused (resume it: POST /executions/v1/replays/bulk-replay-1/resume, or the console): 0/3 processed: 0 replayed, 0 skipped; 0 succeeded, 0 failed, 0 pending"},
		{"ended, unknown", wire.BulkReplay{BulkReplayItem: item("failed"), ProgressUnknown: true},
			"its progress is unknown: no worker answered for it"},
		{"ended", wire.BulkReplay{BulkReplayItem: item("failed"), Progress: some},
			"2/3 processed: 2 replayed, 0 skipped; 1 succeeded, 0 failed, 1 pending"},
	} {
		if got := progressLine(tc.b); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
