package activities_test

import (
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/activities"
)

// An attempt heartbeats from its first step, so a slow store does not pass
// for a dead worker. Before, heartbeats began with the call: a store slower
// than the heartbeat timeout timed the attempt out, Temporal scheduled the
// next one, and this one went on to make the call as well.
func TestAttemptsHeartbeatWhileTheStoreIsSlow(t *testing.T) {
	sink := startFunctionSink(t, nil)
	for _, tt := range []struct {
		name  string
		run   func(a *activities.Effects) (fn, input any)
		setup func(s *fakeStore)
	}{
		{"task", func(a *activities.Effects) (any, any) {
			return a.CallFunction, dispatcher.TaskInput{FunctionName: "f", Event: testEvent(), IdempotencyKey: "k"}
		}, func(s *fakeStore) {
			s.functions["f"] = dispatcher.Function{Name: "f", Kind: dispatcher.FunctionHTTP, URL: sink.URL}
		}},
		{"mail", func(a *activities.Effects) (any, any) {
			return a.SendMail, dispatcher.MailInput{Event: testEvent(), TemplateID: "tpl-1", MessageID: "m1@dispatcher",
				Recipients: dispatcher.Recipients{To: []string{"x@example.com"}}}
		}, func(s *fakeStore) {
			s.sent["m1@dispatcher"] = testNow // answered from the store: no SMTP session needed
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			store := newFakeStore()
			tt.setup(store)
			beat := make(chan struct{}, 1)
			var beatBeforeAnswer bool
			store.slow = func() {
				select {
				case <-beat:
					beatBeforeAnswer = true
				case <-time.After(3 * activities.HeartbeatEvery):
				}
			}
			a := newActivities(t, activities.Options{Store: store, Outbound: loopback(t)})
			var s testsuite.WorkflowTestSuite
			env := s.NewTestActivityEnvironment()
			env.RegisterActivity(a)
			env.SetOnActivityHeartbeatListener(func(*activity.Info, converter.EncodedValues) {
				select {
				case beat <- struct{}{}:
				default:
				}
			})
			fn, input := tt.run(a)
			if _, err := env.ExecuteActivity(fn, input); err != nil {
				t.Fatal(err)
			}
			if !beatBeforeAnswer {
				t.Fatalf("no heartbeat while the store took %v", 3*activities.HeartbeatEvery)
			}
		})
	}
}
