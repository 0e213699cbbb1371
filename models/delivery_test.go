package models_test

import (
	"context"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/models"
)

func TestDeliveryRecords(t *testing.T) {
	stores(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

		if sent, err := s.MailSent(ctx, "m1@dispatcher"); err != nil || sent {
			t.Fatalf("MailSent before recording = %v, %v", sent, err)
		}
		for range 2 { // recording twice is not an error
			if err := s.RecordMailSent(ctx, "m1@dispatcher", at); err != nil {
				t.Fatal(err)
			}
		}
		if sent, err := s.MailSent(ctx, "m1@dispatcher"); err != nil || !sent {
			t.Fatalf("MailSent after recording = %v, %v", sent, err)
		}

		if _, ok, err := s.AcceptedEvent(ctx, "evt-1"); err != nil || ok {
			t.Fatalf("AcceptedEvent before recording = %v, %v", ok, err)
		}
		first := dispatcher.StartResult{WorkflowID: "dispatch-evt-1", RunID: "run-1"}
		if err := s.RecordAcceptedEvent(ctx, "evt-1", first, at); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordAcceptedEvent(ctx, "evt-1", dispatcher.StartResult{WorkflowID: "dispatch-evt-1", RunID: "run-2"}, at.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		got, ok, err := s.AcceptedEvent(ctx, "evt-1")
		if err != nil || !ok || got.RunID != "run-1" || !got.Duplicate {
			t.Fatalf("AcceptedEvent = %+v, %v, %v; want the first run, as a duplicate", got, ok, err)
		}

		if err := s.RecordMailSent(ctx, "m2@dispatcher", at.Add(48*time.Hour)); err != nil {
			t.Fatal(err)
		}
		n, err := s.PruneDeliveryRecords(ctx, at.Add(24*time.Hour))
		if err != nil || n != 2 {
			t.Fatalf("PruneDeliveryRecords = %d, %v; want the old mail and event", n, err)
		}
		if sent, _ := s.MailSent(ctx, "m1@dispatcher"); sent {
			t.Error("a pruned mail is still recorded")
		}
		if sent, _ := s.MailSent(ctx, "m2@dispatcher"); !sent {
			t.Error("a recent mail was pruned")
		}
	})
}
