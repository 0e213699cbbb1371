package dispatch

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/encryption"
	"github.com/dispatcherhq/dispatcher/workflows"
)

// AuditLog keeps who replayed or canceled which dispatch; a replay's
// entry is its claim, written before it starts, and every entry is
// written before the Temporal operation it records. The executions
// service declares it; models.Store implements it.
type AuditLog interface {
	// RecordAudit stores e and reports whether it did: an entry with the
	// WorkflowID, Operation and Ref of one already stored is ignored. An
	// entry stored is in the audit trail too.
	RecordAudit(ctx context.Context, e dispatcher.AuditEntry) (bool, error)
	// RecordBulkReplay records in the audit trail that bulk replay id of
	// r is asked for.
	RecordBulkReplay(ctx context.Context, id string, r dispatcher.BulkReplayRequest) error
	// FindAudit returns the entry with workflowID, operation and ref.
	FindAudit(ctx context.Context, workflowID, operation, ref string) (dispatcher.AuditEntry, bool, error)
	// AuditByKey returns the oldest entry of workflowID with the
	// idempotency key hash key.
	AuditByKey(ctx context.Context, workflowID, key string) (dispatcher.AuditEntry, bool, error)
	// SetAuditRun records the run an entry's operation started.
	SetAuditRun(ctx context.Context, workflowID, operation, ref, newRunID string) error
	// AuditTrail returns the entries of a workflow ID, oldest first.
	AuditTrail(ctx context.Context, workflowID string) ([]dispatcher.AuditEntry, error)
}

// DispatcherSource reads today's dispatchers, to check the actions a
// replay with the current configuration names. models.Store implements it.
type DispatcherSource interface {
	DispatchersByEventType(ctx context.Context, eventType string) ([]dispatcher.Dispatcher, error)
	FindFunctionByName(ctx context.Context, name string) (dispatcher.Function, error)
}

// ExecutionsOptions are the dependencies of Executions.
type ExecutionsOptions struct {
	Client    client.Client
	Namespace string // empty means "default"
	// UIURL is the Temporal Web UI's base URL, for links to runs; empty
	// gives no links.
	UIURL     string
	TaskQueue string // of replays; empty means workflows.DefaultTaskQueue
	Eager     bool   // start replays eagerly (only when a worker shares Client)
	// LocalCallLimit is the longest call a replayed action's first
	// attempt makes as a local activity; 0 means the workflow's default.
	LocalCallLimit time.Duration
	Audit          AuditLog
	// Dispatchers, when set, lets a replay with the current configuration
	// refuse actions that no longer exist.
	Dispatchers DispatcherSource
	Now         func() time.Time // nil means time.Now
	Logger      *slog.Logger     // nil discards
	// Keys decrypt the payloads of histories and results: the key ring
	// of Client's DataConverter. Nil: payloads are not encrypted.
	Keys *encryption.KeyRing
	// PageTokenKey signs the page tokens handed out, and must be the same
	// in every process behind one URL (models.Store.PageTokenKey). Nil:
	// a random key, so tokens are good only in this process.
	PageTokenKey []byte
}

// Executions is the support view of dispatches: it lists them through
// Temporal's visibility API, reads a run's history for its detail, and
// replays and cancels them. It is client code, like Starter, and needs no
// worker except to answer the outcomes query of a running dispatch.
type Executions struct {
	client         client.Client
	namespace      string
	uiURL          string
	taskQueue      string
	eager          bool
	localCallLimit time.Duration
	audit          AuditLog
	dispatchers    DispatcherSource
	now            func() time.Time
	log            *slog.Logger
	dc             converter.DataConverter // memos, inputs and results: encrypted with the keys
	codec          converter.PayloadCodec  // decrypts raw histories (NewPayloadCodec)
	tokenKey       []byte
	// bulkStarts has this process start one bulk replay at a time, and
	// remembers those it started lately, which visibility may not list
	// yet (roomForBulk).
	bulkStarts struct {
		sync.Mutex
		recent map[string]time.Time // workflow ID → when it was started
	}
}

