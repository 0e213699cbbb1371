package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// openLoad is the outcome of sending items at a fixed rate.
type openLoad struct {
	load
	Rate        float64       // items/s asked for
	MaxLate     time.Duration // the most a send started after its planned moment
	MaxInFlight int           // the most items sent and not yet done at once
}

// pace runs op for seq first..first+n-1, starting item i at i/rate
// seconds, each in its own goroutine whatever the earlier ones do: an
// open loop, as independent producers send events. Unlike drive, a slow
// answer does not slow the sender down, so queueing shows in the
// latencies instead of hiding in a lower rate. The first error stops it.
func pace(ctx context.Context, label string, first, n int, rate float64, do op, prog *progress) (openLoad, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var sent, done, inFlight atomic.Int64
	maxInFlight := int64(0)
	intake := make([]time.Duration, n)
	total := make([]time.Duration, n)
	stopProgress := prog.start(label, n, &sent, &done)
	defer stopProgress()

	interval := time.Duration(float64(time.Second) / rate)
	var maxLate time.Duration
	start := time.Now()
	var wg sync.WaitGroup
	timer := time.NewTimer(0)
	defer timer.Stop()
	for i := 0; i < n && ctx.Err() == nil; i++ {
		at := start.Add(time.Duration(i) * interval)
		if wait := time.Until(at); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
			}
			if ctx.Err() != nil {
				break
			}
		}
		maxLate = max(maxLate, time.Since(at))
		sent.Add(1)
		maxInFlight = max(maxInFlight, inFlight.Add(1))
		wg.Go(func() {
			defer inFlight.Add(-1)
			in, tot, err := do(ctx, first+i)
			if err != nil {
				cancel(fmt.Errorf("item %d: %w", first+i, err))
				return
			}
			intake[i], total[i] = in, tot
			done.Add(1)
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := context.Cause(ctx); err != nil {
		return openLoad{}, err
	}
	slices.Sort(intake)
	slices.Sort(total)
	return openLoad{
		load:    load{N: n, Elapsed: elapsed, Intake: intake, Total: total},
		Rate:    rate,
		MaxLate: maxLate, MaxInFlight: int(maxInFlight),
	}, nil
}
