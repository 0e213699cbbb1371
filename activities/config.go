package activities

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/dispatcherhq/dispatcher"
)

// LoadConfigInput is the input of LoadConfig.
type LoadConfigInput struct {
	EventType string
}

// Config is the configuration a dispatch runs with: the dispatchers that
// match its event type and the task functions their actions name. It is
// returned into the workflow history, which makes it the record of exactly
// what ran.
type Config struct {
	Version     int64 // the store's configuration version it was read at
	Dispatchers []dispatcher.Dispatcher
	// Functions holds one entry per function name that the task actions
	// use and that exists; a name missing here fails its actions with
	// dispatcher.FailureNotFound.
	Functions []FunctionRef
}

// FunctionRef is what a workflow needs to know about a task function to
// run it: HTTP call or child workflow, and how long a call may take. It is
// recorded in the workflow's history, shown in the Temporal Web UI, so it
// holds neither the secret nor the URL (which may carry a token); the
// activity looks those up when it calls.
type FunctionRef struct {
	Name      string
	Kind      string        // dispatcher.FunctionHTTP or dispatcher.FunctionTemporal
	Timeout   time.Duration // per HTTP call; 0 means the default
	TaskQueue string        // temporal functions
}

// Function returns the reference for name, if the config has one.
func (c *Config) Function(name string) (FunctionRef, bool) {
	for _, f := range c.Functions {
		if f.Name == name {
			return f, true
		}
	}
	return FunctionRef{}, false
}

// LoadConfig returns the configuration for in.EventType. It is meant to
// run as a local activity: on a cache hit it costs one version query.
func (a *Activities) LoadConfig(ctx context.Context, in LoadConfigInput) (Config, error) {
	cfg, v, err := cached(ctx, a, func(c *cache) map[string]Config { return c.configs }, in.EventType,
		func(ctx context.Context) (Config, error) { return a.loadConfig(ctx, in.EventType) })
	if err != nil {
		return Config{}, temporal.NewApplicationError(fmt.Sprintf("loading the configuration for %q: %v", in.EventType, err), dispatcher.FailureStore)
	}
	cfg.Version = v
	return cfg, nil
}

func (a *Activities) loadConfig(ctx context.Context, eventType string) (Config, error) {
	ds, err := a.store.DispatchersByEventType(ctx, eventType)
	if err != nil {
		return Config{}, err
	}
	cfg := Config{Dispatchers: ds}
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
				return Config{}, err
			}
			cfg.Functions = append(cfg.Functions, FunctionRef{
				Name: f.Name, Kind: f.Kind, Timeout: f.Timeout, TaskQueue: f.TaskQueue,
			})
		}
	}
	return cfg, nil
}
