package models

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/encryption"
	"gorm.io/gorm"
)

// Store keeps the configuration. It is safe for concurrent use.
type Store struct {
	db *gorm.DB
	// prepared is db with the statements prepared once per connection,
	// for those every dispatch runs outside transactions: SQLite parses a
	// statement anew on each Exec, which was half the cost of claiming a
	// mail. Never inside a transaction: with SQLite's one connection, the
	// preparing would wait for the transaction that waits for it.
	prepared *gorm.DB
	// versionSQL is versionQuery in the driver's placeholders, as the
	// prepared statement is given it straight.
	versionSQL string
	now        func() time.Time
	keys       *encryption.KeyRing // nil: secrets are stored in clear text
	// changed is called after each committed configuration change.
	changed func()
}

// StoreOption configures a Store.
type StoreOption func(*Store)

// WithKeys makes the store encrypt function secrets and headers with the
// ring's current key, and read those encrypted with any of its keys.
// Without it, or with a nil ring, they are stored in clear text, and
// reading an encrypted one fails.
func WithKeys(keys *encryption.KeyRing) StoreOption {
	return func(s *Store) { s.keys = keys }
}

// NewStore returns a Store on db; now is the clock for timestamps and ids.
func NewStore(db *gorm.DB, now func() time.Time, opts ...StoreOption) *Store {
	s := &Store{db: db, prepared: db.Session(&gorm.Session{PrepareStmt: true}), versionSQL: versionQuery, now: now}
	if db.Dialector.Name() == "postgres" {
		s.versionSQL = strings.Replace(versionQuery, "?", "$1", 1)
	}
	for _, o := range opts {
		o(s)
	}
	if err := tenancy(db); err != nil {
		panic("models: registering the tenant callbacks: " + err.Error()) // only a programming error gets here
	}
	return s
}

// tx runs fn in a transaction that also bumps the configuration version
// of the caller's tenant, so caches of its configuration notice every
// committed change. It bumps it first, which locks the tenant's version
// row until the transaction ends: the tenant's configuration writes take
// turns, so the checks that count and measure what a write leaves
// (checkConfigSize, checkCount: within a tenant) see every write committed
// before them (PostgreSQL runs each statement with a fresh snapshot;
// SQLite has one writer), and the version row is the first lock every
// such write takes, before its tenant's audit chain: no deadlock. Readers
// see the new version only once the transaction commits.
func (s *Store) tx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`INSERT INTO tenant_config_versions (tenant, version) VALUES (?, 1)
			ON CONFLICT (tenant) DO UPDATE SET version = tenant_config_versions.version + 1`,
			dispatcher.CallerOf(ctx).Tenant).Error; err != nil {
			return err
		}
		return fn(tx)
	})
	if err == nil && s.changed != nil {
		s.changed()
	}
	if transient(err) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return translate(err, "") // unavailable: not the request's fault
	}
	return err
}

// read runs fn in a read-only transaction that sees the store at one
// moment (REPEATABLE READ on PostgreSQL; a SQLite transaction reads one
// snapshot), so that what its queries read belongs together.
func (s *Store) read(ctx context.Context, fn func(tx *gorm.DB) error) error {
	opts := &sql.TxOptions{ReadOnly: true}
	if s.db.Dialector.Name() == "postgres" {
		opts.Isolation = sql.LevelRepeatableRead
	}
	return translate(s.db.WithContext(ctx).Transaction(fn, opts), "")
}

// OnChange makes the store call f after every configuration change it
// commits, e.g. to tell this process's cache at once (activities.Cache's
// Forget). Set it before the store is used.
func (s *Store) OnChange(f func()) { s.changed = f }

// versionQuery reads a tenant's configuration version: the changes of its
// own, counted since each tenant had its own (migration 13), plus the
// version all tenants shared until then. Only processes from before the
// migration move the shared one, during a rolling upgrade: their changes
// reach the caches of the new processes too, and no version goes back.
const versionQuery = `SELECT COALESCE((SELECT version FROM tenant_config_versions WHERE tenant = ?), 0)
	+ COALESCE((SELECT version FROM config_version WHERE id = 1), 0)`

// ConfigVersion returns a number that grows with every change of the
// caller's tenant's configuration, and with no other tenant's. Every event
// and every activity asks for it, so it goes straight to the prepared
// statement: through gorm the same query took 1.5–2 times as long.
func (s *Store) ConfigVersion(ctx context.Context) (int64, error) {
	rows, err := s.prepared.Statement.ConnPool.QueryContext(ctx, s.versionSQL, dispatcher.CallerOf(ctx).Tenant)
	if err != nil {
		return 0, translate(err, "")
	}
	defer rows.Close()
	var v int64
	if rows.Next() {
		err = rows.Scan(&v)
	}
	return v, translate(errors.Join(err, rows.Err()), "")
}

