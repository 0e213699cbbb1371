package models_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
	"github.com/dispatcherhq/dispatcher/models"
)

// stores runs fn against a fresh store on PostgreSQL and on SQLite.
func stores(t *testing.T, fn func(t *testing.T, s *models.Store)) {
	t.Helper()
	for name, url := range map[string]func(testing.TB) string{"postgres": testenv.Postgres, "sqlite": testenv.SQLite} {
		t.Run(name, func(t *testing.T) {
			fn(t, newStore(t, url(t)))
		})
	}
}

func newStore(t testing.TB, url string) *models.Store {
	t.Helper()
	return newStoreAt(t, url, tick())
}

// newStoreAt is newStore with the clock now.
func newStoreAt(t testing.TB, url string, now func() time.Time) *models.Store {
	t.Helper()
	s := models.NewStore(migratedTo(t, url, allMigrations), now)
	ctx := context.Background()
	tmpl := dispatcher.Template{Name: "welcome", Subject: "Hi {{ .event.content.name }}", Text: "Welcome"}
	if err := s.CreateTemplate(ctx, &tmpl); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"erase", "other"} {
		f := dispatcher.Function{Name: name, URL: "http://127.0.0.1:9/" + name}
		if err := s.CreateFunction(ctx, &f); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// tick returns a clock that moves one millisecond per call, so every
// change has a later timestamp than the one before it.
func tick() func() time.Time {
	var n atomic.Int64
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return func() time.Time { return start.Add(time.Duration(n.Add(1)) * time.Millisecond) }
}

// mailAction returns a mail action using the "welcome" template of s.
func mailAction(s *models.Store, name string) dispatcher.Action {
	id, err := s.TemplateIDByName(context.Background(), "welcome")
	if err != nil {
		panic(err)
	}
	return dispatcher.Action{Type: dispatcher.ActionMail, Name: name, TemplateID: id,
		Recipients: dispatcher.Recipients{To: []string{"a@example.com"}, CC: []string{"b@example.com"}}}
}

func taskAction(name string) dispatcher.Action {
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	return dispatcher.Action{Type: dispatcher.ActionTask, Name: name, FunctionName: "erase",
		Data: json.RawMessage(`{"z":1,"a":{"nested":[true,null]},"m":"x"}`), Tags: []string{"pii"},
		StartTimestamp: &start,
		RetryPolicy:    &dispatcher.RetryPolicy{MaximumAttempts: 3, InitialInterval: time.Second, BackoffCoefficient: 2}}
}

func create(t *testing.T, s *models.Store, d dispatcher.Dispatcher) dispatcher.Dispatcher {
	t.Helper()
	if err := s.CreateDispatcher(context.Background(), &d); err != nil {
		t.Fatalf("create %q: %v", d.Name, err)
	}
	return d
}

// errOf is the error of a change that also returns a version.
func errOf(_ time.Time, err error) error { return err }

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := dispatcher.ErrorCode(err); got != code {
		t.Fatalf("error code = %q (%v), want %q", got, err, code)
	}
}

func TestCreateAndFind(t *testing.T) {
	stores(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		d := create(t, s, dispatcher.Dispatcher{Name: "erase", EventType: "user_deleted", Description: "d",
			Tags: []string{"b", "a"}, Actions: []dispatcher.Action{mailAction(s, "mail"), taskAction("task")}})
		if !dispatcher.ValidID(d.ID) || !dispatcher.ValidID(d.Actions[0].ID) || d.Actions[0].ID == d.Actions[1].ID {
			t.Fatalf("ids not generated: %q %q %q", d.ID, d.Actions[0].ID, d.Actions[1].ID)
		}
		got, err := s.FindDispatcher(ctx, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != "erase" || got.EventType != "user_deleted" || got.Description != "d" {
			t.Fatalf("got %+v", got)
		}
		if len(got.Tags) != 2 || got.Tags[0] != "b" || got.Tags[1] != "a" {
			t.Fatalf("tags = %v, want [b a] in order", got.Tags)
		}
		if len(got.Actions) != 2 || got.Actions[0].Name != "mail" || got.Actions[1].Name != "task" {
			t.Fatalf("actions = %+v", got.Actions)
		}
		task := got.Actions[1]
		if string(task.Data) != `{"z":1,"a":{"nested":[true,null]},"m":"x"}` {
			t.Fatalf("data not kept verbatim: %s", task.Data)
		}
		if task.StartTimestamp == nil || !task.StartTimestamp.Equal(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)) {
			t.Fatalf("startTimestamp = %v", task.StartTimestamp)
		}
		if task.RetryPolicy == nil || task.RetryPolicy.MaximumAttempts != 3 || task.RetryPolicy.InitialInterval != time.Second {
			t.Fatalf("retryPolicy = %+v", task.RetryPolicy)
		}
		if mail := got.Actions[0]; mail.Recipients.CC[0] != "b@example.com" || mail.TemplateID != d.Actions[0].TemplateID {
			t.Fatalf("mail = %+v", mail)
		}
		if !got.Created.Equal(d.Created) || got.Created.UnixMilli() == 0 {
			t.Fatalf("created = %v, want %v", got.Created, d.Created)
		}
		_, err = s.FindDispatcher(ctx, dispatcher.NewID(time.Now()))
		wantCode(t, err, dispatcher.ENOTFOUND)
	})
}

