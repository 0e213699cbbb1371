package dispatcher

import "time"

// Trend buckets: how many a failures summary's trend has unless asked,
// and at most.
const (
	DefaultTrendBuckets = 24
	MaxTrendBuckets     = 100
)

// Trend counts events over time in equal buckets: Counts[i] are those at
// or after From+i×Bucket and before From+(i+1)×Bucket.
type Trend struct {
	From   time.Time
	Bucket time.Duration
	Counts []int
}

// NewTrend returns a trend of n empty buckets (DefaultTrendBuckets when
// n is 0) that covers [from, to); a span shorter than a millisecond per
// bucket is widened to that.
func NewTrend(from, to time.Time, n int) Trend {
	if n <= 0 {
		n = DefaultTrendBuckets
	}
	// Whole milliseconds, as the wire shows them, rounded up so that the
	// last bucket reaches to.
	per := time.Duration(n) * time.Millisecond
	bucket := max((to.Sub(from)+per-1)/per, 1) * time.Millisecond
	return Trend{From: from, Bucket: bucket, Counts: make([]int, n)}
}

// Index returns the bucket at falls in, and false when it is outside the
// trend.
func (t Trend) Index(at time.Time) (int, bool) {
	if t.Bucket <= 0 || at.Before(t.From) {
		return 0, false
	}
	i := int(at.Sub(t.From) / t.Bucket)
	return i, i < len(t.Counts)
}

// CheckTrendBuckets refuses a bucket count outside 1..MaxTrendBuckets; 0
// means the default.
func CheckTrendBuckets(n int) error {
	if n < 0 || n > MaxTrendBuckets {
		return Errorf(EINVALID, "buckets: must be 1 to %d, not %d", MaxTrendBuckets, n)
	}
	return nil
}