// translate turns driver errors into domain errors; conflict is the
// message for a unique violation.
func translate(err error, conflict string) error {
	var de *dispatcher.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &de):
		return err
	case errors.Is(err, gorm.ErrDuplicatedKey):
		return &dispatcher.Error{Code: dispatcher.ECONFLICT, Message: conflict}
	case errors.Is(err, gorm.ErrRecordNotFound):
		return dispatcher.Errorf(dispatcher.ENOTFOUND, "Requested resource is unknown")
	case errors.Is(err, context.DeadlineExceeded):
		return &dispatcher.Error{Code: dispatcher.EUNAVAILABLE, Message: "the database did not answer in time"}
	case errors.Is(err, context.Canceled):
		// Before, "did not answer in time" too: a process stopping at
		// start-up blamed a database that was fine.
		return &dispatcher.Error{Code: dispatcher.EUNAVAILABLE, Message: "canceled before the database answered"}
	case transient(err):
		// The cause goes to the logs, not to a client nor into a failure
		// message (dispatcher.Caused): it names hosts and users. Before,
		// nothing said why, too many connections or a database down.
		return &dispatcher.Caused{Err: &dispatcher.Error{Code: dispatcher.EUNAVAILABLE, Message: "the database is unavailable or busy: try again"}, Cause: err}
	case badText(err):
		// A value the request carried that no field check stopped: the
		// client's mistake, not a 500.
		return &dispatcher.Error{Code: dispatcher.EINVALID, Message: "a text value: must not contain NUL characters or invalid UTF-8"}
	}
	return err
}

// badText reports whether PostgreSQL refused a statement for the bytes of
// a text value it carried (SQLSTATE 22021, 22P05).
func badText(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "22021" || pe.Code == "22P05")
}

// unknown is translate of a look-up of one thing, which a not found names:
// "no template with id …".
func unknown(err error, format string, args ...any) error {
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return dispatcher.Errorf(dispatcher.ENOTFOUND, "Requested resource is unknown: no "+format, args...)
	}
	return translate(err, "")
}

// transient reports whether err says the database could not be reached
// or cannot take the statement now (down, restarting, out of connections
// or memory, a statement or lock timeout, a serialization failure): a
// reason to try again, not a fault of the request, nor one that lasts.
func transient(err error) bool {
	var ne net.Error
	var pe *pgconn.PgError
	var ce *pgconn.ConnectError
	switch {
	case errors.As(err, &ce):
		// Whatever the server answered (a database that does not accept
		// connections, renamed, a password being rotated): the request
		// is not at fault, and it may pass once the database is back.
		return true
	case errors.As(err, &pe):
		switch {
		case pe.Code == "08P01", pe.Code == "57P04": // a protocol violation, the database dropped: they last
			return false
		case strings.HasPrefix(pe.Code, "08"), strings.HasPrefix(pe.Code, "53"), strings.HasPrefix(pe.Code, "57P"):
			return true // connection exception, insufficient resources, shutting down or starting
		}
		switch pe.Code {
		case "57014", "55P03", "40001", "40P01": // statement timeout or cancel, lock timeout, serialization, deadlock
			return true
		}
		return false
	case errors.As(err, &ne), errors.Is(err, driver.ErrBadConn), errors.Is(err, pgconn.ErrConnClosed),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF): // the connection cut
		return true
	}
	return false
}

func millis(t time.Time) int64 { return t.UnixMilli() }

// later returns the updateTimestamp of a record's next version: now, but
// always after prev (the record's current one), so that every version
// of a record has a timestamp, and so an ETag, of its own.
func (s *Store) later(prev time.Time) time.Time {
	now := s.now().Truncate(time.Millisecond)
	if !now.After(prev) {
		return prev.Add(time.Millisecond)
	}
	return now
}

// unchanged returns ECHANGED unless ifUpdated is zero or the record,
// whose updateTimestamp is updated, is still at it: a change made against
// a version of a record (If-Match) applies to that version only.
func unchanged(what, id string, updated, ifUpdated time.Time) error {
	if ifUpdated.IsZero() || updated.Equal(ifUpdated) {
		return nil
	}
	return dispatcher.Errorf(dispatcher.ECHANGED, "the %s with id %s changed since the version this change was made against (updateTimestamp %d, now %d): get it again and make the change on what it is now",
		what, id, ifUpdated.UnixMilli(), updated.UnixMilli())
}

func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// Ping checks that the database answers, asking once (readiness).
func (s *Store) Ping(ctx context.Context) error { return ping(ctx, s.db) }
