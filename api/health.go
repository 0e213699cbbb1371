package api

import (
	"context"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
)

// BuildInfo identifies the running binary on /health, so whoever checks a
// rollout sees which version answers.
type BuildInfo struct {
	Version  string // a release, a module version, or "dev"
	Revision string // the commit; empty when unknown
}

// health answers liveness: the process serves HTTP. It also tells the
// build.
func (s *Server) health(c *gin.Context) {
	body := gin.H{"status": "ok", "version": s.build.Version}
	if s.build.Revision != "" {
		body["revision"] = s.build.Revision
	}
	c.JSON(http.StatusOK, body)
}

// ready answers 200 only when every dependency answers, 503 otherwise,
// saying which is "ok" and which "down". The endpoint needs no token, so a
// check's error, which may name hosts, users or file paths, goes to the log
// and never to the answer.
func (s *Server) ready(c *gin.Context) {
	ctx := c.Request.Context()
	errs := runChecks(ctx, s.checks)
	results := gin.H{}
	status := http.StatusOK
	for _, name := range slices.Sorted(maps.Keys(errs)) {
		if err := errs[name]; err != nil {
			logger(ctx).WarnContext(ctx, "readiness check failed", "check", name, "err", err)
			results[name] = "down"
			status = http.StatusServiceUnavailable
			continue
		}
		results[name] = "ok"
	}
	state := "ready"
	if status != http.StatusOK {
		state = "not ready"
	}
	c.JSON(status, gin.H{"status": state, "checks": results})
}

// runChecks runs checks at once, each with the whole time (3 s): one
// stuck until the deadline must not make the others look down.
func runChecks(ctx context.Context, checks map[string]Check) map[string]error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	errs := make(map[string]error, len(checks))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, check := range checks {
		wg.Go(func() {
			err := check(ctx)
			mu.Lock()
			defer mu.Unlock()
			errs[name] = err
		})
	}
	wg.Wait()
	return errs
}

// Readiness exports the readiness checks as dispatcher_ready{check}, 1
// while the check passes and 0 while it fails, run at each scrape: a
// dependency down makes every process unready, and an orchestrator then
// takes them all out of their Service, where no request, and so no
// server-error alert, sees it. The checks must not change once
// registered.
type Readiness map[string]Check

var readyDesc = prometheus.NewDesc("dispatcher_ready",
	"1 while the readiness check (as /readyz runs it) passes, 0 while it fails, by check: database, temporal, search_attributes, worker, amqp, nats.",
	[]string{"check"}, nil)

// Describe implements prometheus.Collector.
func (r Readiness) Describe(ch chan<- *prometheus.Desc) { ch <- readyDesc }

// Collect implements prometheus.Collector.
func (r Readiness) Collect(ch chan<- prometheus.Metric) {
	for name, err := range runChecks(context.Background(), r) {
		v := 1.0
		if err != nil {
			v = 0
		}
		ch <- prometheus.MustNewConstMetric(readyDesc, prometheus.GaugeValue, v, name)
	}
}

// NewOpsHandler serves only /health, /healthz, /readyz and /metrics: what a
// worker-only process exposes to its orchestrator and to Prometheus, which
// needs metricsToken as Config.MetricsToken says (authDisabled as
// AuthConfig.Disabled). log receives why a readiness check failed; nil
// discards it.
func NewOpsHandler(checks map[string]Check, reg prometheus.Gatherer, metricsToken string, authDisabled bool, build BuildInfo, log *slog.Logger) http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(gin.Recovery())
	s := &Server{checks: checks, build: build, log: log}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	r.Use(s.requestLog())
	r.GET("/health", s.health)
	r.GET("/healthz", s.health)
	r.GET("/readyz", s.ready)
	r.GET("/metrics", metricsGuard(metricsToken, authDisabled), serveMetrics(reg))
	return r
}
