package models_test

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
	"github.com/dispatcherhq/dispatcher/models"
)

// TestRefusedConnectionIsUnavailable: a database that no longer accepts
// connections is unavailable (503), as one that is down: before, the
// server's refusal (SQLSTATE 55000, or 3D000 for a renamed database)
// was an internal error, a 500 logged as a bug of ours.
func TestRefusedConnectionIsUnavailable(t *testing.T) {
	base, err := url.Parse(testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, base.String())
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("dispatcher_refused_%d", time.Now().UnixNano())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec(context.Background(), "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
		admin.Close(context.Background())
	})
	u := *base
	u.Path, u.RawQuery = "/"+name, "sslmode=disable"
	db, err := models.Open(u.String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := models.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	s := models.NewStore(db, time.Now)
	if _, err := s.FindTemplates(ctx, nil); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{"ALTER DATABASE " + name + " ALLOW_CONNECTIONS false",
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" + name + "'"} {
		if _, err := admin.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	// The first read may meet its connection cut; those after it, the
	// refusal of a new one.
	for i := range 3 {
		_, err = s.FindTemplates(ctx, []string{"6b11668218a8f2bde2075b31"})
		if got := dispatcher.ErrorCode(err); got != dispatcher.EUNAVAILABLE {
			t.Errorf("read %d while the database refuses connections: %v (%s), want %s", i+1, err, got, dispatcher.EUNAVAILABLE)
		}
	}
}
