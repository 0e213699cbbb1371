package activities

import (
	"context"
	"sync"
	"time"

	"github.com/dispatcherhq/dispatcher"
)

// Cache keeps configuration in memory, for the activities and for the
// intake, which hands each dispatch its configuration. Every entry is
// valid for one version of its tenant's configuration (the store bumps it
// in the same transaction as every change of the tenant's): a tenant's
// cache empties itself when its version moved, instead of running several
// queries per event, and a change of one tenant's leaves the others'. It
// is safe for concurrent use.
type Cache struct {
	// Fresh is how long the store's answer to "which version?" holds: a
	// change reaches new dispatches, and the attempts of running ones,
	// within it, and neither the intake nor the activities ask the store
	// on every event (a fifth of the intake's CPU). 0 asks every time.
	Fresh time.Duration

	store Store
	now   func() time.Time

	mu      sync.Mutex
	tenants map[string]*tenantCache
	forgets uint64 // calls of Forget
}

// tenantCache is the cache of one tenant's configuration, at one version.
type tenantCache struct {
	version   int64
	asked     time.Time                    // when the store last said version
	configs   map[string]dispatcher.Config // by event type; nil until a first read
	templates map[string]dispatcher.Template
	functions map[string]dispatcher.Function
}

// NewCache returns an empty cache of store's configuration.
func NewCache(store Store) *Cache {
	return &Cache{store: store, now: time.Now, tenants: map[string]*tenantCache{}}
}

// Forget makes the next reader that knows no version ask the store: the
// configuration changed (in this process; see Fresh for the others).
func (c *Cache) Forget() {
	c.mu.Lock()
	for _, t := range c.tenants {
		t.asked = time.Time{}
	}
	c.forgets++
	c.mu.Unlock()
}

// cacheLimit bounds each map of a tenant's cache, tenantLimit the tenants
// cached.
const cacheLimit, tenantLimit = 10000, 1000

// Config returns the configuration for eventType, at the store's current
// version: what a dispatch of an event of that type runs with. A miss
// reads the dispatchers of the type and the functions they name.
func (c *Cache) Config(ctx context.Context, eventType string) (dispatcher.Config, error) {
	cfg, v, err := cached(ctx, c, 0, func(t *tenantCache) map[string]dispatcher.Config { return t.configs }, eventType,
		func(ctx context.Context) (dispatcher.Config, error) { return c.load(ctx, eventType) })
	cfg.Version = v
	return cfg, err
}

func (c *Cache) template(ctx context.Context, id string, atLeast int64) (dispatcher.Template, error) {
	t, _, err := cached(ctx, c, atLeast, func(t *tenantCache) map[string]dispatcher.Template { return t.templates }, id,
		func(ctx context.Context) (dispatcher.Template, error) { return c.store.FindTemplate(ctx, id) })
	return t, err
}

func (c *Cache) function(ctx context.Context, name string, atLeast int64) (dispatcher.Function, error) {
	f, _, err := cached(ctx, c, atLeast, func(t *tenantCache) map[string]dispatcher.Function { return t.functions }, name,
		func(ctx context.Context) (dispatcher.Function, error) { return c.store.FindFunctionByName(ctx, name) })
	return f, err
}

// tenant returns the cache of tenant's configuration, a new one when it
// has none. The caller holds mu.
func (c *Cache) tenant(tenant string) *tenantCache {
	t, ok := c.tenants[tenant]
	if !ok {
		// Tenants come from tokens: a map that filled up starts again
		// rather than growing without end.
		if len(c.tenants) >= tenantLimit {
			clear(c.tenants)
		}
		t = &tenantCache{}
		c.tenants[tenant] = t
	}
	return t
}

// at brings the cache to version v, emptying it when v is another version.
// The caller holds Cache.mu.
func (t *tenantCache) at(v int64) {
	if t.configs != nil && t.version == v {
		return
	}
	t.version = v
	t.configs = map[string]dispatcher.Config{}
	t.templates = map[string]dispatcher.Template{}
	t.functions = map[string]dispatcher.Function{}
}

// current returns the version of tenant's configuration to read at: the
// version the store gave within Fresh, if it is at least atLeast, the
// version a dispatch's configuration was read at (0 for a reader that
// knows none); otherwise the store says. A cache at a dispatch's version
// is not trusted for longer than Fresh either: a retry, a delayed action
// or a replay runs after changes made since, through another process too
// (a function's URL fixed), and an idle cache would have served it the old
// function for as long as no newer dispatch came by.
func (c *Cache) current(ctx context.Context, tenant string, atLeast int64) (int64, error) {
	c.mu.Lock()
	t := c.tenant(tenant)
	v, warm, asked, forgets := t.version, t.configs != nil, t.asked, c.forgets
	c.mu.Unlock()
	now := c.now()
	if warm && v >= atLeast && now.Sub(asked) < c.Fresh {
		return v, nil
	}
	v, err := c.store.ConfigVersion(ctx)
	if err == nil {
		c.mu.Lock()
		// A change made while the store answered (Forget came) may be
		// newer than the answer: the next reader asks again. Before, the
		// answer was trusted for Fresh, and a reader after the change's
		// 200 was served the old configuration.
		if v >= t.version && c.forgets == forgets {
			t.asked = now
		}
		c.mu.Unlock()
	}
	return v, err
}

// cached returns the entry of m for key at the current version of the
// caller's tenant's configuration, loading and storing it on a miss. A
// load that raced with a change (the cache moved to another version
// meanwhile) is returned but not stored, so an old value never outlives
// its version.
func cached[T any](ctx context.Context, c *Cache, atLeast int64, m func(*tenantCache) map[string]T, key string, load func(context.Context) (T, error)) (T, int64, error) {
	var zero T
	tenant := dispatcher.CallerOf(ctx).Tenant // the store reads the caller's tenant only
	v, err := c.current(ctx, tenant, atLeast)
	if err != nil {
		return zero, 0, err
	}
	c.mu.Lock()
	t := c.tenant(tenant)
	if t.configs != nil && t.version > v {
		// A reader whose answer came later moved the cache on meanwhile:
		// never back, where the older version would be trusted for Fresh.
		v = t.version
	}
	t.at(v)
	val, ok := m(t)[key]
	c.mu.Unlock()
	if ok {
		return val, v, nil
	}
	val, err = load(ctx)
	if err != nil {
		return zero, v, err
	}
	c.mu.Lock()
	if t.version == v {
		entries := m(t)
		// Keys such as event types come from clients: a map that filled
		// up starts again rather than growing without end.
		if len(entries) >= cacheLimit {
			clear(entries)
		}
		entries[key] = val
	}
	c.mu.Unlock()
	return val, v, nil
}
