package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// scrapeWait is the longest a scrape of /metrics waits for a collector's
// read of Temporal: past it the collector serves what it read last, and
// the read goes on in the background. A Temporal that did not answer held
// every scrape for the read's whole timeout (the SDK retries until it),
// and Prometheus's own (10 s by default) then failed the scrape, with the
// dispatcher's counters in it, during the outage they were to show.
const scrapeWait = 2 * time.Second

// lastRead is what a collector's last read of Temporal returned. It
// reads again, in the background, once the last read began at least its
// collector's Every before.
type lastRead[T any] struct {
	mu      sync.Mutex
	at      time.Time // when the last read began
	value   T         // of the last read that succeeded
	err     error     // of the last read that ended; errNotRead before
	reading chan struct{}
}

// errNotRead is the error of a collector whose first read has not ended:
// its gauge of success says 0, not 1, until one succeeds.
var errNotRead = errors.New("not read yet")

// get returns the value of the last read that succeeded and the error of
// the last that ended: it starts a read when the last one began every or
// longer before now, and waits for the read in flight up to scrapeWait.
func (l *lastRead[T]) get(now time.Time, every, timeout time.Duration, read func(context.Context) (T, error)) (T, error) {
	l.mu.Lock()
	if l.at.IsZero() {
		l.err = errNotRead
	}
	if l.reading == nil && (l.at.IsZero() || now.Sub(l.at) >= every) {
		done := make(chan struct{})
		l.at, l.reading = now, done
		go func() {
			defer close(done)
			v, err := readSafely(read, timeout)
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.err, l.reading = err, nil; err == nil {
				l.value = v
			}
		}()
	}
	reading := l.reading
	l.mu.Unlock()
	if reading != nil {
		wait := time.NewTimer(scrapeWait)
		defer wait.Stop()
		select {
		case <-reading:
		case <-wait.C:
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.value, l.err
}

// readSafely runs read within timeout; a panic in it is its error, as the
// scrape's HTTP server recovered it when the read ran in the scrape.
func readSafely[T any](read func(context.Context) (T, error), timeout time.Duration) (v T, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the read panicked: %v", r)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return read(ctx)
}

// logRead logs, on log (nil discards), that the reads of what from
// Temporal began to fail, with the error, or that they succeed again;
// failing says whether the read before failed, and it returns whether
// this one did. Before, a failing read said nothing but its gauge of
// success, and an operator had nothing to go on.
func logRead(log *slog.Logger, failing bool, what string, err error) bool {
	switch {
	case log == nil:
	case err != nil && !failing:
		log.Warn("cannot read "+what+" from Temporal; their gauges show the last read until one succeeds", "err", err)
	case err == nil && failing:
		log.Info("read " + what + " from Temporal again")
	}
	return err != nil
}
