package models_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/models"
)

// configSize is the size the configuration of eventType has as a dispatch
// records it.
func configSize(t *testing.T, s *models.Store, eventType string) int {
	t.Helper()
	ds, err := s.DispatchersByEventType(context.Background(), eventType)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(ds)
	if err != nil {
		t.Fatal(err)
	}
	return len(b)
}

// bigTask is a task action whose data is n bytes of JSON.
func bigTask(name string, n int) dispatcher.Action {
	const frame = len(`{"k":""}`)
	return dispatcher.Action{Type: dispatcher.ActionTask, Name: name, FunctionName: "erase",
		Data: json.RawMessage(`{"k":"` + strings.Repeat("x", n-frame) + `"}`)}
}

// wantTooBig checks that err refuses a write that would take eventType's
// configuration beyond the limit, naming field, the event type, the size
// it would have and the limit.
func wantTooBig(t *testing.T, err error, field, eventType string) {
	t.Helper()
	wantCode(t, err, dispatcher.EINVALID)
	msg := dispatcher.ErrorMessage(err)
	pattern := fmt.Sprintf(`^%s: the configuration of event type %q would be (\d+) bytes of JSON; one event type may hold at most %d`,
		regexp.QuoteMeta(field), eventType, dispatcher.MaxEventTypeConfig)
	m := regexp.MustCompile(pattern).FindStringSubmatch(msg)
	if m == nil {
		t.Fatalf("error %q does not match %q", msg, pattern)
	}
	var size int
	fmt.Sscan(m[1], &size)
	if size <= dispatcher.MaxEventTypeConfig {
		t.Fatalf("error %q names a size within the limit", msg)
	}
}

func TestEventTypeConfigLimit(t *testing.T) {
	stores(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		// About 256 KB, a little below 256 KiB.
		base := create(t, s, dispatcher.Dispatcher{Name: "base", EventType: "big", Actions: []dispatcher.Action{
			bigTask("a", 2000), bigTask("b", 63000), bigTask("c", 63000), bigTask("d", 63000), bigTask("e", 63000)}})
		before := configSize(t, s, "big")
		if before > dispatcher.MaxEventTypeConfig {
			t.Fatalf("the setup is already %d bytes", before)
		}
		unchanged := func() {
			t.Helper()
			if got := configSize(t, s, "big"); got != before {
				t.Fatalf("a refused write changed the configuration: %d bytes, was %d", got, before)
			}
		}

		a := bigTask("f", 30000)
		wantTooBig(t, errOf(s.CreateAction(ctx, base.ID, &a, time.Time{})), "actions", "big")
		unchanged()

		d := dispatcher.Dispatcher{Name: "second", EventType: "big", Actions: []dispatcher.Action{bigTask("x", 30000)}}
		wantTooBig(t, s.CreateDispatcher(ctx, &d), "actions", "big")
		unchanged()
		d = dispatcher.Dispatcher{Name: "third", EventType: "big", Description: strings.Repeat("d", 30000)}
		wantTooBig(t, s.CreateDispatcher(ctx, &d), "description", "big")
		unchanged()
		if _, total, _ := s.FindDispatchers(ctx, dispatcher.Query{Limit: 10}); total != 1 {
			t.Fatalf("%d dispatchers stored, want only the first", total)
		}

		grown := bigTask("", 10000).Data
		wantTooBig(t, errOf(s.UpdateAction(ctx, base.ID, base.Actions[0].ID, dispatcher.ActionUpdate{Data: &grown}, time.Time{})), "actions", "big")
		unchanged()

		other := create(t, s, dispatcher.Dispatcher{Name: "other", EventType: "small", Actions: []dispatcher.Action{bigTask("y", 30000)}})
		big := "big"
		wantTooBig(t, errOf(s.UpdateDispatcher(ctx, other.ID, dispatcher.DispatcherUpdate{EventType: &big}, time.Time{})), "eventType", "big")
		unchanged()
		description := strings.Repeat("d", 30000)
		wantTooBig(t, errOf(s.UpdateDispatcher(ctx, base.ID, dispatcher.DispatcherUpdate{Description: &description}, time.Time{})), "description", "big")
		unchanged()

		// What fits still goes in, and other event types are not affected.
		small := bigTask("small", 1000)
		if err := errOf(s.CreateAction(ctx, base.ID, &small, time.Time{})); err != nil {
			t.Fatal(err)
		}
		more := bigTask("z", 60000)
		if err := errOf(s.CreateAction(ctx, other.ID, &more, time.Time{})); err != nil {
			t.Fatal(err)
		}
		shrunk := json.RawMessage(`{}`)
		if err := errOf(s.UpdateAction(ctx, base.ID, base.Actions[0].ID, dispatcher.ActionUpdate{Data: &shrunk}, time.Time{})); err != nil {
			t.Fatal(err)
		}
	})
}

// Two writes that each fit, but not together, cannot both pass: the check
// runs in the transaction of the write, after the writes before it.
func TestEventTypeConfigLimitUnderConcurrency(t *testing.T) {
	stores(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		create(t, s, dispatcher.Dispatcher{Name: "base", EventType: "big", Actions: []dispatcher.Action{
			bigTask("a", 60000), bigTask("b", 60000), bigTask("c", 60000)}})
		const n = 8
		targets := make([]dispatcher.Dispatcher, n)
		for i := range targets {
			targets[i] = create(t, s, dispatcher.Dispatcher{Name: fmt.Sprintf("d%d", i), EventType: "big"})
		}
		// Each adds 50,000 bytes to about 183 KB: one fits, two do not.
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if i%2 == 0 {
					a := bigTask("new", 50000)
					errs[i] = errOf(s.CreateAction(ctx, targets[i].ID, &a, time.Time{}))
					return
				}
				d := dispatcher.Dispatcher{EventType: "big", Actions: []dispatcher.Action{bigTask("new", 50000)}}
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
			wantTooBig(t, err, "actions", "big")
		}
		if ok != 1 {
			t.Fatalf("%d writes succeeded, want exactly 1", ok)
		}
		if size := configSize(t, s, "big"); size > dispatcher.MaxEventTypeConfig {
			t.Fatalf("the configuration of big is %d bytes", size)
		}
	})
}

func TestActionsPerDispatcherLimit(t *testing.T) {
	stores(t, func(t *testing.T, s *models.Store) {
		ctx := context.Background()
		actions := make([]dispatcher.Action, dispatcher.MaxActions)
		for i := range actions {
			actions[i] = bigTask("", 10)
		}
		d := create(t, s, dispatcher.Dispatcher{EventType: "e", Actions: actions})
		a := bigTask("", 10)
		err := errOf(s.CreateAction(ctx, d.ID, &a, time.Time{}))
		wantCode(t, err, dispatcher.EINVALID)
		if msg := dispatcher.ErrorMessage(err); msg != "actions: a dispatcher holds at most 50 actions; this one has 50" {
			t.Fatalf("error %q", msg)
		}
		if err := errOf(s.DeleteAction(ctx, d.ID, d.Actions[0].ID, time.Time{})); err != nil {
			t.Fatal(err)
		}
		if err := errOf(s.CreateAction(ctx, d.ID, &a, time.Time{})); err != nil {
			t.Fatal(err)
		}
	})
}