// NewExecutions returns the executions service.
func NewExecutions(o ExecutionsOptions) (*Executions, error) {
	if o.Client == nil || o.Audit == nil {
		return nil, errors.New("executions: a Temporal client and an audit log are required")
	}
	e := &Executions{
		client: o.Client, namespace: o.Namespace, uiURL: o.UIURL, taskQueue: o.TaskQueue,
		eager: o.Eager, localCallLimit: o.LocalCallLimit, audit: o.Audit, dispatchers: o.Dispatchers,
		now: o.Now, log: o.Logger, dc: DataConverter(o.Keys), codec: NewPayloadCodec(o.Keys), tokenKey: o.PageTokenKey,
	}
	if e.tokenKey == nil {
		e.tokenKey = make([]byte, 32)
		rand.Read(e.tokenKey)
	}
	if e.namespace == "" {
		e.namespace = "default"
	}
	if e.taskQueue == "" {
		e.taskQueue = workflows.DefaultTaskQueue
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	return e, nil
}

// List returns the runs f matches, in the order of Temporal's visibility
// store: running ones first, then by close time, newest first. Errors:
// EINVALID for a bad filter or page token, EUNAVAILABLE when Temporal
// does not answer.
func (e *Executions) List(ctx context.Context, f dispatcher.ExecutionFilter, r dispatcher.ListRequest) (dispatcher.ExecutionPage, error) {
	q, err := executionQuery(ctx, f)
	if err != nil {
		return dispatcher.ExecutionPage{}, err
	}
	size := pageSize(r.Limit, dispatcher.DefaultExecutionPage, dispatcher.MaxExecutionPage)
	if r.HideReplayed {
		return e.listUnreplayed(ctx, q, size, r.PageToken)
	}
	token, err := e.decodeToken(ctx, listToken, r.PageToken)
	if err != nil {
		return dispatcher.ExecutionPage{}, err
	}
	infos, next, err := e.list(ctx, q, size, token)
	if err != nil {
		return dispatcher.ExecutionPage{}, err
	}
	page := dispatcher.ExecutionPage{Executions: e.toExecutions(infos), NextPageToken: e.encodeToken(ctx, listToken, next)}
	if err := e.markReplayed(ctx, page.Executions); err != nil {
		// The page stands without it.
		e.log.WarnContext(ctx, "could not tell which listed runs were replayed since", "err", err)
	}
	return page, nil
}

// unreplayedScan bounds the runs one page of a list that hides replayed
// runs reads: a page may come back short of its size, with a token for
// the rest, rather than keep the caller waiting through thousands of
// runs a bulk replay superseded.
const unreplayedScan = 5 * dispatcher.MaxExecutionPage

// listUnreplayed is List leaving out the runs a replay has superseded.
// Before, the console left them out of each page it was given, and a
// list of failed dispatches after a bulk replay was pages of nothing.
// Its token is a position in Temporal's listing (unreplayedAt): the
// Temporal page being read, and the last run given from it.
func (e *Executions) listUnreplayed(ctx context.Context, q string, size int, pageToken string) (dispatcher.ExecutionPage, error) {
	b, err := e.decodeToken(ctx, unreplayedToken, pageToken)
	if err != nil {
		return dispatcher.ExecutionPage{}, err
	}
	pos, err := readUnreplayedAt(b)
	if err != nil {
		return dispatcher.ExecutionPage{}, err
	}
	at := func(p unreplayedAt) string { return e.encodeToken(ctx, unreplayedToken, p.bytes()) }
	var page dispatcher.ExecutionPage
	from := pos // where the token points, should its run not be found
	for scanned := 0; ; {
		infos, next, err := e.list(ctx, q, dispatcher.MaxExecutionPage, pos.token)
		if err != nil {
			return dispatcher.ExecutionPage{}, err
		}
		first, found := pos.start(infos)
		switch {
		case found:
		case len(next) > 0 && scanned < unreplayedScan:
			// Runs that failed since came first and pushed it down (the
			// first page has no token to hold its place): it is further on.
			scanned += len(infos)
			pos.token = next
			continue
		default: // gone (its retention passed), or too far: its place
			from.after = ""
			pos = from
			continue
		}
		xs := e.toExecutions(infos[first:])
		if err := e.markReplayed(ctx, xs); err != nil {
			return dispatcher.ExecutionPage{}, err
		}
		scanned += len(xs)
		for i, x := range xs {
			if x.ReplayedAs != "" {
				continue
			}
			page.Executions = append(page.Executions, x)
			if len(page.Executions) == size && i+1 < len(xs) {
				page.NextPageToken = at(unreplayedAt{token: pos.token, after: x.RunID, skip: first + i + 1})
				return page, nil
			}
		}
		switch {
		case len(next) == 0:
			return page, nil
		case len(page.Executions) == size || scanned >= unreplayedScan:
			page.NextPageToken = at(unreplayedAt{token: next})
			return page, nil
		}
		pos = unreplayedAt{token: next}
	}
}

// unreplayedAt is where a list that hides replayed runs goes on: in the
// page Temporal answers for token, or a page after it, after the run
// after, or, when that run is no longer there (its retention passed),
// after the first skip runs of that page.
// Not by a count alone: the first page has no token, and a run that
// failed since comes first in it; nor every page after: a token may point
// among the running ones, which close. The position is by the run.
type unreplayedAt struct {
	token []byte
	after string
	skip  int
}

func (p unreplayedAt) bytes() []byte {
	b := binary.AppendUvarint(nil, uint64(p.skip))
	b = binary.AppendUvarint(b, uint64(len(p.after)))
	return append(append(b, p.after...), p.token...)
}

func readUnreplayedAt(b []byte) (unreplayedAt, error) {
	if len(b) == 0 {
		return unreplayedAt{}, nil
	}
	skip, w := binary.Uvarint(b)
	if w <= 0 || skip > dispatcher.MaxExecutionPage {
		return unreplayedAt{}, errPageToken
	}
	b = b[w:]
	n, w := binary.Uvarint(b)
	if w <= 0 || n > uint64(len(b)-w) {
		return unreplayedAt{}, errPageToken
	}
	b = b[w:]
	return unreplayedAt{skip: int(skip), after: string(b[:n]), token: b[n:]}, nil
}

// start is the index in infos, the page read for p.token, of the first run
// not given yet, and whether infos has it: the one after p.after, else,
// without p.after, the one after the first p.skip.
func (p unreplayedAt) start(infos []*workflowpb.WorkflowExecutionInfo) (int, bool) {
	if p.after == "" {
		return min(p.skip, len(infos)), true
	}
	for i, info := range infos {
		if info.GetExecution().GetRunId() == p.after {
			return i + 1, true
		}
	}
	return 0, false
}

// toExecutions is toExecution of each of infos.
func (e *Executions) toExecutions(infos []*workflowpb.WorkflowExecutionInfo) []dispatcher.Execution {
	out := make([]dispatcher.Execution, len(infos))
	for i, info := range infos {
		out[i] = e.toExecution(info)
	}
	return out
}

// markReplayed sets ReplayedAs on the failed and canceled runs of xs, and
// those that skipped actions to be run later (a pause, a filter that
// failed), that a replay, or a reset, has superseded: a list of failed
// dispatches showed, without a word, those support had fixed and
// replayed, which the failures summary leaves out; a list by skipReason,
// those replayed once their dispatcher was resumed. Not those a false
// filter skipped: they are done, and common.
func (e *Executions) markReplayed(ctx context.Context, xs []dispatcher.Execution) error {
	var runs []dispatcher.RunRef
	for _, x := range xs {
		if x.Status == dispatcher.ExecutionFailed || x.Status == dispatcher.ExecutionCanceled ||
			x.SkipReason == dispatcher.SkipPaused || x.SkipReason == dispatcher.SkipFilterError {
			runs = append(runs, dispatcher.RunRef{WorkflowID: x.WorkflowID, RunID: x.RunID})
		}
	}
	if len(runs) == 0 {
		return nil
	}
	superseded, err := e.supersededBy(ctx, runs)
	if err != nil {
		return err
	}
	for i := range xs {
		xs[i].ReplayedAs = superseded[xs[i].RunID]
	}
	return nil
}

// Count returns how many runs f matches.
func (e *Executions) Count(ctx context.Context, f dispatcher.ExecutionFilter) (int64, error) {
	q, err := executionQuery(ctx, f)
	if err != nil {
		return 0, err
	}
	res, err := e.client.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: e.namespace, Query: q})
	if err != nil {
		return 0, temporalError(err, "counting dispatches")
	}
	return res.GetCount(), nil
}

