package dispatcher

import (
	"testing"
	"time"
)

func TestTrend(t *testing.T) {
	from := time.UnixMilli(1767225600000)
	for _, c := range []struct {
		name   string
		to     time.Time
		n      int
		bucket time.Duration
		at     time.Duration // after from
		index  int
		inside bool
	}{
		{"a day in hours", from.Add(24 * time.Hour), 24, time.Hour, 90 * time.Minute, 1, true},
		{"the last instant", from.Add(24 * time.Hour), 24, time.Hour, 24*time.Hour - time.Millisecond, 23, true},
		{"to itself is outside", from.Add(24 * time.Hour), 24, time.Hour, 24 * time.Hour, 24, false},
		{"before from", from.Add(time.Hour), 4, 15 * time.Minute, -time.Millisecond, 0, false},
		{"uneven span rounds up", from.Add(10 * time.Millisecond), 3, 4 * time.Millisecond, 9 * time.Millisecond, 2, true},
		{"empty span", from, 5, time.Millisecond, 0, 0, true},
		{"default buckets", from.Add(48 * time.Hour), 0, 2 * time.Hour, 47 * time.Hour, 23, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr := NewTrend(from, c.to, c.n)
			if tr.Bucket != c.bucket {
				t.Fatalf("bucket = %v, want %v", tr.Bucket, c.bucket)
			}
			if want := max(c.n, 1); c.n > 0 && len(tr.Counts) != want {
				t.Fatalf("%d counts, want %d", len(tr.Counts), want)
			}
			i, ok := tr.Index(from.Add(c.at))
			if ok != c.inside || (ok && i != c.index) {
				t.Fatalf("Index(from+%v) = %d, %v; want %d, %v", c.at, i, ok, c.index, c.inside)
			}
		})
	}
	if err := CheckTrendBuckets(MaxTrendBuckets + 1); ErrorCode(err) != EINVALID {
		t.Fatalf("CheckTrendBuckets(%d) = %v, want EINVALID", MaxTrendBuckets+1, err)
	}
	if err := CheckTrendBuckets(0); err != nil {
		t.Fatalf("CheckTrendBuckets(0) = %v, want nil (the default)", err)
	}
}
