// Package models keeps the configuration (dispatchers, actions, templates,
// functions) in PostgreSQL or SQLite through gorm. It is the only package
// that imports gorm: rows are converted to and from the domain types at its
// boundary, and driver errors are translated into domain errors.
package models

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/libtnb/sqlite"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
	moderncsqlite "modernc.org/sqlite"
)

//go:embed migrations/*.sql
var migrations embed.FS

// SQLite's lower() folds ASCII letters only, so like and contains, which
// compare lower(column) with lower(value), found "Äpfel" for "*äpfel*" on
// PostgreSQL and not on SQLite. Go's folds every letter, as PostgreSQL's
// does on a database with a UTF-8 ctype (not C, which folds ASCII only);
// it replaces SQLite's on every connection opened after this.
func init() {
	moderncsqlite.MustRegisterDeterministicScalarFunction("lower", 1, func(_ *moderncsqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		switch v := args[0].(type) {
		case string:
			return strings.ToLower(v), nil
		case []byte:
			return strings.ToLower(string(v)), nil
		}
		return args[0], nil // NULL, or a number: lower() leaves it be
	})
}

// DefaultMaxConns is how many connections a PostgreSQL database gets from
// one process unless LimitConns says otherwise.
const DefaultMaxConns = 32

// LimitConns has db open at most n connections to PostgreSQL, and keep as
// many idle: database/sql keeps 2 idle connections by default, so under
// load most queries opened a new one (the bench: 35 → ~100 events/s).
// SQLite's limits are its own (Open).
func LimitConns(db *gorm.DB, n int) error {
	if db.Dialector.Name() != "postgres" {
		return nil
	}
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	sqlDB.SetMaxOpenConns(n)
	sqlDB.SetMaxIdleConns(n)
	return nil
}

// Open connects to the database that url names: postgres://… or
// postgresql://… for PostgreSQL, sqlite:PATH for an embedded SQLite file.
func Open(url string) (*gorm.DB, error) {
	// No ping here: one without a deadline hangs on a database that
	// accepts connections and never answers; callers Ping with theirs.
	cfg := &gorm.Config{TranslateError: true, Logger: logger.Discard, DisableAutomaticPing: true}
	switch {
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		db, err := gorm.Open(postgres.Open(url), cfg)
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		sqlDB, err := db.DB()
		if err != nil {
			return nil, err
		}
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
		return db, LimitConns(db, DefaultMaxConns)
	case strings.HasPrefix(url, "sqlite:"):
		path := sqliteDSN(url)
		if path == "" {
			return nil, fmt.Errorf("DATABASE_URL %q names no file (want sqlite:PATH)", url)
		}
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		dsn := path + sep + "_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)"
		db, err := gorm.Open(sqlite.Open(dsn), cfg)
		if err != nil {
			return nil, fmt.Errorf("open sqlite %s: %w", strings.SplitN(path, "?", 2)[0], err)
		}
		sqlDB, err := db.DB()
		if err != nil {
			return nil, err
		}
		// SQLite allows one writer; one connection turns lock contention
		// into queueing instead of SQLITE_BUSY errors.
		sqlDB.SetMaxOpenConns(1)
		return db, nil
	default:
		if p := prefix(url); p != "" {
			return nil, fmt.Errorf("DATABASE_URL: want postgres://… or sqlite:PATH, got a URL starting %q", p)
		}
		return nil, fmt.Errorf("DATABASE_URL: want postgres://… or sqlite:PATH, not a key=value string or anything else")
	}
}

// sqliteDSN is what a sqlite: URL names: a path, with its query.
func sqliteDSN(url string) string {
	return strings.TrimPrefix(strings.TrimPrefix(url, "sqlite:"), "//")
}

// SQLiteFile returns the file a sqlite: URL names (a path, or a file:
// URI), and false for any other URL or an in-memory database.
func SQLiteFile(dsn string) (string, bool) {
	if !strings.HasPrefix(dsn, "sqlite:") {
		return "", false
	}
	path, query, _ := strings.Cut(sqliteDSN(dsn), "?")
	if strings.HasPrefix(path, "file:") {
		u, err := url.Parse(path)
		if err != nil || strings.Contains(query, "mode=memory") {
			return "", false
		}
		path = cmp.Or(u.Opaque, u.Path)
	}
	if path == "" || path == ":memory:" {
		return "", false
	}
	return path, true
}

// prefix is the scheme of a URL, with its ':' ("" when there is none
// before an = or a space): never the password, nor a piece of a key=value
// string ("password=…") or of a value pasted whole.
func prefix(url string) string {
	if i := strings.IndexAny(url, ":= "); i >= 0 && url[i] == ':' {
		return url[:i+1]
	}
	return ""
}