// ListRuns returns one page of the runs f matches, as bare references, for
// a bulk replay. The token is the visibility store's own.
func (e *Executions) ListRuns(ctx context.Context, f dispatcher.ExecutionFilter, pageSize int, pageToken []byte) ([]dispatcher.RunRef, []byte, error) {
	q, err := executionQuery(ctx, f)
	if err != nil {
		return nil, nil, err
	}
	infos, next, err := e.list(ctx, q, pageSize, pageToken)
	if err != nil {
		return nil, nil, err
	}
	return refs(infos), next, nil
}

// RunStatuses returns the execution status of each run, in order. A run
// Temporal no longer knows (its retention passed) counts as failed: it
// cannot be shown to have succeeded.
func (e *Executions) RunStatuses(ctx context.Context, runs []dispatcher.RunRef) ([]string, error) {
	out := make([]string, len(runs))
	for i, r := range runs {
		x, err := e.describe(ctx, r.WorkflowID, r.RunID)
		switch {
		case dispatcher.ErrorCode(err) == dispatcher.ENOTFOUND:
			out[i] = dispatcher.ExecutionFailed
		case err != nil:
			return nil, err
		default:
			out[i] = x.Status
		}
	}
	return out, nil
}

// CountReplays counts the replays a bulk replay started by state: their
// statuses in one count grouped by status, so that they add up to the
// replays started at one moment; then, counted after it, the moves: of
// the failed, those of some named actions that failed only with the
// failures they carry of others (no named action among their failed ones)
// as completed; of the running, those scheduled, and those scheduled
// beside (named) actions failed for good already as failed. A run that
// closed after the grouped count is moved from the running, where that
// count has it, and no count moves more runs than it had: the total never
// runs ahead of the runs closed, and the bulk replay, which ends once its
// replays are closed or scheduled, counts again. Before, a count per
// status: a replay that closed between the count of its old status and of
// its new one was in neither, and a bulk replay's progress did not add
// up, and went backwards.
func (e *Executions) CountReplays(ctx context.Context, bulkReplayID string, actions []string) (workflows.ReplayCounts, error) {
	var c workflows.ReplayCounts
	base := "WorkflowType = " + quote(workflows.WorkflowDispatch) + " AND " + workflows.AttrBulkReplayID.GetName() + " = " + quote(bulkReplayID)
	count := func(clause string) (int, error) {
		res, err := e.client.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: e.namespace, Query: base + clause})
		return int(res.GetCount()), temporalError(err, "counting replays")
	}
	res, err := e.client.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: e.namespace, Query: base + " GROUP BY ExecutionStatus"})
	if err != nil {
		return c, temporalError(err, "counting replays")
	}
	for _, g := range res.GetGroups() {
		var name string
		if len(g.GetGroupValues()) != 1 || converter.GetDefaultDataConverter().FromPayload(g.GetGroupValues()[0], &name) != nil {
			return c, fmt.Errorf("counting replays: a group of %d values, not a status", len(g.GetGroupValues()))
		}
		s, _ := enums.WorkflowExecutionStatusFromString(name) // one a later server adds: failed, as executionStatus has it
		n := int(g.GetCount())
		switch status, _ := executionStatus(s, false); status {
		case dispatcher.ExecutionCompleted:
			c.Completed += n
		case dispatcher.ExecutionCanceled:
			c.Canceled += n
		case dispatcher.ExecutionRunning:
			c.Running += n // scheduled ones too
		default:
			c.Failed += n
		}
	}
	if len(actions) > 0 {
		carrying, err := count(" AND " + carryingClause(actions))
		if err != nil {
			return c, err
		}
		fromFailed := min(carrying, c.Failed)
		fromRunning := min(carrying-fromFailed, c.Running) // closed since
		c.Completed += fromFailed + fromRunning
		c.Failed -= fromFailed
		c.Running -= fromRunning
	}
	waiting := " AND ExecutionStatus = 'Running' AND " + workflows.AttrScheduled.GetName() + " = true AND "
	ids := workflows.AttrFailedActionIDs.GetName()
	failedNow, notFailed := ids+" IS NOT NULL", ids+" IS NULL"
	if len(actions) > 0 {
		in := " IN (" + quoteAll(actions) + ")"
		failedNow, notFailed = ids+in, "("+ids+" IS NULL OR "+ids+" NOT"+in+")"
	}
	scheduled, err := count(waiting + notFailed)
	if err != nil {
		return c, err
	}
	c.Scheduled = min(scheduled, c.Running)
	failedWaiting, err := count(waiting + failedNow)
	if err != nil {
		return c, err
	}
	failedWaiting = min(failedWaiting, c.Running-c.Scheduled)
	c.Failed += failedWaiting
	c.Running -= failedWaiting // each replay counted once
	return c, nil
}

