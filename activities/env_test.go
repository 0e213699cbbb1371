package activities_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/activities"
)

var testNow = time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC)

func testEvent() dispatcher.Event {
	return dispatcher.Event{
		ID:      "ev-1",
		Type:    "user_deleted",
		Content: json.RawMessage(`{"name":"Ann","userId":42,"email":"ann@example.com"}`),
		Time:    testNow.Add(-time.Minute),
		Source:  "test",
	}
}

func newActivities(t *testing.T, o activities.Options) *activities.Effects {
	t.Helper()
	if o.Now == nil {
		o.Now = func() time.Time { return testNow }
	}
	a, err := activities.New(o)
	if err != nil {
		t.Fatalf("activities.New: %v", err)
	}
	return a
}

// execute runs one activity in the SDK's activity test environment and
// decodes its result into result.
func execute(t *testing.T, a *activities.Effects, fn, input, result any) error {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	val, err := env.ExecuteActivity(fn, input)
	if err != nil {
		return err
	}
	if err := val.Get(result); err != nil {
		t.Fatalf("decoding the result: %v", err)
	}
	return nil
}

// wantFailure checks that err is an application error of type typ whose
// retryability is retryable, and returns it.
func wantFailure(t *testing.T, err error, typ string, retryable bool) *temporal.ApplicationError {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s", typ)
	}
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) {
		t.Fatalf("error %v (%T) is not an application error", err, err)
	}
	if appErr.Type() != typ {
		t.Fatalf("error type = %q (%v), want %q", appErr.Type(), err, typ)
	}
	if appErr.NonRetryable() == retryable {
		t.Fatalf("error %v: non-retryable = %v, want %v", err, appErr.NonRetryable(), !retryable)
	}
	return appErr
}
