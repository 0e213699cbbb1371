package models_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
	"github.com/dispatcherhq/dispatcher/models"
)

// benchStores runs bench on a fresh store on SQLite, then on PostgreSQL.
func benchStores(b *testing.B, bench func(b *testing.B, s *models.Store)) {
	for _, db := range []struct {
		name string
		url  func(testing.TB) string
	}{{"sqlite", testenv.SQLite}, {"postgres", testenv.Postgres}} {
		b.Run(db.name, func(b *testing.B) { bench(b, newStore(b, db.url(b))) })
	}
}

// BenchmarkMailDelivery is what the store does for every mail on the
// happy path: the attempt claims the mail, then records it as sent.
func BenchmarkMailDelivery(b *testing.B) {
	benchStores(b, func(b *testing.B, s *models.Store) {
		ctx := context.Background()
		now := time.Now()
		i := 0
		for b.Loop() {
			id := fmt.Sprintf("m%d@bench", i)
			i++
			if c, err := s.ClaimMail(ctx, id, "owner", now, now.Add(time.Minute)); err != nil || c != (dispatcher.MailClaim{}) {
				b.Fatalf("ClaimMail = %+v, %v", c, err)
			}
			if err := s.RecordMailSent(ctx, id, now); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkConfigVersion: every event and every activity asks for it.
func BenchmarkConfigVersion(b *testing.B) {
	benchStores(b, func(b *testing.B, s *models.Store) {
		for b.Loop() {
			if _, err := s.ConfigVersion(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestDeliveryRecords(t *testing.T) {
	stores(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

		claim := func(owner string, now time.Time) dispatcher.MailClaim {
			t.Helper()
			c, err := s.ClaimMail(ctx, "m1@dispatcher", owner, now, now.Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		// The first attempt claims the mail for a minute: a second one
		// running at once is told until when, even the same owner; once
		// the claim expired (its attempt died) the next attempt takes it.
		if c := claim("a", at); c != (dispatcher.MailClaim{}) {
			t.Fatalf("first claim = %+v, want it claimed", c)
		}
		for _, owner := range []string{"b", "a"} {
			if c := claim(owner, at.Add(30*time.Second)); c.Sent || !c.HeldUntil.Equal(at.Add(time.Minute)) {
				t.Fatalf("claim by %s while held = %+v, want held until %v", owner, c, at.Add(time.Minute))
			}
		}
		if c := claim("c", at.Add(61*time.Second)); c != (dispatcher.MailClaim{}) {
			t.Fatalf("claim after the first expired = %+v, want it claimed", c)
		}
		// An attempt that failed releases its claim: only its own.
		for _, owner := range []string{"a", "c"} {
			if err := s.ReleaseMail(ctx, "m1@dispatcher", owner); err != nil {
				t.Fatal(err)
			}
			held := claim("x", at.Add(62*time.Second))
			if want := owner == "a"; held.HeldUntil.IsZero() == want {
				t.Fatalf("after %s released, claim = %+v", owner, held)
			}
		}
		if err := s.ReleaseMail(ctx, "m1@dispatcher", "x"); err != nil {
			t.Fatal(err)
		}
		for range 2 { // recording twice is not an error
			if err := s.RecordMailSent(ctx, "m1@dispatcher", at); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.ReleaseMail(ctx, "m1@dispatcher", ""); err != nil {
			t.Fatal(err)
		}
		if c := claim("d", at.Add(time.Hour)); !c.Sent {
			t.Fatalf("claim after recording (and a release) = %+v, want sent", c)
		}
		// A mail recorded as sent without a claim (as before claims).
		if err := s.RecordMailSent(ctx, "m0@dispatcher", at); err != nil {
			t.Fatal(err)
		}
		if c, err := s.ClaimMail(ctx, "m0@dispatcher", "e", at, at); err != nil || !c.Sent {
			t.Fatalf("claim of a recorded mail = %+v, %v; want sent", c, err)
		}

		if _, ok, err := s.AcceptedEvent(ctx, "evt-1"); err != nil || ok {
			t.Fatalf("AcceptedEvent before recording = %v, %v", ok, err)
		}
		first := dispatcher.StartResult{WorkflowID: "dispatch-evt-1", RunID: "run-1", EventType: "user_deleted"}
		if err := s.RecordAcceptedEvent(ctx, "evt-1", first, at); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordAcceptedEvent(ctx, "evt-1", dispatcher.StartResult{WorkflowID: "dispatch-evt-1", RunID: "run-2"}, at.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		got, ok, err := s.AcceptedEvent(ctx, "evt-1")
		if err != nil || !ok || got.RunID != "run-1" || !got.Duplicate || got.EventType != "user_deleted" {
			t.Fatalf("AcceptedEvent = %+v, %v, %v; want the first run, of its type, as a duplicate", got, ok, err)
		}

		if err := s.RecordMailSent(ctx, "m2@dispatcher", at.Add(48*time.Hour)); err != nil {
			t.Fatal(err)
		}
		// Claims expired before claimsBefore are pruned, whatever the
		// dedup window: every gated call writes one. Another is kept.
		for _, m := range []struct {
			id string
			at time.Time
		}{{"m3@dispatcher", at}, {"m4@dispatcher", at.Add(47 * time.Hour)}, {"m5@dispatcher", at.Add(45 * time.Hour)}} {
			if _, err := s.ClaimMail(ctx, m.id, "f", m.at, m.at.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
		n, err := s.PruneDeliveryRecords(ctx, at.Add(24*time.Hour), at.Add(46*time.Hour))
		if err != nil || n != 5 {
			t.Fatalf("PruneDeliveryRecords = %d, %v; want the old mails and event, and the two expired claims", n, err)
		}
		for id, want := range map[string]dispatcher.MailClaim{
			"m1@dispatcher": {},                                              // pruned: claimed anew
			"m2@dispatcher": {Sent: true},                                    // kept
			"m4@dispatcher": {HeldUntil: at.Add(47*time.Hour + time.Minute)}, // kept
			"m5@dispatcher": {},                                              // pruned: expired an hour before
		} {
			now := at.Add(47 * time.Hour)
			if c, err := s.ClaimMail(ctx, id, "g", now, now.Add(time.Minute)); err != nil || c.Sent != want.Sent || !c.HeldUntil.Equal(want.HeldUntil) {
				t.Errorf("after pruning, claim of %s = %+v, %v; want %+v", id, c, err, want)
			}
		}
	})
}
