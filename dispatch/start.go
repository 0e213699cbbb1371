// Package dispatch is the Temporal client side of the dispatcher: it
// starts dispatches (Starter), lists, reads, replays and cancels them
// (Executions), runs bulk replays' Temporal calls as activities
// (ReplayActivities), registers the search attributes and exports the age
// of pending dispatches. It speaks the domain's types to its callers and
// the workflows' names and inputs to Temporal; the deterministic workflow
// code itself is in package workflows.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/workflows"
)

// Starter starts dispatches.
type Starter struct {
	Client    client.Client
	TaskQueue string // empty means workflows.DefaultTaskQueue
	// Eager asks the server to hand the first workflow task straight back
	// to a worker sharing Client, so that a dispatch whose actions succeed
	// at once completes in one round trip.
	Eager bool
	// Stopping, once closed, ends eager starts: that worker is stopping,
	// and a first task handed to it waited out the workflow task timeout
	// (10 s) before another worker took it.
	Stopping <-chan struct{}
	// LocalCallLimit is the longest call an action's first attempt makes
	// as a local activity; 0 means workflows.DefaultLocalCallLimit.
	LocalCallLimit time.Duration
	// Seen, when set, records every event accepted, so an event sent
	// again after Temporal's retention dropped its first run is still a
	// duplicate for as long as the record lives (its dedup window). Only
	// needed when the namespace's retention is shorter than that window.
	Seen AcceptedEvents
	Now  func() time.Time // nil means time.Now
	// Configs, when set, gives each dispatch its configuration at intake,
	// from a cache keyed by the configuration's version: the workflow then
	// needs neither a local activity to load it nor an upsert of its
	// search attributes, which it is started with. When the database is
	// away (EUNAVAILABLE) Start refuses the event: the configuration says
	// whether the event is ordered, and started without it an ordered
	// event would overtake the earlier ones of its key. Any other failure
	// to read it (a function's secret that no key decrypts) lasts, and
	// would hold back every event after it: the dispatch then starts
	// without, and loads it itself, failing as the configuration does.
	Configs ConfigSource
}

// ConfigSource gives the configuration of an event type, as
// activities.Cache does.
type ConfigSource interface {
	Config(ctx context.Context, eventType string) (dispatcher.Config, error)
}

// AcceptedEvents is a durable record of the events accepted for
// dispatch, by workflow ID. models.Store implements it.
type AcceptedEvents interface {
	// AcceptedEvent returns the dispatch recorded for key, and whether
	// there is one.
	AcceptedEvent(ctx context.Context, key string) (dispatcher.StartResult, bool, error)
	// RecordAcceptedEvent records the dispatch res of key; recording a key
	// twice keeps the first.
	RecordAcceptedEvent(ctx context.Context, key string, res dispatcher.StartResult, at time.Time) error
}

// Start starts the dispatch of ev for the caller's tenant
// (dispatcher.CallerOf) and returns once Temporal has durably accepted it.
// The workflow ID comes from the tenant and the event's identity (its id,
// a CloudEvent's source and id), so an event sent twice dispatches once (for
// as long as Temporal keeps the first run, or Seen its record): the second
// Start reports Duplicate with the first run's id. When Temporal does not
// answer the error has code dispatcher.EUNAVAILABLE.
func (s Starter) Start(ctx context.Context, ev dispatcher.Event) (dispatcher.StartResult, error) {
	id := dispatcher.TenantWorkflowID(dispatcher.CallerOf(ctx).Tenant, ev.WorkflowID())
	if s.Seen != nil {
		res, ok, err := s.Seen.AcceptedEvent(ctx, id)
		switch {
		case err != nil:
			return res, err
		case ok && res.EventType != "" && res.EventType != ev.Type:
			return dispatcher.StartResult{}, otherType(ev)
		case ok:
			return res, nil
		}
	}
	res, err := s.start(ctx, id, ev)
	if err == nil && s.Seen != nil {
		res.EventType = ev.Type
		now := time.Now
		if s.Now != nil {
			now = s.Now
		}
		// Temporal has the dispatch, the record keeps it a duplicate
		// past Temporal's retention. It is written even when the sender
		// has gone; one that cannot be written refuses the event as
		// unavailable: sent again, it is a duplicate of the run Temporal
		// has (or, ordered, one its key's Sequence skips), and recorded
		// then. Before, the failure was dropped, and
		// the event dispatched again once Temporal forgot its run (a
		// probe: 52 of 300 events accepted through blips of the
		// database).
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
		defer cancel()
		if err := s.Seen.RecordAcceptedEvent(rctx, id, res, now()); err != nil {
			return dispatcher.StartResult{}, &dispatcher.Caused{Err: dispatcher.Errorf(dispatcher.EUNAVAILABLE,
				"the event was accepted, but its record against duplicates was not written (%s): send it again, it is not dispatched twice", dispatcher.ErrorMessage(err)), Cause: err}
		}
	}
	return res, err
}

