package intake

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestEventTypeSeriesAreBounded(t *testing.T) {
	e, err := NewEvents(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	for i := range maxEventTypes + 50 {
		e.Received("amqp", fmt.Sprintf("type-%d", i), "cloudevents", false)
	}
	if n := testutil.CollectAndCount(e.counter); n != maxEventTypes+1 {
		t.Fatalf("%d series, want %d types and _other", n, maxEventTypes+1)
	}
	if v := testutil.ToFloat64(e.counter.WithLabelValues("amqp", "_other", "cloudevents", "false")); v != 50 {
		t.Fatalf("_other = %v, want 50", v)
	}
}

// The events a broker message starts are counted beside those of HTTP,
// by source and envelope, duplicates apart; those dead-lettered are not.
func TestHandleCountsTheEventsItStarts(t *testing.T) {
	e, err := NewEvents(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	h := newHandler(&starter{})
	h.Events = e
	batch := `[{"specversion":"1.0","id":"a","source":"/s","type":"t"},{"specversion":"1.0","id":"dup","source":"/s","type":"t"}]`
	h.Handle(t.Context(), Message{Header: NewHeader("application/cloudevents-batch+json", nil), Body: []byte(batch)})
	h.Handle(t.Context(), jsonMessage(`{"id":"e1","type":"u"}`))
	h.Handle(t.Context(), jsonMessage(`{"id":"e2"}`)) // no type: dead-lettered
	for labels, want := range map[[4]string]float64{
		{"test", "t", "cloudevents", "false"}:  1,
		{"test", "t", "cloudevents", "true"}:   1,
		{"test", "u", "extrahorizon", "false"}: 1,
	} {
		if got := testutil.ToFloat64(e.counter.WithLabelValues(labels[:]...)); got != want {
			t.Errorf("%v: %v, want %v", labels, got, want)
		}
	}
	if n := testutil.CollectAndCount(e.counter); n != 3 {
		t.Errorf("%d series, want 3", n)
	}
}
