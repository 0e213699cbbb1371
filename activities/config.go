package activities

import (
	"context"
	"fmt"

	"go.temporal.io/sdk/temporal"

	"github.com/dispatcherhq/dispatcher"
)

// LoadConfig returns the configuration for in.EventType. It is meant to
// run as a local activity: on a cache hit it costs one version query.
func (a *Effects) LoadConfig(ctx context.Context, in dispatcher.LoadConfigInput) (dispatcher.Config, error) {
	cfg, v, err := cached(ctx, a, func(c *cache) map[string]dispatcher.Config { return c.configs }, in.EventType,
		func(ctx context.Context) (dispatcher.Config, error) { return a.loadConfig(ctx, in.EventType) })
	if err != nil {
		return dispatcher.Config{}, temporal.NewApplicationError(fmt.Sprintf("loading the configuration for %q: %v", in.EventType, err), dispatcher.FailureStore)
	}
	cfg.Version = v
	return cfg, nil
}

func (a *Effects) loadConfig(ctx context.Context, eventType string) (dispatcher.Config, error) {
	ds, err := a.store.DispatchersByEventType(ctx, eventType)
	if err != nil {
		return dispatcher.Config{}, err
	}
	cfg := dispatcher.Config{Dispatchers: ds}
	seen := map[string]bool{}
	for _, d := range ds {
		for _, act := range d.Actions {
			if act.Type != dispatcher.ActionTask || seen[act.FunctionName] {
				continue
			}
			seen[act.FunctionName] = true
			f, err := a.store.FindFunctionByName(ctx, act.FunctionName)
			if dispatcher.ErrorCode(err) == dispatcher.ENOTFOUND {
				continue // its actions fail on their own; the others still run
			}
			if err != nil {
				return dispatcher.Config{}, err
			}
			cfg.Functions = append(cfg.Functions, dispatcher.FunctionRef{
				Name: f.Name, Kind: f.Kind, Timeout: f.Timeout, TaskQueue: f.TaskQueue,
			})
		}
	}
	return cfg, nil
}
