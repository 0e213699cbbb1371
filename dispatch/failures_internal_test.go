package dispatch

import (
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
)

// A trend spans what it is told, else from the first failure to now,
// else, with none, the last day: before, no failure made a trend of
// buckets a millisecond long.
func TestFailureTrendSpan(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	first := now.Add(-3 * time.Hour)
	for name, tc := range map[string]struct {
		f      dispatcher.ExecutionFilter
		runs   []dispatcher.Execution
		from   time.Time
		bucket time.Duration
	}{
		"no failure":     {runs: nil, from: now.Add(-24 * time.Hour), bucket: time.Hour},
		"failures":       {runs: []dispatcher.Execution{{Start: now.Add(-time.Hour)}, {Start: first}}, from: first, bucket: 3 * time.Hour / 24},
		"told where":     {f: dispatcher.ExecutionFilter{From: now.Add(-48 * time.Hour)}, from: now.Add(-48 * time.Hour), bucket: 2 * time.Hour},
		"told, no where": {f: dispatcher.ExecutionFilter{To: now.Add(-time.Hour)}, from: now.Add(-25 * time.Hour), bucket: time.Hour},
	} {
		got := failureTrend(tc.f, tc.runs, now, 24)
		if !got.From.Equal(tc.from) || got.Bucket != tc.bucket || len(got.Counts) != 24 {
			t.Errorf("%s: from %v, bucket %v, %d buckets; want from %v, bucket %v, 24", name, got.From, got.Bucket, len(got.Counts), tc.from, tc.bucket)
		}
	}
}
