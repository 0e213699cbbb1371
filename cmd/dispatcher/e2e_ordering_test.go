package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go"
	js "github.com/nats-io/nats.go/jetstream"
	amqp "github.com/rabbitmq/amqp091-go"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
	"github.com/dispatcherhq/dispatcher/producer"
	"github.com/dispatcherhq/dispatcher/workflows"
)

// orderSink is a task function that records, per key, the sequence
// numbers of the calls it gets, and fails the calls listed in failing.
type orderSink struct {
	mu      sync.Mutex
	seen    map[string][]int
	calls   int
	failing map[string]bool // "key/seq"
	// holds keeps the calls of these events ("key/seq") open until the
	// channel closes; timeoutSeconds is then the function's timeout.
	holds          map[string]chan struct{}
	timeoutSeconds int
}

func (o *orderSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Data struct {
			Key string `json:"key"`
			Seq int    `json:"seq"`
		} `json:"data"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	event := fmt.Sprintf("%s/%d", body.Data.Key, body.Data.Seq)
	o.mu.Lock()
	o.calls++
	o.seen[body.Data.Key] = append(o.seen[body.Data.Key], body.Data.Seq)
	failing, hold := o.failing[event], o.holds[event]
	o.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
		}
	}
	if failing {
		http.Error(w, "refused", http.StatusUnprocessableEntity)
	}
}

func (o *orderSink) snapshot() (int, map[string][]int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make(map[string][]int, len(o.seen))
	for k, v := range o.seen {
		out[k] = slices.Clone(v)
	}
	return o.calls, out
}

// orderedSystem is a system with a dispatcher for event type "ordered"
// whose one action calls sink, its events ordered by content.key.
func orderedSystem(t *testing.T, sink *orderSink, opts ...systemOption) *system {
	s := startSystem(t, opts...)
	srv := httptest.NewServer(sink)
	t.Cleanup(srv.Close)
	fn := map[string]any{"name": "record", "url": srv.URL + "/record"}
	if sink.timeoutSeconds > 0 {
		fn["timeoutSeconds"] = sink.timeoutSeconds
	}
	s.call("POST", "/functions/v1", fn, 200)
	s.call("POST", "/dispatchers/v1", map[string]any{"name": "in-order", "eventType": "ordered",
		"ordering": map[string]any{"key": "content.key"},
		"actions": []any{map[string]any{"type": "task", "name": "record", "functionName": "record",
			"data":        map[string]any{"key": "{{ .event.content.key }}", "seq": "{{ .event.content.seq }}"},
			"retryPolicy": map[string]any{"maximumAttempts": 1}}},
	}, 200)
	return s
}

// post sends an ordered event and returns the intake's answer.
func (s *system) post(key string, seq int) (map[string]any, error) {
	return s.postPadded(key, seq, "")
}

// postPadded sends an ordered event whose content carries pad.
func (s *system) postPadded(key string, seq int, pad string) (map[string]any, error) {
	b, _ := json.Marshal(map[string]any{"id": fmt.Sprintf("%s-%d", key, seq), "type": "ordered",
		"content": map[string]any{"key": key, "seq": seq, "pad": pad}})
	req, _ := http.NewRequest("POST", s.url+"/events/v1", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != http.StatusAccepted {
		return nil, fmt.Errorf("POST /events/v1 %s-%d = %d %v (%v)", key, seq, res.StatusCode, out, err)
	}
	return out, nil
}

// postLarge sends the ordered events from to to of key, each padded to
// 200 KiB.
func (s *system) postLarge(t *testing.T, key string, from, to int) {
	t.Helper()
	pad := strings.Repeat("x", 200<<10)
	for seq := from; seq <= to; seq++ {
		if _, err := s.postPadded(key, seq, pad); err != nil {
			t.Fatal(err)
		}
	}
}

// Ordering per key holds with 50 keys × 20 events under 32 concurrent
// publishers: each key's events reach the function in the order the
// intake accepted them, one after another, while the keys run in
// parallel.
func TestEndToEndOrderingPerKey(t *testing.T) {
	const keys, perKey, publishers = 50, 20, 32
	sink := &orderSink{seen: map[string][]int{}}
	s := orderedSystem(t, sink)
	publishOrdered(t, keys, perKey, publishers, func(key string, seq int) error {
		acc, err := s.post(key, seq)
		if err == nil && (acc["sequenced"] != true || acc["runId"] != "") {
			err = fmt.Errorf("accepted %v, want a sequenced event", acc)
		}
		return err
	})
	sink.inOrder(t, s, keys, perKey)
}

// publishOrdered sends perKey events of each of keys keys ("user-<k>",
// sequence numbers from 0) from publishers concurrent publishers:
// publisher p owns keys p, p+publishers, … and sends each key's events in
// order, so that order is the arrival order.
func publishOrdered(t *testing.T, keys, perKey, publishers int, send func(key string, seq int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, publishers)
	for p := range publishers {
		wg.Go(func() {
			for seq := range perKey {
				for k := p; k < keys; k += publishers {
					if err := send(fmt.Sprint("user-", k), seq); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// inOrder waits until keys × perKey calls have come, and checks that
// each key's came in order, sequence numbers 0 to perKey-1.
func (o *orderSink) inOrder(t *testing.T, s *system, keys, perKey int) {
	t.Helper()
	var seen map[string][]int
	s.pollFor(4*time.Minute, "every event to reach the function", func() bool {
		n, snap := o.snapshot()
		seen = snap
		return n >= keys*perKey
	})
	want := make([]int, perKey)
	for i := range want {
		want[i] = i
	}
	for k := range keys {
		if got := seen[fmt.Sprint("user-", k)]; !slices.Equal(got, want) {
			t.Errorf("user-%d's events reached the function as %v, want %v", k, got, want)
		}
	}
}

// Ordering per key holds for events from a broker too: 50 keys × 20
// events sent through the producer package by 32 concurrent publishers,
// each key's in order by one of them, reach the function in that order.
func TestEndToEndBrokerOrderingPerKey(t *testing.T) {
	const keys, perKey, publishers = 50, 20, 32
	for _, broker := range []struct {
		name  string
		setup func(t *testing.T) (env []string, transport producer.Transport)
	}{
		{"amqp", amqpOrderingSetup},
		{"nats", natsOrderingSetup},
	} {
		t.Run(broker.name, func(t *testing.T) {
			env, transport := broker.setup(t)
			sink := &orderSink{seen: map[string][]int{}}
			s := orderedSystem(t, sink, splitProcesses, withEnv(env...))
			s.workerReady(broker.name)
			p, err := producer.New(transport)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = p.Close() })
			publishOrdered(t, keys, perKey, publishers, func(key string, seq int) error {
				_, err := p.Dispatch(t.Context(), "ordered", map[string]any{"key": key, "seq": seq},
					producer.WithID(fmt.Sprintf("%s-%d", key, seq)))
				return err
			})
			sink.inOrder(t, s, keys, perKey)
		})
	}
}

// amqpOrderingSetup is the settings of an AMQP intake on an exchange and
// queue of the test's own, and a producer transport to it.
func amqpOrderingSetup(t *testing.T) ([]string, producer.Transport) {
	url := brokerURL("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
	conn, err := amqp.Dial(url)
	if err != nil {
		testenv.Missing(t, "RabbitMQ at %s is unavailable (make services starts it): %v", url, err)
		return nil, nil
	}
	name := "dispatcher.test." + randomName()
	t.Cleanup(func() { deleteAMQPTopology(conn, name); _ = conn.Close() })
	return []string{"DISPATCHER_AMQP_URL=" + url, "DISPATCHER_AMQP_EXCHANGE=" + name, "DISPATCHER_AMQP_QUEUE=" + name},
		producer.AMQP(url, producer.AMQPExchange(name), producer.AMQPDeclare(false))
}

// natsOrderingSetup is the settings of a NATS intake on a stream of the
// test's own, and a producer transport to it.
func natsOrderingSetup(t *testing.T) ([]string, producer.Transport) {
	url := brokerURL("TEST_NATS_URL", nats.DefaultURL)
	nc, err := nats.Connect(url, nats.Timeout(5*time.Second))
	if err != nil {
		testenv.Missing(t, "NATS at %s is unavailable (make services starts it): %v", url, err)
		return nil, nil
	}
	id := randomName()
	stream, subject := "DISPATCHER_TEST_"+id, "test"+id
	t.Cleanup(func() {
		if jsc, err := js.New(nc); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = jsc.DeleteStream(ctx, stream)
		}
		nc.Close()
	})
	return []string{"DISPATCHER_NATS_URL=" + url, "DISPATCHER_NATS_STREAM=" + stream, "DISPATCHER_NATS_SUBJECT=" + subject},
		producer.NATS(url, producer.NATSSubjectPrefix(subject+"."), producer.NATSStream(stream))
}

// blockedKey starts an ordered system calling sink, which must fail k/0,
// sends k/0, k/1 and k/2, and waits until k/0's failed dispatch blocks its
// key; it returns the system and that dispatch's workflow id.
func blockedKey(t *testing.T, sink *orderSink, opts ...systemOption) (*system, string) {
	t.Helper()
	s := orderedSystem(t, sink, opts...)
	var first map[string]any
	for seq := range 3 {
		acc, err := s.post("k", seq)
		if err != nil {
			t.Fatal(err)
		}
		if seq == 0 {
			first = acc
		}
	}
	id := first["workflowId"].(string)
	s.poll("the failed dispatch to block its key", func() bool {
		// 404 until the key's Sequence has started it.
		code, raw := s.request("GET", "/executions/v1/"+url.PathEscape(id), nil)
		var d map[string]any
		return code == 200 && json.Unmarshal(raw, &d) == nil && d["status"] == "failed" && d["blocking"] == true
	})
	return s, id
}

// A failed dispatch blocks its key: the events after it wait, the
// execution detail says so, and a replay of it lets them go on, in order.
func TestEndToEndOrderingBlocksUntilReplayed(t *testing.T) {
	sink := &orderSink{seen: map[string][]int{}, failing: map[string]bool{"k/0": true}}
	s, id := blockedKey(t, sink)
	wid := url.PathEscape(id)
	if _, seen := sink.snapshot(); !slices.Equal(seen["k"], []int{0}) {
		t.Fatalf("while k/0 blocks, the function got %v, want only 0: %v", seen["k"], s.call("GET", "/executions/v1/"+wid, nil, 200))
	}
	// The events it holds have no dispatch yet: its detail names them.
	d := s.call("GET", "/executions/v1/"+wid, nil, 200)
	if w, _ := d["waiting"].(map[string]any); w == nil || w["count"] != 2.0 || fmt.Sprint(w["workflowIds"]) != fmt.Sprint(waitingIDs(id, 1, 2)) {
		t.Fatalf("the blocking dispatch's waiting = %v, want events 1 and 2", d["waiting"])
	}
	if e := s.call("GET", "/executions/v1/"+url.PathEscape(waitingIDs(id, 1, 1)[0]), nil, 404); !strings.Contains(fmt.Sprint(e["message"]), "waiting") {
		t.Errorf("a waiting event's 404 does not say where to find it: %v", e)
	}
	sink.mu.Lock()
	sink.failing = nil
	sink.mu.Unlock()
	s.call("POST", "/executions/v1/"+wid+"/replay", map[string]any{}, 202)
	s.poll("the replay and the waiting events to run", func() bool {
		_, seen := sink.snapshot()
		return len(seen["k"]) == 4
	})
	// The replay runs beside the events it released: after the failed
	// first call, 1 comes before 2, and 0 once more somewhere.
	_, seen := sink.snapshot()
	rest := slices.DeleteFunc(slices.Clone(seen["k"][1:]), func(n int) bool { return n == 0 })
	if seen["k"][0] != 0 || len(rest) != 2 || !slices.Equal(rest, []int{1, 2}) {
		t.Fatalf("the function got %v, want 0, then its replay and 1, 2 in order", seen["k"])
	}
	if d := s.call("GET", "/executions/v1/"+wid, nil, 200); d["blocking"] == true {
		t.Fatalf("after the replay the dispatch still blocks: %v", d)
	}
}

// A failed dispatch that blocks its key, reset from the Temporal Web UI
// or CLI once its function is fixed, makes its call and lets the key go
// on, as a replay does. Before, the reset run completed and the key stayed
// blocked, the detail showing nothing: the events behind it waited for a
// release by hand (operator probe).
func TestEndToEndOrderingResetReleasesTheKey(t *testing.T) {
	sink := &orderSink{seen: map[string][]int{}, failing: map[string]bool{"k/0": true}}
	s, id := blockedKey(t, sink)
	sink.mu.Lock()
	sink.failing = nil
	sink.mu.Unlock()
	ctx := context.Background()
	var firstTask int64
	for it := s.temporal.GetWorkflowHistory(ctx, id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT); firstTask == 0 && it.HasNext(); {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if ev.GetEventType() == enums.EVENT_TYPE_WORKFLOW_TASK_COMPLETED {
			firstTask = ev.GetEventId()
		}
	}
	if _, err := s.temporal.ResetWorkflowExecution(ctx, &workflowservice.ResetWorkflowExecutionRequest{Namespace: "default",
		WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: id}, Reason: "e2e: the function is fixed", WorkflowTaskFinishEventId: firstTask,
		RequestId: "e2e-reset-release"}); err != nil {
		t.Fatal(err)
	}
	var seen map[string][]int
	s.pollFor(time.Minute, "the reset run and the events it held to run", func() bool {
		_, seen = sink.snapshot()
		return len(seen["k"]) == 4
	})
	if !slices.Equal(seen["k"], []int{0, 0, 1, 2}) {
		t.Fatalf("the function got %v, want 0 (failed), 0 (the reset run), then 1 and 2", seen["k"])
	}
	if d := s.call("GET", "/executions/v1/"+url.PathEscape(id), nil, 200); d["status"] != "completed" || d["blocking"] == true {
		t.Fatalf("after the reset the dispatch %v, blocking %v", d["status"], d["blocking"])
	}
}

// A key released right after the worker crashed (SIGKILL) and was
// started again, when an operator recovers: the key's Sequence answers
// from the new worker. Before, Temporal held the query for the dead one,
// whose run it had cached, and the release answered 503 for 10 s.
func TestEndToEndOrderingReleasedRightAfterACrash(t *testing.T) {
	sink := &orderSink{seen: map[string][]int{}, failing: map[string]bool{"k/0": true}}
	s, id := blockedKey(t, sink, splitProcesses)
	s.crashWorker()
	s.startWorker()
	if out := s.cli("executions", "release", id); !strings.Contains(out, "released the ordering key "+id+" held") {
		t.Fatalf("dispatcher executions release: %s", out)
	}
	s.poll("the waiting events to run", func() bool {
		_, seen := sink.snapshot()
		return len(seen["k"]) == 3
	})
}

// A blocked key is released by hand (`dispatcher executions release`, or
// `POST …/release`), the failed event
// not run again; also once the namespace's retention has deleted the
// failed dispatch, whose key its Sequence still holds. Before, the
// release of a deleted dispatch answered 404 and the key stayed blocked
// for good.
func TestEndToEndOrderingReleased(t *testing.T) {
	for _, deleted := range []bool{false, true} {
		t.Run(fmt.Sprint("deleted=", deleted), func(t *testing.T) {
			sink := &orderSink{seen: map[string][]int{}, failing: map[string]bool{"k/0": true}}
			s, id := blockedKey(t, sink)
			wid := url.PathEscape(id)
			if deleted {
				if _, err := s.temporal.WorkflowService().DeleteWorkflowExecution(t.Context(), &workflowservice.DeleteWorkflowExecutionRequest{
					Namespace: "default", WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: id}}); err != nil {
					t.Fatal(err)
				}
				s.pollFor(3*time.Minute, "the dispatch to be gone (deletion is asynchronous: 30 s and more)", func() bool {
					_, err := s.temporal.DescribeWorkflowExecution(t.Context(), id, "")
					return err != nil
				})
			}
			if deleted {
				s.call("POST", "/executions/v1/"+wid+"/release", nil, 200)
			} else if out := s.cli("executions", "release", id); !strings.Contains(out, "released the ordering key "+id+" held") {
				t.Fatalf("dispatcher executions release: %s", out)
			}
			s.poll("the waiting events to run", func() bool {
				_, seen := sink.snapshot()
				return len(seen["k"]) == 3
			})
			if _, seen := sink.snapshot(); !slices.Equal(seen["k"], []int{0, 1, 2}) {
				t.Fatalf("the function got %v, want 0 (failed, not run again), then 1, 2", seen["k"])
			}
			if !deleted {
				if d := s.call("GET", "/executions/v1/"+wid, nil, 200); d["blocking"] == true {
					t.Fatalf("after the release the dispatch still blocks: %v", d)
				}
			}
			// It blocks nothing now: a conflict, or, deleted, nothing known.
			again := map[bool]int{false: 409, true: 404}[deleted]
			s.call("POST", "/executions/v1/"+wid+"/release", nil, again)
		})
	}
}

// A change of onFailure to skip applies to the dispatches that fail from
// then on, waiting ones included: here the second event, accepted while
// its dispatcher blocked, fails after the change and lets the third go
// on. Before, the policy of when it was accepted held the key (a probe).
func TestEndToEndOrderingOnFailureChangedApplies(t *testing.T) {
	sink := &orderSink{seen: map[string][]int{}, failing: map[string]bool{"k/0": true, "k/1": true}}
	s, id := blockedKey(t, sink)
	list := s.call("GET", "/dispatchers/v1?eq(name,in-order)", nil, 200)
	d := list["data"].([]any)[0].(map[string]any)
	s.call("PUT", "/dispatchers/v1/"+d["id"].(string), map[string]any{"ordering": map[string]any{"key": "content.key", "onFailure": "skip"}}, 200)
	s.call("POST", "/executions/v1/"+url.PathEscape(id)+"/release", nil, 200)
	s.poll("the events after the second, which failed after the change, to run", func() bool {
		_, seen := sink.snapshot()
		return len(seen["k"]) == 3
	})
	if _, seen := sink.snapshot(); !slices.Equal(seen["k"], []int{0, 1, 2}) {
		t.Fatalf("the function got %v, want 0 and 1 (failed), then 2", seen["k"])
	}
}

// A blocked key holds what its Sequence can carry over ContinueAsNew
// (workflows.SequenceQueueBytes); each event after that is dispatched at
// once as an overflow, which fails with OrderingOverflow without running,
// and runs when replayed. The Sequence continues as new while blocked,
// carrying the events it holds, which run in order once it is released.
// Before, the queue had no bound: the Sequence continued as new with more
// than Temporal's 2 MiB blob limit, the server terminated it, and every
// event it held was lost.
func TestEndToEndOrderingOverflow(t *testing.T) {
	sink := &orderSink{seen: map[string][]int{}, failing: map[string]bool{"k/0": true}}
	s, id := blockedKey(t, sink) // k/0 blocks; k/1 and k/2 wait
	seqID := dispatcher.Sequence{Field: "content.key", Key: "k"}.WorkflowID(dispatcher.TenantOf(id))
	first, err := s.temporal.DescribeWorkflowExecution(t.Context(), seqID, "")
	if err != nil {
		t.Fatal(err)
	}
	// 7 more fit, and 24 pass the history size at which Temporal
	// suggests continuing as new (4 MiB).
	const last = 26
	s.postLarge(t, "k", 3, last)
	wid := func(seq int) string { return url.PathEscape(strings.Replace(id, "k-0", fmt.Sprint("k-", seq), 1)) }
	overflowed := func(seq int) bool {
		code, raw := s.request("GET", "/executions/v1/"+wid(seq), nil)
		var d map[string]any
		return code == 200 && json.Unmarshal(raw, &d) == nil && d["status"] == "failed" &&
			fmt.Sprint(d["errorClasses"]) == "[OrderingOverflow]"
	}
	s.poll("the events past the bound to fail as overflows", func() bool {
		for seq := 10; seq <= last; seq++ {
			if !overflowed(seq) {
				return false
			}
		}
		return true
	})
	s.poll("the blocked Sequence to continue as new", func() bool {
		d, err := s.temporal.DescribeWorkflowExecution(t.Context(), seqID, "")
		return err == nil && d.WorkflowExecutionInfo.Execution.RunId != first.WorkflowExecutionInfo.Execution.RunId &&
			d.WorkflowExecutionInfo.Status == enums.WORKFLOW_EXECUTION_STATUS_RUNNING
	})
	if overflowed(9) {
		t.Fatal("k/9 overflowed: the bound holds 7 events of 200 KiB besides k/1 and k/2")
	}
	if _, seen := sink.snapshot(); !slices.Equal(seen["k"], []int{0}) {
		t.Fatalf("while k/0 blocks, the function got %v, want only 0", seen["k"])
	}

	s.call("POST", "/executions/v1/"+url.PathEscape(id)+"/release", nil, 200)
	s.poll("the events the Sequence held to run", func() bool {
		_, seen := sink.snapshot()
		return len(seen["k"]) == 10
	})
	s.call("POST", "/executions/v1/"+wid(last)+"/replay", map[string]any{}, 202)
	s.poll("the replayed overflow to run", func() bool {
		_, seen := sink.snapshot()
		return len(seen["k"]) == 11
	})
	if _, seen := sink.snapshot(); !slices.Equal(seen["k"], []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, last}) {
		t.Fatalf("the function got %v, want 0 to 9 in order, then the replayed %d", seen["k"], last)
	}
}

// A key whose head dispatch runs long (its call held open) while events
// arrive that take the Sequence's history past the size at which Temporal
// suggests continuing as new (24 of 200 KiB, past 4 MiB): the Sequence
// continues as new while the head runs, waits for it in its next run
// (AwaitDispatch), and runs the waiting events in order once it ends.
// Before, it could not continue as new while its child ran, and its
// history grew with every event until the server terminated it (50 MiB),
// losing the events it held.
func TestEndToEndOrderingLongHead(t *testing.T) {
	release := make(chan struct{})
	sink := &orderSink{seen: map[string][]int{}, holds: map[string]chan struct{}{"k/0": release}, timeoutSeconds: 600}
	s := orderedSystem(t, sink)
	let := sync.OnceFunc(func() { close(release) })
	t.Cleanup(let) // before the sink's server closes, which waits for the held call
	head, err := s.post("k", 0)
	if err != nil {
		t.Fatal(err)
	}
	s.poll("the head's call to arrive", func() bool {
		_, seen := sink.snapshot()
		return len(seen["k"]) == 1
	})
	seqID := dispatcher.Sequence{Field: "content.key", Key: "k"}.WorkflowID(dispatcher.TenantOf(head["workflowId"].(string)))
	first, err := s.temporal.DescribeWorkflowExecution(t.Context(), seqID, "")
	if err != nil {
		t.Fatal(err)
	}
	const last = 24
	s.postLarge(t, "k", 1, last)
	s.poll("the Sequence to continue as new with its head running", func() bool {
		d, err := s.temporal.DescribeWorkflowExecution(t.Context(), seqID, "")
		if err != nil || d.WorkflowExecutionInfo.Execution.RunId == first.WorkflowExecutionInfo.Execution.RunId {
			return false
		}
		v, err := s.temporal.QueryWorkflow(t.Context(), seqID, "", workflows.QuerySequence)
		var st workflows.SequenceState
		return err == nil && v.Get(&st) == nil && st.Running != nil && st.Running.WorkflowID == head["workflowId"] &&
			st.Running.RunID != "" && len(st.Queue) == 7
	})
	if _, seen := sink.snapshot(); !slices.Equal(seen["k"], []int{0}) {
		t.Fatalf("while k/0 runs, the function got %v, want only 0", seen["k"])
	}
	// The head, handed over to the Sequence's next run, counts the events
	// its key holds behind it.
	d := s.call("GET", "/executions/v1/"+url.PathEscape(head["workflowId"].(string)), nil, 200)
	if w, _ := d["waiting"].(map[string]any); d["status"] != "running" || w == nil || w["count"] != 7.0 ||
		fmt.Sprint(w["workflowIds"]) != fmt.Sprint(waitingIDs(head["workflowId"].(string), 1, 7)) {
		t.Fatalf("the running head: status %v, waiting %v; want running, events 1 to 7 waiting", d["status"], d["waiting"])
	}
	let()
	s.poll("the events the Sequence held to run", func() bool {
		_, seen := sink.snapshot()
		return len(seen["k"]) == 8
	})
	if _, seen := sink.snapshot(); !slices.Equal(seen["k"], []int{0, 1, 2, 3, 4, 5, 6, 7}) {
		t.Fatalf("the function got %v, want 0 to 7 in order (8 to %d overflowed)", seen["k"], last)
	}
}

// waitingIDs are the workflow IDs of events from to to of the key of the
// dispatch head (k-0).
func waitingIDs(head string, from, to int) []string {
	var ids []string
	for seq := from; seq <= to; seq++ {
		ids = append(ids, strings.Replace(head, "k-0", fmt.Sprint("k-", seq), 1))
	}
	return ids
}

// Support staff find a blocked key in the console: the failed dispatch
// says that it blocks its key and which events wait behind it (which have
// no dispatch of their own yet), and releasing the key, after a
// confirmation, lets them run in order.
func TestEndToEndConsoleReleasesBlockedKey(t *testing.T) {
	sink := &orderSink{seen: map[string][]int{}, failing: map[string]bool{"k/0": true}}
	s, id := blockedKey(t, sink)
	b := startBrowser(t, s.url)
	b.signIn(s.token)
	b.open("/executions/" + url.PathEscape(id))
	b.waitText("#run-status", "Failed")
	b.waitText("#ordering", "blocks its ordering key: 2 events wait behind it")
	b.do("show the waiting events", chromedp.Click(chromedp.CSS("#waiting summary")))
	if got, want := b.text("#waiting ol"), strings.Join(waitingIDs(id, 1, 2), ""); got != want {
		t.Errorf("the waiting events shown are %q, want %q", got, want)
	}
	b.do("release", chromedp.Click(chromedp.ID("release-button")), chromedp.WaitVisible(chromedp.ID("release-dialog")),
		chromedp.Click(chromedp.ID("release-dialog-confirm")))
	b.waitJS("the notice to go", `!document.getElementById('ordering') && !document.getElementById('release-button')`)
	b.waitText("#act-done", "The ordering key is released.") // before, said to screen readers only
	b.waitText("#audit-table", "release")
	s.poll("the waiting events to run", func() bool {
		_, seen := sink.snapshot()
		return len(seen["k"]) == 3
	})
	if _, seen := sink.snapshot(); !slices.Equal(seen["k"], []int{0, 1, 2}) {
		t.Fatalf("the function got %v, want 0 (failed, not run again), then 1, 2", seen["k"])
	}
	b.checkProblems()
}

// The events waiting behind a blocked key run with the configuration of
// when their turn comes: the function fixed while they waited (here, its
// URL moved) is the one they call. Before, each carried the configuration
// of when it was accepted, called the broken function again, and blocked
// the key anew.
func TestEndToEndOrderingWaitingEventsRunTheFix(t *testing.T) {
	sink := &orderSink{seen: map[string][]int{}, failing: map[string]bool{"k/0": true}}
	s, id := blockedKey(t, sink)
	fixed := &orderSink{seen: map[string][]int{}}
	srv := httptest.NewServer(fixed)
	t.Cleanup(srv.Close)
	fns := s.call("GET", "/functions/v1?eq(name,record)", nil, 200)["data"].([]any)
	s.call("PUT", "/functions/v1/"+fns[0].(map[string]any)["id"].(string), map[string]any{"url": srv.URL + "/record"}, 200)
	s.call("POST", "/executions/v1/"+url.PathEscape(id)+"/release", nil, 200)
	s.poll("the waiting events to call the fixed function", func() bool {
		_, seen := fixed.snapshot()
		return len(seen["k"]) == 2
	})
	if _, seen := fixed.snapshot(); !slices.Equal(seen["k"], []int{1, 2}) {
		t.Errorf("the fixed function got %v, want 1, 2", seen["k"])
	}
	if _, seen := sink.snapshot(); !slices.Equal(seen["k"], []int{0}) {
		t.Errorf("the broken function got %v, want only 0", seen["k"])
	}
}
