package activities_test

import (
	"context"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/activities"
)

// A store that is down for a moment (a failover, a restart) costs a
// mail's attempt some of its time, not the attempt: the mail is sent once
// it answers. Before, each attempt failed at once with StoreUnavailable,
// and an action with few attempts failed for good within seconds of the
// database going away.
func TestStoreOutageCostsNoAttempt(t *testing.T) {
	t.Run("mail", func(t *testing.T) {
		server := &scriptedSMTP{}
		a, in, store := mailWithStore(t, server.start(t))
		store.down = 3 // the claim's, then the template's reads fail
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if _, err := a.SendMail(ctx, in); err != nil {
			t.Fatalf("SendMail: %v, want the mail sent once the store answered", err)
		}
		if n := server.accepted.Load(); n != 1 {
			t.Errorf("the server accepted %d mails, want 1", n)
		}
	})
	// A function's call, whose attempt is its timeout and a margin, does
	// not wait: the wait would cut the call. (Nor does a mail's first
	// attempt, a local activity, which the SDK's test environment does not
	// mark as one: mailKeep.)
	t.Run("a call does not wait", func(t *testing.T) {
		store := newFakeStore()
		a := newActivities(t, activities.Options{Store: store, Outbound: loopback(t)})
		store.functions["erase"] = dispatcher.Function{Name: "erase", Kind: dispatcher.FunctionHTTP, URL: "http://127.0.0.1:9/", Timeout: 5 * time.Second}
		store.down = 1
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err := a.CallFunction(ctx, dispatcher.TaskInput{Event: testEvent(), DispatcherID: "d1", ActionID: "a1", FunctionName: "erase", IdempotencyKey: "k1"})
		wantFailure(t, err, dispatcher.FailureStore, true)
	})
	// An outage that outlasts the attempt fails it, in time for the
	// attempt to say so: what it keeps for its mail it does not
	// spend waiting.
	t.Run("longer than the attempt", func(t *testing.T) {
		server := &scriptedSMTP{}
		a, in, store := mailWithStore(t, server.start(t))
		store.down = 1000
		ctx, cancel := context.WithTimeout(context.Background(), 13*time.Second)
		defer cancel()
		_, err := a.SendMail(ctx, in)
		wantFailure(t, err, dispatcher.FailureStore, true)
		if dl, _ := ctx.Deadline(); time.Until(dl) < 5*time.Second {
			t.Errorf("it failed %s before its deadline, want the time it keeps for the mail (10 s) nearly whole", time.Until(dl).Round(time.Millisecond))
		}
		if n := server.accepted.Load(); n != 0 {
			t.Errorf("the server accepted %d mails, want none", n)
		}
	})
}

// mailWithStore is scriptedMail with its store.
func mailWithStore(t *testing.T, addr string) (*activities.Effects, dispatcher.MailInput, *fakeStore) {
	t.Helper()
	store := newFakeStore()
	store.templates["tpl-1"] = dispatcher.Template{ID: "tpl-1", Subject: "s", Text: "t"}
	a := newActivities(t, activities.Options{Store: store, SMTPURL: "smtp://" + addr + "?starttls=none", MailFrom: "a@example.com"})
	return a, dispatcher.MailInput{Event: testEvent(), TemplateID: "tpl-1",
		Recipients: dispatcher.Recipients{To: []string{"x@example.com"}}, MessageID: "m1@dispatcher"}, store
}

// A reset run's child-workflow action checks the audit trail in its one
// attempt, which makes no call: it waits for a store that does not
// answer. Before, a blip of the store failed the action for good.
func TestPrepareTaskWaitsForTheStore(t *testing.T) {
	down := 2
	a := newActivities(t, activities.Options{Store: newFakeStore(), Outbound: policy(t, nil, "payments"), LaterReplay: func(context.Context, string, string) (string, error) {
		if down > 0 {
			down--
			return "", dispatcher.Errorf(dispatcher.EUNAVAILABLE, "the database is unavailable or busy: try again")
		}
		return "", nil
	}})
	in := dispatcher.TaskInput{Event: testEvent(), DispatcherID: "d1", ActionID: "a1", FunctionName: "child", IdempotencyKey: "k1", TaskQueue: "payments", Reset: true, Run: "r1"}
	var p dispatcher.TaskPayload
	if err := execute(t, a, a.PrepareTask, in, &p); err != nil {
		t.Fatalf("PrepareTask: %v, want it to wait for the store", err)
	}
	if down != 0 {
		t.Errorf("the store was asked %d times, want 3", 3-down)
	}
}
