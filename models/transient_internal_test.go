package models

import (
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

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
