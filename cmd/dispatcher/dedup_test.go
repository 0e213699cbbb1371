package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
)

// countingRecord is a record of accepted events that counts its calls.
type countingRecord struct{ finds, records atomic.Int32 }

func (c *countingRecord) AcceptedEvent(context.Context, string) (dispatcher.StartResult, bool, error) {
	c.finds.Add(1)
	return dispatcher.StartResult{}, false, nil
}

func (c *countingRecord) RecordAcceptedEvent(context.Context, string, dispatcher.StartResult, time.Time) error {
	c.records.Add(1)
	return nil
}

func TestDedupRecordFollowsTheRetention(t *testing.T) {
	const week = 7 * 24 * time.Hour
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	answers := func(d time.Duration) func(context.Context) (time.Duration, error) {
		return func(context.Context) (time.Duration, error) { return d, nil }
	}
	if r := newDedupRecord(t.Context(), &countingRecord{}, answers(week), week, log); r != nil {
		t.Error("a retention covering the window keeps a record")
	}

	store := &countingRecord{}
	r := newDedupRecord(t.Context(), store, answers(24*time.Hour), week, log)
	if r == nil {
		t.Fatal("a retention shorter than the window keeps no record")
	}
	_, _, _ = r.AcceptedEvent(t.Context(), "k")
	_ = r.RecordAcceptedEvent(t.Context(), "k", dispatcher.StartResult{}, time.Now())
	if store.finds.Load() != 1 || store.records.Load() != 1 {
		t.Errorf("store asked %d times and written %d times, want 1 and 1", store.finds.Load(), store.records.Load())
	}
}

// A process started while Temporal is down keeps the record until
// Temporal answers, then stops paying a write per event for it. Before,
// it kept the record until it was restarted.
func TestDedupRecordWhileTemporalIsDown(t *testing.T) {
	const week = 7 * 24 * time.Hour
	var asked atomic.Int32
	retention := func(context.Context) (time.Duration, error) {
		if asked.Add(1) == 1 {
			return 0, errors.New("temporal is unavailable")
		}
		return week, nil
	}
	store := &countingRecord{}
	r := newDedupRecord(t.Context(), store, retention, week, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if r == nil {
		t.Fatal("no record while the retention is unknown")
	}
	_ = r.RecordAcceptedEvent(t.Context(), "before", dispatcher.StartResult{}, time.Now())
	if store.records.Load() != 1 {
		t.Fatalf("an event accepted while the retention is unknown was not recorded")
	}
	testenv.Eventually(t, 10*time.Second, func() string {
		if !r.off.Load() {
			return fmt.Sprintf("the record is still on after %d reads of the retention", asked.Load())
		}
		return ""
	})
	_, _, _ = r.AcceptedEvent(t.Context(), "after")
	_ = r.RecordAcceptedEvent(t.Context(), "after", dispatcher.StartResult{}, time.Now())
	if store.finds.Load() != 0 || store.records.Load() != 1 {
		t.Errorf("after Temporal answered: store asked %d times and written %d times, want 0 and 1", store.finds.Load(), store.records.Load())
	}
}
