package models_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/models"
)

func as(tenant string) context.Context {
	return dispatcher.WithCaller(context.Background(), dispatcher.Caller{Subject: "u-" + tenant, Tenant: tenant})
}

// One tenant neither sees nor changes another's configuration, its names
// are its own, and its actions cannot use another's templates or
// functions. The store's fixtures (newStore) belong to the implicit
// tenant "".
func TestTenantsAreApart(t *testing.T) {
	stores(t, func(t *testing.T, s *models.Store) {
		a, b := as("acme"), as("globex")
		for _, ctx := range []context.Context{a, b} { // the same names in both: no conflict
			tpl := dispatcher.Template{Name: "welcome", Subject: "Hi", Text: "Hello"}
			if err := s.CreateTemplate(ctx, &tpl); err != nil {
				t.Fatal(err)
			}
			f := dispatcher.Function{Name: "erase", URL: "https://example.com/erase"}
			if err := s.CreateFunction(ctx, &f); err != nil {
				t.Fatal(err)
			}
		}
		tplA, err := s.TemplateIDByName(a, "welcome")
		if err != nil {
			t.Fatal(err)
		}
		fnsA, err := s.FunctionNames(a)
		if err != nil || len(fnsA) != 1 {
			t.Fatalf("acme's functions: %v, %v; want its one", fnsA, err)
		}
		d := dispatcher.Dispatcher{Name: "on-delete", EventType: "user_deleted", Actions: []dispatcher.Action{
			{Type: dispatcher.ActionMail, Name: "mail", TemplateID: tplA, Recipients: dispatcher.Recipients{To: []string{"a@example.com"}}},
			{Type: dispatcher.ActionTask, Name: "task", FunctionName: "erase"},
		}}
		if err := s.CreateDispatcher(a, &d); err != nil {
			t.Fatal(err)
		}

		// globex sees none of it.
		if _, err := s.FindDispatcher(b, d.ID); dispatcher.ErrorCode(err) != dispatcher.ENOTFOUND {
			t.Errorf("globex read acme's dispatcher: %v", err)
		}
		if ds, n, err := s.FindDispatchers(b, dispatcher.Query{Limit: 10}); err != nil || n != 0 || len(ds) != 0 {
			t.Errorf("globex lists %d dispatchers (%v), want none", n, err)
		}
		if ds, err := s.DispatchersByEventType(b, "user_deleted"); err != nil || len(ds) != 0 {
			t.Errorf("globex's events would run acme's dispatchers: %v, %v", ds, err)
		}
		if _, err := s.FindTemplate(b, tplA); dispatcher.ErrorCode(err) != dispatcher.ENOTFOUND {
			t.Errorf("globex read acme's template: %v", err)
		}
		if tpls, err := s.FindTemplates(b, []string{tplA}); err != nil || len(tpls) != 0 {
			t.Errorf("globex listed acme's template by its id: %v, %v", tpls, err)
		}
		if fns, err := s.FindFunctions(b, []string{fnsA[0].ID}); err != nil || len(fns) != 0 {
			t.Errorf("globex listed acme's function by its id: %v, %v", fns, err)
		}
		// ... nor changes it.
		name := "taken"
		for what, err := range map[string]error{
			"update dispatcher": errOf(s.UpdateDispatcher(b, d.ID, dispatcher.DispatcherUpdate{Name: &name}, time.Time{})),
			"delete dispatcher": s.DeleteDispatcher(b, d.ID, time.Time{}),
			"create action":     errOf(s.CreateAction(b, d.ID, &dispatcher.Action{Type: dispatcher.ActionTask, FunctionName: "erase"}, time.Time{})),
			"update action":     errOf(s.UpdateAction(b, d.ID, d.Actions[1].ID, dispatcher.ActionUpdate{Name: &name}, time.Time{})),
			"delete action":     errOf(s.DeleteAction(b, d.ID, d.Actions[0].ID, time.Time{})),
			"update template":   errOf(s.UpdateTemplate(b, tplA, dispatcher.TemplateUpdate{Name: &name}, time.Time{})),
			"delete template":   s.DeleteTemplate(b, tplA, time.Time{}),
			"update function":   errOf(s.UpdateFunction(b, fnsA[0].ID, dispatcher.FunctionUpdate{Name: &name}, time.Time{})),
			"delete function":   s.DeleteFunction(b, fnsA[0].ID, time.Time{}),
		} {
			if dispatcher.ErrorCode(err) != dispatcher.ENOTFOUND {
				t.Errorf("globex could %s of acme's: %v", what, err)
			}
		}
		// ... nor uses acme's template.
		other := dispatcher.Dispatcher{EventType: "user_deleted", Actions: []dispatcher.Action{
			{Type: dispatcher.ActionMail, TemplateID: tplA, Recipients: dispatcher.Recipients{To: []string{"a@example.com"}}}}}
		if err := s.CreateDispatcher(b, &other); dispatcher.ErrorCode(err) != dispatcher.EINVALID {
			t.Errorf("globex's action uses acme's template: %v", err)
		}

		got, err := s.FindDispatcher(a, d.ID)
		if err != nil || got.Name != "on-delete" || len(got.Actions) != 2 {
			t.Fatalf("acme's dispatcher after globex's attempts: %+v, %v", got, err)
		}
		// acme's own update keeps it acme's.
		if err := errOf(s.UpdateDispatcher(a, d.ID, dispatcher.DispatcherUpdate{Name: &name}, time.Time{})); err != nil {
			t.Fatal(err)
		}
		if ds, err := s.DispatchersByEventType(a, "user_deleted"); err != nil || len(ds) != 1 || ds[0].Name != "taken" {
			t.Fatalf("acme's dispatchers after its update: %v, %v", ds, err)
		}
		// The implicit tenant sees only its fixtures.
		if tpls, err := s.TemplateNames(context.Background()); err != nil || len(tpls) != 1 {
			t.Fatalf("the implicit tenant's templates: %v, %v", tpls, err)
		}
	})
}

