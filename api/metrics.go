package api

import (
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// maxEventTypes bounds the event types that get a series of their own:
// types come from clients, and every new label value is a new series.
const maxEventTypes = 500

// metrics are the API's Prometheus collectors.
type metrics struct {
	mu       sync.Mutex
	types    map[string]bool // event types with a series of their own
	events   *prometheus.CounterVec
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		types: map[string]bool{},
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dispatcher_events_received_total",
			Help: "Events accepted at /events/v1, by event type, envelope and whether the id was seen before.",
		}, []string{"type", "envelope", "duplicate"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dispatcher_http_requests_total",
			Help: "HTTP requests, by method, route and status code.",
		}, []string{"method", "route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "dispatcher_http_request_duration_seconds",
			Help:    "HTTP request latency, by method and route.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "route"}),
	}
	for _, c := range []prometheus.Collector{m.events, m.requests, m.latency} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// eventReceived counts an accepted event; past maxEventTypes distinct
// types, new ones count as "_other".
func (m *metrics) eventReceived(typ, envelope string, duplicate bool) {
	m.mu.Lock()
	if !m.types[typ] {
		if len(m.types) >= maxEventTypes {
			typ = "_other"
		} else {
			m.types[typ] = true
		}
	}
	m.mu.Unlock()
	m.events.WithLabelValues(typ, envelope, strconv.FormatBool(duplicate)).Inc()
}

// observe records every request by its route pattern (never the raw
// path, whose ids would explode the label set).
func (m *metrics) observe() gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		m.requests.WithLabelValues(c.Request.Method, route, strconv.Itoa(c.Writer.Status())).Inc()
		m.latency.WithLabelValues(c.Request.Method, route).Observe(time.Since(start).Seconds())
	}
}

func serveMetrics(g prometheus.Gatherer) gin.HandlerFunc {
	h := promhttp.HandlerFor(g, promhttp.HandlerOpts{})
	return gin.WrapH(h)
}