func TestValidationWritesNothing(t *testing.T) {
	stores(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		bad := dispatcher.Dispatcher{EventType: "x", Actions: []dispatcher.Action{mailAction(s, "m"), {Type: dispatcher.ActionTask}}}
		err := s.CreateDispatcher(ctx, &bad)
		wantCode(t, err, dispatcher.EREQUIRED)
		dup := dispatcher.Dispatcher{EventType: "x", Actions: []dispatcher.Action{mailAction(s, "same"), taskAction("same")}}
		wantCode(t, s.CreateDispatcher(ctx, &dup), dispatcher.ECONFLICT)
		_, total, err := s.FindDispatchers(ctx, dispatcher.Query{Limit: 50})
		if err != nil || total != 0 {
			t.Fatalf("total = %d, %v; want nothing stored", total, err)
		}
	})
}

func TestUniqueNamesUnderConcurrency(t *testing.T) {
	stores(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		const n = 8
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d := dispatcher.Dispatcher{Name: "same", EventType: "e"}
				errs[i] = s.CreateDispatcher(ctx, &d)
			}()
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			if err == nil {
				ok++
				continue
			}
			wantCode(t, err, dispatcher.ECONFLICT)
		}
		if ok != 1 {
			t.Fatalf("%d creates succeeded, want exactly 1", ok)
		}

		d := create(t, s, dispatcher.Dispatcher{Name: "other", EventType: "e"})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a := mailAction(s, "same-action")
				errs[i] = errOf(s.CreateAction(ctx, d.ID, &a, time.Time{}))
			}()
		}
		wg.Wait()
		ok = 0
		for _, err := range errs {
			if err == nil {
				ok++
				continue
			}
			wantCode(t, err, dispatcher.ECONFLICT)
		}
		if ok != 1 {
			t.Fatalf("%d action creates succeeded, want exactly 1", ok)
		}
		// Unnamed dispatchers and actions never conflict.
		create(t, s, dispatcher.Dispatcher{EventType: "e"})
		create(t, s, dispatcher.Dispatcher{EventType: "e", Actions: []dispatcher.Action{mailAction(s, ""), mailAction(s, "")}})
	})
}

func TestUpdateDispatcher(t *testing.T) {
	stores(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		d := create(t, s, dispatcher.Dispatcher{Name: "one", EventType: "e", Tags: []string{"x"}})
		create(t, s, dispatcher.Dispatcher{Name: "two", EventType: "e"})
		name, event, tags := "renamed", "f", []string{"y", "z"}
		if err := errOf(s.UpdateDispatcher(ctx, d.ID, dispatcher.DispatcherUpdate{Name: &name, EventType: &event, Tags: &tags}, time.Time{})); err != nil {
			t.Fatal(err)
		}
		got, _ := s.FindDispatcher(ctx, d.ID)
		if got.Name != "renamed" || got.EventType != "f" || len(got.Tags) != 2 || got.Tags[1] != "z" {
			t.Fatalf("got %+v", got)
		}
		if !got.Updated.After(d.Updated) || !got.Created.Equal(d.Created) {
			t.Fatalf("updated %v not after %v, or created moved", got.Updated, d.Updated)
		}
		taken := "two"
		wantCode(t, errOf(s.UpdateDispatcher(ctx, d.ID, dispatcher.DispatcherUpdate{Name: &taken}, time.Time{})), dispatcher.ECONFLICT)
		empty := ""
		wantCode(t, errOf(s.UpdateDispatcher(ctx, d.ID, dispatcher.DispatcherUpdate{EventType: &empty}, time.Time{})), dispatcher.EREQUIRED)
		wantCode(t, errOf(s.UpdateDispatcher(ctx, dispatcher.NewID(time.Now()), dispatcher.DispatcherUpdate{Name: &name}, time.Time{})), dispatcher.ENOTFOUND)
	})
}

