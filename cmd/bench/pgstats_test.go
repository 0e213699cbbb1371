package main

import (
	"testing"
)

func TestSnapshotSince(t *testing.T) {
	before := pgSnapshot{WALBytes: 1000, DB: map[string]dbCounters{
		dbTemporal:   {Commits: 10, Inserted: 5, Updated: 5, Deleted: 1},
		dbVisibility: {Commits: 2, Inserted: 1},
	}}
	after := pgSnapshot{WALBytes: 5000, DB: map[string]dbCounters{
		dbTemporal:   {Commits: 50, Inserted: 25, Updated: 15, Deleted: 1},
		dbVisibility: {Commits: 10, Inserted: 3, Updated: 2},
		dbStore:      {Commits: 4, Inserted: 2}, // created between the two
	}}
	u := after.since(before, 2)
	if got := u.PerRun(u.rows(dbTemporal)); got != 15 {
		t.Errorf("temporal rows per run = %v, want (20+10+0)/2 = 15", got)
	}
	if got := u.PerRun(u.DB[dbTemporal].Commits); got != 20 {
		t.Errorf("temporal transactions per run = %v, want 20", got)
	}
	if got := u.PerRun(u.rows(dbVisibility)); got != 2 {
		t.Errorf("visibility rows per run = %v, want 2", got)
	}
	if got := u.PerRun(u.rows(dbStore)); got != 1 {
		t.Errorf("store rows per run = %v, want 1", got)
	}
	if got := u.PerRun(u.WALBytes); got != 2000 {
		t.Errorf("WAL per run = %v, want 2000", got)
	}
	var none *dbUse
	if none.PerRun(none.rows(dbStore)) != 0 {
		t.Error("a run without counters has rows")
	}
}
