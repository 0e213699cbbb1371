package dispatch

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"

	"github.com/dispatcherhq/dispatcher"
)

func TestExecutionQuery(t *testing.T) {
	from := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	base := "WorkflowType = 'Dispatch' AND DispatchTenant IS NULL"
	for _, tt := range []struct {
		name    string
		filter  dispatcher.ExecutionFilter
		want    string
		wantErr string
	}{
		{"everything", dispatcher.ExecutionFilter{}, base, ""},
		{"event type and dispatcher", dispatcher.ExecutionFilter{EventType: "user_deleted", DispatcherID: "d1"},
			base + " AND DispatchEventType = 'user_deleted' AND DispatchDispatcherIDs = 'd1'", ""},
		// By the search attribute: a CloudEvent's workflow ID comes from
		// its source and id, so the id alone does not give it.
		{"event id", dispatcher.ExecutionFilter{EventID: "evt-1"},
			base + " AND DispatchEventID = 'evt-1'", ""},
		{"an odd event id is quoted", dispatcher.ExecutionFilter{EventID: "it's/odd"},
			base + " AND DispatchEventID = 'it''s/odd'", ""},
		{"bulk replay", dispatcher.ExecutionFilter{BulkReplayID: "bulk-replay-0123456789abcdef01234567"},
			base + " AND DispatchBulkReplayID = 'bulk-replay-0123456789abcdef01234567'", ""},
		{"action", dispatcher.ExecutionFilter{ActionID: "a1"}, base + " AND DispatchFailedActionIDs = 'a1'", ""},
		{"quotes are doubled", dispatcher.ExecutionFilter{EventType: "o'brien"}, base + " AND DispatchEventType = 'o''brien'", ""},
		{"backslash refused", dispatcher.ExecutionFilter{EventType: `a\b`}, "", "eventType: must not contain a backslash"},
		// Before, these reached Temporal, whose visibility store failed on
		// them: 10 s of retries and a 503, or a 500, and a bulk replay
		// with one ran for ever.
		{"NUL refused", dispatcher.ExecutionFilter{EventID: "a\x00"}, "", "eventId: must not contain NUL characters or invalid UTF-8"},
		{"not UTF-8 refused", dispatcher.ExecutionFilter{BulkReplayID: "\xff"}, "", "bulkReplayId: must not contain NUL characters or invalid UTF-8"},
		{"double quote in an id refused", dispatcher.ExecutionFilter{DispatcherID: `a"`}, "", `dispatcherId: must not contain a double quote`},
		{"double quote in an error class refused", dispatcher.ExecutionFilter{ErrorClass: `"`}, "", `errorClass: must not contain a double quote`},
		{"double quote in an event id kept", dispatcher.ExecutionFilter{EventID: `say "hi"`}, base + ` AND DispatchEventID = 'say "hi"'`, ""},
		{"error class", dispatcher.ExecutionFilter{ErrorClass: dispatcher.FailureHTTPPermanent},
			base + " AND DispatchErrorClasses = 'HTTPPermanent'", ""},
		// Before, a misspelt class matched nothing: "no dispatches match".
		{"unknown error class", dispatcher.ExecutionFilter{ErrorClass: "HTTPTemporry"}, "",
			`errorClass: "HTTPTemporry" is no error class; they are ` + strings.Join(dispatcher.FailureClasses(), ", ")},
		{"terminated is a status", dispatcher.ExecutionFilter{ErrorClass: dispatcher.FailureTerminated},
			base + " AND ExecutionStatus = 'Terminated'", ""},
		{"timeout of an action or of the dispatch", dispatcher.ExecutionFilter{ErrorClass: dispatcher.FailureTimeout},
			base + " AND (DispatchErrorClasses = 'Timeout' OR ExecutionStatus = 'TimedOut')", ""},
		// A class of the dispatcher's own actions, as a failures summary
		// groups them: before, that of another dispatcher's matched too.
		{"error class of a dispatcher", dispatcher.ExecutionFilter{ErrorClass: dispatcher.FailureTemplate, DispatcherID: "d1"},
			base + " AND DispatchDispatcherIDs = 'd1' AND DispatchErrorClasses = 'TemplateError@d1'", ""},
		{"timeout of a dispatcher's action", dispatcher.ExecutionFilter{ErrorClass: dispatcher.FailureTimeout, DispatcherID: "d1"},
			base + " AND DispatchDispatcherIDs = 'd1' AND (DispatchErrorClasses = 'Timeout@d1' OR ExecutionStatus = 'TimedOut')", ""},
		{"running excludes scheduled", dispatcher.ExecutionFilter{Status: dispatcher.ExecutionRunning},
			base + " AND ExecutionStatus = 'Running' AND (DispatchScheduled IS NULL OR DispatchScheduled = false)", ""},
		{"scheduled", dispatcher.ExecutionFilter{Status: dispatcher.ExecutionScheduled},
			base + " AND ExecutionStatus = 'Running' AND DispatchScheduled = true", ""},
		{"failed covers terminated and timed out", dispatcher.ExecutionFilter{Status: dispatcher.ExecutionFailed},
			base + " AND ExecutionStatus IN ('Failed', 'Terminated', 'TimedOut')", ""},
		{"completed", dispatcher.ExecutionFilter{Status: dispatcher.ExecutionCompleted}, base + " AND ExecutionStatus = 'Completed'", ""},
		{"canceled", dispatcher.ExecutionFilter{Status: dispatcher.ExecutionCanceled}, base + " AND ExecutionStatus = 'Canceled'", ""},
		{"unknown status", dispatcher.ExecutionFilter{Status: "broken"}, "", `status: must be one of running, scheduled, completed, failed, canceled, not "broken"`},
		{"time range", dispatcher.ExecutionFilter{From: from, To: from.Add(90 * time.Minute)},
			base + " AND StartTime >= '2026-05-01T00:00:00Z' AND StartTime < '2026-05-01T01:30:00Z'", ""},
		{"empty time range", dispatcher.ExecutionFilter{From: from, To: from}, "", "to: must be after from"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := executionQuery(context.Background(), tt.filter)
			if tt.wantErr != "" {
				if err == nil || dispatcher.ErrorCode(err) != dispatcher.EINVALID || dispatcher.ErrorMessage(err) != tt.wantErr {
					t.Fatalf("error = %v, want EINVALID %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("query = %q, %v\nwant    %q", got, err, tt.want)
			}
		})
	}
}

// A tenant's listings see its own dispatches only.
func TestExecutionQueryOfATenant(t *testing.T) {
	ctx := dispatcher.WithCaller(context.Background(), dispatcher.Caller{Tenant: "acme"})
	got, err := executionQuery(ctx, dispatcher.ExecutionFilter{EventType: "x"})
	if want := "WorkflowType = 'Dispatch' AND DispatchTenant = 'acme' AND DispatchEventType = 'x'"; err != nil || got != want {
		t.Fatalf("query = %q, %v; want %q", got, err, want)
	}
}

func TestExecutionStatus(t *testing.T) {
	for _, tt := range []struct {
		temporal  enums.WorkflowExecutionStatus
		scheduled bool
		want      string
		class     string
	}{
		{enums.WORKFLOW_EXECUTION_STATUS_RUNNING, false, dispatcher.ExecutionRunning, ""},
		{enums.WORKFLOW_EXECUTION_STATUS_RUNNING, true, dispatcher.ExecutionScheduled, ""},
		{enums.WORKFLOW_EXECUTION_STATUS_COMPLETED, false, dispatcher.ExecutionCompleted, ""},
		{enums.WORKFLOW_EXECUTION_STATUS_COMPLETED, true, dispatcher.ExecutionCompleted, ""}, // a stale flag does not matter once closed
		{enums.WORKFLOW_EXECUTION_STATUS_FAILED, false, dispatcher.ExecutionFailed, ""},
		{enums.WORKFLOW_EXECUTION_STATUS_CANCELED, true, dispatcher.ExecutionCanceled, ""},
		{enums.WORKFLOW_EXECUTION_STATUS_TERMINATED, false, dispatcher.ExecutionFailed, dispatcher.FailureTerminated},
		{enums.WORKFLOW_EXECUTION_STATUS_TIMED_OUT, false, dispatcher.ExecutionFailed, dispatcher.FailureTimeout},
	} {
		status, class := executionStatus(tt.temporal, tt.scheduled)
		if status != tt.want || class != tt.class {
			t.Errorf("%s (scheduled %v) = %s, %q; want %s, %q", tt.temporal, tt.scheduled, status, class, tt.want, tt.class)
		}
	}
}

func TestSplitErrorClasses(t *testing.T) {
	for _, tt := range []struct {
		name        string
		values, ids []string
		classes     []string
		pairs       []dispatcher.ClassDispatcher
	}{
		{"pairs recorded", append([]string{"HTTPPermanent", "SMTPPermanent"}, "HTTPPermanent@d2", "SMTPPermanent@d1"), []string{"d1", "d2"},
			[]string{"HTTPPermanent", "SMTPPermanent"},
			[]dispatcher.ClassDispatcher{{ErrorClass: "HTTPPermanent", DispatcherID: "d2"}, {ErrorClass: "SMTPPermanent", DispatcherID: "d1"}}},
		{"older runs pair every class with every dispatcher", []string{"HTTPPermanent"}, []string{"d1", "d2"},
			[]string{"HTTPPermanent"},
			[]dispatcher.ClassDispatcher{{ErrorClass: "HTTPPermanent", DispatcherID: "d1"}, {ErrorClass: "HTTPPermanent", DispatcherID: "d2"}}},
		{"nothing failed", nil, []string{"d1"}, nil, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			classes, pairs := splitErrorClasses(tt.values, tt.ids)
			if !slices.Equal(classes, tt.classes) || !slices.Equal(pairs, tt.pairs) {
				t.Fatalf("splitErrorClasses = %v, %v; want %v, %v", classes, pairs, tt.classes, tt.pairs)
			}
		})
	}
}
