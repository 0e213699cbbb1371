package models_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
	"github.com/dispatcherhq/dispatcher/models"
)

// A dispatcher's filter and pause are stored, updated, listed by enabled,
// and a filter that does not compile is refused with its position.
func TestDispatcherFilterAndPause(t *testing.T) {
	stores(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		d := dispatcher.Dispatcher{Name: "big", EventType: "order_paid", Filter: `event.content.amount > 100`,
			Actions: []dispatcher.Action{taskAction("t")}}
		if err := s.CreateDispatcher(ctx, &d); err != nil {
			t.Fatal(err)
		}
		plain := dispatcher.Dispatcher{Name: "plain", EventType: "order_paid"}
		if err := s.CreateDispatcher(ctx, &plain); err != nil {
			t.Fatal(err)
		}
		got, err := s.FindDispatcher(ctx, d.ID)
		if err != nil || got.Filter != d.Filter || got.Paused {
			t.Fatalf("stored %+v, %v", got, err)
		}

		bad := dispatcher.Dispatcher{Name: "bad", EventType: "order_paid", Filter: `event.content.amount >`}
		err = s.CreateDispatcher(ctx, &bad)
		if dispatcher.ErrorCode(err) != dispatcher.EINVALID || !strings.HasPrefix(dispatcher.ErrorMessage(err), "filter: line 1, column 23: ") {
			t.Fatalf("a filter that does not compile: %v", err)
		}
		broken := "event.nope"
		if err := errOf(s.UpdateDispatcher(ctx, d.ID, dispatcher.DispatcherUpdate{Filter: &broken}, time.Time{})); dispatcher.ErrorCode(err) != dispatcher.EINVALID {
			t.Fatalf("an update to a filter that does not compile: %v", err)
		}

		paused, none := true, ""
		if err := errOf(s.UpdateDispatcher(ctx, d.ID, dispatcher.DispatcherUpdate{Paused: &paused}, time.Time{})); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.FindDispatcher(ctx, d.ID); !got.Paused || got.Filter != d.Filter {
			t.Fatalf("after pausing: %+v", got)
		}
		for _, tt := range []struct {
			rql  string
			want string
		}{
			{"eq(enabled,false)", "big"},
			{"eq(enabled,true)", "plain"},
			{"ne(enabled,true)", "big"},
			{"in(enabled,(true,false))", "big plain"},
		} {
			q := dispatcher.Query{Filter: &dispatcher.Cond{Op: strings.SplitN(tt.rql, "(", 2)[0], Field: "enabled",
				Values: strings.Split(strings.Trim(strings.SplitN(tt.rql, ",", 2)[1], "()"), ",")}, Limit: 10,
				Sort: []dispatcher.Sort{{Field: "name"}}}
			ds, _, err := s.FindDispatchers(ctx, q)
			if err != nil {
				t.Fatalf("%s: %v", tt.rql, err)
			}
			var names []string
			for _, d := range ds {
				names = append(names, d.Name)
			}
			if strings.Join(names, " ") != tt.want {
				t.Errorf("%s = %v, want %s", tt.rql, names, tt.want)
			}
		}
		if _, _, err := s.FindDispatchers(ctx, dispatcher.Query{Filter: &dispatcher.Cond{Op: dispatcher.OpLike, Field: "enabled", Values: []string{"t*"}}, Limit: 1}); dispatcher.ErrorCode(err) != dispatcher.EQUERY {
			t.Errorf("like on enabled: %v, want EQUERY", err)
		}
		if _, _, err := s.FindDispatchers(ctx, dispatcher.Query{Filter: &dispatcher.Cond{Op: dispatcher.OpEq, Field: "enabled", Values: []string{"yes"}}, Limit: 1}); dispatcher.ErrorCode(err) != dispatcher.EQUERY {
			t.Errorf("eq(enabled,yes): %v, want EQUERY", err)
		}

		resumed := false
		if err := errOf(s.UpdateDispatcher(ctx, d.ID, dispatcher.DispatcherUpdate{Paused: &resumed, Filter: &none}, time.Time{})); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.FindDispatcher(ctx, d.ID); got.Paused || got.Filter != "" {
			t.Fatalf("after resuming and removing the filter: %+v", got)
		}
	})
}

// Dispatchers saved before filters existed are enabled and unfiltered.
func TestFiltersMigrationKeepsDispatchersEnabled(t *testing.T) {
	for name, url := range map[string]func(testing.TB) string{"postgres": testenv.Postgres, "sqlite": testenv.SQLite} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db := migratedTo(t, url(t), 6)
			q := `INSERT INTO dispatchers (id, name, event_type, creation_timestamp, update_timestamp) VALUES ('d1', 'old', 'user_deleted', 1, 1)`
			if err := db.Exec(q).Error; err != nil {
				t.Fatal(err)
			}
			if _, err := models.Migrate(ctx, db); err != nil {
				t.Fatal(err)
			}
			ds, err := models.NewStore(db, tick()).DispatchersByEventType(ctx, "user_deleted")
			if err != nil || len(ds) != 1 || ds[0].Paused || ds[0].Filter != "" {
				t.Fatalf("after the migration: %+v, %v", ds, err)
			}
		})
	}
}
