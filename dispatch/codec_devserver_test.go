package dispatch_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/proxy"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/activities"
	"github.com/dispatcherhq/dispatcher/dispatch"
	"github.com/dispatcherhq/dispatcher/encryption"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
	"github.com/dispatcherhq/dispatcher/workflows"
)

// secretName is in the event: it must not be readable in Temporal's
// history, except in the input of the temporal task function, whose own
// worker reads it.
const secretName = "Ann Zebrafinch"

// TestEncryptedHistoryOnDevServer runs real dispatches with the codec on
// a dev server and reads the history back with a client that has no key:
// every payload and failure message is ciphertext but the function's
// input; the executions service, which has the key, still shows the
// event, the outcomes, a decoded raw history, and replays.
func TestEncryptedHistoryOnDevServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	keys := testKeys(t, "k1")
	plain := testenv.TemporalClient(t)
	enc, err := client.NewClientFromExisting(plain, client.Options{
		DataConverter: dispatch.DataConverter(keys), FailureConverter: dispatch.FailureConverter(keys),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(enc.Close)

	const queue, fnQueue = "encryption-test", "encryption-test-functions"
	store := &testenv.MemStore{
		Dispatchers: []dispatcher.Dispatcher{{ID: "d1", Name: "welcome", EventType: "signup", Actions: []dispatcher.Action{
			{ID: "m1", Type: dispatcher.ActionMail, TemplateID: "tpl", Recipients: dispatcher.Recipients{To: []string{"ann@example.com"}}},
			{ID: "m2", Type: dispatcher.ActionMail, TemplateID: "bad", Recipients: dispatcher.Recipients{To: []string{"ann@example.com"}}},
			{ID: "t1", Type: dispatcher.ActionTask, FunctionName: "erase"},
		}}},
		Templates: map[string]dispatcher.Template{
			"tpl": {ID: "tpl", Subject: "Hi {{ .event.content.name }}", Text: "Hello {{ .event.content.name }}"},
			"bad": {ID: "bad", Subject: "Hi {{ .event.content.name.nope }}"},
		},
		Functions: map[string]dispatcher.Function{"erase": {Name: "erase", Kind: dispatcher.FunctionTemporal, TaskQueue: fnQueue}},
	}
	outbound, err := dispatcher.NewOutbound(nil, []string{fnQueue})
	if err != nil {
		t.Fatal(err)
	}
	acts, err := activities.New(activities.Options{Store: store, SMTPURL: "smtp://" + testenv.SMTP(t).Addr, MailFrom: "no-reply@example.com", Outbound: outbound})
	if err != nil {
		t.Fatal(err)
	}
	ex, err := dispatch.NewExecutions(dispatch.ExecutionsOptions{Client: enc, TaskQueue: queue, Audit: testenv.Store(t), Dispatchers: store, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	w := worker.New(enc, queue, worker.Options{})
	workflows.Register(w)
	w.RegisterActivity(acts)
	rw := worker.New(enc, workflows.ReplayTaskQueue(queue), worker.Options{})
	rw.RegisterActivity(dispatch.NewReplayActivities(ex))
	// The function's worker holds no key.
	got := make(chan dispatcher.TaskPayload, 4)
	fw := worker.New(plain, fnQueue, worker.Options{})
	fw.RegisterWorkflowWithOptions(func(_ workflow.Context, p dispatcher.TaskPayload) error {
		got <- p
		return nil
	}, workflow.RegisterOptions{Name: "erase"})
	for _, w := range []worker.Worker{w, rw, fw} {
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Stop)
	}

	start, err := dispatch.Starter{Client: enc, TaskQueue: queue}.Start(ctx, dispatcher.Event{
		ID: "enc-1", Type: "signup", Content: json.RawMessage(`{"name":"` + secretName + `"}`), Time: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	_ = enc.GetWorkflow(ctx, start.WorkflowID, start.RunID).Get(ctx, nil) // m2 fails the run
	select {
	case p := <-got:
		if !strings.Contains(string(p.Data), secretName) {
			t.Errorf("the function's worker read %s; want the event's content", p.Data)
		}
	case <-ctx.Done():
		t.Fatal("the temporal function never ran")
	}

	// Without the key: ciphertext everywhere but the function's input.
	events := history(ctx, t, plain, start.WorkflowID, start.RunID)
	input := events[0].GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads()[0]
	if string(input.GetMetadata()["encoding"]) != "binary/encrypted" || json.Valid(input.GetData()) || strings.Contains(string(input.GetData()), secretName) {
		t.Errorf("the dispatch's input in the history: %q %q; want ciphertext", input.GetMetadata(), input.GetData())
	}
	var payloads, failures int
	for _, ev := range events {
		childInput := ev.GetEventType() == enums.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED
		if err := proxy.VisitPayloads(ctx, ev, proxy.VisitPayloadsOptions{SkipSearchAttributes: true,
			Visitor: func(_ *proxy.VisitPayloadsContext, ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
				for _, p := range ps {
					payloads++
					encrypted := string(p.GetMetadata()["encoding"]) == "binary/encrypted"
					switch {
					case childInput && (encrypted || !strings.Contains(string(p.GetData()), secretName)):
						t.Errorf("the function's input: %q %q; want it in clear text", p.GetMetadata(), p.GetData())
					case !childInput && !encrypted:
						t.Errorf("event %d %v: a payload in clear text: %q %q", ev.GetEventId(), ev.GetEventType(), p.GetMetadata(), p.GetData())
					}
				}
				return ps, nil
			}}); err != nil {
			t.Fatal(err)
		}
		if err := proxy.VisitFailures(ctx, ev, proxy.VisitFailuresOptions{Visitor: func(_ *proxy.VisitFailuresContext, f *failurepb.Failure) error {
			failures++
			if f.GetMessage() != "Encoded failure" || f.GetEncodedAttributes() == nil {
				b, _ := protojson.Marshal(ev)
				t.Errorf("event %d %v: failure message %q in clear text\n%s", ev.GetEventId(), ev.GetEventType(), f.GetMessage(), b)
			}
			return nil
		}}); err != nil {
			t.Fatal(err)
		}
	}
	if payloads < 5 || failures == 0 {
		t.Errorf("the history held %d payloads and %d failures; the check proves little", payloads, failures)
	}

	// With the key: the detail and the raw history read as before.
	d, err := ex.Get(ctx, start.WorkflowID, start.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(d.Event.Content), secretName) || d.Config == nil || len(d.Outcomes) != 3 {
		t.Fatalf("detail: event %s, config %v, %d outcomes; want them decoded", d.Event.Content, d.Config != nil, len(d.Outcomes))
	}
	for _, o := range d.Outcomes {
		if o.ActionID == "m2" && (o.Status != dispatcher.OutcomeFailed || o.Error == "" || strings.Contains(o.Error, "Encoded failure")) {
			t.Errorf("m2: %+v; want its failure readable", o)
		}
	}
	page, err := ex.History(ctx, start.WorkflowID, start.RunID, 1000, "")
	if err != nil {
		t.Fatal(err)
	}
	raw := fmt.Sprintf("%s", page.Events)
	if encrypted := base64.StdEncoding.EncodeToString([]byte("binary/encrypted")); strings.Contains(raw, encrypted) || strings.Contains(raw, "Encoded failure") {
		t.Errorf("the history page is not decoded:\n%s", raw)
	}
	if !strings.Contains(raw, base64.StdEncoding.EncodeToString([]byte("json/plain"))) {
		t.Errorf("the history page holds no json/plain payload:\n%s", raw)
	}

	// A process without k1 (given only a newer key, or none) says so
	// rather than show or replay an empty event. Before, the detail had
	// none, the raw history was a 500, and a replay with the current
	// configuration ran nothing and took the failure for mended.
	// Another k1 (other key material under the same id) is refused for
	// good (ESTATE): no retry mends it.
	for name, lacking := range map[string]*encryption.KeyRing{"a newer key": testKeys(t, "k2"), "no key": nil, "another k1": testKeys(t, "k1")} {
		c, err := client.NewClientFromExisting(plain, client.Options{DataConverter: dispatch.DataConverter(lacking), FailureConverter: dispatch.FailureConverter(lacking)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		other, err := dispatch.NewExecutions(dispatch.ExecutionsOptions{Client: c, TaskQueue: queue, Audit: testenv.Store(t), Dispatchers: store, Keys: lacking})
		if err != nil {
			t.Fatal(err)
		}
		code := dispatcher.EUNAVAILABLE
		if name == "another k1" {
			code = dispatcher.ESTATE
		}
		unreadable := func(what string, err error) {
			t.Helper()
			if dispatcher.ErrorCode(err) != code || !strings.Contains(err.Error(), `cannot be decrypted: encrypted with key "k1"`) {
				t.Errorf("%s, %s: %v; want %s naming key k1", name, what, err, code)
			}
		}
		_, err = other.Get(ctx, start.WorkflowID, start.RunID)
		unreadable("detail", err)
		_, err = other.History(ctx, start.WorkflowID, start.RunID, 1000, "")
		unreadable("raw history", err)
		_, err = other.Replay(ctx, dispatcher.ReplayRequest{WorkflowID: start.WorkflowID, Config: dispatcher.ReplayConfigCurrent, Actor: "ann"})
		unreadable("replay", err)
		testenv.Eventually(t, 15*time.Second, func() string { // visibility
			sum, err := other.Failures(ctx, dispatcher.ExecutionFilter{EventID: "enc-1"}, false, 0)
			if err != nil || len(sum.Groups) == 0 || !strings.Contains(sum.Groups[0].Sample, `cannot be decrypted: encrypted with key "k1"`) {
				return fmt.Sprintf("%s, failures: %+v, %v; want the group, its sample saying why it is not shown", name, sum.Groups, err)
			}
			return ""
		})
	}
	if runs := history(ctx, t, plain, start.WorkflowID, ""); runs[0].GetWorkflowExecutionStartedEventAttributes().GetOriginalExecutionRunId() != start.RunID {
		t.Fatal("a process without the key started a replay")
	}

	// A replay: its memo is encrypted, its search attributes are not
	// (visibility finds it by them), and the list decodes the memo.
	r, err := ex.Replay(ctx, dispatcher.ReplayRequest{WorkflowID: start.WorkflowID, Actions: []string{"m1"}, Actor: "ann"})
	if err != nil {
		t.Fatal(err)
	}
	var list []dispatcher.Execution
	testenv.Eventually(t, 15*time.Second, func() string {
		page, err := ex.List(ctx, dispatcher.ExecutionFilter{EventID: "enc-1"}, dispatcher.ListRequest{})
		if err != nil {
			t.Fatal(err)
		}
		list = page.Executions
		for _, x := range list {
			if x.RunID == r.RunID && x.Replay.Of == start.RunID && x.Replay.RequestedBy == "ann" {
				return ""
			}
		}
		return fmt.Sprintf("the replay %s is not listed with its memo decoded: %+v", r.RunID, list)
	})
	replay := history(ctx, t, plain, start.WorkflowID, r.RunID)[0].GetWorkflowExecutionStartedEventAttributes()
	if memo := replay.GetMemo().GetFields()[workflows.MemoRequestedBy]; string(memo.GetMetadata()["encoding"]) != "binary/encrypted" {
		t.Errorf("the replay's memo: %q; want it encrypted", memo.GetMetadata())
	}
	if sa := replay.GetSearchAttributes().GetIndexedFields()[workflows.AttrReplayOf.GetName()]; !strings.Contains(string(sa.GetData()), start.RunID) {
		t.Errorf("the replay's search attribute: %q; want it readable", sa.GetData())
	}
}

// history reads a run's whole history with c, as it is stored.
func history(ctx context.Context, t *testing.T, c client.Client, workflowID, runID string) []*historypb.HistoryEvent {
	t.Helper()
	var out []*historypb.HistoryEvent
	it := c.GetWorkflowHistory(ctx, workflowID, runID, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	if len(out) == 0 {
		t.Fatalf("no history for %s/%s", workflowID, runID)
	}
	return out
}

// A worker without the key a dispatch's input was encrypted with (a new
// key that reached the intake before the workers, or a pod whose Secret
// was not mounted: no key at all) fails the dispatch's workflow tasks,
// which Temporal retries, and not the dispatch: once a worker with the
// key takes it, it completes. Before, the dispatch failed for good,
// "unable to decode the workflow function input" (with no key at all,
// until the probe of 5 December).
func TestWorkerWithoutTheKeyLeavesTheDispatchToOneWithIt(t *testing.T) {
	for _, mistake := range []string{"another key", "no key"} {
		t.Run(mistake, func(t *testing.T) { workerWithoutTheKey(t, mistake == "no key") })
	}
}

func workerWithoutTheKey(t *testing.T, none bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	plain := testenv.TemporalClient(t)
	with := func(keys *encryption.KeyRing) client.Client {
		c, err := client.NewClientFromExisting(plain, client.Options{DataConverter: dispatch.DataConverter(keys), FailureConverter: dispatch.FailureConverter(keys)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	keys := testKeys(t, "k2")
	right, wrong := with(keys), with(testKeys(t, "k1"))
	queue, eventID := "wrong-key-test", "key-1"
	if none {
		wrong, queue, eventID = with(nil), "no-key-test", "key-2"
	}
	store := &testenv.MemStore{
		Dispatchers: []dispatcher.Dispatcher{{ID: "d1", Name: "welcome", EventType: "signup", Actions: []dispatcher.Action{
			{ID: "m1", Type: dispatcher.ActionMail, TemplateID: "tpl", Recipients: dispatcher.Recipients{To: []string{"ann@example.com"}}},
		}}},
		Templates: map[string]dispatcher.Template{"tpl": {ID: "tpl", Subject: "Hi", Text: "Hello"}},
	}
	acts, err := activities.New(activities.Options{Store: store, SMTPURL: "smtp://" + testenv.SMTP(t).Addr, MailFrom: "no-reply@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	ex, err := dispatch.NewExecutions(dispatch.ExecutionsOptions{Client: right, TaskQueue: queue, Audit: testenv.Store(t), Dispatchers: store, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	run := func(c client.Client) worker.Worker {
		w := worker.New(c, queue, worker.Options{})
		workflows.Register(w)
		w.RegisterActivity(acts)
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		return w
	}
	mistaken := run(wrong)
	start, err := dispatch.Starter{Client: right, TaskQueue: queue, Configs: activities.NewCache(store)}.Start(ctx,
		dispatcher.Event{ID: eventID, Type: "signup", Content: json.RawMessage(`{}`), Time: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() string {
		for _, ev := range history(ctx, t, plain, start.WorkflowID, start.RunID) {
			if ev.GetEventType() == enums.EVENT_TYPE_WORKFLOW_TASK_FAILED {
				return ""
			}
		}
		return "no workflow task failed"
	})
	mistaken.Stop()
	if desc, err := plain.DescribeWorkflowExecution(ctx, start.WorkflowID, start.RunID); err != nil ||
		desc.GetWorkflowExecutionInfo().GetStatus() != enums.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Fatalf("the dispatch a worker with another key took: %v, %v; want it running", desc.GetWorkflowExecutionInfo().GetStatus(), err)
	}
	// Its workflow task failed: no attempt runs, whatever the detail's
	// fallback to its configuration says of its actions.
	if d, err := ex.Get(ctx, start.WorkflowID, ""); err != nil || len(d.Outcomes) != 1 || d.Outcomes[0].Status != dispatcher.OutcomeRunning || d.Outcomes[0].Attempts != 0 {
		t.Fatalf("the detail while its workflow task fails: %+v, %v; want m1 running without an attempt", d.Outcomes, err)
	}
	t.Cleanup(run(right).Stop)
	if err := right.GetWorkflow(ctx, start.WorkflowID, start.RunID).Get(ctx, nil); err != nil {
		t.Fatalf("once a worker with the key took it: %v; want it completed", err)
	}
}
