package models_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/models"
)

func TestAuditTrail(t *testing.T) {
	stores(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
		entries := []dispatcher.AuditEntry{
			{WorkflowID: "dispatch-a", Operation: dispatcher.AuditReplay, Ref: "r1", RunID: "run-1", NewRunID: "run-2",
				Actor: "ann", Actions: []string{"x", "y"}, Config: dispatcher.ReplayConfigOriginal, At: at.Add(time.Second)},
			{WorkflowID: "dispatch-a", Operation: dispatcher.AuditCancel, Ref: "c1", RunID: "run-2", Actor: "bob", At: at.Add(2 * time.Second)},
			{WorkflowID: "dispatch-b", Operation: dispatcher.AuditReplay, Ref: "bulk-1", RunID: "run-9", NewRunID: "run-10",
				Actor: "ann", BulkReplayID: "bulk-replay-1", At: at},
		}
		for _, e := range entries {
			if created, err := s.RecordAudit(ctx, e); err != nil || !created {
				t.Fatalf("RecordAudit(%+v) = %v, %v", e, created, err)
			}
		}
		// A retried replay records once: same workflow, operation and ref.
		again := entries[0]
		again.NewRunID = "run-other"
		if created, err := s.RecordAudit(ctx, again); err != nil || created {
			t.Fatalf("recording again = %v, %v; want it ignored", created, err)
		}
		// The same ref for another workflow is another entry.
		other := entries[2]
		other.WorkflowID = "dispatch-c"
		if _, err := s.RecordAudit(ctx, other); err != nil {
			t.Fatal(err)
		}

		got, err := s.AuditTrail(ctx, "dispatch-a")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 {
			t.Fatalf("trail of dispatch-a = %+v, want 2 entries", got)
		}
		first, second := got[0], got[1]
		if first.Operation != dispatcher.AuditReplay || first.NewRunID != "run-2" || first.Actor != "ann" ||
			!slices.Equal(first.Actions, []string{"x", "y"}) || first.Config != "original" || !first.At.Equal(at.Add(time.Second)) || len(first.ID) != 24 {
			t.Errorf("first entry = %+v", first)
		}
		if second.Operation != dispatcher.AuditCancel || second.Actions != nil || second.Actor != "bob" {
			t.Errorf("second entry = %+v", second)
		}
		for _, wid := range []string{"dispatch-b", "dispatch-c"} {
			if got, err := s.AuditTrail(ctx, wid); err != nil || len(got) != 1 || got[0].BulkReplayID != "bulk-replay-1" {
				t.Errorf("trail of %s = %+v, %v", wid, got, err)
			}
		}
		if got, err := s.AuditTrail(ctx, "dispatch-none"); err != nil || len(got) != 0 {
			t.Errorf("trail of an unknown dispatch = %+v, %v", got, err)
		}
		if _, err := s.RecordAudit(ctx, dispatcher.AuditEntry{WorkflowID: "dispatch-a"}); err == nil {
			t.Error("an entry without operation and ref was recorded")
		}
	})
}

// TestAuditLongActor: an audit row is written after the replay it records,
// so a token subject longer than the column must not make it fail.
func TestAuditLongActor(t *testing.T) {
	stores(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		long := strings.Repeat("é", 300)
		e := dispatcher.AuditEntry{WorkflowID: "dispatch-l", Operation: dispatcher.AuditCancel, Ref: "c", Actor: long, At: time.Now()}
		if _, err := s.RecordAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
		trail, err := s.AuditTrail(ctx, "dispatch-l")
		if err != nil || len(trail) != 1 || trail[0].Actor != strings.Repeat("é", 256) {
			t.Fatalf("trail = %+v, %v; want the actor cut to 256 characters", trail, err)
		}
	})
}
