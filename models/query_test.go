package models_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
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
			{"name", "PR ER"}, // anywhere, as the Extra Horizon SDK documents like
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

// like, contains and excludes fold every letter's case, on both
// databases. Before, SQLite's lower() folded ASCII only: like(name,*äpfel*)
// found "Äpfel" on PostgreSQL and not on SQLite.
func TestLikeFoldsEveryLetter(t *testing.T) {
	stores(t, func(t *testing.T, s *models.Store) {
		for _, n := range []string{"Äpfel", "ÉCOLE", "apple"} {
			create(t, s, dispatcher.Dispatcher{Name: n, EventType: "e", Tags: []string{n}})
		}
		for _, tt := range []struct {
			op, field, value, want string
		}{
			{dispatcher.OpLike, "name", "*äpfel*", "Äpfel"},
			{dispatcher.OpLike, "tags", "äPFEL", "Äpfel"},
			{dispatcher.OpContains, "name", "école", "ÉCOLE"},
			{dispatcher.OpExcludes, "name", "Äpf", "apple,ÉCOLE"},
		} {
			got := foundNames(t, s, dispatcher.Query{Limit: 10, Sort: []dispatcher.Sort{{Field: "name"}},
				Filter: &dispatcher.Cond{Op: tt.op, Field: tt.field, Values: []string{tt.value}}})
			if got != tt.want {
				t.Errorf("%s(%s,%s) = %q, want %q", tt.op, tt.field, tt.value, got, tt.want)
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
		for _, name := range []string{"b", "", "a"} {
			create(t, s, dispatcher.Dispatcher{Name: name, EventType: "e"})
		}
		for desc, want := range map[bool]string{false: ",a,b", true: "b,a,"} {
			if got := foundNames(t, s, dispatcher.Query{Limit: 10, Sort: []dispatcher.Sort{{Field: "name", Desc: desc}}}); got != want {
				t.Errorf("sorted by name, descending %v: %q, want %q", desc, got, want)
			}
		}
	})
}

// Text sorts and compares in byte order on both databases, as SQLite and
// Go do, whatever the collation PostgreSQL's database was made with. Before,
// on a database made with ICU's en-US (or en_US.UTF-8), sort(name) put
// "_under" after "9" and "äpfel" before "apple", and gt(name,a) matched
// "_under": the same query paged differently from one server to another.
func TestTextInByteOrder(t *testing.T) {
	stores(t, func(t *testing.T, s *models.Store) { textInByteOrder(t, s) })
	t.Run("postgres with ICU en-US", func(t *testing.T) { textInByteOrder(t, newStore(t, icuDatabase(t))) })
}

func textInByteOrder(t *testing.T, s *models.Store) {
	for _, n := range []string{"äpfel", "apple", "Banana", "_under", "9", "10"} {
		create(t, s, dispatcher.Dispatcher{Name: n, EventType: "e"})
	}
	for _, tt := range []struct {
		q    dispatcher.Query
		want string
	}{
		{dispatcher.Query{Limit: 10, Sort: []dispatcher.Sort{{Field: "name"}}}, "10,9,Banana,_under,apple,äpfel"},
		{dispatcher.Query{Limit: 10, Sort: []dispatcher.Sort{{Field: "name", Desc: true}}}, "äpfel,apple,_under,Banana,9,10"},
		{dispatcher.Query{Limit: 10, Sort: []dispatcher.Sort{{Field: "name"}},
			Filter: &dispatcher.Cond{Op: dispatcher.OpGt, Field: "name", Values: []string{"a"}}}, "apple,äpfel"},
	} {
		if got := foundNames(t, s, tt.q); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.q, got, tt.want)
		}
	}
}

