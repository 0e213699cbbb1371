package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Backoff of a producer between attempts of one event.
const (
	firstBackoff = 100 * time.Millisecond
	maxBackoff   = 2 * time.Second
)

// producer sends the events chaos-000001, chaos-000002, ... and retries
// each, with the same id, until the API answers 202: what a careful event
// source does, so no event is given up because a process died. The
// dispatcher must turn "sent until acknowledged" into "done once".
type producer struct {
	api  *apiClient
	n    int
	conc int
	rate float64 // events offered per second; 0: no pacing

	accepted   atomic.Int64 // events answered 202
	attempts   atomic.Int64 // requests sent
	duplicates atomic.Int64 // 202s with duplicate: true (an earlier attempt's answer was lost)
	retried    atomic.Int64 // attempts that failed (no answer, 5xx) and were retried
}

func eventID(seq int) string { return fmt.Sprintf("chaos-%06d", seq) }

// run sends all n events and returns once each was accepted; a 4xx
// answer (the harness's own mistake) or the end of ctx stops it.
func (p *producer) run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	seqs := make(chan int)
	go func() {
		defer close(seqs)
		var tick <-chan time.Time
		if p.rate > 0 {
			t := time.NewTicker(time.Duration(float64(time.Second) / p.rate))
			defer t.Stop()
			tick = t.C
		}
		for seq := 1; seq <= p.n; seq++ {
			if tick != nil {
				select {
				case <-tick:
				case <-ctx.Done():
					return
				}
			}
			select {
			case seqs <- seq:
			case <-ctx.Done():
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for range p.conc {
		wg.Go(func() {
			for seq := range seqs {
				if err := p.send(ctx, seq); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}

// send delivers event seq, retrying until it is accepted.
func (p *producer) send(ctx context.Context, seq int) error {
	id := eventID(seq)
	backoff := firstBackoff
	for {
		p.attempts.Add(1)
		acc, err := p.api.sendEvent(ctx, id, seq)
		if err == nil {
			if acc.Duplicate {
				p.duplicates.Add(1)
			}
			p.accepted.Add(1)
			return nil
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		var he *httpError
		if errors.As(err, &he) && he.Status < 500 {
			return fmt.Errorf("event %s: %w (a 4xx answer means the harness sent something wrong)", id, err)
		}
		p.retried.Add(1)
		wait := backoff/2 + rand.N(backoff/2+1) // jitter, so retries do not march in step
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		backoff = min(2*backoff, maxBackoff)
	}
}
