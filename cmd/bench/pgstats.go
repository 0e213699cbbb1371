package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// The databases of the production layout, by role.
const (
	dbTemporal   = "temporal"   // the Temporal server's executions, histories, tasks
	dbVisibility = "visibility" // its SQL visibility store
	dbStore      = "store"      // the dispatcher's store
)

// dbCounters are the counters of pg_stat_database for one database, or
// of pg_stat_user_tables for one table.
type dbCounters struct {
	// Commits counts every committed transaction, reads included (each
	// statement outside a transaction is one); databases only.
	Commits                    int64
	Inserted, Updated, Deleted int64
	// Scans are the table's sequential and index scans: its reads (and
	// the lookups of its updates and deletes); tables only.
	Scans int64
	// Bytes is the database's size on disk (pg_database_size); databases
	// only.
	Bytes int64
}

// Written is the rows inserted, updated and deleted.
func (c dbCounters) Written() int64 { return c.Inserted + c.Updated + c.Deleted }

func (c dbCounters) minus(o dbCounters) dbCounters {
	return dbCounters{Commits: c.Commits - o.Commits, Inserted: c.Inserted - o.Inserted,
		Updated: c.Updated - o.Updated, Deleted: c.Deleted - o.Deleted, Scans: c.Scans - o.Scans, Bytes: c.Bytes - o.Bytes}
}

// pgSnapshot is what PostgreSQL has counted so far.
type pgSnapshot struct {
	DB       map[string]dbCounters // by role
	WALBytes int64                 // the whole server's (pg_stat_wal)
	Conns    pgConns
	// Tables are the Temporal database's counters by table (Commits
	// unset).
	Tables map[string]dbCounters
}

// pgConns are the client connections to each database, by role; Total
// all of the server's, other sessions' included; Max its max_connections.
type pgConns struct {
	ByRole     map[string]int
	Total, Max int
}

// since is what happened between before and s, for runs runs.
func (s pgSnapshot) since(before pgSnapshot, runs int) *dbUse {
	u := &dbUse{Runs: runs, DB: map[string]dbCounters{}, Tables: map[string]dbCounters{}, WALBytes: s.WALBytes - before.WALBytes}
	for role, c := range s.DB {
		u.DB[role] = c.minus(before.DB[role])
	}
	for t, c := range s.Tables {
		if d := c.minus(before.Tables[t]); d.Written() > 0 || d.Scans > 0 {
			u.Tables[t] = d
		}
	}
	return u
}

// dbUse is what a number of runs cost PostgreSQL.
type dbUse struct {
	Runs     int
	DB       map[string]dbCounters // by role
	WALBytes int64                 // the whole server's: other sessions' writes included
	Tables   map[string]dbCounters // the Temporal database's, by table, those read or written only
}

// PerRun divides a count by the runs.
func (u *dbUse) PerRun(n int64) float64 {
	if u == nil || u.Runs == 0 {
		return 0
	}
	return float64(n) / float64(u.Runs)
}

// rows is the rows written in the database of role; 0 when u is nil.
func (u *dbUse) rows(role string) int64 {
	if u == nil {
		return 0
	}
	return u.DB[role].Written()
}

// rowsOf is the rows written in the Temporal database's table; 0 when u
// is nil.
func (u *dbUse) rowsOf(table string) int64 {
	if u == nil {
		return 0
	}
	return u.Tables[table].Written()
}

// pgStats reads the counters of the production layout's databases.
type pgStats struct {
	conn     *pgx.Conn         // to any database of the server
	temporal *pgx.Conn         // to the Temporal database, for its tables' counters
	names    map[string]string // role → database name
}

// statsFlushDelay is how long after its last statement a backend may keep
// its counts to itself: PostgreSQL (15+) flushes a busy backend's
// statistics at most once a second, and one that went idle within a
// second of its last flush only after PGSTAT_IDLE_INTERVAL, 10 s. Nothing
// signals the flush, so a snapshot that must hold everything before a
// moment is taken this long after it.
const statsFlushDelay = 11 * time.Second

