package dispatch_test

import (
	"context"
	"testing"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/grpc"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/dispatch"
)

// anyAudit answers every look-up with an earlier replay: what another
// tenant's replay of the same workflow ID, by a user with the same
// subject and Idempotency-Key, would look like.
type anyAudit struct{ dispatch.AuditLog }

func (anyAudit) AuditByKey(context.Context, string, string) (dispatcher.AuditEntry, bool, error) {
	return dispatcher.AuditEntry{RunID: "run-1", NewRunID: "run-2"}, true, nil
}

// A caller reads and replays its own tenant's dispatches only, whatever it
// knows of another's: before, History with a run id read the run without
// describing it, and Replay answered an Idempotency-Key before checking
// whose dispatch it was, so acme saw globex's history and run ids.
func TestAnotherTenantsDispatchIsNotFound(t *testing.T) {
	ex, err := dispatch.NewExecutions(dispatch.ExecutionsOptions{Client: unusedClient{}, Audit: anyAudit{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := dispatcher.WithCaller(context.Background(), dispatcher.Caller{Tenant: "acme"})
	const theirs = "globex:dispatch-evt-1"
	if _, err := ex.History(ctx, theirs, "0b9c1a7e-2f6d-4c1e-9a55-6f3c8e1d2b40", 10, ""); dispatcher.ErrorCode(err) != dispatcher.ENOTFOUND {
		t.Errorf("History of another tenant's run: %v, want %s", err, dispatcher.ENOTFOUND)
	}
	res, err := ex.Replay(ctx, dispatcher.ReplayRequest{WorkflowID: theirs, Actor: "admin", IdempotencyKey: "k1"})
	if dispatcher.ErrorCode(err) != dispatcher.ENOTFOUND {
		t.Errorf("Replay of another tenant's dispatch: %+v, %v; want %s", res, err, dispatcher.ENOTFOUND)
	}
}

// unusedClient reads an empty history, as any run's would read: an
// answer, where the check must come first. Anything else panics.
type unusedClient struct{ client.Client }

func (unusedClient) WorkflowService() workflowservice.WorkflowServiceClient { return emptyHistory{} }

type emptyHistory struct {
	workflowservice.WorkflowServiceClient
}

func (emptyHistory) GetWorkflowExecutionHistory(context.Context, *workflowservice.GetWorkflowExecutionHistoryRequest, ...grpc.CallOption) (*workflowservice.GetWorkflowExecutionHistoryResponse, error) {
	return &workflowservice.GetWorkflowExecutionHistoryResponse{}, nil
}
