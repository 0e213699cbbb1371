package models_test

import (
	"context"
	"testing"

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
		fnsA, err := s.FindFunctions(a)
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
		// ... nor changes it.
		name := "taken"
		for what, err := range map[string]error{
			"update dispatcher": s.UpdateDispatcher(b, d.ID, dispatcher.DispatcherUpdate{Name: &name}),
			"delete dispatcher": s.DeleteDispatcher(b, d.ID),
			"create action":     s.CreateAction(b, d.ID, &dispatcher.Action{Type: dispatcher.ActionTask, FunctionName: "erase"}),
			"update action":     s.UpdateAction(b, d.ID, d.Actions[1].ID, dispatcher.ActionUpdate{Name: &name}),
			"delete action":     s.DeleteAction(b, d.ID, d.Actions[0].ID),
			"update template":   s.UpdateTemplate(b, tplA, dispatcher.TemplateUpdate{Name: &name}),
			"delete template":   s.DeleteTemplate(b, tplA),
			"update function":   s.UpdateFunction(b, fnsA[0].ID, dispatcher.FunctionUpdate{Name: &name}),
			"delete function":   s.DeleteFunction(b, fnsA[0].ID),
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
		if err := s.UpdateDispatcher(a, d.ID, dispatcher.DispatcherUpdate{Name: &name}); err != nil {
			t.Fatal(err)
		}
		if ds, err := s.DispatchersByEventType(a, "user_deleted"); err != nil || len(ds) != 1 || ds[0].Name != "taken" {
			t.Fatalf("acme's dispatchers after its update: %v, %v", ds, err)
		}
		// The implicit tenant sees only its fixtures.
		if tpls, err := s.FindTemplates(context.Background()); err != nil || len(tpls) != 1 {
			t.Fatalf("the implicit tenant's templates: %v, %v", tpls, err)
		}
	})
}
