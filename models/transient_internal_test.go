package models

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"github.com/dispatcherhq/dispatcher"
)

// What is worth trying again is EUNAVAILABLE (503; the intake refuses the
// event rather than start it without its configuration); what lasts, or
// is the request's fault, is not.
func TestTransientErrors(t *testing.T) {
	for err, want := range map[error]string{
		&net.OpError{Op: "dial", Err: errors.New("connection refused")}: dispatcher.EUNAVAILABLE,
		fmt.Errorf("query: %w", io.ErrUnexpectedEOF):                    dispatcher.EUNAVAILABLE,
		&pgconn.PgError{Code: "57P01"}:                                  dispatcher.EUNAVAILABLE, // admin shutdown
		&pgconn.PgError{Code: "53300"}:                                  dispatcher.EUNAVAILABLE, // too many connections
		&pgconn.PgError{Code: "57014"}:                                  dispatcher.EUNAVAILABLE, // statement timeout
		&pgconn.PgError{Code: "55P03"}:                                  dispatcher.EUNAVAILABLE, // lock timeout
		&pgconn.PgError{Code: "40001"}:                                  dispatcher.EUNAVAILABLE, // serialization failure
		&pgconn.PgError{Code: "08P01"}:                                  dispatcher.EINTERNAL,    // protocol violation: lasts
		&pgconn.PgError{Code: "57P04"}:                                  dispatcher.EINTERNAL,    // database dropped
		&pgconn.PgError{Code: "42P01"}:                                  dispatcher.EINTERNAL,    // undefined table
		gorm.ErrDuplicatedKey:                                           dispatcher.ECONFLICT,
	} {
		if got := dispatcher.ErrorCode(translate(err, "taken")); got != want {
			t.Errorf("%v: %s, want %s", err, got, want)
		}
	}
}

// Why the database is unavailable reaches the logs, which print the
// error, and not a client, which reads its message: it names hosts and
// users. Before, the logs said "unavailable or busy" and nothing more.
func TestTransientErrorsCarryTheirCause(t *testing.T) {
	err := translate(&pgconn.PgError{Severity: "FATAL", Code: "53300", Message: `too many connections for role "dispatcher"`}, "")
	if msg := dispatcher.ErrorMessage(err); msg != "the database is unavailable or busy: try again" {
		t.Errorf("message %q", msg)
	}
	// Nor in its text, which failure messages and histories carry
	// (fmt's %v): only where a logger asks for its LogValue.
	if strings.Contains(fmt.Sprint(err), "too many") {
		t.Errorf("error text %q carries the cause", err)
	}
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Warn("failed", "err", err)
	if !strings.Contains(logged.String(), `too many connections for role`) {
		t.Errorf("logged %q, want the cause in it", logged.String())
	}
}

// A change whose database stalls until the request's time runs out, or
// its client gives up, answers 503 as a read does: before, Store.tx passed
// the context's error on untranslated, and the API answered 500.
func TestStalledChangesAreUnavailable(t *testing.T) {
	db, err := Open("sqlite:" + filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	s := NewStore(db, time.Now)
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	for name, ctx := range map[string]context.Context{"canceled": canceled, "past its deadline": expired} {
		err := s.tx(ctx, func(*gorm.DB) error { return nil })
		if got := dispatcher.ErrorCode(err); got != dispatcher.EUNAVAILABLE {
			t.Errorf("%s: %v (%s), want %s", name, err, got, dispatcher.EUNAVAILABLE)
		}
	}
}