// carryingClause matches the replays of actions that failed with none of
// them, skipping none, only with the failures they carry of others (a
// keyword list NOT IN holds none of the values).
func carryingClause(actions []string) string {
	ids := workflows.AttrFailedActionIDs.GetName()
	return "ExecutionStatus = 'Failed' AND " + ids + " IS NOT NULL AND " + ids + " NOT IN (" + quoteAll(actions) + ") AND " +
		workflows.AttrSkipped.GetName() + " IS NULL"
}

// quoteAll quotes each of vs, comma-separated, for an IN clause.
func quoteAll(vs []string) string {
	quoted := make([]string, len(vs))
	for i, v := range vs {
		quoted[i] = quote(v)
	}
	return strings.Join(quoted, ", ")
}

func (e *Executions) list(ctx context.Context, query string, pageSize int, token []byte) ([]*workflowpb.WorkflowExecutionInfo, []byte, error) {
	res, err := e.client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Namespace: e.namespace, PageSize: int32(pageSize), NextPageToken: token, Query: query,
	})
	if err != nil {
		return nil, nil, temporalError(err, "listing dispatches")
	}
	return res.GetExecutions(), res.GetNextPageToken(), nil
}

// listAll pages through query, stopping after limit runs; more reports
// whether it stopped early.
func (e *Executions) listAll(ctx context.Context, query string, limit int) (infos []*workflowpb.WorkflowExecutionInfo, more bool, err error) {
	var token []byte
	for {
		page, next, err := e.list(ctx, query, min(1000, limit-len(infos)), token)
		if err != nil {
			return nil, false, err
		}
		infos = append(infos, page...)
		if len(next) == 0 {
			return infos, false, nil
		}
		if len(infos) >= limit {
			return infos, true, nil
		}
		token = next
	}
}

