package models_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
)

// TestChangesAgainstAVersion checks what the API's ETag and If-Match
// stand on: every change of a dispatcher (its actions' included), a
// template or a function moves its updateTimestamp on, even with the
// clock standing still, and a change made against a version applies to
// that version only and leaves the record as it is otherwise.
func TestChangesAgainstAVersion(t *testing.T) {
	frozen := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for name, url := range map[string]func(testing.TB) string{"postgres": testenv.Postgres, "sqlite": testenv.SQLite} {
		t.Run(name, func(t *testing.T) {
			s := newStoreAt(t, url(t), func() time.Time { return frozen })
			ctx := context.Background()
			later := func(t *testing.T, at, prev time.Time, err error) time.Time {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
				if !at.After(prev) {
					t.Fatalf("version %v after a change of %v: want a later one", at, prev)
				}
				return at
			}

			t.Run("dispatcher and its actions", func(t *testing.T) {
				d := create(t, s, dispatcher.Dispatcher{Name: "d", EventType: "e", Actions: []dispatcher.Action{taskAction("first")}})
				v0 := d.Updated
				a := taskAction("second")
				v1, err := s.CreateAction(ctx, d.ID, &a, v0)
				v1 = later(t, v1, v0, err)
				wantCode(t, errOf(s.CreateAction(ctx, d.ID, &dispatcher.Action{Type: dispatcher.ActionTask, Name: "stale", FunctionName: "erase"}, v0)), dispatcher.ECHANGED)
				renamed := "renamed"
				wantCode(t, errOf(s.UpdateAction(ctx, d.ID, a.ID, dispatcher.ActionUpdate{Name: &renamed}, v0)), dispatcher.ECHANGED)
				v2, err := s.UpdateAction(ctx, d.ID, a.ID, dispatcher.ActionUpdate{Name: &renamed}, v1)
				v2 = later(t, v2, v1, err)
				description := "changed"
				wantCode(t, errOf(s.UpdateDispatcher(ctx, d.ID, dispatcher.DispatcherUpdate{Description: &description}, v1)), dispatcher.ECHANGED)
				v3, err := s.UpdateDispatcher(ctx, d.ID, dispatcher.DispatcherUpdate{Description: &description}, v2)
				v3 = later(t, v3, v2, err)
				wantCode(t, errOf(s.DeleteAction(ctx, d.ID, a.ID, v2)), dispatcher.ECHANGED)
				wantCode(t, s.DeleteDispatcher(ctx, d.ID, v2), dispatcher.ECHANGED)

				got, err := s.FindDispatcher(ctx, d.ID)
				if err != nil {
					t.Fatal(err)
				}
				if !got.Updated.Equal(v3) || got.Description != description || len(got.Actions) != 2 || got.Actions[1].Name != renamed ||
					!got.Actions[1].Updated.After(a.Updated) {
					t.Fatalf("after the refused changes: updated %v (want %v), description %q, actions %+v", got.Updated, v3, got.Description, got.Actions)
				}
				v4, err := s.DeleteAction(ctx, d.ID, a.ID, v3)
				v4 = later(t, v4, v3, err)
				if err := s.DeleteDispatcher(ctx, d.ID, v4); err != nil {
					t.Fatal(err)
				}
				_, err = s.FindDispatcher(ctx, d.ID)
				wantCode(t, err, dispatcher.ENOTFOUND)
			})

			t.Run("template", func(t *testing.T) {
				tmpl := dispatcher.Template{Name: "versioned", Subject: "one", Text: "x"}
				if err := s.CreateTemplate(ctx, &tmpl); err != nil {
					t.Fatal(err)
				}
				two, three := "two", "three"
				v1, err := s.UpdateTemplate(ctx, tmpl.ID, dispatcher.TemplateUpdate{Subject: &two}, tmpl.Updated)
				v1 = later(t, v1, tmpl.Updated, err)
				wantCode(t, errOf(s.UpdateTemplate(ctx, tmpl.ID, dispatcher.TemplateUpdate{Subject: &three}, tmpl.Updated)), dispatcher.ECHANGED)
				wantCode(t, s.DeleteTemplate(ctx, tmpl.ID, tmpl.Updated), dispatcher.ECHANGED)
				if got, err := s.FindTemplate(ctx, tmpl.ID); err != nil || got.Subject != two || !got.Updated.Equal(v1) {
					t.Fatalf("after the refused changes: %+v, %v; want subject %q at %v", got, err, two, v1)
				}
				if err := s.DeleteTemplate(ctx, tmpl.ID, v1); err != nil {
					t.Fatal(err)
				}
			})

			t.Run("function", func(t *testing.T) {
				f := dispatcher.Function{Name: "versioned", URL: "http://127.0.0.1:9/v"}
				if err := s.CreateFunction(ctx, &f); err != nil {
					t.Fatal(err)
				}
				short, long := 5*time.Second, 9*time.Second
				v1, err := s.UpdateFunction(ctx, f.ID, dispatcher.FunctionUpdate{Timeout: &short}, f.Updated)
				v1 = later(t, v1, f.Updated, err)
				// Unconditional changes move the version on too.
				v2, err := s.UpdateFunction(ctx, f.ID, dispatcher.FunctionUpdate{Timeout: &short}, time.Time{})
				v2 = later(t, v2, v1, err)
				wantCode(t, errOf(s.UpdateFunction(ctx, f.ID, dispatcher.FunctionUpdate{Timeout: &long}, v1)), dispatcher.ECHANGED)
				wantCode(t, s.DeleteFunction(ctx, f.ID, v1), dispatcher.ECHANGED)
				if got, err := s.FindFunction(ctx, f.ID); err != nil || got.Timeout != short || !got.Updated.Equal(v2) {
					t.Fatalf("after the refused changes: %+v, %v; want timeout %v at %v", got, err, short, v2)
				}
				if err := s.DeleteFunction(ctx, f.ID, v2); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

// Writers that race with the same version: one wins, the others are told
// it changed, on PostgreSQL (READ COMMITTED; the configuration's writes
// take turns on the config_version row) and SQLite alike.
func TestConcurrentChangesAgainstOneVersion(t *testing.T) {
	frozen := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for name, url := range map[string]func(testing.TB) string{"postgres": testenv.Postgres, "sqlite": testenv.SQLite} {
		t.Run(name, func(t *testing.T) {
			s := newStoreAt(t, url(t), func() time.Time { return frozen })
			ctx := context.Background()
			d := create(t, s, dispatcher.Dispatcher{Name: "raced", EventType: "e", Actions: []dispatcher.Action{taskAction("a")}})
			for round := range 10 {
				before, err := s.FindDispatcher(ctx, d.ID)
				if err != nil {
					t.Fatal(err)
				}
				const n = 8
				errs := make([]error, n)
				var wg sync.WaitGroup
				for i := range n {
					wg.Go(func() {
						description := fmt.Sprint("writer ", i)
						_, errs[i] = s.UpdateDispatcher(ctx, d.ID, dispatcher.DispatcherUpdate{Description: &description}, before.Updated)
					})
				}
				wg.Wait()
				won := 0
				for i, err := range errs {
					switch dispatcher.ErrorCode(err) {
					case "":
						won++
					case dispatcher.ECHANGED:
					default:
						t.Fatalf("round %d, writer %d: %v", round, i, err)
					}
				}
				if won != 1 {
					t.Fatalf("round %d: %d writers of one version won, want 1", round, won)
				}
			}
		})
	}
}
