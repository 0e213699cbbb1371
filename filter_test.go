package dispatcher_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
)

func filterEvent(content string) dispatcher.Event {
	return dispatcher.Event{ID: "evt-1", Type: "order_paid", Source: "shop", Content: json.RawMessage(content),
		Time: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
}

func TestCompileFilterErrors(t *testing.T) {
	for _, tt := range []struct {
		expr, want string
	}{
		{`event.type == `, "filter: line 1, column 15: Syntax error"},
		{`event.typo == "a"`, "filter: line 1, column 6: undeclared reference to 'event.typo' (did you mean 'event.type'?)"},
		{"event.type == 'a' &&\n  amount > 3", "filter: line 2, column 3: undeclared reference to 'amount'"},
		{`event.type + 1`, "filter: line 1, column 12: found no matching overload for '_+_' applied to '(string, int)'"},
		{`event.type`, "filter: line 1, column 1: must be a condition (bool), not string"},
		{`event.id.size()`, "filter: line 1, column 1: must be a condition (bool), not int"},
		{strings.Repeat(" ", dispatcher.MaxFilterLength) + "true", fmt.Sprintf("filter: must be at most %d bytes", dispatcher.MaxFilterLength)},
		{"true\x00", "filter: must not contain NUL"},
		// Literals no event could ever make readable.
		{`event.type.matches("(")`, "filter: line 1, column 20: invalid matches argument: error parsing regexp: missing closing ): `(`"},
		// Before, without the reason: "invalid matches argument".
		{`event.source.matches("(?:a?){1200}b")`, "filter: line 1, column 22: invalid matches argument: error parsing regexp: invalid repeat count: `{1200}`"},
		{`event.time > timestamp("notatime")`, "filter: line 1, column 24: invalid timestamp argument"},
		{`event.time - timestamp("2026-01-01T00:00:00Z") > duration("5x")`, "filter: line 1, column 59: invalid duration argument"},
		{strings.Repeat("(", 300) + "true" + strings.Repeat(")", 300), "filter: expression recursion limit exceeded"},
		// A pattern from the event would be compiled for every event, and
		// a few kilobytes of one can compile to megabytes: patterns are
		// the filter's own, and small once compiled.
		{`event.content.s.matches(event.content.p)`, "filter: line 1, column 38: matches takes a pattern written in the filter, not one read from the event"},
		{`matches(event.content.s, event.type)`, "filter: line 1, column 31: matches takes a pattern written in the filter"},
		{`event.type.matches("a{1000}b{1000}c")`, "filter: line 1, column 20: invalid matches argument: the regular expression compiles to 2003 instructions, more than the 2000 a filter's may"},
	} {
		_, err := dispatcher.CompileFilter(tt.expr)
		if dispatcher.ErrorCode(err) != dispatcher.EINVALID || !strings.HasPrefix(dispatcher.ErrorMessage(err), tt.want) {
			t.Errorf("CompileFilter(%q) = %v, want EINVALID %q", tt.expr, err, tt.want)
		}
	}
}

func TestFilterMatch(t *testing.T) {
	items := make([]string, 2000)
	for i := range items {
		items[i] = fmt.Sprint(i)
	}
	big := `{"items":[` + strings.Join(items, ",") + `]}`
	for _, tt := range []struct {
		expr, content string
		want          bool
		err           string // a part of the error, when it fails
	}{
		{`event.type == "order_paid" && event.source == "shop" && event.id.startsWith("evt-")`, `{}`, true, ""},
		{`event.content.amount > 100`, `{"amount": 150}`, true, ""},
		{`event.content.amount > 100`, `{"amount": 99.5}`, false, ""},
		{`event.content.amount > 100.5`, `{"amount": 101}`, true, ""}, // int against double
		{`event.content.count + 1 == 3`, `{"count": 2}`, true, ""},    // whole numbers are ints
		{`event.content.user.tags.exists(t, t == "vip")`, `{"user":{"tags":["a","vip"]}}`, true, ""},
		{`has(event.content.amount)`, `{}`, false, ""},
		{`event.content.flag`, `{"flag": true}`, true, ""}, // dyn: checked when it runs
		{`event.time > timestamp("2026-01-01T00:00:00Z")`, `{}`, true, ""},
		{`event.content == {}`, ``, true, ""}, // no content: an empty object
		{`event.content.amount > 100`, `{}`, false, "no such key: amount"},
		{`event.content.amount > 100`, `{"amount": "lots"}`, false, "no such overload: an operator or function was given a value of a type it does not take, such as a string compared with a number"},
		// What that error says to write.
		{`type(event.content.amount) == int && event.content.amount > 100`, `{"amount": "lots"}`, false, ""},
		{`type(event.content.amount) == int && event.content.amount > 100`, `{"amount": 150}`, true, ""},
		{`event.content.flag`, `{"flag": "yes"}`, false, "the filter gave a value of type string, not true or false"},
		// Not the value: the error is shown where the content is not.
		{`event.content`, `{"ssn": "123-45-6789"}`, false, "the filter gave a value of type map, not true or false"},
		{`event.content.items.all(x, event.content.items.all(y, x != y || true))`, big, false, "cost limit exceeded"},
		{`event.content.email.matches("^[a-z]+@example\\.com$")`, `{"email": "ann@example.com"}`, true, ""},
		{`matches(event.content.email, "^b")`, `{"email": "ann@example.com"}`, false, ""},
		// A short pattern that compiles to a large program, on a long
		// string: refused before it runs, as it would take seconds and
		// cannot be interrupted. Before, CEL charged the pattern's length.
		{`event.content.s.matches("(?:a?){500}b")`, `{"s": "` + strings.Repeat("a", 250_000) + `"}`, false,
			"a string of 250000 bytes is too long for this regular expression (1003 instructions once compiled): at most 997 bytes"},
	} {
		f, err := dispatcher.CompileFilter(tt.expr)
		if err != nil {
			t.Fatalf("CompileFilter(%q): %v", tt.expr, err)
		}
		got, err := f.Match(filterEvent(tt.content))
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("%s with %s: %v", tt.expr, tt.content, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%s with %s: error %v, want one with %q", tt.expr, tt.content, err, tt.err)
		case got != tt.want:
			t.Errorf("%s with %s = %v, want %v", tt.expr, tt.content, got, tt.want)
		}
	}
}

// TestFilterCostBoundsWork: a filter that a large event makes expensive
// stops at the cost limit, quickly, rather than holding the intake.
func TestFilterCostBoundsWork(t *testing.T) {
	f, err := dispatcher.CompileFilter(`event.content.items.all(x, event.content.items.all(y, x != y || true))`)
	if err != nil {
		t.Fatal(err)
	}
	items := make([]string, 10000)
	for i := range items {
		items[i] = fmt.Sprint(i)
	}
	start := time.Now()
	if _, err := f.Match(filterEvent(`{"items":[` + strings.Join(items, ",") + `]}`)); err == nil {
		t.Fatal("10^8 comparisons passed the cost limit")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("stopping took %v", d)
	}
}

// TestFilterBoundsWorkOnEventValues: operations on values whose type CEL
// does not know when it checks the filter (event.content, dyn) are charged
// by their size. Before, a constant: a string doubled in nested loops took
// gigabytes and seconds with no error, and + of two strings of the event
// in a loop ran for seconds before the cost limit stopped it.
func TestFilterBoundsWorkOnEventValues(t *testing.T) {
	doubling := `[dyn("xxxxxxxxxxxxxxxx")].exists(a0, `
	for i := 1; i < 20; i++ {
		doubling += fmt.Sprintf("[a%d+a%d].exists(a%d, ", i-1, i-1, i)
	}
	doubling += "false" + strings.Repeat(")", 20)
	for _, tt := range []struct{ expr, content string }{
		{doubling, `{}`},
		{`event.content.l.exists(x, (event.content.b + event.content.b) == "y")`,
			fmt.Sprintf(`{"b": %q, "l": [%s0]}`, strings.Repeat("x", 150_000), strings.Repeat("0,", 20_000))},
		{`event.content.l.exists(x, x in event.content.l2)`,
			fmt.Sprintf(`{"l": [%s0], "l2": [%s0]}`, strings.Repeat("1,", 20_000), strings.Repeat("2,", 8_000))},
	} {
		f, err := dispatcher.CompileFilter(tt.expr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err = f.Match(filterEvent(tt.content)); err == nil || !strings.Contains(err.Error(), "cost limit exceeded") {
			t.Errorf("%.60s…: error %v, want the cost limit", tt.expr, err)
		}
	}
}

// TestConfigForEventBoundsFilterWork: the filters of an event type
// together do at most MaxEventFilterCost of work for one event, and each
// after it a little: one that needs more is skipped as a filter error,
// saying why. Before, each filter had its own bound, and an event type of
// hundreds of dispatchers had hundreds of them.
func TestConfigForEventBoundsFilterWork(t *testing.T) {
	var cfg dispatcher.Config
	add := func(id, filter string) {
		cfg.Dispatchers = append(cfg.Dispatchers, dispatcher.Dispatcher{ID: id, Filter: filter,
			Actions: []dispatcher.Action{{ID: "a" + id, Type: dispatcher.ActionTask, FunctionName: "f"}}})
	}
	for i := range 8 {
		add(fmt.Sprint("d", i), `event.content.s.matches("(?i)gmail")`) // 7 instructions, a long string: 49,000 units
	}
	// A cheap filter past the budget still runs: the event's sender must
	// not be able to switch a dispatcher off by making those before it
	// costly.
	add("cheap", `event.type == "order_paid"`)
	got := cfg.ForEvent(filterEvent(`{"s": "` + strings.Repeat("x", 140_000) + `"}`))
	var skipped []string
	for _, s := range got.Skipped {
		skipped = append(skipped, s.Reason)
	}
	want := "[filter filter filter filter filter filter-error filter-error filter-error]"
	if len(got.Dispatchers) != 1 || got.Dispatchers[0].ID != "cheap" || fmt.Sprint(skipped) != want {
		t.Fatalf("ran %v, skipped %v; want cheap ran, skipped %s", got.Dispatchers, skipped, want)
	}
	if d := got.Skipped[7].Detail; !strings.Contains(d, `the filters before it did the 200000 cost units of work the filters of event type "order_paid" may do`) {
		t.Errorf("detail %q", d)
	}
}

func TestConfigForEvent(t *testing.T) {
	act := func(id string) []dispatcher.Action {
		return []dispatcher.Action{{ID: id, Type: dispatcher.ActionTask, Name: "n" + id, FunctionName: "f"}}
	}
	cfg := dispatcher.Config{Version: 3, Dispatchers: []dispatcher.Dispatcher{
		{ID: "plain", Actions: act("a1")},
		{ID: "paused", Name: "P", Paused: true, Filter: `event.content.amount > 1`, Actions: act("a2")},
		{ID: "match", Filter: `event.content.amount > 100`, Actions: act("a3")},
		{ID: "nomatch", Filter: `event.content.amount < 100`, Actions: act("a4")},
		{ID: "broken", Filter: `event.content.missing > 1`, Actions: act("a5")},
	}}
	got := cfg.ForEvent(filterEvent(`{"amount": 150}`))
	var ran []string
	for _, d := range got.Dispatchers {
		ran = append(ran, d.ID)
	}
	if fmt.Sprint(ran) != "[plain match]" || got.Version != 3 {
		t.Fatalf("dispatchers that run: %v (version %d)", ran, got.Version)
	}
	var skipped []string
	for _, s := range got.Skipped {
		skipped = append(skipped, s.DispatcherID+":"+s.Reason)
		if want := (dispatcher.SkippedAction{ID: s.Actions[0].ID, Name: "n" + s.Actions[0].ID, Type: dispatcher.ActionTask}); len(s.Actions) != 1 || s.Actions[0] != want {
			t.Errorf("skipped %s keeps %+v, want %+v", s.DispatcherID, s.Actions, want)
		}
	}
	if fmt.Sprint(skipped) != "[paused:paused nomatch:filter broken:filter-error]" {
		t.Fatalf("skipped = %v", skipped)
	}
	if d := got.Skipped[2].Detail; !strings.Contains(d, "no such key: missing") {
		t.Errorf("filter-error detail = %q", d)
	}
	if len(cfg.Skipped) != 0 || len(cfg.Dispatchers) != 5 {
		t.Fatal("ForEvent changed the configuration it was called on")
	}
	if r := got.SkipReason(nil); r != dispatcher.SkipPaused {
		t.Errorf("SkipReason = %q, want the most actionable, paused", r)
	}
	if r := got.SkipReason([]string{"a1", "a4"}); r != dispatcher.SkipFilter {
		t.Errorf("SkipReason(a1, a4) = %q, want filter", r)
	}
	if r := got.SkipReason([]string{"a1"}); r != "" {
		t.Errorf("SkipReason(a1) = %q, want none", r)
	}
	if ids := got.DispatcherIDs(nil); fmt.Sprint(ids) != "[plain match paused nomatch broken]" {
		t.Errorf("DispatcherIDs = %v, want those run, then those skipped", ids)
	}
	if s, ok := got.SkippedAction("a2"); !ok || s.DispatcherID != "paused" || s.Name != "P" {
		t.Errorf("SkippedAction(a2) = %+v, %v", s, ok)
	}
	// For a replay of some actions, the others stay as they are, to be
	// replayed from its run (those it carries): the paused dispatcher's
	// a6 with it, the filter of one none of whose actions runs unread.
	// Before, a paused dispatcher was skipped whole.
	cfg.Dispatchers[1].Actions = append(cfg.Dispatchers[1].Actions, act("a6")...)
	some := cfg.ForEvent(filterEvent(`{"amount": 150}`), "a2", "a3")
	ran, skipped = nil, nil
	for _, d := range some.Dispatchers {
		for _, a := range d.Actions {
			ran = append(ran, d.ID+"/"+a.ID)
		}
	}
	for _, s := range some.Skipped {
		for _, a := range s.Actions {
			skipped = append(skipped, s.DispatcherID+"/"+a.ID+":"+s.Reason)
		}
	}
	if fmt.Sprint(ran) != "[plain/a1 paused/a6 match/a3 nomatch/a4 broken/a5]" || fmt.Sprint(skipped) != "[paused/a2:paused]" {
		t.Errorf("for a replay of a2 and a3: dispatchers %v, skipped %v", ran, skipped)
	}
}

func TestDispatcherFilterValidation(t *testing.T) {
	d := dispatcher.Dispatcher{EventType: "x", Filter: `event.content.a >`}
	err := d.Validate()
	if dispatcher.ErrorCode(err) != dispatcher.EINVALID || !strings.HasPrefix(dispatcher.ErrorMessage(err), "filter: line 1, column 18: ") {
		t.Fatalf("Validate: %v", err)
	}
	d.Filter = `event.content.a > 1`
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := "event.type ="
	if err := (dispatcher.DispatcherUpdate{Filter: &bad}).Apply(&d); dispatcher.ErrorCode(err) != dispatcher.EINVALID {
		t.Fatalf("an update to a broken filter: %v", err)
	}
	none, paused := "", true
	d.Filter = "x"
	if err := (dispatcher.DispatcherUpdate{Filter: &none, Paused: &paused}).Apply(&d); err != nil || d.Filter != "" || !d.Paused {
		t.Fatalf("removing the filter and pausing: %v, %+v", err, d)
	}
}
