package producer_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/dispatcherhq/dispatcher/producer"
)

// A stand-in for the dispatcher's intake, so that the example runs.
func fakeDispatcher() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"workflowId":"dispatch-evt-1","runId":"r1","duplicate":false}`)
	}))
}

func Example() {
	srv := fakeDispatcher()
	defer srv.Close()

	// Over HTTP with an API key; producer.AMQP("amqp://…") or
	// producer.NATS("nats://…") publish to the brokers the dispatcher
	// consumes instead.
	p, err := producer.New(producer.HTTP(srv.URL, "dsp_…"), producer.WithSource("billing@host-1"))
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ev, err := p.Dispatch(ctx, "user_deleted", map[string]any{"userId": 42, "email": "ann@example.com"},
		producer.WithUserID("u-42"), producer.WithPartitionKey("u-42"), producer.WithID("evt-1"))
	if producer.Retryable(err) {
		// Not taken, but it may be later: keep ev.ID (an outbox row) and
		// send it again with producer.WithID(ev.ID), producer.WithTime(ev.Time).
		log.Printf("event %s: will retry: %v", ev.ID, err)
		return
	}
	if err != nil {
		log.Fatal(err) // the event is invalid or refused: errors.Is(err, producer.ErrRejected)
	}
	fmt.Println(ev.ID, ev.Receipt.WorkflowID, ev.Receipt.Attempts)
	fmt.Println(string(ev.Body[:49]))
	// Output:
	// evt-1 dispatch-evt-1 1
	// {"id":"evt-1","type":"user_deleted","timestamp":"
}

func ExampleRetryable() {
	p, _ := producer.New(producer.HTTP("http://127.0.0.1:1", ""), // nothing listens there
		producer.WithRetry(producer.Retry{Attempts: 2, Initial: time.Millisecond, Max: time.Millisecond}))
	ev, err := p.Dispatch(context.Background(), "user_deleted", nil)
	fmt.Println(producer.Retryable(err), errors.Is(err, producer.ErrRejected), ev.Receipt.Attempts)
	// Output: true false 2
}