// Migrate applies every migration not yet applied and returns how many it
// applied. The migrations are plain SQL embedded in the binary.
func Migrate(ctx context.Context, db *gorm.DB) (int, error) {
	p, err := provider(db)
	if err != nil {
		return 0, err
	}
	results, err := p.Up(ctx)
	// SQLite has no lock the migrations take (migrationLock is
	// PostgreSQL's): another process may be migrating the same new file
	// (an api and a worker started at once), and one of ours then fails
	// on what it created, rolled back. Once it is done, ours find what is
	// left to do, nothing. Before, one of the two stopped at start-up.
	for try := 1; err != nil && db.Dialector.Name() != "postgres" && try <= sqliteMigrateRetries; try++ {
		select {
		case <-ctx.Done():
			return len(results), fmt.Errorf("migrate: %w", err)
		case <-time.After(time.Duration(try) * 100 * time.Millisecond):
		}
		var more []*goose.MigrationResult
		more, err = p.Up(ctx)
		results = append(results, more...)
	}
	if err != nil {
		return len(results), fmt.Errorf("migrate: %w", err)
	}
	return len(results), nil
}

// sqliteMigrateRetries is how many times Migrate tries a SQLite file
// again after a failure.
const sqliteMigrateRetries = 5

// MigrationStatus returns the current and the latest migration version.
// It reads goose's table as it is, writing nothing and taking no lock:
// goose's GetDBVersion takes the migration lock (and creates its tables),
// so a process that only checks the schema (DISPATCHER_AUTO_MIGRATE=false)
// waited behind a running migration, or a dead migrator's lease, and gave
// up after 15 s, and `migrate --status` wrote to the database.
func MigrationStatus(ctx context.Context, db *gorm.DB) (current, latest int64, err error) {
	p, err := provider(db)
	if err != nil {
		return 0, 0, err
	}
	tx := db.WithContext(ctx)
	if tx.Migrator().HasTable(gooseTable) {
		var v sql.NullInt64
		if err := tx.Raw("SELECT MAX(version_id) FROM " + gooseTable).Scan(&v).Error; err != nil {
			return 0, 0, translate(err, "")
		}
		current = v.Int64
	}
	sources := p.ListSources()
	if len(sources) > 0 {
		latest = sources[len(sources)-1].Version
	}
	return current, latest, nil
}

// gooseTable is where goose records the migrations applied.
const gooseTable = "goose_db_version"

func provider(db *gorm.DB) (*goose.Provider, error) {
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	dialect := goose.DialectSQLite3
	var opts []goose.ProviderOption
	if db.Dialector.Name() == "postgres" {
		dialect = goose.DialectPostgres
		locker, err := migrationLock()
		if err != nil {
			return nil, err
		}
		opts = append(opts, goose.WithLocker(locker))
	}
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	return goose.NewProvider(dialect, sqlDB, sub, opts...)
}

// migrationLock has the processes that migrate one schema take turns: an
// api and a worker started at once on a new database both migrated it,
// and one exited ("relation already exists"). The others wait, up to 10
// minutes, then find it migrated. A lease in a table of the schema
// (goose_lock), renewed while the migrations run, rather than an advisory
// lock: through a pooler in transaction mode (PgBouncer) a session's lock
// is held by whichever connection took it, and is never released; the
// lease of a process that died lapses after 30 s.
func migrationLock() (lock.Locker, error) {
	return lock.NewPostgresTableLocker(lock.WithTableLockTimeout(time.Second, 600), lock.WithTableLogger(slog.New(slog.DiscardHandler)))
}

// Ping checks, at start-up, that the database answers, asking again
// while it refuses connections or is starting, until ctx ends; waiting,
// when not nil, is told of the first refusal it asks again after.
func Ping(ctx context.Context, db *gorm.DB, waiting func(error)) error {
	for told := false; ; told = true {
		err := ping(ctx, db)
		if err == nil || !transient(err) {
			return err
		}
		if !told && waiting != nil {
			waiting(err)
		}
		// Refused, or starting: a database that comes up after the
		// process (a pod's first seconds) is asked again until ctx ends.
		// Before, the first refusal stopped the process at once.
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pingRetry):
		}
	}
}

// pingRetry is how soon Ping asks a database that refused again.
const pingRetry = 250 * time.Millisecond

// ping asks the database once.
func ping(ctx context.Context, db *gorm.DB) error {
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	return sqlDB.PingContext(ctx)
}
