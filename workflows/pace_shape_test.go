package workflows_test

import (
	"testing"

	"go.temporal.io/sdk/converter"

	"github.com/dispatcherhq/dispatcher"
)

// pace (dispatchV6) decides whether a command waits for the next workflow
// task by the encoded size of its input, measured again when a run
// replays: a field added to one of these types, encoded even when zero,
// shifts every size, and an open run near the bound would replay with a
// timer more or less than its history holds (a non-determinism failure).
// This pins their shape. A change here must leave the zero value's
// encoding alone (omitempty), or come with a new dispatch version whose
// pace measures the old shape for older runs.
func TestPacedInputsKeepTheirShape(t *testing.T) {
	for _, tt := range []struct {
		v    any
		want string
	}{
		{dispatcher.TaskInput{}, `{"Event":{"ID":"","Type":"","Content":null,"Time":"0001-01-01T00:00:00Z","Source":"","Key":"","PartitionKey":""},` +
			`"DispatcherID":"","ActionID":"","FunctionName":"","Data":null,"Tags":null,"StartTimestamp":null,"IdempotencyKey":"","LocalAttempts":0,` +
			`"Run":"","ConfigVersion":0,"TaskQueue":"","NotBefore":"0001-01-01T00:00:00Z","PermitExpires":"0001-01-01T00:00:00Z"}`},
		{dispatcher.MailInput{}, `{"Event":{"ID":"","Type":"","Content":null,"Time":"0001-01-01T00:00:00Z","Source":"","Key":"","PartitionKey":""},` +
			`"DispatcherID":"","ActionID":"","TemplateID":"","Recipients":{"To":null,"CC":null,"BCC":null},"MessageID":"","Run":"","ConfigVersion":0}`},
		// A child's payload, the only one a dispatch paces, is always
		// attempt 1 (PrepareTask); the zero attempt, an HTTP call's body
		// since its attempt became a header, is left out.
		{dispatcher.TaskPayload{Attempt: 1}, `{"taskId":"","functionName":"","data":null,"tags":null,"startTimestamp":null,"attempt":1}`},
		{dispatcher.TaskPayload{}, `{"taskId":"","functionName":"","data":null,"tags":null,"startTimestamp":null}`},
	} {
		p, err := converter.GetDefaultDataConverter().ToPayload(tt.v)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(p.GetData()); got != tt.want {
			t.Errorf("%T encodes as\n%s\nwant\n%s\nA dispatch paces its commands by this size; see the test's comment.", tt.v, got, tt.want)
		}
	}
}
