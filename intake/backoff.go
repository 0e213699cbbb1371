package intake

import (
	"context"
	"sync"
	"time"
)

// Bounds of the wait between attempts while Temporal does not answer.
const (
	minBackoff = 500 * time.Millisecond
	maxBackoff = 10 * time.Second
)

// Backoff is one wait shared by every message of a source (for Temporal's
// outages, and a broker source's own failures to dead-letter): after a
// failed attempt nobody tries again before the wait is over, and each failure
// that ends a wait doubles the next one, up to maxBackoff. Failures seen
// during a wait (the attempts that were already in flight) do not grow it.
type Backoff struct {
	min, max time.Duration // zero: minBackoff, maxBackoff

	mu     sync.Mutex
	delay  time.Duration
	until  time.Time
	since  time.Time // when the failures began; zero while attempts succeed
	last   time.Time // when the last failure was
	warned time.Time // when Failed last said to report
	now    func() time.Time
}

// warnEvery is how often Failed says to report a failure: at most once a
// minute (a Temporal that comes back slowly, under load, fails and
// succeeds in turn, and each turn logged its warning again, 89 in two
// minutes), and at least once a minute while failures go on.
const warnEvery = time.Minute

// Wait blocks until the current wait is over, or ctx ends.
func (b *Backoff) Wait(ctx context.Context) error {
	b.mu.Lock()
	d := time.Until(b.until)
	b.mu.Unlock()
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Failed records a failed attempt and returns how long the next waits,
// and whether to report it: the first failure in warnEvery.
func (b *Backoff) Failed() (time.Duration, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	if b.now != nil {
		now = b.now()
	}
	if b.since.IsZero() {
		b.since = now
	}
	b.last = now
	report := now.Sub(b.warned) >= warnEvery
	if report {
		b.warned = now
	}
	if now.Before(b.until) {
		return b.until.Sub(now), report
	}
	lo, hi := b.min, b.max
	if lo == 0 {
		lo, hi = minBackoff, maxBackoff
	}
	b.delay = min(max(2*b.delay, lo), hi)
	b.until = now.Add(b.delay)
	return b.delay, report
}

// Succeeded ends the waits.
func (b *Backoff) Succeeded() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.since.IsZero() {
		b.delay, b.until, b.since = 0, time.Time{}, time.Time{}
	}
}

// Waiting reports whether attempts are failing, and since when.
func (b *Backoff) Waiting() (bool, time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.since.IsZero(), b.since
}

// FailingSince reports when the failures began, if the last of them was
// less than recent ago: attempts that stopped coming (another process
// took what failed here) do not count as failing for ever.
func (b *Backoff) FailingSince(recent time.Duration) (time.Time, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	if b.now != nil {
		now = b.now()
	}
	return b.since, !b.since.IsZero() && now.Sub(b.last) < recent
}
