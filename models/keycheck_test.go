package models_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/testenv"
	"github.com/dispatcherhq/dispatcher/models"
)

// A process whose key has the id of another process's key but other
// material is refused; the same key, and a new id beside it, are not.
// Before, it ran, and every dispatch it took failed ("does not decrypt"),
// as did every one the others took of its.
func TestCheckKeys(t *testing.T) {
	for name, url := range map[string]func(testing.TB) string{"postgres": testenv.Postgres, "sqlite": testenv.SQLite} {
		t.Run(name, func(t *testing.T) {
			db := migratedTo(t, url(t), allMigrations)
			if err := models.NewStore(db, time.Now).CheckKeys(context.Background()); err != nil {
				t.Fatalf("no keys, on a store no process encrypted: %v", err)
			}
			first, other, second := generateKey(t, "k1"), generateKey(t, "k1"), generateKey(t, "k2")
			check := func(entries ...string) error {
				return models.NewStore(db, time.Now, models.WithKeys(keyRing(t, entries...))).CheckKeys(context.Background())
			}
			if err := check(first); err != nil {
				t.Fatalf("the first process with k1: %v", err)
			}
			if err := check(first); err != nil {
				t.Fatalf("another process with the same k1: %v", err)
			}
			if err := check(second, first); err != nil {
				t.Fatalf("a rotation, k2 before k1: %v", err)
			}
			if err := check(other); err == nil || !strings.Contains(err.Error(), `key "k1" is not the key "k1" the other processes have`) {
				t.Fatalf("other material under k1: %v, want it refused", err)
			}
			// Before, a process with a key of a new id alone (a wrong
			// Secret) started, and wrote histories no other could read.
			if err := check(generateKey(t, "k3")); err == nil || !strings.Contains(err.Error(), "holds none of the keys other processes encrypt this store with (k1, k2), only k3") {
				t.Fatalf("a new key alone: %v, want it refused", err)
			}
			if err := check(generateKey(t, "k3"), second); err != nil {
				t.Fatalf("a new key beside one the others have: %v", err)
			}
			// Before, a process without the setting (a Secret not
			// mounted) ran, and stored the secrets given it in clear text.
			if err := models.NewStore(db, time.Now).CheckKeys(context.Background()); err == nil ||
				!strings.Contains(err.Error(), "DISPATCHER_ENCRYPTION_KEY is not set, but other processes encrypt this store, with the keys k1, k2, k3") {
				t.Fatalf("no keys, on a store others encrypt: %v, want it refused", err)
			}
		})
	}
}
