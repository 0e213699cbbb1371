package intake

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the broker sources' Prometheus collectors, one series per
// source ("amqp", "nats").
type Metrics struct {
	received, acked, redelivered, retried *prometheus.CounterVec
	deadLettered                          *prometheus.CounterVec
	lag, up                               *prometheus.GaugeVec
}

// NewMetrics registers the collectors on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, append([]string{"source"}, labels...))
	}
	gauge := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, []string{"source"})
	}
	m := &Metrics{
		received:     counter("dispatcher_broker_messages_received_total", "Messages delivered by a broker source, redeliveries included."),
		acked:        counter("dispatcher_broker_messages_acked_total", "Messages acknowledged once Temporal had durably accepted their events (duplicates included)."),
		redelivered:  counter("dispatcher_broker_messages_redelivered_total", "Messages the broker delivered again (after a crash, a retry or a lost connection)."),
		retried:      counter("dispatcher_broker_messages_retried_total", "Messages handed back to the broker unacknowledged to be delivered again later: Temporal did not answer, or the source stopped."),
		deadLettered: counter("dispatcher_broker_messages_dead_lettered_total", "Messages moved to the dead letters, by reason: invalid (unreadable, or not the schema), refused (Temporal refused an event), max_deliver (delivered too often without an acknowledgement).", "reason"),
		lag:          gauge("dispatcher_broker_consumer_lag", "Messages waiting in the broker for the dispatcher's consumer (not yet delivered to it)."),
		up:           gauge("dispatcher_broker_up", "1 while the source is connected and consuming, 0 otherwise."),
	}
	for _, c := range []prometheus.Collector{m.received, m.acked, m.redelivered, m.retried, m.deadLettered, m.lag, m.up} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Reasons of dead letters, the label of
// dispatcher_broker_messages_dead_lettered_total.
const (
	ReasonInvalid    = "invalid"
	ReasonRefused    = "refused"
	ReasonMaxDeliver = "max_deliver"
)

// SourceMetrics are the series of one source.
type SourceMetrics struct {
	Received, Acked, Redelivered, Retried prometheus.Counter
	Lag, Up                               prometheus.Gauge
	deadLettered                          *prometheus.CounterVec
}

// Source returns the series of the source name; a nil m gives series
// registered nowhere.
func (m *Metrics) Source(name string) *SourceMetrics {
	if m == nil {
		var err error
		if m, err = NewMetrics(prometheus.NewRegistry()); err != nil {
			panic(err) // a fresh registry takes them
		}
	}
	s := &SourceMetrics{
		Received: m.received.WithLabelValues(name), Acked: m.acked.WithLabelValues(name),
		Redelivered: m.redelivered.WithLabelValues(name), Retried: m.retried.WithLabelValues(name),
		Lag: m.lag.WithLabelValues(name), Up: m.up.WithLabelValues(name),
		deadLettered: m.deadLettered.MustCurryWith(prometheus.Labels{"source": name}),
	}
	for _, r := range []string{ReasonInvalid, ReasonRefused, ReasonMaxDeliver} {
		s.deadLettered.WithLabelValues(r) // the series exist from the start
	}
	return s
}

// DeadLettered counts a dead letter of reason.
func (s *SourceMetrics) DeadLettered(reason string) { s.deadLettered.WithLabelValues(reason).Inc() }
