package dispatch

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	querypb "go.temporal.io/api/query/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"google.golang.org/grpc"

	"github.com/dispatcherhq/dispatcher"
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

// replayedClient knows dispatch-x: its first run r1, which Sequence
// sequence-k ran and which blocks that key, and its replay r2, the latest
// run, which no Sequence started. queryErr fails the Sequence's query;
// closed has it rejected, as Temporal rejects a query of a closed run when
// asked to.
type replayedClient struct {
	client.Client
	queryErr error
	closed   bool
	released []string
	// resets counts the resets of the Sequence's sticky task queue;
	// stuck fails its queries until one (a worker killed, its sticky
	// queue not known to be gone yet).
	resets int
	stuck  bool
}

func (c *replayedClient) WorkflowService() workflowservice.WorkflowServiceClient {
	return stickyReset{c: c}
}

type stickyReset struct {
	workflowservice.WorkflowServiceClient
	c *replayedClient
}

func (s stickyReset) ResetStickyTaskQueue(_ context.Context, req *workflowservice.ResetStickyTaskQueueRequest, _ ...grpc.CallOption) (*workflowservice.ResetStickyTaskQueueResponse, error) {
	if req.GetExecution().GetWorkflowId() != "sequence-k" {
		return nil, serviceerror.NewNotFound("no such workflow")
	}
	s.c.resets++
	s.c.stuck = false
	return &workflowservice.ResetStickyTaskQueueResponse{}, nil
}

func (c *replayedClient) DescribeWorkflowExecution(_ context.Context, id, runID string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	info := &workflow.WorkflowExecutionInfo{Execution: &common.WorkflowExecution{WorkflowId: id, RunId: "r2"},
		Status: enums.WORKFLOW_EXECUTION_STATUS_COMPLETED}
	if runID == "r1" {
		info.Execution.RunId, info.Status = "r1", enums.WORKFLOW_EXECUTION_STATUS_FAILED
		info.ParentExecution = &common.WorkflowExecution{WorkflowId: "sequence-k"}
	}
	return &workflowservice.DescribeWorkflowExecutionResponse{WorkflowExecutionInfo: info}, nil
}

func (c *replayedClient) ListWorkflow(_ context.Context, req *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	if !strings.Contains(req.Query, workflows.AttrBlocked.GetName()+" = 'dispatch-x'") {
		return &workflowservice.ListWorkflowExecutionsResponse{}, nil
	}
	return &workflowservice.ListWorkflowExecutionsResponse{Executions: []*workflow.WorkflowExecutionInfo{
		{Execution: &common.WorkflowExecution{WorkflowId: "sequence-k"}}}}, nil
}

func (c *replayedClient) QueryWorkflowWithOptions(_ context.Context, req *client.QueryWorkflowWithOptionsRequest) (*client.QueryWorkflowWithOptionsResponse, error) {
	if c.queryErr != nil {
		return nil, c.queryErr
	}
	if c.stuck {
		return nil, context.DeadlineExceeded
	}
	if c.closed && req.QueryRejectCondition == enums.QUERY_REJECT_CONDITION_NOT_OPEN {
		return &client.QueryWorkflowWithOptionsResponse{QueryRejected: &querypb.QueryRejected{Status: enums.WORKFLOW_EXECUTION_STATUS_CANCELED}}, nil
	}
	// A closed run answers from its history: what it held when it stopped.
	p, err := converter.GetDefaultDataConverter().ToPayloads(workflows.SequenceState{Blocked: "dispatch-x"})
	return &client.QueryWorkflowWithOptionsResponse{QueryResult: encodedState{p}}, err
}

func (c *replayedClient) SignalWorkflow(_ context.Context, seq, _, _ string, arg any) error {
	c.released = append(c.released, seq+" "+arg.(string))
	return nil
}

type encodedState struct{ p *common.Payloads }

func (v encodedState) HasValue() bool { return v.p != nil }
func (v encodedState) Get(ptr any) error {
	return converter.GetDefaultDataConverter().FromPayloads(v.p, ptr)
}

type recordedAudit struct{ AuditLog }

func (recordedAudit) RecordAudit(context.Context, dispatcher.AuditEntry) (bool, error) {
	return true, nil
}

// A key whose blocking dispatch was replayed, the replay's release lost
// (its process died, or Temporal did not answer for 10 s), is released by
// hand: the latest run, the replay, ran in no Sequence, and the one its
// key still names is found by the key's DispatchBlocked. Before, the
// release answered 409 and only the Temporal CLI could let the key go
// on. A Sequence that does not answer is a 503, not "blocks nothing".
func TestReleaseAfterALostReplayRelease(t *testing.T) {
	c := &replayedClient{}
	e := &Executions{client: c, audit: recordedAudit{}, now: time.Now, dc: converter.GetDefaultDataConverter()}
	if _, err := e.Release(context.Background(), "dispatch-x", "ops"); err != nil || !slices.Equal(c.released, []string{"sequence-k dispatch-x"}) {
		t.Fatalf("Release: %v, released %v; want dispatch-x released in sequence-k", err, c.released)
	}
	// Right after the worker its run was sticky to was killed: the query
	// is asked again of any worker. Before, 503 until Temporal knew.
	c.stuck, c.released = true, nil
	if _, err := e.Release(context.Background(), "dispatch-x", "ops"); err != nil || c.resets != 1 || !slices.Equal(c.released, []string{"sequence-k dispatch-x"}) {
		t.Fatalf("Release with the Sequence's worker gone: %v, %d resets, released %v; want dispatch-x released after one reset", err, c.resets, c.released)
	}
	c.queryErr, c.released = context.DeadlineExceeded, nil
	if _, err := e.Release(context.Background(), "dispatch-x", "ops"); dispatcher.ErrorCode(err) != dispatcher.EUNAVAILABLE || len(c.released) > 0 {
		t.Errorf("Release with the Sequence not answering: %v, released %v; want EUNAVAILABLE and nothing released", err, c.released)
	}
}

// A Sequence canceled (or terminated) while its key was blocked holds
// nothing any more: the release is refused, and audits nothing. Before,
// the closed run answered the query with the key it held when it
// stopped, the release was audited, and its signal failed.
func TestReleaseOfAClosedSequence(t *testing.T) {
	var audited int
	c := &replayedClient{closed: true}
	e := &Executions{client: c, audit: countedAudit{n: &audited}, now: time.Now, dc: converter.GetDefaultDataConverter()}
	_, err := e.Release(context.Background(), "dispatch-x", "ops")
	if dispatcher.ErrorCode(err) != dispatcher.ESTATE || audited > 0 || len(c.released) > 0 {
		t.Fatalf("Release: %v, %d audited, released %v; want ESTATE, nothing audited or released", err, audited, c.released)
	}
}

type countedAudit struct {
	AuditLog
	n *int
}

func (a countedAudit) RecordAudit(context.Context, dispatcher.AuditEntry) (bool, error) {
	*a.n++
	return true, nil
}