// A tenant may have at most MaxDispatchers dispatchers, MaxTemplates
// templates and MaxFunctions functions (lowered here to 1, 2 and 1): the
// next is refused with a message that says so, and leaves nothing behind;
// other tenants are not counted.
func TestTenantCountLimits(t *testing.T) {
	stores(t, func(t *testing.T, s *models.Store) {
		models.SetCountLimits(t, 1, 2, 1) // newStore made one template and two functions
		a, b := as("acme"), as("globex")
		ctx := context.Background()
		version, err := s.ConfigVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.CreateTemplate(ctx, &dispatcher.Template{Name: "second", Subject: "Hi", Text: "Hello"}); err != nil {
			t.Fatal(err)
		}
		err = s.CreateTemplate(ctx, &dispatcher.Template{Name: "third", Subject: "Hi", Text: "Hello"})
		if dispatcher.ErrorCode(err) != dispatcher.ESTATE || !strings.Contains(err.Error(), "already has 2 templates, the most it may have") {
			t.Fatalf("a third template: %v, want ESTATE saying the tenant has the most templates", err)
		}
		err = s.CreateFunction(ctx, &dispatcher.Function{Name: "third", URL: "https://example.com/x"})
		if dispatcher.ErrorCode(err) != dispatcher.ESTATE || !strings.Contains(err.Error(), "already has 1 functions") {
			t.Fatalf("a third function: %v, want ESTATE", err)
		}
		if err := s.CreateDispatcher(ctx, &dispatcher.Dispatcher{Name: "first", EventType: "x"}); err != nil {
			t.Fatal(err)
		}
		err = s.CreateDispatcher(ctx, &dispatcher.Dispatcher{Name: "second", EventType: "x", Actions: []dispatcher.Action{taskAction("t")}})
		if dispatcher.ErrorCode(err) != dispatcher.ESTATE || !strings.Contains(err.Error(), "already has 1 dispatchers") {
			t.Fatalf("a second dispatcher: %v, want ESTATE", err)
		}
		if tpls, err := s.TemplateNames(ctx); err != nil || len(tpls) != 2 {
			t.Fatalf("templates after the refusal: %v, %v; want 2", tpls, err)
		}
		if ds, n, err := s.FindDispatchers(ctx, dispatcher.Query{Limit: 10}); err != nil || n != 1 || len(ds[0].Actions) != 0 {
			t.Fatalf("dispatchers after the refusal: %d, %v; want the first, without actions", n, err)
		}
		if now, err := s.ConfigVersion(ctx); err != nil || now != version+2 {
			t.Fatalf("configuration version %d → %d (%v): want two changes, the second template and the first dispatcher", version, now, err)
		}
		for _, tenant := range []context.Context{a, b} {
			if err := s.CreateTemplate(tenant, &dispatcher.Template{Name: "t", Subject: "Hi", Text: "Hello"}); err != nil {
				t.Fatalf("another tenant's first template: %v", err)
			}
			if err := s.CreateFunction(tenant, &dispatcher.Function{Name: "f", URL: "https://example.com/x"}); err != nil {
				t.Fatalf("another tenant's first function: %v", err)
			}
			if err := s.CreateDispatcher(tenant, &dispatcher.Dispatcher{Name: "d", EventType: "x"}); err != nil {
				t.Fatalf("another tenant's first dispatcher: %v", err)
			}
		}
	})
}

// Configuration writes of one tenant running at once take turns instead
// of deadlocking: each locks the configuration version first, then its
// tenant's audit chain. Before, a creation counted (checkCount) or
// measured (checkConfigSize) under the version's lock after it had
// appended to the audit chain, while the others took them the other way
// round, and PostgreSQL aborted one of each such pair.
func TestConfigurationWritesTakeTurns(t *testing.T) {
	stores(t, func(t *testing.T, s *models.Store) {
		ctx := as("acme")
		tmpl := dispatcher.Template{Name: "base", Subject: "Hi", Text: "Hello"}
		if err := s.CreateTemplate(ctx, &tmpl); err != nil {
			t.Fatal(err)
		}
		errs := make(chan error, 64)
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 4 {
					name := fmt.Sprintf("t%d-%d", g, i)
					errs <- s.CreateTemplate(ctx, &dispatcher.Template{Name: name, Subject: "Hi", Text: "Hello"})
					text := name
					errs <- errOf(s.UpdateTemplate(ctx, tmpl.ID, dispatcher.TemplateUpdate{Text: &text}, time.Time{}))
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("a write failed: %v", err)
			}
		}
		if tpls, err := s.TemplateNames(ctx); err != nil || len(tpls) != 33 {
			t.Fatalf("templates: %d, %v; want 33", len(tpls), err)
		}
	})
}
