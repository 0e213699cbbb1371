package activities

import (
	"context"
	"fmt"
	"testing"

	"github.com/dispatcherhq/dispatcher"
)

// versionStore is a Store whose version never moves.
type versionStore struct{ Store }

func (versionStore) ConfigVersion(context.Context) (int64, error) { return 1, nil }

// TestCacheIsBounded: event types come from clients, so a stream of
// distinct ones must not grow the cache without end.
func TestCacheIsBounded(t *testing.T) {
	a := &Effects{store: versionStore{}}
	configs := func(c *cache) map[string]dispatcher.Config { return c.configs }
	loads := 0
	load := func(context.Context) (dispatcher.Config, error) { loads++; return dispatcher.Config{}, nil }
	for i := range cacheLimit + 10 {
		if _, _, err := cached(context.Background(), a, configs, fmt.Sprintf("type-%d", i), load); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(a.cache.configs); n > cacheLimit {
		t.Fatalf("cache holds %d entries, limit %d", n, cacheLimit)
	}
	// A hit still does not load again.
	before := loads
	if _, _, err := cached(context.Background(), a, configs, fmt.Sprintf("type-%d", cacheLimit+9), load); err != nil || loads != before {
		t.Fatalf("a cached entry was loaded again (%d loads, err %v)", loads-before, err)
	}
}
