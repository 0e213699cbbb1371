package models_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/dispatcherhq/dispatcher/models"
)

// Two processes started at once on a new SQLite file (an api and a
// worker) both migrate it: each ends migrated, neither fails. Before, one
// could stop at start-up with "table dispatchers already exists".
func TestSQLiteMigratedTwiceAtOnce(t *testing.T) {
	for i := range 5 {
		url := "sqlite:" + filepath.Join(t.TempDir(), fmt.Sprintf("race%d.db", i))
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for j := range errs {
			db, err := models.Open(url)
			if err != nil {
				t.Fatal(err)
			}
			wg.Go(func() { _, errs[j] = models.Migrate(context.Background(), db) })
		}
		wg.Wait()
		for j, err := range errs {
			if err != nil {
				t.Fatalf("file %d, process %d: %v", i, j, err)
			}
		}
	}
}