// describe returns a run of a dispatch; an empty runID means the latest.
func (e *Executions) describe(ctx context.Context, workflowID, runID string) (dispatcher.Execution, error) {
	res, err := e.describeRun(ctx, workflowID, runID)
	if err != nil {
		return dispatcher.Execution{}, err
	}
	return e.toExecution(res.GetWorkflowExecutionInfo()), nil
}

// describeRun is describe with all Temporal says of the run: its pending
// activities too.
func (e *Executions) describeRun(ctx context.Context, workflowID, runID string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	if err := owned(ctx, workflowID); err != nil {
		return nil, err
	}
	if err := checkRunID(runID); err != nil {
		return nil, err
	}
	res, err := e.client.DescribeWorkflowExecution(ctx, workflowID, runID)
	if err != nil {
		return nil, notFound(temporalError(err, "describing the dispatch"), workflowID, runID)
	}
	return res, nil
}

// toExecution converts Temporal's record of a run. Everything it needs is
// in the record's search attributes and memo: listing never reads a
// history.
func (e *Executions) toExecution(info *workflowpb.WorkflowExecutionInfo) dispatcher.Execution {
	sa := info.GetSearchAttributes().GetIndexedFields()
	x := dispatcher.Execution{
		WorkflowID:      info.GetExecution().GetWorkflowId(),
		RunID:           info.GetExecution().GetRunId(),
		EventType:       keyword(sa[workflows.AttrEventType.GetName()]),
		EventID:         keyword(sa[workflows.AttrEventID.GetName()]),
		DispatcherIDs:   keywords(sa[workflows.AttrDispatcherIDs.GetName()]),
		FailedActionIDs: keywords(sa[workflows.AttrFailedActionIDs.GetName()]),
		SkipReason:      keyword(sa[workflows.AttrSkipped.GetName()]),
		Start:           info.GetStartTime().AsTime(),
	}
	if info.GetCloseTime() != nil {
		x.Close = info.GetCloseTime().AsTime()
	}
	var scheduled bool
	if p := sa[workflows.AttrScheduled.GetName()]; p != nil {
		_ = json.Unmarshal(p.GetData(), &scheduled)
	}
	status, class := executionStatus(info.GetStatus(), scheduled)
	x.Status = status
	x.ErrorClasses, x.Failures = splitErrorClasses(keywords(sa[workflows.AttrErrorClasses.GetName()]), x.DispatcherIDs)
	if class != "" && !slices.Contains(x.ErrorClasses, class) {
		x.ErrorClasses = append(x.ErrorClasses, class)
		x.Failures = append(x.Failures, pairWithEach(class, x.DispatcherIDs)...)
	}
	memo := info.GetMemo().GetFields()
	x.Replay = dispatcher.ReplayInfo{
		Of:           e.memoString(memo[workflows.MemoReplayOf]),
		ID:           e.memoString(memo[workflows.MemoReplayID]),
		RequestedBy:  e.memoString(memo[workflows.MemoRequestedBy]),
		BulkReplayID: e.memoString(memo[workflows.MemoBulkReplayID]),
	}
	if x.Replay.Of == "" {
		x.Replay.Of = keyword(sa[workflows.AttrReplayOf.GetName()])
	}
	x.WebURL = e.webURL(x.WorkflowID, x.RunID)
	return x
}

