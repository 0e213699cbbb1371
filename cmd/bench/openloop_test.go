package main

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestPaceIsAnOpenLoop: every item waits until the last one was sent,
// which a closed loop (drive) would never reach; pace sends them all
// anyway, at the rate asked, and counts them all in flight at once.
func TestPaceIsAnOpenLoop(t *testing.T) {
	const n, rate = 40, 400.0
	var started atomic.Int64
	allSent := make(chan struct{})
	do := func(ctx context.Context, seq int) (time.Duration, time.Duration, error) {
		if started.Add(1) == n {
			close(allSent)
		}
		select {
		case <-allSent:
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		}
		return time.Millisecond, 2 * time.Millisecond, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := pace(ctx, "test", 0, n, rate, do, newProgress(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	if got.N != n || len(got.Intake) != n || len(got.Total) != n {
		t.Errorf("N %d, %d intakes, %d totals; want %d each", got.N, len(got.Intake), len(got.Total), n)
	}
	if got.MaxInFlight != n {
		t.Errorf("at most %d in flight, want all %d", got.MaxInFlight, n)
	}
	// The last item starts (n-1)/rate after the first.
	if least := time.Duration(float64(n-1) / rate * float64(time.Second)); got.Elapsed < least {
		t.Errorf("sent %d items in %v at %v/s: faster than the rate (at least %v)", n, got.Elapsed, rate, least)
	}
	if got.Rate != rate || percentile(got.Total, 99) != 2*time.Millisecond {
		t.Errorf("rate %v, p99 %v; want %v and 2ms", got.Rate, percentile(got.Total, 99), rate)
	}
}

func TestPaceStopsAtTheFirstError(t *testing.T) {
	do := func(ctx context.Context, seq int) (time.Duration, time.Duration, error) {
		if seq == 3 {
			return 0, 0, errors.New("boom")
		}
		return 0, 0, nil
	}
	_, err := pace(context.Background(), "test", 0, 1000, 1000, do, newProgress(io.Discard))
	if err == nil || !strings.Contains(err.Error(), "item 3: boom") {
		t.Errorf("pace = %v, want item 3's error", err)
	}
}