// recordTimeout bounds the write of an accepted event's record.
const recordTimeout = 5 * time.Second

func (s Starter) start(ctx context.Context, id string, ev dispatcher.Event) (dispatcher.StartResult, error) {
	queue := s.TaskQueue
	if queue == "" {
		queue = workflows.DefaultTaskQueue
	}
	in := workflows.DispatchInput{Event: ev, LocalCallLimit: s.LocalCallLimit, Version: workflows.DispatchVersion}
	cfg, err := s.config(ctx, ev)
	if err != nil {
		return dispatcher.StartResult{}, err
	}
	var seq dispatcher.Sequence
	if cfg != nil {
		// Its ordered dispatchers, paused or filtered out as they may be,
		// hold it behind its key: the others would otherwise run it ahead
		// of the events waiting there. Pause and filters apply when its
		// turn comes (the LoadConfig activity).
		seq = cfg.SequenceOf(ev)
		run := cfg.ForEvent(ev)
		in.Config = &run
	}
	if t := dispatcher.TurnOf(ctx); t != nil {
		if err := t.Wait(ctx, seq.TurnKey()); err != nil {
			return dispatcher.StartResult{}, dispatcher.Errorf(dispatcher.EUNAVAILABLE, "waiting for the events received before it: %v", err)
		}
	}
	if seq.Key != "" {
		// It may wait behind its key for hours: it resolves the
		// configuration when its turn comes (the LoadConfig activity), so
		// that the events behind a dispatch that failed run with the fix
		// that let it go on, and not at all once their dispatcher is paused.
		in.Config = nil
		return s.sequence(ctx, id, seq, in, queue)
	}
	run, err := s.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        id,
		TaskQueue: queue,
		// A closed run with this ID means the event was handled (reuse
		// policy); a running one that it is being handled (conflict
		// policy). Either way the server refuses with "already started",
		// and the flag keeps the SDK from hiding that. USE_EXISTING would
		// not do: the server then answers a running duplicate with success
		// (started=false), which the Go SDK does not expose.
		WorkflowIDReusePolicy:                    enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy:                 enums.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		EnableEagerStart:                         s.Eager && !closed(s.Stopping),
		TypedSearchAttributes:                    temporal.NewSearchAttributes(workflows.StartAttributes(id, in)...),
	}, workflows.WorkflowDispatch, in)

	var started *serviceerror.WorkflowExecutionAlreadyStarted
	switch {
	case err == nil:
		return dispatcher.StartResult{WorkflowID: id, RunID: run.GetRunID()}, nil
	case errors.As(err, &started):
		if err := s.sameType(ctx, id, started.RunId, ev); err != nil {
			return dispatcher.StartResult{}, err
		}
		return dispatcher.StartResult{WorkflowID: id, RunID: started.RunId, Duplicate: true}, nil
	default:
		return dispatcher.StartResult{}, refused(err)
	}
}

// closed reports whether ch is closed; a nil ch never is.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// config is the configuration of ev's type, its pauses and filters not
// yet applied (start applies them, once, and the input records the
// outcome: Config.Skipped); nil when there is none to hand over (no
// Configs, or one that could not be read for another reason than the
// store's absence: the dispatch loads it).
func (s Starter) config(ctx context.Context, ev dispatcher.Event) (*dispatcher.Config, error) {
	if s.Configs == nil {
		return nil, nil
	}
	cfg, err := s.Configs.Config(ctx, ev.Type)
	switch {
	case storeDown(err):
		return nil, dispatcher.Errorf(dispatcher.EUNAVAILABLE,
			"the dispatchers of event type %q cannot be read now (%s); the event is not started without them, as it may be ordered: try again",
			ev.Type, dispatcher.ErrorMessage(err))
	case err != nil:
		// A failure that lasts, a function this process's keys do not
		// open among them: the dispatch loads the configuration (on a
		// worker with the keys, or fails saying which). Refused, the
		// event's producers would try again for ever.
		return nil, nil
	}
	return &cfg, nil
}

// Key returns ev's ordering key for the caller's tenant, "" when it is
// dispatched at once, as Start resolves it (intake.Keyer).
func (s Starter) Key(ctx context.Context, ev dispatcher.Event) (string, error) {
	cfg, err := s.config(ctx, ev)
	if err != nil || cfg == nil {
		return "", err
	}
	return cfg.SequenceOf(ev).TurnKey(), nil
}