func TestActions(t *testing.T) {
	stores(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		d := create(t, s, dispatcher.Dispatcher{EventType: "e", Actions: []dispatcher.Action{mailAction(s, "m")}})
		a := taskAction("t")
		if err := errOf(s.CreateAction(ctx, d.ID, &a, time.Time{})); err != nil {
			t.Fatal(err)
		}
		after := func() dispatcher.Dispatcher {
			t.Helper()
			got, err := s.FindDispatcher(ctx, d.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Updated.After(d.Updated) {
				t.Fatalf("updateTimestamp did not move: %v vs %v", got.Updated, d.Updated)
			}
			d = got
			return got
		}
		if got := after(); len(got.Actions) != 2 || got.Actions[1].ID != a.ID {
			t.Fatalf("actions = %+v", got.Actions)
		}

		fn, clear := "other", (*time.Time)(nil)
		if err := errOf(s.UpdateAction(ctx, d.ID, a.ID, dispatcher.ActionUpdate{FunctionName: &fn, StartTimestamp: &clear}, time.Time{})); err != nil {
			t.Fatal(err)
		}
		if got := after().Actions[1]; got.FunctionName != "other" || got.StartTimestamp != nil || string(got.Data) != string(a.Data) {
			t.Fatalf("updated action = %+v", got)
		}
		mail := dispatcher.ActionMail
		wantCode(t, errOf(s.UpdateAction(ctx, d.ID, a.ID, dispatcher.ActionUpdate{Type: &mail}, time.Time{})), dispatcher.EINVALID)
		taken := "m"
		wantCode(t, errOf(s.UpdateAction(ctx, d.ID, a.ID, dispatcher.ActionUpdate{Name: &taken}, time.Time{})), dispatcher.ECONFLICT)
		wantCode(t, errOf(s.UpdateAction(ctx, d.ID, dispatcher.NewID(time.Now()), dispatcher.ActionUpdate{Name: &fn}, time.Time{})), dispatcher.ENOTFOUND)

		if err := errOf(s.DeleteAction(ctx, d.ID, a.ID, time.Time{})); err != nil {
			t.Fatal(err)
		}
		if got := after(); len(got.Actions) != 1 {
			t.Fatalf("actions after delete = %+v", got.Actions)
		}
		wantCode(t, errOf(s.DeleteAction(ctx, d.ID, a.ID, time.Time{})), dispatcher.ENOTFOUND)
		wantCode(t, errOf(s.CreateAction(ctx, dispatcher.NewID(time.Now()), &a, time.Time{})), dispatcher.ENOTFOUND)
	})
}

func TestDeleteDispatcher(t *testing.T) {
	stores(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		d := create(t, s, dispatcher.Dispatcher{Name: "n", EventType: "e", Tags: []string{"t"}, Actions: []dispatcher.Action{mailAction(s, "m")}})
		if err := s.DeleteDispatcher(ctx, d.ID, time.Time{}); err != nil {
			t.Fatal(err)
		}
		_, err := s.FindDispatcher(ctx, d.ID)
		wantCode(t, err, dispatcher.ENOTFOUND)
		wantCode(t, s.DeleteDispatcher(ctx, d.ID, time.Time{}), dispatcher.ENOTFOUND)
		// The name and the action name are free again.
		create(t, s, dispatcher.Dispatcher{Name: "n", EventType: "e", Actions: []dispatcher.Action{mailAction(s, "m")}})
	})
}

