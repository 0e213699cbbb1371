package models_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/testenv"
	"github.com/dispatcherhq/dispatcher/models"
)

// Processes that start together on one database agree on the page-token
// key, so that a token one hands out is good in another.
func TestPageTokenKeyIsShared(t *testing.T) {
	for name, url := range map[string]func(testing.TB) string{"postgres": testenv.Postgres, "sqlite": testenv.SQLite} {
		t.Run(name, func(t *testing.T) {
			db := migratedTo(t, url(t), allMigrations)
			keys := make([][]byte, 8)
			errs := make([]error, len(keys))
			var wg sync.WaitGroup
			for i := range keys {
				wg.Go(func() { keys[i], errs[i] = models.NewStore(db, time.Now).PageTokenKey(context.Background()) })
			}
			wg.Wait()
			for i, k := range keys {
				if errs[i] != nil || len(k) != 32 || !bytes.Equal(k, keys[0]) {
					t.Fatalf("process %d: key %x, %v; want the 32 bytes of process 0, %x", i, k, errs[i], keys[0])
				}
			}
			if bytes.Equal(keys[0], make([]byte, 32)) {
				t.Fatal("the key is all zeros")
			}
		})
	}
}
