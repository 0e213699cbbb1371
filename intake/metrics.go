package intake

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

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
		deadLettered: counter("dispatcher_broker_messages_dead_lettered_total", "Messages moved to the dead letters, by reason: invalid (unreadable, or not the schema), refused (an event's start was refused, by Temporal or as an id already taken by an event of another type), max_deliver (delivered too often without an acknowledgement).", "reason"),
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

// maxEventTypes bounds the event types that get a series of their own:
// types come from producers, and every new label value is a new series.
const maxEventTypes = 500

// Events counts the events accepted for dispatch, whichever way they came
// (dispatcher_events_received_total): over HTTP, from RabbitMQ or from
// NATS. Before, the broker intakes' were not counted, and a dashboard of
// events received read 0 where every event came from a broker.
type Events struct {
	mu      sync.Mutex
	types   map[string]bool // event types with a series of their own
	counter *prometheus.CounterVec
}

// NewEvents registers the counter on reg.
func NewEvents(reg prometheus.Registerer) (*Events, error) {
	e := &Events{types: map[string]bool{}, counter: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dispatcher_events_received_total",
		Help: "Events accepted for dispatch, by source (http, amqp, nats), event type, envelope and whether the id was seen before.",
	}, []string{"source", "type", "envelope", "duplicate"})}
	if err := reg.Register(e.counter); err != nil {
		return nil, err
	}
	return e, nil
}

// Received counts an accepted event; past maxEventTypes distinct types,
// new ones count as "_other". A nil e counts nothing.
func (e *Events) Received(source, typ, envelope string, duplicate bool) {
	if e == nil {
		return
	}
	e.mu.Lock()
	if !e.types[typ] {
		if len(e.types) >= maxEventTypes {
			typ = "_other"
		} else {
			e.types[typ] = true
		}
	}
	e.mu.Unlock()
	e.counter.WithLabelValues(source, typ, envelope, strconv.FormatBool(duplicate)).Inc()
}
