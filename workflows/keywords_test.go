package workflows_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/workflows"
)

// hexID is the i-th of distinct 24-hex-character ids, as the
// dispatcher's ids are.
func hexID(prefix string, i int) string {
	return fmt.Sprintf("%s%0*x", prefix, 24-len(prefix), i)
}

// manyDispatchers is a configuration of n dispatchers of the test event
// with one task action each, and k skipped (paused) dispatchers after them.
func manyDispatchers(n, k int) (dispatcher.Config, []string) {
	var ds []dispatcher.Dispatcher
	var ids []string
	for i := range n {
		ds = append(ds, dispatcher.Dispatcher{ID: hexID("d", i), EventType: "user_deleted",
			Actions: []dispatcher.Action{taskAction(hexID("a", i), "erase")}})
		ids = append(ids, hexID("d", i))
	}
	cfg := config(ds...)
	for i := range k {
		cfg.Skipped = append(cfg.Skipped, dispatcher.SkippedDispatcher{DispatcherID: hexID("s", i), Reason: dispatcher.SkipPaused,
			Actions: []dispatcher.SkippedAction{{ID: hexID("b", i), Type: dispatcher.ActionTask}}})
		ids = append(ids, hexID("s", i))
	}
	return cfg, ids
}

// checkKeywords fails unless list is a non-empty prefix of want (all of
// it when want fits) whose encoding, as Temporal measures a KeywordList
// value, stays within the budget.
func checkKeywords(t *testing.T, name string, list, want []string) {
	t.Helper()
	b, err := json.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > workflows.KeywordListBudget || len(b) >= 2048 {
		t.Errorf("%s: %d items, %d bytes: over the budget of %d", name, len(list), len(b), workflows.KeywordListBudget)
	}
	if len(list) < 40 || !slices.Equal(list, want[:min(len(list), len(want))]) {
		t.Errorf("%s = %d items %v, want the first of %d: %v…", name, len(list), list[:min(len(list), 3)], len(want), want[:3])
	}
	if all, _ := json.Marshal(want); len(all) <= workflows.KeywordListBudget && len(list) != len(want) {
		t.Errorf("%s: %d of %d items kept, though they all fit", name, len(list), len(want))
	}
}

// TestKeywordListsBounded: with 200 dispatchers of one event type, and
// 200 failed actions, every KeywordList search attribute a dispatch sets
// stays within KeywordListBudget (Temporal refuses a value over 2 KiB) and
// keeps its first items; skipped dispatchers make no error class pairs.
func TestKeywordListsBounded(t *testing.T) {
	cfg, ids := manyDispatchers(200, 5)

	// At intake, and at a Sequence's child start.
	in := workflows.DispatchInput{Event: testEvent(), Config: &cfg}
	start, _ := temporal.NewSearchAttributes(workflows.StartAttributes("t1:user_deleted:ev-1", in)...).
		GetKeywordList(workflows.AttrDispatcherIDs)
	checkKeywords(t, "start DispatchDispatcherIDs", start, ids)

	// A dispatch that loads its configuration, and whose actions all fail.
	env := newEnv(t, cfg)
	env.OnActivity(workflows.LocalCallFunction, mock.Anything, mock.Anything).Return(fails(dispatcher.FailureHTTPPermanent, true))
	var attrs []temporal.SearchAttributes
	env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		attrs = append(attrs, args.Get(0).(temporal.SearchAttributes))
	}).Return(nil)
	res, err := runDispatch(t, env, workflows.DispatchInput{Event: testEvent()})
	if err == nil {
		t.Fatal("a dispatch whose actions all failed completed")
	}
	var failed []string
	for _, o := range res.Outcomes {
		if o.Status == dispatcher.OutcomeFailed {
			failed = append(failed, o.ActionID)
		}
	}
	if len(failed) != 200 {
		t.Fatalf("%d actions failed, want 200: %s", len(failed), summary(res.Outcomes[:3]))
	}
	if len(attrs) != 2 {
		t.Fatalf("%d upserts, want 2 (the configuration's, the failures')", len(attrs))
	}
	got, _ := attrs[0].GetKeywordList(workflows.AttrDispatcherIDs)
	checkKeywords(t, "upserted DispatchDispatcherIDs", got, ids)
	got, _ = attrs[1].GetKeywordList(workflows.AttrFailedActionIDs)
	checkKeywords(t, "DispatchFailedActionIDs", got, failed)
	classes := []string{dispatcher.FailureHTTPPermanent}
	for i := range 200 {
		classes = append(classes, dispatcher.FailureHTTPPermanent+workflows.PairSeparator+hexID("d", i))
	}
	got, _ = attrs[1].GetKeywordList(workflows.AttrErrorClasses)
	checkKeywords(t, "DispatchErrorClasses", got, classes)
	for _, c := range got {
		if strings.HasPrefix(c, workflows.PairSeparator) {
			t.Errorf("DispatchErrorClasses has %q, a pair of a skipped action", c)
		}
	}
}

// TestBoundKeywords: values that fit are kept whole; a value that does
// not fit ends the list, measured with its JSON escapes.
func TestBoundKeywords(t *testing.T) {
	if got := workflows.BoundKeywords([]string{"a", "b"}); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("BoundKeywords = %v", got)
	}
	if got := workflows.BoundKeywords([]string{}); got == nil || len(got) != 0 {
		t.Errorf("BoundKeywords(empty) = %#v, want empty, not nil (which encodes as null)", got)
	}
	// Exactly the budget: brackets, and each item's quotes and comma.
	item := strings.Repeat("x", 100)
	n := (workflows.KeywordListBudget - 2 + 1) / (len(item) + 3)
	fill := workflows.KeywordListBudget - 2 - n*(len(item)+3) + 1
	values := slices.Repeat([]string{item}, n)
	values = append(values, strings.Repeat("y", fill-3)) // its quotes and comma
	if b, _ := json.Marshal(values); len(b) != workflows.KeywordListBudget {
		t.Fatalf("test list is %d bytes, want %d", len(b), workflows.KeywordListBudget)
	}
	if got := workflows.BoundKeywords(values); len(got) != len(values) {
		t.Errorf("a list of exactly the budget kept %d of %d", len(got), len(values))
	}
	values[n] += "y"
	if got := workflows.BoundKeywords(values); len(got) != n {
		t.Errorf("a list one byte over the budget kept %d, want %d", len(got), n)
	}
	// As many bytes as fit, but '<' encodes as \u003c.
	values[n] = "<" + strings.Repeat("y", fill-4)
	if got := workflows.BoundKeywords(values); len(got) != n {
		t.Errorf("a list over the budget once escaped kept %d, want %d", len(got), n)
	}
}
