package dispatch

import (
	"context"
	"testing"

	"go.temporal.io/api/common/v1"
	"go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/dispatcherhq/dispatcher/workflows"
)

// sequencedClient answers that every dispatch ran in Sequence
// "sequence-k", and records the release signals it is sent; both refuse
// a context that has ended, as the real client does.
type sequencedClient struct {
	client.Client
	released []string
}

func (c *sequencedClient) DescribeWorkflowExecution(ctx context.Context, _, _ string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return &workflowservice.DescribeWorkflowExecutionResponse{WorkflowExecutionInfo: &workflow.WorkflowExecutionInfo{
		ParentExecution: &common.WorkflowExecution{WorkflowId: "sequence-k"}}}, nil
}

func (c *sequencedClient) SignalWorkflow(ctx context.Context, seq, _, signal string, arg any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if signal == workflows.SignalSequenceRelease {
		c.released = append(c.released, seq+" "+arg.(string))
	}
	return nil
}

// A replay that has started releases its key even when the request that
// started it has run out of time: before, the release went with the
// request's context, and a replay started near the request's deadline
// left the events behind its dispatch waiting for good.
func TestReleaseAfterReplayOutlivesTheRequest(t *testing.T) {
	c := &sequencedClient{}
	e := &Executions{client: c}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	e.releaseAfterReplay(ctx, "dispatch-evt-1", "run-1")
	if len(c.released) != 1 || c.released[0] != "sequence-k dispatch-evt-1" {
		t.Fatalf("released %v, want dispatch-evt-1 released in sequence-k", c.released)
	}
}