// pairWithEach pairs class with each dispatcher, or with none when there
// are no dispatchers (a run that ended before it loaded any).
func pairWithEach(class string, dispatcherIDs []string) []dispatcher.ClassDispatcher {
	if len(dispatcherIDs) == 0 {
		return []dispatcher.ClassDispatcher{{ErrorClass: class}}
	}
	out := make([]dispatcher.ClassDispatcher, len(dispatcherIDs))
	for i, d := range dispatcherIDs {
		out[i] = dispatcher.ClassDispatcher{ErrorClass: class, DispatcherID: d}
	}
	return out
}

// webURL links a run in the Temporal Web UI.
func (e *Executions) webURL(workflowID, runID string) string {
	if e.uiURL == "" {
		return ""
	}
	return e.uiURL + "/namespaces/" + url.PathEscape(e.namespace) + "/workflows/" +
		url.PathEscape(workflowID) + "/" + url.PathEscape(runID) + "/history"
}

func (e *Executions) memoString(p *commonpb.Payload) string {
	var s string
	if p != nil {
		_ = e.dc.FromPayload(p, &s)
	}
	return s
}

// keyword decodes a Keyword search attribute.
func keyword(p *commonpb.Payload) string {
	var s string
	if p != nil {
		_ = json.Unmarshal(p.GetData(), &s)
	}
	return s
}

// keywords decodes a KeywordList search attribute; a single keyword
// decodes as a list of one.
func keywords(p *commonpb.Payload) []string {
	if p == nil {
		return nil
	}
	var list []string
	if err := json.Unmarshal(p.GetData(), &list); err == nil {
		return list
	}
	if s := keyword(p); s != "" {
		return []string{s}
	}
	return nil
}

// pageSize is the page size a client asked for (n), or def when it asked
// for none, at most max.
func pageSize(n, def, max int) int {
	if n <= 0 {
		return def
	}
	return min(n, max)
}

