package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
)

// freshSchema returns the DATABASE_URL of the dispatcher under test: a
// new schema in the database at base (chosen by search_path), and what
// drops it. A base that already names a search_path is the caller's
// schema (a test's, from testenv.Postgres) and is used as it is.
func freshSchema(ctx context.Context, base string) (string, func(), error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", nil, fmt.Errorf("-postgres-url: %w", err)
	}
	q := u.Query()
	if q.Get("search_path") != "" {
		return base, func() {}, nil
	}
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", nil, fmt.Errorf("postgres at %s (start it with `make services`): %w", u.Redacted(), err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "chaos_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		conn.Close(ctx)
		return "", nil, fmt.Errorf("create schema: %w", err)
	}
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
		conn.Close(ctx)
	}
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), drop, nil
}
