package models_test

import (
	"context"
	"strings"
	"testing"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/models"
)

// like ignores case on tags and on actions' fields as it does on the
// dispatchers' own, on both databases: PostgreSQL's LIKE does not, and
// like(tags,exh*) found the CLI's EXH_CLI_MANAGED on SQLite only.
func TestLikeIgnoresCase(t *testing.T) {
	stores(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		create(t, s, dispatcher.Dispatcher{Name: "GDPR erase", EventType: "e", Tags: []string{"EXH_CLI_MANAGED"},
			Actions: []dispatcher.Action{taskAction("Erase")}})
		other := taskAction("t")
		other.FunctionName = "other"
		create(t, s, dispatcher.Dispatcher{Name: "other", EventType: "e", Tags: []string{"x"}, Actions: []dispatcher.Action{other}})
		for _, tt := range []struct{ field, value string }{
			{"name", "gdpr*"},
			{"tags", "exh*"},
			{"tags", "Exh_Cli_Managed"},
			{"actions.name", "erase"},
			{"actions.functionName", "ERASE"},
		} {
			ds, total, err := s.FindDispatchers(ctx, dispatcher.Query{Limit: 10,
				Filter: &dispatcher.Cond{Op: dispatcher.OpLike, Field: tt.field, Values: []string{tt.value}}})
			if err != nil || total != 1 || len(ds) != 1 || ds[0].Name != "GDPR erase" {
				t.Errorf("like(%s,%s) = %d %v, %v; want GDPR erase", tt.field, tt.value, total, ds, err)
			}
		}
	})
}

// Dispatchers without a name (NULL) sort first ascending and last
// descending on both databases, as on SQLite and in MongoDB, which the
// Extra Horizon service runs on: PostgreSQL put them at the other ends,
// and the same query paged differently.
func TestSortPutsNoNameFirst(t *testing.T) {
	stores(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		for _, name := range []string{"b", "", "a"} {
			create(t, s, dispatcher.Dispatcher{Name: name, EventType: "e"})
		}
		for desc, want := range map[bool]string{false: ",a,b", true: "b,a,"} {
			ds, _, err := s.FindDispatchers(ctx, dispatcher.Query{Limit: 10, Sort: []dispatcher.Sort{{Field: "name", Desc: desc}}})
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, d := range ds {
				names = append(names, d.Name)
			}
			if got := strings.Join(names, ","); got != want {
				t.Errorf("sorted by name, descending %v: %q, want %q", desc, got, want)
			}
		}
	})
}
