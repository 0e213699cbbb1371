package activities

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
)

// versionStore is a Store whose version never moves.
type versionStore struct{ Store }

func (versionStore) ConfigVersion(context.Context) (int64, error) { return 1, nil }

// TestCacheIsBounded: event types come from clients, so a stream of
// distinct ones must not grow the cache without end.
func TestCacheIsBounded(t *testing.T) {
	c := NewCache(versionStore{})
	configs := func(t *tenantCache) map[string]dispatcher.Config { return t.configs }
	loads := 0
	load := func(context.Context) (dispatcher.Config, error) { loads++; return dispatcher.Config{}, nil }
	for i := range cacheLimit + 10 {
		if _, _, err := cached(context.Background(), c, 0, configs, fmt.Sprintf("type-%d", i), load); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(c.tenants[""].configs); n > cacheLimit {
		t.Fatalf("cache holds %d entries, limit %d", n, cacheLimit)
	}
	// A hit still does not load again.
	before := loads
	if _, _, err := cached(context.Background(), c, 0, configs, fmt.Sprintf("type-%d", cacheLimit+9), load); err != nil || loads != before {
		t.Fatalf("a cached entry was loaded again (%d loads, err %v)", loads-before, err)
	}
	// Tenants come from tokens: they are bounded too.
	for i := range tenantLimit + 10 {
		ctx := dispatcher.WithCaller(context.Background(), dispatcher.Caller{Tenant: fmt.Sprint("tenant-", i)})
		if _, _, err := cached(ctx, c, 0, configs, "type", load); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(c.tenants); n > tenantLimit {
		t.Fatalf("cache holds %d tenants, limit %d", n, tenantLimit)
	}
}

// countingStore counts the version queries.
type countingStore struct {
	Store
	version, queries int64
}

func (s *countingStore) ConfigVersion(context.Context) (int64, error) {
	s.queries++
	return s.version, nil
}

// A dispatch that knows its configuration's version is served by a cache
// at least as new without a version query, for Fresh after the store last
// said; an older cache asks, and so does one the store said nothing of
// for longer: a retry or a replay of a dispatch read at an old version
// was served an idle cache's old function for good (a fixed URL unseen).
func TestCacheTrustsAKnownVersion(t *testing.T) {
	s := &countingStore{version: 5}
	c := NewCache(s)
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	c.now = func() time.Time { return now }
	c.Fresh = time.Second
	configs := func(t *tenantCache) map[string]dispatcher.Config { return t.configs }
	load := func(context.Context) (dispatcher.Config, error) { return dispatcher.Config{}, nil }
	get := func(atLeast int64) int64 {
		t.Helper()
		_, v, err := cached(context.Background(), c, atLeast, configs, "k", load)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := get(5); v != 5 || s.queries != 1 {
		t.Fatalf("a cold cache: version %d after %d queries, want 5 after 1", v, s.queries)
	}
	if v := get(4); v != 5 || s.queries != 1 {
		t.Fatalf("a dispatch of version 4 on a cache at 5: version %d after %d queries, want no query", v, s.queries)
	}
	s.version = 7
	if v := get(6); v != 7 || s.queries != 2 {
		t.Fatalf("a dispatch of version 6 on a cache at 5: version %d after %d queries, want the store asked", v, s.queries)
	}
	// A reader that knows no version trusts the store's last answer for
	// Fresh: the intake does not ask on every event.
	s.version = 8
	if v := get(0); s.queries != 2 || v != 7 {
		t.Fatalf("an unknown version right after the store said 7: %d after %d queries, want 7 without a query", v, s.queries)
	}
	now = now.Add(c.Fresh)
	if v := get(0); s.queries != 3 || v != 8 {
		t.Fatalf("an unknown version once the answer is stale: %d after %d queries, want the store asked", v, s.queries)
	}
	s.version = 9
	now = now.Add(c.Fresh)
	if v := get(4); s.queries != 4 || v != 9 {
		t.Fatalf("a dispatch of version 4 on a cache at 8 the store said nothing of for Fresh: %d after %d queries, want the store asked", v, s.queries)
	}
}

// A change made in this process (the store's OnChange calls Forget) is
// seen by the next reader at once, however fresh the last answer.
func TestCacheForget(t *testing.T) {
	s := &countingStore{version: 1}
	c := NewCache(s)
	c.Fresh = time.Hour
	if _, err := c.current(context.Background(), "", 0); err != nil {
		t.Fatal(err)
	}
	c.tenants[""].at(1)
	s.version = 2
	c.Forget()
	if v, err := c.current(context.Background(), "", 0); err != nil || v != 2 || s.queries != 2 {
		t.Fatalf("after Forget: version %d after %d queries (%v), want 2 from the store", v, s.queries, err)
	}
}

// racedStore is a store whose first version query has meanwhile run
// before it answers (a change, another reader), and answers the version
// from before it.
type racedStore struct {
	countingStore
	meanwhile func()
}

func (s *racedStore) ConfigVersion(ctx context.Context) (int64, error) {
	v, err := s.countingStore.ConfigVersion(ctx)
	if f := s.meanwhile; f != nil {
		s.meanwhile = nil
		f()
	}
	return v, err
}

// A change whose Forget comes while a reader's version query is in
// flight, with the version from before the change, is seen by the next
// reader: that answer is not trusted for Fresh. Before, the next reader
// was served the old configuration for Fresh, after the change's 200.
func TestCacheForgetDuringARead(t *testing.T) {
	s := &racedStore{countingStore: countingStore{version: 5}}
	c := NewCache(s)
	c.Fresh = time.Hour
	s.meanwhile = func() { s.version++; c.Forget() }
	configs := func(t *tenantCache) map[string]dispatcher.Config { return t.configs }
	load := func(context.Context) (dispatcher.Config, error) { return dispatcher.Config{}, nil }
	if _, v, err := cached(context.Background(), c, 0, configs, "k", load); err != nil || v != 5 {
		t.Fatalf("the read the change raced: version %d (%v), want 5", v, err)
	}
	if _, v, err := cached(context.Background(), c, 0, configs, "k", load); err != nil || v != 6 {
		t.Fatalf("a read after the change: version %d (%v), want 6", v, err)
	}
}

// A reader answered an older version than a reader that asked after it
// and was done first does not move the cache back to that version, which
// would then be trusted for Fresh (review).
func TestCacheNeverMovesBack(t *testing.T) {
	s := &racedStore{countingStore: countingStore{version: 5}}
	c := NewCache(s)
	c.Fresh = time.Hour
	configs := func(t *tenantCache) map[string]dispatcher.Config { return t.configs }
	load := func(context.Context) (dispatcher.Config, error) { return dispatcher.Config{}, nil }
	s.meanwhile = func() {
		s.version = 6
		if _, v, err := cached(context.Background(), c, 0, configs, "k", load); err != nil || v != 6 {
			t.Errorf("the reader that overtook: version %d (%v), want 6", v, err)
		}
	}
	if _, v, err := cached(context.Background(), c, 0, configs, "k", load); err != nil || v != 6 {
		t.Errorf("the overtaken reader: version %d (%v), want 6, the cache's", v, err)
	}
	if _, v, err := cached(context.Background(), c, 0, configs, "k", load); err != nil || v != 6 {
		t.Errorf("a reader after both: version %d (%v), want 6", v, err)
	}
}

// tenantStore has a version per tenant, and counts the templates it loads.
type tenantStore struct {
	Store
	versions map[string]int64
	loads    map[string]int
}

func (s *tenantStore) ConfigVersion(ctx context.Context) (int64, error) {
	return s.versions[dispatcher.CallerOf(ctx).Tenant], nil
}

func (s *tenantStore) FindTemplate(ctx context.Context, id string) (dispatcher.Template, error) {
	tenant := dispatcher.CallerOf(ctx).Tenant
	s.loads[tenant]++
	return dispatcher.Template{ID: id, Subject: tenant}, nil
}

// Each tenant's configuration has versions of its own: the cache keeps
// each tenant's at its version, and a change of one tenant's empties its
// entries only. Before, the cache held one version for all, and two
// tenants at different versions emptied it for each other on every read.
func TestCacheKeepsEachTenantAtItsVersion(t *testing.T) {
	s := &tenantStore{versions: map[string]int64{"acme": 3, "globex": 8}, loads: map[string]int{}}
	c := NewCache(s)
	acme := dispatcher.WithCaller(context.Background(), dispatcher.Caller{Tenant: "acme"})
	globex := dispatcher.WithCaller(context.Background(), dispatcher.Caller{Tenant: "globex"})
	read := func(ctx context.Context, want string) {
		t.Helper()
		if tpl, err := c.template(ctx, "tpl", 0); err != nil || tpl.Subject != want {
			t.Fatalf("template of %s: %+v, %v", want, tpl, err)
		}
	}
	for range 3 {
		read(acme, "acme")
		read(globex, "globex")
	}
	if s.loads["acme"] != 1 || s.loads["globex"] != 1 {
		t.Fatalf("loads %v: want each tenant's template loaded once", s.loads)
	}
	s.versions["acme"] = 4
	read(acme, "acme")
	read(globex, "globex")
	if s.loads["acme"] != 2 || s.loads["globex"] != 1 {
		t.Fatalf("loads %v after a change of acme's: want acme's loaded again, globex's not", s.loads)
	}
}
