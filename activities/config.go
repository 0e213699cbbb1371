package activities

import (
	"context"
	"fmt"

	"go.temporal.io/sdk/temporal"

	"github.com/dispatcherhq/dispatcher"
)

// LoadConfig returns the configuration for in.EventType, resolved for
// in.Event: paused dispatchers and those whose filter is false for the
// event are skipped (dispatcher.Config.ForEvent). It runs as a local
// activity, for dispatches started without their configuration: on a
// cache hit it costs one version query. Its result, recorded in the
// dispatch's history, is what the dispatch decided with, whatever the
// filters say later.
func (a *Effects) LoadConfig(ctx context.Context, in dispatcher.LoadConfigInput) (dispatcher.Config, error) {
	ctx = Acting(ctx)
	cfg, err := a.cache.Config(ctx, in.EventType)
	if err != nil {
		return dispatcher.Config{}, temporal.NewApplicationError(fmt.Sprintf("loading the configuration for %q: %s", in.EventType, storeTrouble(ctx, err)), dispatcher.FailureStore)
	}
	return cfg.ForEvent(in.Event, in.Only...), nil
}

// OrderingBlocks reports whether a failed dispatch of an event of
// eventType holds its ordering key, as the type's ordering says now (its
// ordered dispatchers, paused or filtered out as they may be, as at
// intake): the Sequence asks when one fails, so that a change of
// onFailure, or ordering removed, applies to the dispatches that fail
// from then on.
func (a *Effects) OrderingBlocks(ctx context.Context, eventType string) (bool, error) {
	ctx = Acting(ctx)
	cfg, err := a.cache.Config(ctx, eventType)
	if err != nil {
		return false, temporal.NewApplicationError(fmt.Sprintf("loading the configuration for %q: %s", eventType, storeTrouble(ctx, err)), dispatcher.FailureStore)
	}
	return cfg.BlocksOnFailure(), nil
}

// ResolveFunction returns how the task function in.Name is called now,
// for a task action scheduled for later than its dispatch started
// (dispatchV11): its kind, timeout and flow control may have changed
// since the dispatch's configuration was read, days ago maybe. A function
// that does not exist is the zero FunctionRef, whose Name is empty.
func (a *Effects) ResolveFunction(ctx context.Context, in dispatcher.ResolveFunctionInput) (dispatcher.FunctionRef, error) {
	ctx = Acting(ctx)
	f, err := a.cache.function(ctx, in.Name, in.ConfigVersion)
	switch {
	case dispatcher.ErrorCode(err) == dispatcher.ENOTFOUND:
		return dispatcher.FunctionRef{}, nil
	case err != nil:
		return dispatcher.FunctionRef{}, temporal.NewApplicationError(fmt.Sprintf("loading function %q: %s", in.Name, storeTrouble(ctx, err)), dispatcher.FailureStore)
	}
	return f.Ref(), nil
}

// load reads the configuration of eventType from the store.
func (c *Cache) load(ctx context.Context, eventType string) (dispatcher.Config, error) {
	ds, err := c.store.DispatchersByEventType(ctx, eventType)
	if err != nil {
		return dispatcher.Config{}, err
	}
	cfg := dispatcher.Config{Dispatchers: recorded(ds)}
	if err := cfg.ResolveFunctions(ctx, c.store.FindFunctionByName); err != nil {
		return dispatcher.Config{}, err
	}
	return cfg, nil
}

// recorded keeps of ds what a dispatch uses: the workflow records its
// configuration in its history, where every byte counts against
// Temporal's payload limit and is read by whoever reads the history.
func recorded(ds []dispatcher.Dispatcher) []dispatcher.Dispatcher {
	out := make([]dispatcher.Dispatcher, len(ds))
	for i, d := range ds {
		out[i] = dispatcher.Dispatcher{ID: d.ID, Name: d.Name, EventType: d.EventType, Ordering: d.Ordering,
			Filter: d.Filter, Paused: d.Paused, Actions: make([]dispatcher.Action, len(d.Actions))}
		for j, a := range d.Actions {
			out[i].Actions[j] = dispatcher.Action{ID: a.ID, Type: a.Type, Name: a.Name,
				Recipients: a.Recipients, TemplateID: a.TemplateID, FunctionName: a.FunctionName, Data: a.Data,
				Tags: a.Tags, StartTimestamp: a.StartTimestamp, RetryPolicy: a.RetryPolicy}
		}
	}
	return out
}
