package dispatch_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/dispatch"
	"github.com/dispatcherhq/dispatcher/encryption"
	"github.com/dispatcherhq/dispatcher/intake"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
	"github.com/dispatcherhq/dispatcher/workflows"
)

func TestStarter(t *testing.T) {
	c := testenv.TemporalClient(t)
	// No worker polls this queue, so the first run stays open: the second
	// start meets a running dispatch.
	s := dispatch.Starter{Client: c, TaskQueue: "no-worker"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ev := dispatcher.Event{ID: "ev-dedup", Type: "user_deleted", Content: json.RawMessage(`{}`), Time: time.Now()}

	first, err := s.Start(ctx, ev)
	if err != nil {
		t.Fatalf("first Start: %v", err)
	}
	if first.Duplicate || first.WorkflowID != dispatcher.WorkflowID(ev.ID) || first.RunID == "" {
		t.Fatalf("first Start = %+v", first)
	}
	second, err := s.Start(ctx, ev)
	if err != nil {
		t.Fatalf("second Start: %v", err)
	}
	if !second.Duplicate || second.RunID != first.RunID || second.WorkflowID != first.WorkflowID {
		t.Fatalf("second Start = %+v, want a duplicate of %+v", second, first)
	}

	// A closed run still blocks the id (REJECT_DUPLICATE).
	if err := c.TerminateWorkflow(ctx, first.WorkflowID, first.RunID, "test"); err != nil {
		t.Fatalf("terminate: %v", err)
	}
	third, err := s.Start(ctx, ev)
	if err != nil {
		t.Fatalf("Start after the run closed: %v", err)
	}
	if !third.Duplicate || third.RunID != first.RunID {
		t.Fatalf("Start after the run closed = %+v, want a duplicate of run %s", third, first.RunID)
	}

	desc, err := c.DescribeWorkflowExecution(ctx, first.WorkflowID, first.RunID)
	if err != nil {
		t.Fatalf("describe: %v", err)
	}
	if got := desc.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields()[workflows.AttrEventID.GetName()]; got == nil ||
		string(got.GetData()) != `"ev-dedup"` {
		t.Errorf("search attribute %s = %s", workflows.AttrEventID.GetName(), got.GetData())
	}
}

func TestStarterUnavailable(t *testing.T) {
	c, err := client.NewLazyClient(client.Options{HostPort: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err = dispatch.Starter{Client: c}.Start(ctx, dispatcher.Event{ID: "ev-1", Type: "x"})
	if code := dispatcher.ErrorCode(err); code != dispatcher.EUNAVAILABLE {
		t.Fatalf("error = %v (code %q), want code %q", err, code, dispatcher.EUNAVAILABLE)
	}
	t.Log(err)
}

// refusingClient answers every start and signal-with-start with err.
type refusingClient struct {
	client.Client
	err error
}

func (c refusingClient) ExecuteWorkflow(context.Context, client.StartWorkflowOptions, any, ...any) (client.WorkflowRun, error) {
	return nil, c.err
}

// DescribeWorkflowExecution knows no dispatch: every event is new.
func (c refusingClient) DescribeWorkflowExecution(context.Context, string, string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	return nil, serviceerror.NewNotFound("workflow execution not found")
}

// A server that does not see the dispatch search attributes yet (the
// worker registered them a moment ago, and its cache is up to a minute
// old) cannot take the event now: EUNAVAILABLE (503, try again; a broker
// source requeues it). Before, the producer got 400 and dropped the event,
// and a broker source dead-lettered it. A value Temporal refuses is still
// the producer's to fix.
func TestStarterSearchAttributesNotYetKnown(t *testing.T) {
	for msg, want := range map[string]string{
		"search attribute DispatchEventType is not defined":                             dispatcher.EUNAVAILABLE,
		"Namespace default has no mapping defined for search attribute DispatchEventID": dispatcher.EUNAVAILABLE,
		"search attribute DispatchEventID exceeds size limit 2048":                      dispatcher.EINVALID,
	} {
		c := refusingClient{err: serviceerror.NewInvalidArgument(msg)}
		_, err := dispatch.Starter{Client: c}.Start(context.Background(), dispatcher.Event{ID: "ev-1", Type: "x"})
		if code := dispatcher.ErrorCode(err); code != want {
			t.Errorf("refused with %q: error %v (code %q), want code %q", msg, err, code, want)
		}
	}
}

// An event larger than gRPC lets through is refused for good (EINVALID:
// 400, a broker's dead letter), although gRPC says ResourceExhausted, as
// a rate limit does. Before, it was EUNAVAILABLE: a broker message over
// 4 MiB (with DISPATCHER_MAX_EVENT_BYTES raised) came back without end,
// and slowed every other message of its source.
func TestStarterMessageTooLarge(t *testing.T) {
	for _, msg := range []string{
		"grpc: received message larger than max (5001313 vs. 4194304)",
		"grpc: trying to send message larger than max (5001313 vs. 4194304)",
	} {
		c := refusingClient{err: serviceerror.NewResourceExhausted(enums.RESOURCE_EXHAUSTED_CAUSE_UNSPECIFIED, msg)}
		_, err := dispatch.Starter{Client: c}.Start(context.Background(), dispatcher.Event{ID: "ev-1", Type: "x"})
		if code := dispatcher.ErrorCode(err); code != dispatcher.EINVALID || !strings.HasPrefix(dispatcher.ErrorMessage(err), "content: the event is too large") {
			t.Errorf("%s: error %v (code %q), want code %q", msg, err, code, dispatcher.EINVALID)
		}
	}
}

// A namespace over its rate limit cannot take the event now: the producer
// gets EUNAVAILABLE (503, try again), not a 500. Before, it got the
// error as it came.
func TestStarterRateLimited(t *testing.T) {
	c := refusingClient{err: serviceerror.NewResourceExhausted(enums.RESOURCE_EXHAUSTED_CAUSE_RPS_LIMIT, "namespace rate limit exceeded")}
	_, err := dispatch.Starter{Client: c}.Start(context.Background(), dispatcher.Event{ID: "ev-1", Type: "x"})
	if code := dispatcher.ErrorCode(err); code != dispatcher.EUNAVAILABLE {
		t.Fatalf("error = %v (code %q), want code %q", err, code, dispatcher.EUNAVAILABLE)
	}
}

// /readyz's search_attributes check fails, naming why, while the namespace
// lacks the dispatch search attributes, and passes once they are
// registered and usable; it asks Temporal from a goroutine of its own,
// never on the caller's behalf, and stops asking once they are.
func TestSearchAttributesCheck(t *testing.T) {
	dispatch.SetSearchAttributesRecheck(t, time.Second)
	c := testenv.Temporal(t).Client() // no search attributes registered
	check := dispatch.SearchAttributesCheck(t.Context(), c, "default")
	testenv.Eventually(t, 30*time.Second, func() string {
		if err := check(t.Context()); err == nil || !strings.Contains(err.Error(), "not a valid search attribute") {
			return fmt.Sprintf("before registration: %v, want Temporal's reason", err)
		}
		return ""
	})
	if err := dispatch.RegisterSearchAttributes(t.Context(), c, "default"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 90*time.Second, func() string {
		if err := check(t.Context()); err != nil {
			return err.Error()
		}
		return ""
	})

	// Lost (a namespace made again), they are registered again. Before,
	// every start failed until the process restarted, ready all along.
	if _, err := c.OperatorService().RemoveSearchAttributes(t.Context(), &operatorservice.RemoveSearchAttributesRequest{
		Namespace: "default", SearchAttributes: []string{workflows.AttrEventID.GetName()}}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 90*time.Second, func() string {
		have, err := c.OperatorService().ListSearchAttributes(t.Context(), &operatorservice.ListSearchAttributesRequest{Namespace: "default"})
		if err != nil {
			return err.Error()
		}
		if _, ok := have.GetCustomAttributes()[workflows.AttrEventID.GetName()]; !ok {
			return "DispatchEventID is still gone"
		}
		if err := check(t.Context()); err != nil {
			return err.Error()
		}
		return ""
	})
}

// failingConfigs cannot read the configuration, with err.
type failingConfigs struct{ err error }

func (c failingConfigs) Config(context.Context, string) (dispatcher.Config, error) {
	return dispatcher.Config{}, c.err
}

// Whether an event is ordered, and by which key, is in its configuration:
// one that cannot be read leaves the event refused (503; a broker source
// requeues it) rather than started at once, which let an ordered event
// overtake the earlier ones of its key, and run past a key blocked by a
// failed dispatch.
//
// A failure that lasts (a function's secret no key decrypts) does not
// refuse the event: it would hold back every event after it on a broker
// source. The dispatch starts without, and fails as its configuration does.
func TestStarterRefusesWithoutTheConfiguration(t *testing.T) {
	started := errors.New("started")
	for _, tc := range []struct {
		configErr error
		want      error // nil: refused with EUNAVAILABLE
	}{
		{dispatcher.Errorf(dispatcher.EUNAVAILABLE, "the database is unavailable"), nil},
		{errors.New("decrypting the secret of function erase: no key has id k1"), started},
		// As the store says it since it answers 503 for it (a function's
		// key missing is unavailable to the API's readers, not a 500).
		{&dispatcher.Caused{Err: dispatcher.Errorf(dispatcher.EUNAVAILABLE, "function 6b0e: secret: no key k1"),
			Cause: fmt.Errorf("encrypted with key %q: %w", "k1", encryption.ErrUnknownKey)}, started},
		{&dispatcher.Caused{Err: dispatcher.Errorf(dispatcher.EUNAVAILABLE, "function 6b0e: secret: does not decrypt"),
			Cause: fmt.Errorf("encrypted with key %q: %w", "k1", encryption.ErrDecrypt)}, started},
	} {
		s := dispatch.Starter{Client: refusingClient{err: started}, Configs: failingConfigs{tc.configErr}}
		_, err := s.Start(context.Background(), dispatcher.Event{ID: "ev-1", Type: "user_deleted"})
		switch {
		case tc.want != nil && !errors.Is(err, tc.want):
			t.Errorf("config error %q: %v, want the start tried", tc.configErr, err)
		case tc.want == nil && (dispatcher.ErrorCode(err) != dispatcher.EUNAVAILABLE || !strings.Contains(err.Error(), `"user_deleted"`)):
			t.Errorf("config error %q: %v, want %s naming the event type", tc.configErr, err, dispatcher.EUNAVAILABLE)
		}
	}
}

func (c refusingClient) SignalWithStartWorkflow(context.Context, string, string, any, client.StartWorkflowOptions, any, ...any) (client.WorkflowRun, error) {
	return nil, c.err
}

// SignalWorkflow knows no legacy Sequence.
func (c refusingClient) SignalWorkflow(context.Context, string, string, string, any) error {
	return serviceerror.NewNotFound("workflow execution not found")
}

// orderedConfigs orders the events of every type by content.userId.
type orderedConfigs struct{}

func (orderedConfigs) Config(_ context.Context, eventType string) (dispatcher.Config, error) {
	return dispatcher.Config{Dispatchers: []dispatcher.Dispatcher{{ID: "d1", EventType: eventType,
		Ordering: &dispatcher.Ordering{Key: "content.userId"}}}}, nil
}

// An ordered event goes to Temporal as a signal-with-start of its key's
// Sequence, and Temporal's refusals of it mean what they mean for a
// start. Before, a signal over the namespace's blob limit (InvalidArgument)
// came back as it was: a 500, and a broker source retried the message
// forever, holding every later event of its key behind it.
func TestStarterRefusalsOfOrderedEvents(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{
		{serviceerror.NewInvalidArgument("Blob data size exceeds limit."), dispatcher.EINVALID},
		// A key's Sequence that has taken its run's most signals (its
		// workers down or behind) takes more once it continues as new.
		{serviceerror.NewInvalidArgument("exceeded workflow execution limit for signal events"), dispatcher.EUNAVAILABLE},
		{serviceerror.NewInvalidArgument("search attribute DispatchTenant is not defined"), dispatcher.EUNAVAILABLE},
		{serviceerror.NewResourceExhausted(enums.RESOURCE_EXHAUSTED_CAUSE_UNSPECIFIED, "grpc: trying to send message larger than max (5001313 vs. 4194304)"), dispatcher.EINVALID},
		{serviceerror.NewResourceExhausted(enums.RESOURCE_EXHAUSTED_CAUSE_RPS_LIMIT, "namespace rate limit exceeded"), dispatcher.EUNAVAILABLE},
		// As the SDK hands on the server's gRPC refusal: a bare status.
		{status.Error(codes.ResourceExhausted, "grpc: received message larger than max (6292129 vs. 4194304)"), dispatcher.EINVALID},
	} {
		for _, configs := range []dispatch.ConfigSource{nil, orderedConfigs{}} {
			s := dispatch.Starter{Client: refusingClient{err: tt.err}, Configs: configs}
			_, err := s.Start(context.Background(), dispatcher.Event{ID: "ev-1", Type: "x", Content: json.RawMessage(`{"userId":7}`)})
			if code := dispatcher.ErrorCode(err); code != tt.want {
				t.Errorf("refused with %v, ordered %t: error %v (code %q), want code %q", tt.err, configs != nil, err, code, tt.want)
			}
		}
	}
}

// startedClient answers a start as Temporal does an event id it keeps,
// and describes that run with the event type it was started with.
type startedClient struct {
	refusingClient
	eventType string
}

func (c startedClient) DescribeWorkflowExecution(context.Context, string, string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	p, err := converter.GetDefaultDataConverter().ToPayload(c.eventType)
	if err != nil {
		return nil, err
	}
	return &workflowservice.DescribeWorkflowExecutionResponse{WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{
		Execution:        &commonpb.WorkflowExecution{WorkflowId: "dispatch-ev-1", RunId: "run-1"},
		SearchAttributes: &commonpb.SearchAttributes{IndexedFields: map[string]*commonpb.Payload{workflows.AttrEventType.GetName(): p}}}}, nil
}

// An event id names one event: one sent again is a duplicate, and one
// sent with another type is refused, naming the id. Before, it was
// answered as a duplicate and never dispatched: an event of one type was
// lost to an earlier one of another (a key restricted to one type could
// so suppress the events of others whose ids it guessed). The same for
// an ordered event: before, it was answered 202, sequenced, and dropped
// without a word when its turn came.
func TestStarterSameIDOtherType(t *testing.T) {
	started := serviceerror.NewWorkflowExecutionAlreadyStarted("started", "", "run-1")
	for _, tt := range []struct {
		first string
		want  string
	}{{"user_deleted", ""}, {"newsletter_signup", dispatcher.EINVALID}, {"", ""}} {
		for _, configs := range []dispatch.ConfigSource{nil, orderedConfigs{}} {
			s := dispatch.Starter{Client: startedClient{refusingClient{err: started}, tt.first}, Configs: configs}
			res, err := s.Start(context.Background(), dispatcher.Event{ID: "ev-1", Type: "user_deleted", Content: json.RawMessage(`{"userId":7}`)})
			switch {
			case tt.want == "" && (err != nil || !res.Duplicate || res.RunID != "run-1"):
				t.Errorf("first sent as %q, ordered %t: %+v, %v; want a duplicate of run-1", tt.first, configs != nil, res, err)
			case tt.want != "" && (dispatcher.ErrorCode(err) != tt.want || !strings.Contains(err.Error(), "id: ")):
				t.Errorf("first sent as %q, ordered %t: %+v, %v; want %s naming the id", tt.first, configs != nil, res, err, tt.want)
			}
		}
	}
}

// seenEvents is an in-memory record of accepted events.
type seenEvents map[string]dispatcher.StartResult

func (s seenEvents) AcceptedEvent(_ context.Context, key string) (dispatcher.StartResult, bool, error) {
	res, ok := s[key]
	res.Duplicate = ok
	return res, ok, nil
}

func (s seenEvents) RecordAcceptedEvent(_ context.Context, key string, res dispatcher.StartResult, _ time.Time) error {
	if _, ok := s[key]; !ok {
		s[key] = res
	}
	return nil
}

// startingClient starts every workflow as run-new.
type startingClient struct{ client.Client }

type startedRun struct{ client.WorkflowRun }

func (startedRun) GetRunID() string { return "run-new" }

func (startingClient) ExecuteWorkflow(context.Context, client.StartWorkflowOptions, any, ...any) (client.WorkflowRun, error) {
	return startedRun{}, nil
}

// The same holds where the database keeps the accepted events (a
// namespace whose retention is shorter than the dedup window): the record
// keeps the event's type. One from before it did ("") is not compared.
func TestStarterSameIDOtherTypeRecorded(t *testing.T) {
	seen := seenEvents{"dispatch-old": {WorkflowID: "dispatch-old", RunID: "run-0"}}
	s := dispatch.Starter{Client: startingClient{}, Seen: seen}
	if res, err := s.Start(context.Background(), dispatcher.Event{ID: "ev-1", Type: "newsletter_signup"}); err != nil || res.Duplicate {
		t.Fatalf("first start: %+v, %v", res, err)
	}
	if res, err := s.Start(context.Background(), dispatcher.Event{ID: "ev-1", Type: "newsletter_signup"}); err != nil || !res.Duplicate || res.RunID != "run-new" {
		t.Errorf("sent again: %+v, %v; want a duplicate of run-new", res, err)
	}
	if res, err := s.Start(context.Background(), dispatcher.Event{ID: "ev-1", Type: "user_deleted"}); dispatcher.ErrorCode(err) != dispatcher.EINVALID || !strings.Contains(err.Error(), "id: ") {
		t.Errorf("sent again with another type: %+v, %v; want EINVALID naming the id", res, err)
	}
	if res, err := s.Start(context.Background(), dispatcher.Event{ID: "old", Type: "user_deleted"}); err != nil || !res.Duplicate {
		t.Errorf("a record without its type: %+v, %v; want a duplicate", res, err)
	}
}

// The broker intake learns a batch's keys before it hands any of its
// events over (intake.Keyer): as Start resolves them.
var _ intake.Keyer = dispatch.Starter{}

func TestStarterKey(t *testing.T) {
	ev := dispatcher.Event{ID: "ev-1", Type: "x", Content: json.RawMessage(`{"userId":7}`)}
	for _, tt := range []struct {
		configs dispatch.ConfigSource
		want    string
	}{{orderedConfigs{}, "content.userId\x007"}, {nil, ""}} {
		if key, err := (dispatch.Starter{Configs: tt.configs}).Key(context.Background(), ev); err != nil || key != tt.want {
			t.Errorf("ordered %t: key %q, %v; want %q", tt.configs != nil, key, err, tt.want)
		}
	}
}

// heldConfigs orders event type x by content.userId through a dispatcher
// that is paused, or whose filter is false for the event, beside an
// unordered one.
type heldConfigs struct{ paused bool }

func (h heldConfigs) Config(context.Context, string) (dispatcher.Config, error) {
	ordered := dispatcher.Dispatcher{ID: "d-ordered", EventType: "x", Ordering: &dispatcher.Ordering{Key: "content.userId"}, Paused: h.paused}
	if !h.paused {
		ordered.Filter = "event.content.userId != 7"
	}
	return dispatcher.Config{Dispatchers: []dispatcher.Dispatcher{ordered, {ID: "d-unordered", EventType: "x"}}}, nil
}

// An event whose ordered dispatcher is paused, or filters it out, still
// waits for its turn behind its key, where the pause and the filter apply:
// before, it was dispatched at once, and the event type's other
// dispatchers ran it ahead of the events waiting there.
func TestStarterHoldsAnEventOfAPausedOrderedDispatcher(t *testing.T) {
	ev := dispatcher.Event{ID: "ev-held", Type: "x", Content: json.RawMessage(`{"userId":7}`), Time: time.Now()}
	for _, paused := range []bool{true, false} {
		if key, err := (dispatch.Starter{Configs: heldConfigs{paused}}).Key(context.Background(), ev); err != nil || key != "content.userId\x007" {
			t.Errorf("paused %t: key %q, %v; want the event's", paused, key, err)
		}
	}
	// No worker polls this queue: the Sequence stays open.
	s := dispatch.Starter{Client: testenv.TemporalClient(t), Configs: heldConfigs{paused: true}, TaskQueue: "no-worker"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if res, err := s.Start(ctx, ev); err != nil || !res.Sequenced {
		t.Errorf("Start: %+v, %v; want it sequenced", res, err)
	}
	// The Web UI says what the Sequence orders, and not the key's value.
	desc, err := s.Client.DescribeWorkflowExecution(ctx, dispatcher.Sequence{Field: "content.userId", Key: "7"}.WorkflowID(""), "")
	if err != nil {
		t.Fatal(err)
	}
	var summary string
	if err := converter.GetDefaultDataConverter().FromPayload(desc.GetExecutionConfig().GetUserMetadata().GetSummary(), &summary); err != nil ||
		summary != "Ordered dispatches of one value of content.userId" {
		t.Errorf("the Sequence's summary: %q, %v", summary, err)
	}
}

// fieldConfigs orders user_deleted by content.userId, order_placed by
// content.orderId.
type fieldConfigs struct{}

func (fieldConfigs) Config(_ context.Context, eventType string) (dispatcher.Config, error) {
	key := map[string]string{"user_deleted": "content.userId", "order_placed": "content.orderId"}[eventType]
	return dispatcher.Config{Dispatchers: []dispatcher.Dispatcher{{ID: "d-" + eventType, EventType: eventType,
		Ordering: &dispatcher.Ordering{Key: key}}}}, nil
}

// Events ordered on different fields go to sequences of their own,
// whatever their values: before, a userId and an orderId of 42 shared
// one, so that a failing order held the user's deletion (and a key
// allowed only order_placed could hold any user's). While a Sequence an
// earlier release named by the value alone runs, the events of its key
// still go to it, so that an upgrade keeps their order; once it has
// closed, to the new one.
func TestStarterSequenceOfAFieldAndLegacy(t *testing.T) {
	c := testenv.TemporalClient(t)
	// No worker polls this queue: every Sequence stays open.
	s := dispatch.Starter{Client: c, Configs: fieldConfigs{}, TaskQueue: "no-worker"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := func(id, typ, content string) {
		t.Helper()
		res, err := s.Start(ctx, dispatcher.Event{ID: id, Type: typ, Content: json.RawMessage(content), Time: time.Now()})
		if err != nil || !res.Sequenced {
			t.Fatalf("Start %s: %+v, %v; want it sequenced", id, res, err)
		}
	}
	// signals counts the events sequence seqID got: 0 when it never ran.
	signals := func(seqID string) int {
		t.Helper()
		n := 0
		iter := c.GetWorkflowHistory(ctx, seqID, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for iter.HasNext() {
			e, err := iter.Next()
			var none *serviceerror.NotFound
			if errors.As(err, &none) {
				return 0
			} else if err != nil {
				t.Fatal(err)
			}
			if e.GetEventType() == enums.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED {
				n++
			}
		}
		return n
	}
	user := dispatcher.Sequence{Field: "content.userId", Key: "42"}
	order := dispatcher.Sequence{Field: "content.orderId", Key: "42"}
	start("u-42", "user_deleted", `{"userId":42}`)
	start("o-42", "order_placed", `{"orderId":42}`)
	start("u-42b", "user_deleted", `{"userId":"42"}`)
	if u, o := signals(user.WorkflowID("")), signals(order.WorkflowID("")); u != 2 || o != 1 {
		t.Errorf("the userId 42 sequence got %d events, the orderId 42 one %d; want 2 and 1", u, o)
	}

	// A Sequence an earlier release started for the key keeps its events
	// while it runs, then they go to today's: the legacy one of value 7;
	// and one of an id above 2^53, which that release rounded to a float64.
	for _, tt := range []struct {
		name, earlier, today, value string
	}{
		{"legacy", dispatcher.Sequence{Key: "7"}.LegacyWorkflowID(""), dispatcher.Sequence{Field: "content.userId", Key: "7"}.WorkflowID(""), "7"},
		{"rounded", dispatcher.Sequence{Field: "content.userId", Key: "9007199254740992"}.WorkflowID(""),
			dispatcher.Sequence{Field: "content.userId", Key: "9007199254740993"}.WorkflowID(""), "9007199254740993"},
	} {
		content := `{"userId":` + tt.value + `}`
		sd := workflows.SequencedDispatch{WorkflowID: dispatcher.WorkflowID(tt.name), Block: true,
			Input: workflows.DispatchInput{Event: dispatcher.Event{ID: tt.name, Type: "user_deleted", Content: json.RawMessage(content)}}}
		run, err := c.SignalWithStartWorkflow(ctx, tt.earlier, workflows.SignalSequenceEvent, sd,
			client.StartWorkflowOptions{ID: tt.earlier, TaskQueue: "no-worker"}, workflows.WorkflowSequence, workflows.SequenceInput{})
		if err != nil {
			t.Fatal(err)
		}
		start(tt.name+"-b", "user_deleted", content)
		if e, n := signals(tt.earlier), signals(tt.today); e != 2 || n != 0 {
			t.Errorf("%s: with the earlier Sequence of its key running, it got %d events and today's %d; want 2 and none", tt.name, e, n)
		}
		if err := c.TerminateWorkflow(ctx, run.GetID(), run.GetRunID(), "test: the earlier sequence is done"); err != nil {
			t.Fatal(err)
		}
		start(tt.name+"-c", "user_deleted", content)
		if e, n := signals(tt.earlier), signals(tt.today); e != 2 || n != 1 {
			t.Errorf("%s: once the earlier Sequence closed, it got %d events and today's %d; want 2 and 1", tt.name, e, n)
		}
	}
}

// eagerClient records whether each start asked for eager start.
type eagerClient struct {
	client.Client
	eager []bool
}

func (c *eagerClient) ExecuteWorkflow(_ context.Context, o client.StartWorkflowOptions, _ any, _ ...any) (client.WorkflowRun, error) {
	c.eager = append(c.eager, o.EnableEagerStart)
	return startedRun{}, nil
}

// Once its worker stops, the intake no longer starts dispatches eagerly:
// the first task it was handed waited out the workflow task timeout
// (10 s) before another worker took it.
func TestStarterNotEagerOnceStopping(t *testing.T) {
	c := &eagerClient{}
	stopping := make(chan struct{})
	s := dispatch.Starter{Client: c, Eager: true, Stopping: stopping}
	for i, ev := range []string{"before", "after"} {
		if i == 1 {
			close(stopping)
		}
		if _, err := s.Start(context.Background(), dispatcher.Event{ID: ev, Type: "signup"}); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(c.eager, []bool{true, false}) {
		t.Errorf("eager starts %v, want [true false]: eager until the worker stops", c.eager)
	}
}

// A namespace with no slot left for a type the dispatch search attributes
// need refuses them for good: RegisterSearchAttributes says so, and what
// is missing, so that a process stops at start-up. Before, it waited for
// ever, and the intake answered 503 as if a cache were late.
func TestRegisterSearchAttributesWithoutRoom(t *testing.T) {
	c := testenv.Temporal(t).Client()
	taken := map[string]enums.IndexedValueType{}
	for i := range 3 { // SQL visibility has three KeywordList slots
		taken[fmt.Sprintf("Other%d", i)] = enums.INDEXED_VALUE_TYPE_KEYWORD_LIST
	}
	if _, err := c.OperatorService().AddSearchAttributes(t.Context(), &operatorservice.AddSearchAttributesRequest{
		Namespace: "default", SearchAttributes: taken}); err != nil {
		t.Fatal(err)
	}
	err := dispatch.RegisterSearchAttributes(t.Context(), c, "default")
	if !errors.Is(err, dispatch.ErrSearchAttributesRefused) || !strings.Contains(err.Error(), "3 KeywordList") {
		t.Fatalf("err = %v, want ErrSearchAttributesRefused naming the 3 KeywordList needed", err)
	}
}

// The task_failed event of a function whose secret this process's keys do
// not open is started without its configuration, as any event is, and not
// retried for ten minutes as if the store were down.
func TestEmitTaskFailedWithAFunctionItCannotDecrypt(t *testing.T) {
	started := errors.New("started")
	undecryptable := &dispatcher.Caused{Err: dispatcher.Errorf(dispatcher.EUNAVAILABLE, "function 6b0e: secret: no key k1"),
		Cause: fmt.Errorf("encrypted with key %q: %w", "k1", encryption.ErrUnknownKey)}
	a := dispatch.NewEventActivities(dispatch.Starter{Client: refusingClient{err: started}, Configs: failingConfigs{undecryptable}})
	_, err := a.EmitTaskFailed(context.Background(), dispatcher.TaskFailure{Event: dispatcher.Event{ID: "ev-1", Type: "user_deleted"}, FunctionName: "erase", WorkflowID: "dispatch-ev-1", RunID: "r1", OriginalRunID: "r1"})
	if err == nil || !strings.Contains(err.Error(), "started") {
		t.Errorf("EmitTaskFailed: %v, want the start tried", err)
	}
}

// blippingSeen is a record of accepted events whose writes fail while
// down is above zero, each failure counting it down, and that records the
// context each write had.
type blippingSeen struct {
	seenEvents
	down     int
	canceled bool
}

func (s *blippingSeen) RecordAcceptedEvent(ctx context.Context, key string, res dispatcher.StartResult, at time.Time) error {
	s.canceled = ctx.Err() != nil
	if s.down > 0 {
		s.down--
		return dispatcher.Errorf(dispatcher.EUNAVAILABLE, "the database is unavailable or busy: try again")
	}
	return s.seenEvents.RecordAcceptedEvent(ctx, key, res, at)
}

// An event that Temporal accepted but whose record could not be written
// is refused as unavailable, so that the sender sends it again; then
// Temporal answers it a duplicate, and the record is written. Before, the
// failure was dropped and the answer was 202: once Temporal's retention
// dropped the run, the event dispatched again within the dedup window (a
// probe, through blips of the database). The record is written on a
// context the sender's leaving does not cancel.
func TestStarterRecordsAnAcceptedEventOrRefusesIt(t *testing.T) {
	seen := &blippingSeen{seenEvents: seenEvents{}, down: 1}
	ev := dispatcher.Event{ID: "ev-1", Type: "user_deleted"}
	s := dispatch.Starter{Client: startingClient{}, Seen: seen}
	if res, err := s.Start(context.Background(), ev); dispatcher.ErrorCode(err) != dispatcher.EUNAVAILABLE ||
		!strings.Contains(err.Error(), "send it again, it is not dispatched twice") {
		t.Fatalf("record not written: %+v, %v; want EUNAVAILABLE saying to send it again", res, err)
	}
	s.Client = startedClient{refusingClient{err: serviceerror.NewWorkflowExecutionAlreadyStarted("started", "", "run-1")}, "user_deleted"}
	if res, err := s.Start(context.Background(), ev); err != nil || !res.Duplicate || res.RunID != "run-1" {
		t.Fatalf("sent again: %+v, %v; want a duplicate of run-1", res, err)
	}
	if rec, ok := seen.seenEvents["dispatch-ev-1"]; !ok || rec.RunID != "run-1" {
		t.Errorf("records %+v, want dispatch-ev-1 recorded as run-1", seen.seenEvents)
	}

	ctx, cancel := context.WithCancel(context.Background())
	s.Client = cancelingClient{startingClient{}, cancel}
	if _, err := s.Start(ctx, dispatcher.Event{ID: "ev-2", Type: "user_deleted"}); err != nil || seen.canceled {
		t.Errorf("the sender gone once Temporal started it: %v, the record's context canceled: %t; want it recorded", err, seen.canceled)
	}
}

// cancelingClient starts a workflow, then cancels the caller's context,
// as a sender that hangs up once Temporal has answered.
type cancelingClient struct {
	startingClient
	cancel context.CancelFunc
}

func (c cancelingClient) ExecuteWorkflow(ctx context.Context, o client.StartWorkflowOptions, w any, args ...any) (client.WorkflowRun, error) {
	defer c.cancel()
	return c.startingClient.ExecuteWorkflow(ctx, o, w, args...)
}