func TestConfigVersionMovesOnEveryChange(t *testing.T) {
	stores(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		version := func() int64 {
			t.Helper()
			v, err := s.ConfigVersion(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		v0 := version()
		d := create(t, s, dispatcher.Dispatcher{EventType: "e"})
		v1 := version()
		a := mailAction(s, "m")
		if err := errOf(s.CreateAction(ctx, d.ID, &a, time.Time{})); err != nil {
			t.Fatal(err)
		}
		v2 := version()
		_ = s.DeleteDispatcher(ctx, dispatcher.NewID(time.Now()), time.Time{}) // fails: no change
		v3 := version()
		if !(v0 < v1 && v1 < v2 && v2 == v3) {
			t.Fatalf("versions %d %d %d %d: want strictly growing on change, unchanged on failure", v0, v1, v2, v3)
		}
	})
}

// TestPreparedStatementsWhenTheDatabaseIsGone: the statements each
// dispatch runs are prepared on first use; when the database is gone they
// fail with an error, before and after that first use, and never panic.
func TestPreparedStatementsWhenTheDatabaseIsGone(t *testing.T) {
	for _, prepared := range []bool{false, true} {
		db, err := models.Open(testenv.SQLite(t))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := models.Migrate(context.Background(), db); err != nil {
			t.Fatal(err)
		}
		s := models.NewStore(db, tick())
		ctx := context.Background()
		now := time.Now()
		if prepared {
			if _, err := s.ConfigVersion(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := s.ClaimMail(ctx, "<m@x>", "o", now, now.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
		sqlDB, _ := db.DB()
		sqlDB.Close()
		if v, err := s.ConfigVersion(ctx); err == nil {
			t.Errorf("prepared %v: ConfigVersion = %d, nil on a closed database", prepared, v)
		}
		if _, err := s.ClaimMail(ctx, "<n@x>", "o", now, now.Add(time.Minute)); err == nil {
			t.Errorf("prepared %v: ClaimMail on a closed database did not fail", prepared)
		}
		if err := s.RecordMailSent(ctx, "<n@x>", now); err == nil {
			t.Errorf("prepared %v: RecordMailSent on a closed database did not fail", prepared)
		}
	}
}

// A DATABASE_URL of no known kind is refused quoting its scheme at most:
// a key=value string showed the first letter of its password.
func TestOpenQuotesNoPassword(t *testing.T) {
	for _, dsn := range []string{"password=s3cret host=db", "host=db password=s3cret", "s3cretpassword"} {
		if _, err := models.Open(dsn); err == nil || strings.Contains(err.Error(), "s3") {
			t.Errorf("Open(%q): %v, want an error quoting no password", dsn, err)
		}
	}
}

// A name no template can have is not found, on either database. Before,
// PostgreSQL refused to look for one with a NUL in it, and the API
// answered a mail action's templateName so with a 500.
func TestTemplateIDByNameThatCannotBeStored(t *testing.T) {
	stores(t, func(t *testing.T, s *models.Store) {
		for _, name := range []string{"wel\x00come", "\xffwelcome"} {
			if _, err := s.TemplateIDByName(t.Context(), name); dispatcher.ErrorCode(err) != dispatcher.ENOTFOUND {
				t.Errorf("%q: %v, want ENOTFOUND", name, err)
			}
		}
	})
}

// A text value PostgreSQL refuses for its bytes is the request's mistake
// (EINVALID), wherever no field check stopped it first; SQLite finds
// nothing.
func TestTextPostgreSQLRefusesIsInvalid(t *testing.T) {
	s := newStore(t, testenv.Postgres(t))
	if _, err := s.FindFunctionByName(t.Context(), "era\x00se"); dispatcher.ErrorCode(err) != dispatcher.EINVALID {
		t.Errorf("a function name with a NUL: %v, want EINVALID", err)
	}
}

// A statement whose context was canceled says so, not that the database
// was slow: a process stopping at start-up blamed a database that was fine.
func TestCanceledIsNotSlow(t *testing.T) {
	stores(t, func(t *testing.T, s *models.Store) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := s.FindFunctionByName(ctx, "erase")
		if dispatcher.ErrorCode(err) != dispatcher.EUNAVAILABLE || !strings.Contains(err.Error(), "canceled") {
			t.Errorf("canceled: %v, want EUNAVAILABLE saying so", err)
		}
	})
}
