package models_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/testenv"
	"github.com/dispatcherhq/dispatcher/models"
)

// TestLimitConns: a PostgreSQL database gets DefaultMaxConns connections
// from a process, or what DISPATCHER_DB_MAX_CONNS says (LimitConns);
// before, 32 whatever the deployment's max_connections.
func TestLimitConns(t *testing.T) {
	db, err := models.Open(testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sqlDB.Close() })
	if got := sqlDB.Stats().MaxOpenConnections; got != models.DefaultMaxConns {
		t.Errorf("by default: at most %d connections, want %d", got, models.DefaultMaxConns)
	}
	if err := models.LimitConns(db, 5); err != nil {
		t.Fatal(err)
	}
	if got := sqlDB.Stats().MaxOpenConnections; got != 5 {
		t.Errorf("limited to 5: at most %d connections", got)
	}
}

// TestPingMisnamed: a database or a role that does not exist is said at
// once, not asked again until the start-up's time runs out. Before, a
// typo in DISPATCHER_DATABASE_URL kept a process silent for 15 s.
func TestPingMisnamed(t *testing.T) {
	base, err := url.Parse(testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	noDB, noRole := *base, *base
	noDB.Path = "/no_such_database"
	noRole.User = url.User("no_such_role")
	for _, tc := range []struct {
		url  url.URL
		want string
	}{
		{noDB, `database "no_such_database" does not exist`},
		{noRole, `role "no_such_role" does not exist`},
	} {
		db, err := models.Open(tc.url.String())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		err = models.Ping(ctx, db)
		if ctx.Err() != nil || err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ping %s: %v (asked until %v); want at once %q", tc.url.Redacted(), err, ctx.Err(), tc.want)
		}
		cancel()
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	}
}
