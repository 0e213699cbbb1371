package activities

import (
	"context"
	"sync"

	"github.com/dispatcherhq/dispatcher"
)

// cache keeps configuration in memory between activities. Every entry is
// valid for one configuration version: each activity asks the store for
// the current version (one cheap query) and the cache empties itself when
// it changed, instead of running several queries per event.
type cache struct {
	mu        sync.Mutex
	version   int64
	configs   map[string]dispatcher.Config // by event type
	templates map[string]dispatcher.Template
	functions map[string]dispatcher.Function
}

// cacheLimit bounds each map of the cache.
const cacheLimit = 10000

// at brings the cache to version v, emptying it when v is another version.
func (c *cache) at(v int64) {
	if c.configs != nil && c.version == v {
		return
	}
	c.version = v
	c.configs = map[string]dispatcher.Config{}
	c.templates = map[string]dispatcher.Template{}
	c.functions = map[string]dispatcher.Function{}
}

// cached returns the entry of m for key at version v, loading and storing
// it on a miss. A load that raced with a change (the cache moved to another
// version meanwhile) is returned but not stored, so an old value never
// outlives its version.
func cached[T any](ctx context.Context, a *Effects, m func(*cache) map[string]T, key string, load func(context.Context) (T, error)) (T, int64, error) {
	var zero T
	v, err := a.store.ConfigVersion(ctx)
	if err != nil {
		return zero, 0, err
	}
	a.cache.mu.Lock()
	a.cache.at(v)
	val, ok := m(&a.cache)[key]
	a.cache.mu.Unlock()
	if ok {
		return val, v, nil
	}
	val, err = load(ctx)
	if err != nil {
		return zero, v, err
	}
	a.cache.mu.Lock()
	if a.cache.version == v {
		entries := m(&a.cache)
		// Keys such as event types come from clients: a map that filled
		// up starts again rather than growing without end.
		if len(entries) >= cacheLimit {
			clear(entries)
		}
		entries[key] = val
	}
	a.cache.mu.Unlock()
	return val, v, nil
}

func (a *Effects) template(ctx context.Context, id string) (dispatcher.Template, error) {
	t, _, err := cached(ctx, a, func(c *cache) map[string]dispatcher.Template { return c.templates }, id,
		func(ctx context.Context) (dispatcher.Template, error) { return a.store.FindTemplate(ctx, id) })
	return t, err
}

func (a *Effects) function(ctx context.Context, name string) (dispatcher.Function, error) {
	f, _, err := cached(ctx, a, func(c *cache) map[string]dispatcher.Function { return c.functions }, name,
		func(ctx context.Context) (dispatcher.Function, error) { return a.store.FindFunctionByName(ctx, name) })
	return f, err
}
