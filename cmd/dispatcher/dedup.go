package main

import (
	"context"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/dispatcherhq/dispatcher/dispatch"
	"github.com/dispatcherhq/dispatcher/models"
)

// acceptedEvents returns the durable record of accepted events that the
// intake keeps for deduplication, or nil when the namespace's retention
// already covers DISPATCHER_DEDUP_WINDOW: Temporal refuses an event id
// whose dispatch it still keeps, and the record would only cost a write
// per event. When the retention cannot be read the record is kept.
func (p process) acceptedEvents(ctx context.Context, tc client.Client, store *models.Store) dispatch.AcceptedEvents {
	retention, err := dispatch.NamespaceRetention(ctx, tc, p.cfg.TemporalNS)
	if err == nil && retention >= p.cfg.DedupWindow {
		p.log.Info("deduplicating events by Temporal's retention", "retention", retention, "window", p.cfg.DedupWindow)
		return nil
	}
	p.log.Info("deduplicating events by a record in the database: Temporal's retention is shorter than the window",
		"retention", retention, "window", p.cfg.DedupWindow, "err", err)
	return store
}

// pruneEvery is how often a worker deletes delivery records older than
// the dedup window.
const pruneEvery = time.Hour

// pruneDeliveryRecords deletes, until ctx ends, the records of sent mails
// and accepted events older than the dedup window.
func (p process) pruneDeliveryRecords(ctx context.Context, store *models.Store) {
	t := time.NewTicker(pruneEvery)
	defer t.Stop()
	for {
		n, err := store.PruneDeliveryRecords(ctx, time.Now().Add(-p.cfg.DedupWindow))
		if err != nil {
			p.log.Warn("pruning delivery records failed", "err", err)
		} else if n > 0 {
			p.log.Info("pruned delivery records", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