// flushedSnapshot waits until every count of what happened before
// quietSince has reached pg_stat_database, then reads it.
func (s *pgStats) flushedSnapshot(ctx context.Context, prog *progress, quietSince time.Time) (pgSnapshot, error) {
	if wait := time.Until(quietSince.Add(statsFlushDelay)); wait > 0 {
		prog.note("waiting %.0f s for PostgreSQL to publish the backends' counters", wait.Seconds())
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return pgSnapshot{}, ctx.Err()
		}
	}
	return s.snapshot(ctx)
}

// pids returns what cpuSnapshot reads of PostgreSQL: the processes of
// the backends connected to the run's databases and its background
// processes; nil when s is nil or PostgreSQL runs elsewhere (its pids
// are not this machine's).
func (s *pgStats) pids() func() []int {
	if s == nil {
		return nil
	}
	return func() []int {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var pids []int
		rows, err := s.conn.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = ANY($1) OR backend_type <> 'client backend'`, slices.Collect(maps.Values(s.names)))
		if err != nil {
			return nil
		}
		for rows.Next() {
			var pid int
			if rows.Scan(&pid) == nil {
				pids = append(pids, pid)
			}
		}
		return pids
	}
}

func (s *pgStats) snapshot(ctx context.Context) (pgSnapshot, error) {
	snap := pgSnapshot{DB: map[string]dbCounters{}}
	names := make([]string, 0, len(s.names))
	role := map[string]string{}
	for r, n := range s.names {
		names = append(names, n)
		role[n] = r
	}
	rows, err := s.conn.Query(ctx, `SELECT datname, xact_commit, tup_inserted, tup_updated, tup_deleted, pg_database_size(datid)
		FROM pg_stat_database WHERE datname = ANY($1)`, names)
	if err != nil {
		return snap, fmt.Errorf("pg_stat_database: %w", err)
	}
	for rows.Next() {
		var name string
		var c dbCounters
		if err := rows.Scan(&name, &c.Commits, &c.Inserted, &c.Updated, &c.Deleted, &c.Bytes); err != nil {
			return snap, err
		}
		snap.DB[role[name]] = c
	}
	if err := rows.Err(); err != nil {
		return snap, err
	}
	rows, err = s.conn.Query(ctx, `SELECT coalesce(datname, ''), count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' GROUP BY 1`)
	if err != nil {
		return snap, fmt.Errorf("pg_stat_activity: %w", err)
	}
	snap.Conns.ByRole = map[string]int{}
	for rows.Next() {
		var name string
		var n int
		if err := rows.Scan(&name, &n); err != nil {
			return snap, err
		}
		snap.Conns.Total += n
		if r, ok := role[name]; ok {
			snap.Conns.ByRole[r] = n
		}
	}
	if err := rows.Err(); err != nil {
		return snap, err
	}
	_ = s.conn.QueryRow(ctx, "SELECT current_setting('max_connections')::int").Scan(&snap.Conns.Max)
	rows, err = s.temporal.Query(ctx, `SELECT relname, n_tup_ins, n_tup_upd, n_tup_del,
		coalesce(seq_scan, 0) + coalesce(idx_scan, 0) FROM pg_stat_user_tables`)
	if err != nil {
		return snap, fmt.Errorf("pg_stat_user_tables: %w", err)
	}
	snap.Tables = map[string]dbCounters{}
	for rows.Next() {
		var name string
		var c dbCounters
		if err := rows.Scan(&name, &c.Inserted, &c.Updated, &c.Deleted, &c.Scans); err != nil {
			return snap, err
		}
		snap.Tables[name] = c
	}
	if err := rows.Err(); err != nil {
		return snap, err
	}
	// pg_stat_wal exists from PostgreSQL 14 on; without it the column
	// stays blank.
	_ = s.conn.QueryRow(ctx, `SELECT wal_bytes::bigint FROM pg_stat_wal`).Scan(&snap.WALBytes)
	return snap, nil
}
