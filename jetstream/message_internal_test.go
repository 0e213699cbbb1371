package jetstream

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	js "github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/dispatcherhq/dispatcher/intake"
)

// unconfirmedMsg is a message, delivered once, whose acknowledgement
// JetStream does not confirm: the connection dropped after the handler
// took it. The methods handle does not call are left nil.
type unconfirmedMsg struct {
	js.Msg
	body string
}

func (unconfirmedMsg) Subject() string { return "unit.signup" }
func (unconfirmedMsg) Headers() nats.Header {
	return nats.Header{"Content-Type": {"application/json"}, nats.MsgIdHdr: {"evt-1"}}
}
func (m unconfirmedMsg) Data() []byte { return []byte(m.body) }
func (unconfirmedMsg) Metadata() (*js.MsgMetadata, error) {
	return &js.MsgMetadata{NumDelivered: 1, Stream: "S", Sequence: js.SequencePair{Stream: 7}}, nil
}
func (unconfirmedMsg) InProgress() error                { return nil }
func (unconfirmedMsg) NakWithDelay(time.Duration) error { return nil }
func (unconfirmedMsg) DoubleAck(context.Context) error  { return nats.ErrTimeout }

// A message whose acknowledgement JetStream did not confirm is counted
// among those handed back, as the AMQP source counts a failed ack:
// received − acked − dead-lettered − retried adds up. Before, it was
// counted nowhere (broker probe: 300 received, 240 acked, nothing else).
func TestHandleCountsAnUnconfirmedAck(t *testing.T) {
	metrics, err := intake.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.Source("nats")
	st := &starter{}
	s := New(Config{Stream: "S", Subject: "unit"}, &intake.Handler{Source: "nats", Starter: st}, m, slog.New(slog.DiscardHandler))
	s.handle(t.Context(), unconfirmedMsg{body: `{"type":"signup","content":{}}`})
	if n := st.started(); n != 1 {
		t.Fatalf("%d events started, want 1", n)
	}
	if r, a, re := testutil.ToFloat64(m.Received), testutil.ToFloat64(m.Acked), testutil.ToFloat64(m.Retried); r != 1 || a != 0 || re != 1 {
		t.Errorf("received %v, acked %v, retried %v; want 1, 0, 1", r, a, re)
	}
}
