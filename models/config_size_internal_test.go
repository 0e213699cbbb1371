package models

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
)

// A configuration saved before the limit existed may be beyond it: writes
// that shrink it pass, so it can be brought back within the limit, while
// writes that grow it do not. An internal test, to write such a
// configuration behind the store's back; on SQLite only, as
// internal/testenv, which provides PostgreSQL, imports this package (the
// store tests of package models_test run the same code on both).
func TestConfigBeyondTheLimitCanShrink(t *testing.T) {
	db, err := Open("sqlite:" + filepath.Join(t.TempDir(), "dispatcher.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	})
	ctx := context.Background()
	if _, err := Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	s := NewStore(db, time.Now)
	if err := s.CreateFunction(ctx, &dispatcher.Function{Name: "erase", URL: "http://127.0.0.1:9/erase"}); err != nil {
		t.Fatal(err)
	}
	data := func(n int) json.RawMessage { return json.RawMessage(`{"k":"` + strings.Repeat("x", n) + `"}`) }
	task := func(n int) dispatcher.Action {
		return dispatcher.Action{Type: dispatcher.ActionTask, FunctionName: "erase", Data: data(n)}
	}
	d := dispatcher.Dispatcher{EventType: "big", Actions: []dispatcher.Action{task(60000), task(60000), task(60000)}}
	if err := s.CreateDispatcher(ctx, &d); err != nil {
		t.Fatal(err)
	}
	// Behind the store's back, as an older version could have.
	if err := db.Model(&actionRow{}).Where("id = ?", d.Actions[0].ID).Update("data", string(data(250000))).Error; err != nil {
		t.Fatal(err)
	}

	smaller := data(10)
	if _, err := s.UpdateAction(ctx, d.ID, d.Actions[1].ID, dispatcher.ActionUpdate{Data: &smaller}, time.Time{}); err != nil {
		t.Fatalf("shrinking an action: %v", err)
	}
	tags := []string{}
	if _, err := s.UpdateDispatcher(ctx, d.ID, dispatcher.DispatcherUpdate{Tags: &tags}, time.Time{}); err != nil {
		t.Fatalf("an update that does not grow it: %v", err)
	}
	bigger := data(20000)
	_, err = s.UpdateAction(ctx, d.ID, d.Actions[1].ID, dispatcher.ActionUpdate{Data: &bigger}, time.Time{})
	if dispatcher.ErrorCode(err) != dispatcher.EINVALID || !strings.Contains(err.Error(), `event type "big" would be`) {
		t.Fatalf("growing an action: %v, want the configuration refused", err)
	}
	description := "more"
	_, err = s.UpdateDispatcher(ctx, d.ID, dispatcher.DispatcherUpdate{Description: &description}, time.Time{})
	if dispatcher.ErrorCode(err) != dispatcher.EINVALID || !strings.HasPrefix(dispatcher.ErrorMessage(err), "description: ") {
		t.Fatalf("growing the dispatcher: %v, want the configuration refused", err)
	}
}
