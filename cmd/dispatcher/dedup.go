package main

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/dispatch"
	"github.com/dispatcherhq/dispatcher/models"
)

// acceptedEvents returns the durable record of accepted events that the
// intake keeps for deduplication, or nil when the namespace's retention
// already covers DISPATCHER_DEDUP_WINDOW: Temporal refuses an event id
// whose dispatch it still keeps, and the record would only cost a write
// per event.
func (p process) acceptedEvents(ctx context.Context, tc client.Client, store *models.Store) dispatch.AcceptedEvents {
	retention := func(ctx context.Context) (time.Duration, error) {
		return dispatch.NamespaceRetention(ctx, tc, p.cfg.TemporalNS)
	}
	if r := newDedupRecord(ctx, store, retention, p.cfg.DedupWindow, p.log); r != nil {
		return r
	}
	return nil
}

// dedupRecord is the record of accepted events while Temporal's retention
// is not known to cover the dedup window. Read when the process starts;
// when Temporal does not answer then, the record is kept, and the
// retention read again in the background until it does.
type dedupRecord struct {
	dispatch.AcceptedEvents
	off atomic.Bool // the retention covers the window: Temporal deduplicates
}

// newDedupRecord returns the record, or nil when the retention covers the
// window.
func newDedupRecord(ctx context.Context, store dispatch.AcceptedEvents, retention func(context.Context) (time.Duration, error),
	window time.Duration, log *slog.Logger) *dedupRecord {
	r := &dedupRecord{AcceptedEvents: store}
	decide := func() error {
		d, err := retention(ctx)
		switch {
		case err != nil:
			return err
		case d >= window:
			log.Info("deduplicating events by Temporal's retention", "retention", d, "window", window)
			r.off.Store(true)
		default:
			log.Info("deduplicating events by a record in the database: Temporal's retention is shorter than the window",
				"retention", d, "window", window)
		}
		return nil
	}
	err := decide()
	if err == nil {
		if r.off.Load() {
			return nil
		}
		return r
	}
	log.Warn("deduplicating events by a record in the database until Temporal answers: its retention could not be read",
		"window", window, "err", err)
	go func() {
		for wait := firstStartRetry; ; wait = min(2*wait, maxStartRetry) {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			if decide() == nil {
				return
			}
		}
	}()
	return r
}

// AcceptedEvent finds nothing once Temporal deduplicates.
func (r *dedupRecord) AcceptedEvent(ctx context.Context, key string) (dispatcher.StartResult, bool, error) {
	if r.off.Load() {
		return dispatcher.StartResult{}, false, nil
	}
	return r.AcceptedEvents.AcceptedEvent(ctx, key)
}

// RecordAcceptedEvent records nothing once Temporal deduplicates.
func (r *dedupRecord) RecordAcceptedEvent(ctx context.Context, key string, res dispatcher.StartResult, at time.Time) error {
	if r.off.Load() {
		return nil
	}
	return r.AcceptedEvents.RecordAcceptedEvent(ctx, key, res, at)
}

// pruneEvery is how often a worker deletes delivery records older than
// the dedup window, and claims expired for claimKeep.
const pruneEvery, claimKeep = time.Hour, time.Hour

// pruneDeliveryRecords deletes, until ctx ends, the records of sent mails
// and accepted events older than the dedup window.
func (p process) pruneDeliveryRecords(ctx context.Context, store *models.Store) {
	t := time.NewTicker(pruneEvery)
	defer t.Stop()
	for {
		now := time.Now()
		n, err := store.PruneDeliveryRecords(ctx, now.Add(-p.cfg.DedupWindow), now.Add(-claimKeep))
		switch {
		case ctx.Err() != nil:
			return // stopping: not the database's fault
		case err != nil:
			p.log.Warn("pruning delivery records failed", "err", err)
		case n > 0:
			p.log.Info("pruned delivery records", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