// sameType refuses ev when the run that has its id dispatched an event of
// another type, as Start does when the record of accepted events says
// so: an id names one event, and the answer "duplicate" would drop ev
// without a word (a key restricted to one type could so suppress another
// type's events whose ids it guessed). A run that cannot be described now
// is taken as the same event.
func (s Starter) sameType(ctx context.Context, id, runID string, ev dispatcher.Event) error {
	desc, err := s.Client.DescribeWorkflowExecution(ctx, id, runID)
	if err != nil {
		return nil
	}
	return checkType(desc, ev)
}

// checkType refuses ev when the run desc describes dispatched an event of
// another type.
func checkType(desc *workflowservice.DescribeWorkflowExecutionResponse, ev dispatcher.Event) error {
	var first string
	p := desc.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields()[workflows.AttrEventType.GetName()]
	if p == nil || converter.GetDefaultDataConverter().FromPayload(p, &first) != nil || first == "" || first == ev.Type {
		return nil
	}
	return otherType(ev)
}

func otherType(ev dispatcher.Event) error {
	return dispatcher.Errorf(dispatcher.EINVALID, "id: %q was sent before as an event of another type; an id names one event, of one type", ev.ID)
}

// refused gives Temporal's refusal of a start, or of a Sequence's
// signal-with-start, its meaning for the producer: EINVALID for an event
// no retry gets through, EUNAVAILABLE for one to send again.
func refused(err error) error {
	var invalid *serviceerror.InvalidArgument
	switch {
	case attributesUnknown(err):
		return dispatcher.Errorf(dispatcher.EUNAVAILABLE, "temporal does not know the dispatch search attributes yet (registered at start-up; a server's cache may take a minute to see them): %v", err)
	case errors.As(err, &invalid) && strings.Contains(invalid.Message, "exceeded workflow execution limit"):
		// The key's Sequence has taken its run's most signals, its
		// workers down or behind: its next run takes more.
		return dispatcher.Errorf(dispatcher.EUNAVAILABLE, "the ordering key's Sequence cannot take more events now (%s); try again", invalid.Message)
	case errors.As(err, &invalid) && strings.Contains(invalid.Message, "Blob data size exceeds limit"), tooLarge(err):
		return dispatcher.Errorf(dispatcher.EINVALID, "content: the event is too large for Temporal, which keeps a dispatch's input "+
			"(the event and its dispatchers' configuration, as JSON, in which <, > and & take 6 bytes each) within its blob limit (2 MiB unless set otherwise) "+
			"and a request within 4 MiB; send a smaller event")
	case errors.As(err, &invalid):
		// The event passed our validation but not Temporal's (e.g. a
		// search attribute, or a signal, over its size limit): the
		// client's to fix.
		return dispatcher.Errorf(dispatcher.EINVALID, "temporal refused the event: %s", invalid.Message)
	default:
		return notAnswering(err)
	}
}

// sequence hands the dispatch of an ordered event to its key's Sequence
// workflow, which runs it when the dispatches of the events before it are
// done (workflows.Sequence). The signal is durable when this returns, and
// its order among the key's signals is the order the intake accepted the
// events. The run does not exist yet: the result has no RunID. An event
// dispatched before is answered as a duplicate, or refused when it was of
// another type, as Start does; a duplicate of one still waiting is found
// out when its turn comes.
func (s Starter) sequence(ctx context.Context, id string, seq dispatcher.Sequence, in workflows.DispatchInput, queue string) (dispatcher.StartResult, error) {
	if d, err := s.Client.DescribeWorkflowExecution(ctx, id, ""); err == nil {
		// Its turn would come only to find the ID taken: said now, not
		// dropped then without a word.
		if err := checkType(d, in.Event); err != nil {
			return dispatcher.StartResult{}, err
		}
		return dispatcher.StartResult{WorkflowID: id, RunID: d.GetWorkflowExecutionInfo().GetExecution().GetRunId(), Duplicate: true}, nil
	}
	tenant := dispatcher.TenantOf(id)
	sd := workflows.SequencedDispatch{WorkflowID: id, Input: in, Block: seq.Block}
	sd.Size = workflows.SequencedSize(sd)
	// A sequence an earlier release started for the key's value keeps the
	// key while it runs: a signal to a closed one is refused, and its
	// events are all done then.
	for _, earlier := range seq.Earlier(tenant) {
		var gone *serviceerror.NotFound
		switch err := s.Client.SignalWorkflow(ctx, earlier, "", workflows.SignalSequenceEvent, sd); {
		case err == nil:
			return dispatcher.StartResult{WorkflowID: id, Sequenced: true}, nil
		case !errors.As(err, &gone):
			return dispatcher.StartResult{}, refused(err)
		}
	}
	seqID := seq.WorkflowID(tenant)
	var attrs []temporal.SearchAttributeUpdate
	if tenant != "" {
		attrs = append(attrs, workflows.AttrTenant.ValueSet(tenant))
	}
	_, err := s.Client.SignalWithStartWorkflow(ctx, seqID, workflows.SignalSequenceEvent, sd,
		client.StartWorkflowOptions{ID: seqID, TaskQueue: queue, TypedSearchAttributes: temporal.NewSearchAttributes(attrs...),
			// The field, not its value: a key may be personal data.
			StaticSummary: "Ordered dispatches of one value of " + seq.Field},
		workflows.WorkflowSequence, workflows.SequenceInput{})
	if err != nil {
		return dispatcher.StartResult{}, refused(err)
	}
	return dispatcher.StartResult{WorkflowID: id, Sequenced: true}, nil
}

