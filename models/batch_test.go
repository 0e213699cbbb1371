package models_test

import (
	"context"
	"encoding/json"
	"testing"

	"gorm.io/gorm"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
	"github.com/dispatcherhq/dispatcher/models"
)

// TestDispatcherReadAtOneMoment: a dispatcher is read with its actions as
// one change left them, though it takes a query for each. A batch that
// commits between the query of the dispatchers and that of their actions
// is not seen in part: before, the worker's configuration could hold the
// dispatcher's new description (or filter) with its actions' old data,
// which the batch promises no event sees. On PostgreSQL: SQLite's one
// connection lets no writer in between.
func TestDispatcherReadAtOneMoment(t *testing.T) {
	db := migratedTo(t, testenv.Postgres(t), allMigrations)
	var between func() // run once, right after the next query of the dispatchers table
	err := db.Callback().Query().After("gorm:query").Register("test:between", func(tx *gorm.DB) {
		if f := between; f != nil && tx.Statement.Table == "dispatchers" {
			between = nil
			f()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	s := models.NewStore(db, tick())
	ctx := context.Background()
	if err := s.CreateFunction(ctx, &dispatcher.Function{Name: "erase", URL: "http://127.0.0.1:9/erase"}); err != nil {
		t.Fatal(err)
	}
	d := dispatcher.Dispatcher{Name: "gdpr", EventType: "user_deleted", Description: "v1",
		Actions: []dispatcher.Action{{Type: dispatcher.ActionTask, Name: "erase", FunctionName: "erase", Data: json.RawMessage(`{"v":1}`)}}}
	if err := s.CreateDispatcher(ctx, &d); err != nil {
		t.Fatal(err)
	}
	change := func() {
		v2, data := "v2", json.RawMessage(`{"v":2}`)
		b := dispatcher.Batch{Dispatcher: dispatcher.DispatcherUpdate{Description: &v2},
			UpdateActions: []dispatcher.ActionChange{{ID: d.Actions[0].ID, Update: dispatcher.ActionUpdate{Data: &data}}}}
		if _, err := s.ApplyBatch(ctx, d.ID, &b, d.Updated); err != nil {
			t.Error(err)
		}
	}
	for name, read := range map[string]func() (dispatcher.Dispatcher, error){
		"by event type": func() (dispatcher.Dispatcher, error) {
			ds, err := s.DispatchersByEventType(ctx, "user_deleted")
			if err != nil || len(ds) != 1 {
				return dispatcher.Dispatcher{}, err
			}
			return ds[0], nil
		},
		"by id": func() (dispatcher.Dispatcher, error) { return s.FindDispatcher(ctx, d.ID) },
	} {
		between = change
		got, err := read()
		if err != nil {
			t.Fatal(err)
		}
		if between != nil {
			t.Fatalf("%s: the batch was not applied between the queries", name)
		}
		if got.Description != "v1" || string(got.Actions[0].Data) != `{"v":1}` {
			t.Errorf("%s: read description %q with data %s; want both as before the batch, v1 and {\"v\":1}", name, got.Description, got.Actions[0].Data)
		}
		// The batch committed: the next read has all of it.
		if got, err = read(); err != nil || got.Description != "v2" || string(got.Actions[0].Data) != `{"v":2}` {
			t.Errorf("%s: after the batch: %+v, %v", name, got, err)
		}
		// Back, for the next read.
		v1, data := "v1", json.RawMessage(`{"v":1}`)
		b := dispatcher.Batch{Dispatcher: dispatcher.DispatcherUpdate{Description: &v1},
			UpdateActions: []dispatcher.ActionChange{{ID: d.Actions[0].ID, Update: dispatcher.ActionUpdate{Data: &data}}}}
		if d, err = s.ApplyBatch(ctx, d.ID, &b, got.Updated); err != nil {
			t.Fatal(err)
		}
	}
}
