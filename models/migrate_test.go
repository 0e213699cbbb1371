package models_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
	"github.com/dispatcherhq/dispatcher/models"
	"gorm.io/gorm"
)

// The tenants migration rebuilds the configuration tables: what was there
// is still there, in the implicit tenant, with its actions, tags and
// names, and deleting a dispatcher still takes its actions along.
func TestTenantsMigrationKeepsTheConfiguration(t *testing.T) {
	for name, url := range map[string]func(testing.TB) string{"postgres": testenv.Postgres, "sqlite": testenv.SQLite} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db := migratedTo(t, url(t), 3)
			for _, q := range []string{
				`INSERT INTO templates (id, name, subject, text_body, creation_timestamp, update_timestamp) VALUES ('t1', 'welcome', 'Hi', 'Hello', 1, 1)`,
				`INSERT INTO functions (id, name, kind, url, creation_timestamp, update_timestamp) VALUES ('f1', 'erase', 'http', 'https://example.com', 1, 1)`,
				`INSERT INTO dispatchers (id, name, event_type, creation_timestamp, update_timestamp) VALUES ('d1', 'on-delete', 'user_deleted', 1, 1)`,
				`INSERT INTO dispatcher_tags (dispatcher_id, position, tag) VALUES ('d1', 0, 'gdpr')`,
				`INSERT INTO actions (id, dispatcher_id, position, type, name, template_id, recipients, creation_timestamp, update_timestamp) VALUES ('a1', 'd1', 0, 'mail', 'mail', 't1', '{"to":["a@example.com"]}', 1, 1)`,
				`INSERT INTO actions (id, dispatcher_id, position, type, name, function_name, creation_timestamp, update_timestamp) VALUES ('a2', 'd1', 1, 'task', 'task', 'erase', 1, 1)`,
			} {
				if err := db.Exec(q).Error; err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			if _, err := models.Migrate(ctx, db); err != nil {
				t.Fatal(err)
			}
			s := models.NewStore(db, tick())
			ds, err := s.DispatchersByEventType(ctx, "user_deleted")
			if err != nil || len(ds) != 1 {
				t.Fatalf("dispatchers after the migration: %v, %v", ds, err)
			}
			if d := ds[0]; d.Name != "on-delete" || len(d.Tags) != 1 || len(d.Actions) != 2 || d.Actions[0].TemplateID != "t1" || d.Actions[1].FunctionName != "erase" {
				t.Fatalf("dispatcher after the migration: %+v", d)
			}
			// Names are still unique within the tenant.
			dup := dispatcher.Template{Name: "welcome", Subject: "s", Text: "t"}
			if err := s.CreateTemplate(ctx, &dup); dispatcher.ErrorCode(err) != dispatcher.ECONFLICT {
				t.Fatalf("a second template named welcome: %v", err)
			}
			// The foreign keys point at the rebuilt dispatchers table.
			if err := db.Exec(`INSERT INTO actions (id, dispatcher_id, position, type, creation_timestamp, update_timestamp) VALUES ('a3', 'nope', 2, 'task', 1, 1)`).Error; err == nil {
				t.Fatal("an action of no dispatcher was inserted: the foreign key is gone")
			}
			if err := db.Exec(`DELETE FROM dispatchers WHERE id = 'd1'`).Error; err != nil {
				t.Fatal(err)
			}
			var n int64
			if err := db.Raw(`SELECT COUNT(*) FROM actions`).Scan(&n).Error; err != nil || n != 0 {
				t.Fatalf("%d actions left after their dispatcher was deleted (%v): the cascade is gone", n, err)
			}
		})
	}
}

