package models_test

import (
	"testing"

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
