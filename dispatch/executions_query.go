package dispatch

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/workflows"
)

// executionQuery turns a filter into a Temporal visibility query over the
// Dispatch workflows of the caller's tenant. Values are quoted SQL-style.
// Refused, as the visibility store fails on them (SQL visibility and
// gRPC): a backslash, which it cannot match reliably; NUL and invalid
// UTF-8; a double quote in a value matched against a keyword list (which
// SQL visibility matches as JSON). Errors are *dispatcher.Error with code
// EINVALID naming the filter field as the API spells it.
func executionQuery(ctx context.Context, f dispatcher.ExecutionFilter) (string, error) {
	clauses := []string{"WorkflowType = " + quote(workflows.WorkflowDispatch), tenantClause(ctx)}
	add := func(field string, attr temporal.SearchAttributeKey, value string) error {
		switch {
		case value == "":
			return nil
		case strings.Contains(value, `\`):
			return dispatcher.Errorf(dispatcher.EINVALID, "%s: must not contain a backslash", field)
		case strings.ContainsRune(value, 0) || !utf8.ValidString(value):
			return dispatcher.Errorf(dispatcher.EINVALID, "%s: must not contain NUL characters or invalid UTF-8", field)
		case strings.Contains(value, `"`) && attr.GetValueType() == enums.INDEXED_VALUE_TYPE_KEYWORD_LIST:
			return dispatcher.Errorf(dispatcher.EINVALID, "%s: must not contain a double quote", field)
		}
		clauses = append(clauses, attr.GetName()+" = "+quote(value))
		return nil
	}
	for _, c := range []struct {
		field string
		attr  temporal.SearchAttributeKey
		value string
	}{
		{"eventId", workflows.AttrEventID, f.EventID},
		{"eventType", workflows.AttrEventType, f.EventType},
		{"dispatcherId", workflows.AttrDispatcherIDs, f.DispatcherID},
		{"actionId", workflows.AttrFailedActionIDs, f.ActionID},
		{"bulkReplayId", workflows.AttrBulkReplayID, f.BulkReplayID},
		{"skipReason", workflows.AttrSkipped, f.SkipReason},
	} {
		if err := add(c.field, c.attr, c.value); err != nil {
			return "", err
		}
	}
	if f.SkippedAny && f.SkipReason == "" {
		clauses = append(clauses, workflows.AttrSkipped.GetName()+" IS NOT NULL")
	}
	if f.SkipReason != "" && !slices.Contains(dispatcher.SkipReasons(), f.SkipReason) {
		return "", dispatcher.Errorf(dispatcher.EINVALID, "skipReason: must be one of %s, not %q",
			strings.Join(dispatcher.SkipReasons(), ", "), f.SkipReason)
	}
	// With a dispatcher, the class of one of its own actions: the pair
	// (workflows.PairSeparator), as a failures summary groups them.
	// Before, a dispatch one of whose dispatchers failed with the class
	// matched the other dispatcher too, and a failures group's replay
	// took in dispatches the group did not count.
	class := f.ErrorClass
	if f.DispatcherID != "" {
		class += workflows.PairSeparator + f.DispatcherID
	}
	switch f.ErrorClass {
	case "":
	case dispatcher.FailureTerminated:
		clauses = append(clauses, "ExecutionStatus = 'Terminated'")
	case dispatcher.FailureTimeout:
		// An action that timed out, or the whole dispatch.
		clauses = append(clauses, fmt.Sprintf("(%s = %s OR ExecutionStatus = 'TimedOut')", workflows.AttrErrorClasses.GetName(), quote(class)))
	default:
		if err := add("errorClass", workflows.AttrErrorClasses, class); err != nil {
			return "", err
		}
		// A misspelt class matched nothing, and read as "none failed so".
		if !slices.Contains(dispatcher.FailureClasses(), f.ErrorClass) {
			return "", dispatcher.Errorf(dispatcher.EINVALID, "errorClass: %q is no error class; they are %s",
				f.ErrorClass, strings.Join(dispatcher.FailureClasses(), ", "))
		}
	}
	status, err := statusClause(f.Status)
	if err != nil {
		return "", err
	}
	if status != "" {
		clauses = append(clauses, status)
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return "", dispatcher.Errorf(dispatcher.EINVALID, "to: must be after from")
	}
	if !f.From.IsZero() {
		clauses = append(clauses, "StartTime >= "+quote(f.From.UTC().Format(time.RFC3339Nano)))
	}
	if !f.To.IsZero() {
		clauses = append(clauses, "StartTime < "+quote(f.To.UTC().Format(time.RFC3339Nano)))
	}
	return strings.Join(clauses, " AND "), nil
}

// statusClause is the visibility condition for an execution status.
func statusClause(status string) (string, error) {
	scheduled := workflows.AttrScheduled.GetName()
	switch status {
	case "":
		return "", nil
	case dispatcher.ExecutionRunning:
		// DispatchScheduled is unset until an action first waits.
		return fmt.Sprintf("ExecutionStatus = 'Running' AND (%s IS NULL OR %s = false)", scheduled, scheduled), nil
	case dispatcher.ExecutionScheduled:
		return fmt.Sprintf("ExecutionStatus = 'Running' AND %s = true", scheduled), nil
	case dispatcher.ExecutionCompleted:
		return "ExecutionStatus = 'Completed'", nil
	case dispatcher.ExecutionFailed:
		return "ExecutionStatus IN ('Failed', 'Terminated', 'TimedOut')", nil
	case dispatcher.ExecutionCanceled:
		return "ExecutionStatus = 'Canceled'", nil
	}
	return "", dispatcher.Errorf(dispatcher.EINVALID, "status: must be one of %s, not %q",
		strings.Join(dispatcher.ExecutionStatuses(), ", "), status)
}

// quote quotes a value for a visibility query, doubling single quotes.
func quote(v string) string {
	return "'" + strings.ReplaceAll(v, "'", "''") + "'"
}

// executionStatus maps a Temporal execution status to the support view's
// status and, for a dispatch that ended without recording outcomes, the
// error class that explains it.
func executionStatus(s enums.WorkflowExecutionStatus, scheduled bool) (status, class string) {
	switch s {
	case enums.WORKFLOW_EXECUTION_STATUS_RUNNING:
		if scheduled {
			return dispatcher.ExecutionScheduled, ""
		}
		return dispatcher.ExecutionRunning, ""
	case enums.WORKFLOW_EXECUTION_STATUS_COMPLETED, enums.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW:
		return dispatcher.ExecutionCompleted, ""
	case enums.WORKFLOW_EXECUTION_STATUS_CANCELED:
		return dispatcher.ExecutionCanceled, ""
	case enums.WORKFLOW_EXECUTION_STATUS_TERMINATED:
		return dispatcher.ExecutionFailed, dispatcher.FailureTerminated
	case enums.WORKFLOW_EXECUTION_STATUS_TIMED_OUT:
		return dispatcher.ExecutionFailed, dispatcher.FailureTimeout
	default: // FAILED, and any status a later server adds
		return dispatcher.ExecutionFailed, ""
	}
}

// replayable reports whether runs of status can be replayed: only closed
// ones.
func replayable(status string) bool {
	return slices.Contains([]string{dispatcher.ExecutionCompleted, dispatcher.ExecutionFailed, dispatcher.ExecutionCanceled}, status)
}

// tenantClause is the visibility condition for the dispatches of the
// caller's tenant (dispatcher.CallerOf): those of the implicit tenant
// carry no DispatchTenant.
func tenantClause(ctx context.Context) string {
	if t := dispatcher.CallerOf(ctx).Tenant; t != "" {
		return workflows.AttrTenant.GetName() + " = " + quote(t)
	}
	return workflows.AttrTenant.GetName() + " IS NULL"
}

// owned returns ENOTFOUND, as for a dispatch or bulk replay that does not
// exist, when workflowID is another tenant's than the caller's: no oracle.
func owned(ctx context.Context, workflowID string) error {
	if dispatcher.TenantOf(workflowID) != dispatcher.CallerOf(ctx).Tenant {
		return dispatcher.Errorf(dispatcher.ENOTFOUND, "Requested resource is unknown: no dispatch or bulk replay %s", workflowID)
	}
	return nil
}