// Each tenant's configuration has a version of its own (migration 13): a
// change moves its tenant's only, so that no tenant learns from its
// dispatches' versions when another changes its configuration. A tenant's
// version starts from the one all shared before, so that none goes back
// over the upgrade (a dispatch asks for its configuration at a version at
// least its own), and a change by a process from before the upgrade still
// reaches every tenant's readers; going down, the shared one goes on from
// the highest.
func TestConfigVersionsAreTheTenants(t *testing.T) {
	for name, url := range map[string]func(testing.TB) string{"postgres": testenv.Postgres, "sqlite": testenv.SQLite} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db := migratedTo(t, url(t), 12)
			if err := db.Exec(`UPDATE config_version SET version = 41 WHERE id = 1`).Error; err != nil {
				t.Fatal(err)
			}
			if _, err := models.Migrate(ctx, db); err != nil {
				t.Fatal(err)
			}
			s := models.NewStore(db, tick())
			acme, globex := as("acme"), as("globex")
			versions := func() [3]int64 {
				t.Helper()
				var vs [3]int64
				for i, c := range []context.Context{ctx, acme, globex} {
					v, err := s.ConfigVersion(c)
					if err != nil {
						t.Fatal(err)
					}
					vs[i] = v
				}
				return vs
			}
			if got := versions(); got != [3]int64{41, 41, 41} {
				t.Fatalf("versions of the implicit tenant, acme and globex after the upgrade: %v, want the shared 41 each", got)
			}
			for range 2 {
				if err := s.CreateTemplate(acme, &dispatcher.Template{Name: dispatcher.NewID(time.Now()), Subject: "s", Text: "t"}); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.CreateTemplate(ctx, &dispatcher.Template{Name: "mine", Subject: "s", Text: "t"}); err != nil {
				t.Fatal(err)
			}
			if got := versions(); got != [3]int64{42, 43, 41} {
				t.Fatalf("versions after one change of the implicit tenant's and two of acme's: %v, want [42 43 41]", got)
			}
			// A process from before the migration, during a rolling
			// upgrade, moves the shared version: its change must reach
			// the new processes' caches, whatever the tenant.
			if err := db.Exec(`UPDATE config_version SET version = version + 1 WHERE id = 1`).Error; err != nil {
				t.Fatal(err)
			}
			if got := versions(); got != [3]int64{43, 44, 42} {
				t.Fatalf("versions after a change by an old process: %v, want [43 44 42]", got)
			}
			if err := s.CreateTemplate(ctx, &dispatcher.Template{Name: "again", Subject: "s", Text: "t"}); err != nil {
				t.Fatal(err)
			}
			if got := versions(); got != [3]int64{44, 44, 42} {
				t.Fatalf("versions after another change of the implicit tenant's: %v, want [44 44 42]", got)
			}
			if err := models.MigrateDownTo(ctx, db, 12); err != nil {
				t.Fatal(err)
			}
			var shared int64
			if err := db.Raw(`SELECT version FROM config_version WHERE id = 1`).Scan(&shared).Error; err != nil || shared != 44 {
				t.Fatalf("the shared version after going down: %d (%v), want 44, the highest of a tenant", shared, err)
			}
		})
	}
}

const allMigrations = math.MaxInt64

// migratedTo opens the database at url, closed when the test ends, with
// the migrations up to version applied (allMigrations: every one).
func migratedTo(t testing.TB, url string, version int64) *gorm.DB {
	t.Helper()
	db, err := models.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	})
	if err := models.MigrateTo(context.Background(), db, version); err != nil {
		t.Fatal(err)
	}
	return db
}

// Processes started at once on a new database (an api and a worker) each
// migrate it: they take turns, and every one ends with the schema
// migrated. Before, one failed ("relation already exists") and exited.
func TestConcurrentMigrations(t *testing.T) {
	url := testenv.Postgres(t)
	errs := make(chan error, 4)
	for range cap(errs) {
		go func() {
			db, err := models.Open(url)
			if err != nil {
				errs <- err
				return
			}
			defer func() {
				if sqlDB, err := db.DB(); err == nil {
					sqlDB.Close()
				}
			}()
			if _, err := models.Migrate(context.Background(), db); err != nil {
				errs <- err
				return
			}
			current, latest, err := models.MigrationStatus(context.Background(), db)
			if err == nil && current != latest {
				err = fmt.Errorf("at version %d of %d", current, latest)
			}
			errs <- err
		}()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// MigrationStatus reads the version without the migration lock and writes
// nothing: a process that only checks the schema answers at once while a
// migration (or a dead migrator's lease) holds the lock, and on an empty
// database creates no table. Before, it waited for the lock, and a
// process started during a migration gave up after 15 s.
func TestMigrationStatusTakesNoLock(t *testing.T) {
	ctx := context.Background()
	db := migratedTo(t, testenv.Postgres(t), allMigrations)
	if err := db.Exec("UPDATE goose_lock SET locked = true, locked_by = 'a migrator', lease_expires_at = now() + interval '1 hour'").Error; err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if current, latest, err := models.MigrationStatus(sctx, db); err != nil || current != latest || latest == 0 {
		t.Fatalf("with the lock held: at %d of %d (%v), want the latest at once", current, latest, err)
	}
	empty, err := models.Open(testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	if current, latest, err := models.MigrationStatus(ctx, empty); err != nil || current != 0 || latest == 0 {
		t.Fatalf("an empty database: at %d of %d (%v), want 0", current, latest, err)
	}
	if empty.Migrator().HasTable("goose_db_version") || empty.Migrator().HasTable("goose_lock") {
		t.Error("reading the status of an empty database created goose's tables")
	}
}
