package api

import (
	"crypto/subtle"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/intake"
	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the API's Prometheus collectors.
type metrics struct {
	events   *intake.Events
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// newMetrics registers the API's collectors on reg, and counts accepted
// events with events (nil: a counter of its own on reg).
func newMetrics(reg prometheus.Registerer, events *intake.Events) (*metrics, error) {
	m := &metrics{
		events: events,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dispatcher_http_requests_total",
			Help: "HTTP requests, by method, route and status code.",
		}, []string{"method", "route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "dispatcher_http_request_duration_seconds",
			Help:    "HTTP request latency, by method and route.",
			Buckets: latencyBuckets,
		}, []string{"method", "route"}),
	}
	if m.events == nil {
		var err error
		if m.events, err = intake.NewEvents(reg); err != nil {
			return nil, err
		}
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
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
		verb := methodLabel(method(c.Request))
		m.requests.WithLabelValues(verb, route, strconv.Itoa(c.Writer.Status())).Inc()
		m.latency.WithLabelValues(verb, route).Observe(time.Since(start).Seconds())
	}
}

// methodLabel is the label of a request's method: net/http accepts any
// token as a method, up to a megabyte, before any authentication, and
// each new label value would be a series kept for good.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return method
	}
	return "other"
}

func serveMetrics(g prometheus.Gatherer) gin.HandlerFunc {
	h := promhttp.HandlerFor(g, promhttp.HandlerOpts{})
	return gin.WrapH(h)
}

// metricsGuard guards /metrics, whose series name tenants, event types
// and functions: with a token, it answers only requests that carry it
// (Authorization: Bearer, as Prometheus sends a bearer token). Without
// one it answers none, unless authentication is disabled (a local run),
// and then only requests from this machine to a loopback address. Where
// a request comes from cannot stand in for a token: a reverse proxy on
// the same machine forwards the world's requests from loopback, with
// whatever Host it is told.
func metricsGuard(token string, authDisabled bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		switch {
		case token != "" && refuseAuthorizations(c):
		case token != "":
			got, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
				c.Header("WWW-Authenticate", `Bearer realm="metrics"`)
				abort(c, errNotAuthenticated, "/metrics needs Authorization: Bearer with DISPATCHER_METRICS_TOKEN")
			}
		case !authDisabled:
			abort(c, errNoPermission, "/metrics needs a token: set DISPATCHER_METRICS_TOKEN, and give it to Prometheus as its bearer token")
		case !loopback(c.Request.Host) || !loopback(c.Request.RemoteAddr):
			abort(c, errNoPermission, "authentication is disabled: /metrics answers only this machine's loopback address; set DISPATCHER_METRICS_TOKEN to scrape it from elsewhere")
		}
	}
}

// loopback reports whether hostport names localhost or a loopback address.
func loopback(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	return dispatcher.LoopbackHost(host)
}

// latencyBuckets are Prometheus's default buckets and, past its 10 s, the
// request timeout's default (30 s), a minute and the slow routes' 100 s
// and more: a request that waited for Temporal until its timeout fell in
// +Inf only, and the latency panel's p99 never showed over 10 s.
var latencyBuckets = append(slices.Clone(prometheus.DefBuckets), 30, 60, 120)
