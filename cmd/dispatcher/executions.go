package main

import (
	"context"
	"time"

	"github.com/dispatcherhq/dispatcher/dispatch"
	"github.com/dispatcherhq/dispatcher/models"
	"go.temporal.io/sdk/client"
)

// executions builds the executions service that the API's /executions/v1
// routes and the worker's bulk-replay activities share: Temporal for the
// runs, the store for the audit trail and today's dispatchers.
func (p process) executions(ctx context.Context, tc client.Client, store *models.Store) (*dispatch.Executions, error) {
	tokenKey, err := store.PageTokenKey(ctx)
	if err != nil {
		return nil, err
	}
	return dispatch.NewExecutions(dispatch.ExecutionsOptions{
		Client:    tc,
		Namespace: p.cfg.TemporalNS,
		UIURL:     p.cfg.TemporalUIURL,
		TaskQueue: p.cfg.TaskQueue,
		// As for the Starter: eager start only helps when this process's
		// worker takes the first workflow task.
		Eager:          p.worker,
		LocalCallLimit: p.cfg.LocalCallLimit,
		Audit:          store,
		Dispatchers:    store,
		Now:            time.Now,
		Logger:         p.log,
		Keys:           p.cfg.Keys,
		PageTokenKey:   tokenKey,
	})
}