// tooLarge reports whether gRPC refused a request for its size, which it
// says with ResourceExhausted, as Temporal's rate limits do; unlike them,
// no retry will ever get it through.
func tooLarge(err error) bool {
	var exhausted *serviceerror.ResourceExhausted
	if errors.As(err, &exhausted) {
		return exhausted.Cause == enums.RESOURCE_EXHAUSTED_CAUSE_UNSPECIFIED && strings.Contains(exhausted.Message, "message larger than max")
	}
	// The server's gRPC refuses a request over its limit before Temporal
	// sees it: the SDK hands that on as a bare gRPC status. Before, a
	// 500, which producers retry for ever.
	st, ok := status.FromError(err)
	return ok && st.Code() == codes.ResourceExhausted && strings.Contains(st.Message(), "message larger than max")
}

// attributesUnknown reports whether Temporal refused a start because it
// does not know a search attribute the dispatcher sets: the worker
// registers them when it starts, and a server without
// system.forceSearchAttributesCacheRefreshOnRead may not see them for a
// minute. Not the producer's mistake: a 400 would make it drop the event.
func attributesUnknown(err error) bool {
	var invalid *serviceerror.InvalidArgument
	return errors.As(err, &invalid) &&
		(strings.Contains(invalid.Message, "is not defined") || strings.Contains(invalid.Message, "no mapping defined for search attribute") ||
			strings.Contains(invalid.Message, "not a valid search attribute")) // a query's
}

// temporalUnavailable is EUNAVAILABLE for err, a Temporal that does not
// answer: err, which names the server's address, reaches the logs but
// not the client (dispatcher.ErrorMessage).
func temporalUnavailable(err error) error {
	return fmt.Errorf("%w (%w)", dispatcher.Errorf(dispatcher.EUNAVAILABLE, "temporal is unavailable: try again"), err)
}

// notAnswering is EUNAVAILABLE for err when Temporal did not answer in
// time (unavailable) or refused the dispatcher itself (refusesUs); err as
// it is otherwise.
func notAnswering(err error) error {
	switch {
	case unavailable(err):
		return temporalUnavailable(err)
	case refusesUs(err):
		return temporalRefusesUs(err)
	}
	return err
}

// refusesUs reports whether Temporal refused the dispatcher itself rather
// than its request: it knows no namespace TEMPORAL_NAMESPACE, or does not
// accept its credentials (an API key, a client certificate). Before, a
// 500 that the runbooks call a bug of ours, to every producer.
func refusesUs(err error) bool {
	var (
		namespace *serviceerror.NamespaceNotFound
		denied    *serviceerror.PermissionDenied
	)
	return errors.As(err, &namespace) || errors.As(err, &denied) || status.Code(err) == codes.Unauthenticated
}

// temporalRefusesUs is EUNAVAILABLE for err (refusesUs): the operator's
// to fix, and the client's to send again then. The cause, which names the
// namespace, reaches the logs but not the client.
func temporalRefusesUs(err error) error {
	return fmt.Errorf("%w (%w)", dispatcher.Errorf(dispatcher.EUNAVAILABLE,
		"temporal refuses the dispatcher's namespace or credentials, which its operator must fix (its log says how): try again later"), err)
}

// unavailable reports whether err means Temporal did not answer in time,
// or cannot take the request now (a rate limit of the namespace or the
// cluster), as opposed to refusing it.
func unavailable(err error) bool {
	var (
		unavail   *serviceerror.Unavailable
		deadline  *serviceerror.DeadlineExceeded
		canceled  *serviceerror.Canceled
		exhausted *serviceerror.ResourceExhausted
	)
	return errors.As(err, &unavail) || errors.As(err, &deadline) || errors.As(err, &canceled) || errors.As(err, &exhausted) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}