// icuDatabase returns the URL of a new PostgreSQL database whose default
// collation is ICU's en-US, dropped when the test ends.
func icuDatabase(t *testing.T) string {
	t.Helper()
	base, err := url.Parse(testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	admin, err := models.Open(base.String())
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("test_icu_%d", time.Now().UnixNano())
	if err := admin.Exec("CREATE DATABASE " + name + " TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'").Error; err != nil {
		t.Fatalf("create a database with ICU's en-US collation: %v", err)
	}
	t.Cleanup(func() {
		if err := admin.Exec("DROP DATABASE " + name + " WITH (FORCE)").Error; err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
		if db, err := admin.DB(); err == nil {
			db.Close()
		}
	})
	u := *base
	u.Path = "/" + name
	q := u.Query()
	q.Del("search_path")
	u.RawQuery = q.Encode()
	return u.String()
}

// foundNames returns the names of the dispatchers q finds, joined by commas.
func foundNames(t *testing.T, s *models.Store, q dispatcher.Query) string {
	t.Helper()
	ds, _, err := s.FindDispatchers(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range ds {
		names = append(names, d.Name)
	}
	return strings.Join(names, ",")
}

// Extra Horizon's contains(field) and excludes(field) ask whether a
// dispatcher has the field; contains(actions,condition,...) whether one
// action meets every condition, excludes(...) whether none does.
func TestPresenceAndActionConditions(t *testing.T) {
	stores(t, func(t *testing.T, s *models.Store) {
		mail := mailAction(s, "hello")
		create(t, s, dispatcher.Dispatcher{Name: "both", EventType: "e", Description: "has one", Tags: []string{"x"},
			Actions: []dispatcher.Action{taskAction("erase"), mail}})
		create(t, s, dispatcher.Dispatcher{Name: "task only", EventType: "e", Actions: []dispatcher.Action{taskAction("erase")}})
		create(t, s, dispatcher.Dispatcher{Name: "none", EventType: "e"})
		cond := func(op, field string, args ...dispatcher.Cond) *dispatcher.Cond {
			return &dispatcher.Cond{Op: op, Field: field, Args: args}
		}
		eq := func(field, v string) dispatcher.Cond {
			return dispatcher.Cond{Op: dispatcher.OpEq, Field: field, Values: []string{v}}
		}
		for _, tt := range []struct {
			filter *dispatcher.Cond
			want   string
		}{
			{cond(dispatcher.OpContains, "description"), "both"},
			{cond(dispatcher.OpExcludes, "description"), "none,task only"},
			{cond(dispatcher.OpContains, "tags"), "both"},
			{cond(dispatcher.OpContains, "actions"), "both,task only"},
			{cond(dispatcher.OpExcludes, "actions"), "none"},
			{cond(dispatcher.OpContains, "actions.templateId"), "both"},
			{cond(dispatcher.OpContains, "actions", eq("type", "mail")), "both"},
			// One action meets both: the task is not named hello.
			{cond(dispatcher.OpContains, "actions", eq("type", "task"), eq("name", "hello")), ""},
			{cond(dispatcher.OpContains, "actions", dispatcher.Cond{Op: dispatcher.OpOr, Args: []dispatcher.Cond{eq("type", "mail"), eq("name", "erase")}}), "both,task only"},
			{cond(dispatcher.OpExcludes, "actions", eq("type", "mail")), "none,task only"},
			{cond(dispatcher.OpContains, "actions", dispatcher.Cond{Op: dispatcher.OpContains, Field: "templateId"}), "both"},
			// eq(actions.templateId,null) and ne(…) as RQL reads them: an
			// action lacks it, no action does.
			{cond(dispatcher.OpContains, "actions", dispatcher.Cond{Op: dispatcher.OpExcludes, Field: "templateId"}), "both,task only"},
			{cond(dispatcher.OpExcludes, "actions", dispatcher.Cond{Op: dispatcher.OpExcludes, Field: "templateId"}), "none"},
		} {
			if got := foundNames(t, s, dispatcher.Query{Limit: 10, Sort: []dispatcher.Sort{{Field: "name"}}, Filter: tt.filter}); got != tt.want {
				t.Errorf("%+v: %q, want %q", *tt.filter, got, tt.want)
			}
		}
		// Before, a field the store does not know wrote broken SQL: a 500.
		if _, _, err := s.FindDispatchers(context.Background(), dispatcher.Query{Limit: 10, Filter: cond(dispatcher.OpExcludes, "nope")}); dispatcher.ErrorCode(err) != dispatcher.EQUERY {
			t.Errorf("excludes(nope): %v, want EQUERY", err)
		}
		// The audit trail reads them too: its records of these changes
		// carry no request id.
		for op, want := range map[string]bool{dispatcher.OpContains: false, dispatcher.OpExcludes: true} {
			_, total, err := s.FindAuditRecords(context.Background(), dispatcher.Query{Limit: 10, Filter: cond(op, "requestId")})
			if err != nil || (total > 0) != want {
				t.Errorf("%s(requestId) on the audit trail: %d records, %v; want some: %v", op, total, err, want)
			}
		}
	})
}