// Page tokens are Temporal's bytes (kind listToken), a position in them
// (unreplayedToken) or a history's "run/event" (historyToken), and an
// HMAC-SHA256 of them, their kind and the caller's tenant under the
// installation's page-token key, base64url encoded, so that they travel
// in a query string and one the API did not hand out, or handed another
// tenant, is refused at once: Temporal, handed bytes it did not write,
// fails with a status its client retries for as long as the request may
// take, and the caller would wait for a 503.
func (e *Executions) encodeToken(ctx context.Context, kind byte, b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(append(slices.Clip(b), e.tokenMAC(ctx, kind, b)...))
}

// The kinds of page tokens: one of a history is no list's.
const (
	listToken       = 'L'
	historyToken    = 'H'
	unreplayedToken = 'R' // a list's that hides replayed runs: listUnreplayed
)

func (e *Executions) decodeToken(ctx context.Context, kind byte, s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if n := len(b) - tokenMACSize; err != nil || n < 1 || !hmac.Equal(e.tokenMAC(ctx, kind, b[:n]), b[n:]) {
		return nil, errPageToken
	}
	return b[:len(b)-tokenMACSize], nil
}

var errPageToken = dispatcher.Errorf(dispatcher.EINVALID, "pageToken: is not a token this API handed out to you; start again without it")

// tokenMACSize is the length of a page token's MAC: 128 bits.
const tokenMACSize = 16

func (e *Executions) tokenMAC(ctx context.Context, kind byte, b []byte) []byte {
	m := hmac.New(sha256.New, e.tokenKey)
	m.Write([]byte(dispatcher.CallerOf(ctx).Tenant))
	m.Write([]byte{0, kind})
	m.Write(b)
	return m.Sum(nil)[:tokenMACSize]
}

// checkRunID refuses a run id that is not one (Temporal's are UUIDs)
// before Temporal is asked: one that is not UTF-8 cannot even be sent.
func checkRunID(runID string) error {
	if runID != "" && uuid.Validate(runID) != nil {
		return dispatcher.Errorf(dispatcher.EINVALID, "runId: %q is not a run id (a UUID)", strings.ToValidUTF8(runID, "\uFFFD"))
	}
	return nil
}

// temporalError translates a Temporal client error into a domain error.
func temporalError(err error, doing string) error {
	var (
		notFound *serviceerror.NotFound
		invalid  *serviceerror.InvalidArgument
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &notFound):
		return dispatcher.Errorf(dispatcher.ENOTFOUND, "%s: %s", doing, notFound.Message)
	case errors.As(err, &invalid):
		return dispatcher.Errorf(dispatcher.EINVALID, "%s: %s", doing, invalid.Message)
	}
	return notAnswering(err)
}

// notFound words an ENOTFOUND for a dispatch.
func notFound(err error, workflowID, runID string) error {
	if dispatcher.ErrorCode(err) != dispatcher.ENOTFOUND {
		return err
	}
	if runID != "" {
		return dispatcher.Errorf(dispatcher.ENOTFOUND, "Requested resource is unknown: no run %s of dispatch %s", runID, workflowID)
	}
	return dispatcher.Errorf(dispatcher.ENOTFOUND, "Requested resource is unknown: no dispatch with workflow ID %s "+
		"(an ordered event's starts when its turn comes; until then the dispatch holding its key counts it as waiting)", workflowID)
}

// splitErrorClasses separates what a dispatch recorded in
// DispatchErrorClasses into plain classes and class/dispatcher pairs.
// Runs recorded before the pairs existed have none: each class is then
// paired with every dispatcher of the run, the closest honest guess.
func splitErrorClasses(values, dispatcherIDs []string) (classes []string, pairs []dispatcher.ClassDispatcher) {
	for _, v := range values {
		class, dispatcherID, ok := strings.Cut(v, workflows.PairSeparator)
		if !ok {
			classes = append(classes, v)
			continue
		}
		pairs = append(pairs, dispatcher.ClassDispatcher{ErrorClass: class, DispatcherID: dispatcherID})
	}
	if len(pairs) == 0 {
		for _, c := range classes {
			for _, d := range dispatcherIDs {
				pairs = append(pairs, dispatcher.ClassDispatcher{ErrorClass: c, DispatcherID: d})
			}
		}
	}
	return classes, pairs
}
