package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/activities"
	"github.com/dispatcherhq/dispatcher/api"
	"github.com/dispatcherhq/dispatcher/dispatch"
	"github.com/dispatcherhq/dispatcher/intake"
	"github.com/dispatcherhq/dispatcher/models"
	"github.com/dispatcherhq/dispatcher/workflows"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
	"github.com/spf13/cobra"
	"github.com/uber-go/tally/v4"
	tallyprom "github.com/uber-go/tally/v4/prometheus"
	"go.opentelemetry.io/otel/trace"
	"go.temporal.io/sdk/client"
	sdktally "go.temporal.io/sdk/contrib/tally"
)

// processCmd is serve, api or worker: the long-running process with the
// API, the worker, or both.
func processCmd(use, short string, getenv func(string) string, stdout io.Writer, withAPI, withWorker bool) *cobra.Command {
	return &cobra.Command{
		Use:         use,
		Short:       short,
		Args:        cobra.NoArgs,
		Annotations: map[string]string{annotationProcess: "true"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			// A log pipe whose reader is gone (`make run | tee` stopped
			// with Ctrl-C, a log shipper restarting) fails the writes
			// instead of killing the process in the middle of its first
			// attempts, with its next log line. The CLI's commands keep
			// dying of it, as `| head` wants.
			signal.Ignore(syscall.SIGPIPE)
			warnings := misnamed(environ())
			cfg, err := loadConfig(getenv)
			if err == nil {
				err = blankSharedNames(environ(), cfg)
			}
			if err != nil {
				for _, w := range warnings { // no logger yet
					fmt.Fprintln(cmd.ErrOrStderr(), "dispatcher: warning:", w)
				}
				return err
			}
			log := newLogger(cfg, os.Stderr)
			tp, shutdown, err := newTracerProvider(cmd.Context(), cfg, log)
			if err != nil {
				return err
			}
			defer func() {
				// The last spans, without outlasting the grace period
				// when the collector does not answer.
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = shutdown(ctx)
			}()
			p := process{cfg: cfg, stdout: stdout, log: log, tracer: tp, api: withAPI, worker: withWorker}
			for _, w := range warnings {
				p.log.Warn(w)
			}
			if cfg.MetricsToken == "" && !cfg.AuthDisabled {
				// Before, said by nothing but Prometheus' 403s, and alerts
				// that the process is down.
				p.log.Warn("DISPATCHER_METRICS_TOKEN is not set: /metrics answers no one (403), and Prometheus takes the process for down; set it, and give it to Prometheus as its bearer token")
			}
			if cfg.DedupWindow < time.Hour {
				p.log.Warn("DISPATCHER_DEDUP_WINDOW is under an hour: an event sent again, or a mail retried or replayed, once it has passed is dispatched or sent again", "window", cfg.DedupWindow.String())
			}
			err = p.run(cmd.Context())
			if err != nil && cfg.LogFormat == "json" {
				// Why the process stopped is the line a log pipeline most
				// needs: before, it came as plain text, over several lines.
				p.log.Error("stopped", "err", err.Error())
				return exitStatus(1)
			}
			return err
		},
	}
}

// annotationProcess marks the commands that run a process: serve, api
// and worker.
const annotationProcess = "process"

// process is one running dispatcher process.
type process struct {
	cfg    config
	stdout io.Writer
	log    *slog.Logger
	tracer trace.TracerProvider // nil: tracing off
	api    bool
	worker bool
}

func newLogger(cfg config, w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		opts.ReplaceAttr = readableDurations
		return slog.New(withTraceIDs(slog.NewJSONHandler(w, opts)))
	}
	return slog.New(withTraceIDs(slog.NewTextHandler(w, opts)))
}

// announce says on stdout what the process does now (where it listens,
// that its worker polls): a line of text, or with the JSON log format a
// JSON record, so that a log pipeline that parses every line as JSON (the
// container's stdout and stderr in one stream) reads these too.
func (p process) announce(msg string) {
	if p.cfg.LogFormat == "json" {
		slog.New(slog.NewJSONHandler(p.stdout, nil)).Info(msg)
		return
	}
	fmt.Fprintln(p.stdout, msg)
}

// readableDurations writes a duration as the text logs do ("1.5s"): the
// JSON handler's own is a count of nanoseconds under a key that does not
// say so.
func readableDurations(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

// run starts the process's parts and blocks until ctx ends or a part fails,
// then shuts down gracefully.
func (p process) run(ctx context.Context) error {
	v, _ := strconv.Atoi(p.cfg.DispatchVersion) // checked by loadConfig
	if err := workflows.PinDispatchVersion(v); err != nil {
		return fmt.Errorf("DISPATCHER_DISPATCH_VERSION: %w", err)
	}
	if v != workflows.NewestDispatchVersion {
		p.log.Warn("starting Dispatch workflow version pinned by DISPATCHER_DISPATCH_VERSION; roll out again without it once no process of the release before runs (docs/operations.md, Upgrades)",
			"version", v, "newest", workflows.NewestDispatchVersion)
	}
	if p.api {
		// Before the database and Temporal: a setting at fault is
		// refused at once, not once the worker polls.
		if err := errors.Join(checkAuthDisabled(p.cfg), p.authConfig().Check(), p.cfg.Limits.Check()); err != nil {
			return err
		}
	}
	// The address first: one taken is said before the migrations run. Not
	// kept: bound while nothing serves, a TCP health check would take the
	// process for up, and its clients would hang.
	if err := p.listen(func(ln net.Listener) error { return ln.Close() }); err != nil {
		return err
	}
	store, err := p.openStore(ctx)
	switch {
	case err != nil && ctx.Err() != nil:
		// Stopped while it waited (a pod deleted while starting): as
		// asked, not a failure for its supervisor to count.
		p.log.Info("stopped while waiting for the database", "error", err)
		return nil
	case err != nil:
		return err
	}

	reg, temporalMetrics, closeMetrics := newMetrics()
	defer closeMetrics()
	build := currentBuild()
	reg.MustRegister(build.collector(v))
	tc, err := newTemporalClient(p.cfg, p.log, temporalMetrics, p.tracer)
	if err != nil {
		return err
	}
	defer tc.Close()
	executions, err := p.executions(ctx, tc, store)
	if err != nil {
		return err
	}

	// One configuration cache for the intake, which hands each dispatch
	// its configuration, and the activities.
	configs := activities.NewCache(store)
	// A change made through this process reaches its next event at once,
	// one made through another within a second.
	configs.Fresh = time.Second
	store.OnChange(configs.Forget)
	checks := map[string]api.Check{
		"database": store.Ping,
		"temporal": func(ctx context.Context) error {
			_, err := tc.CheckHealth(ctx, &client.CheckHealthRequest{})
			return err
		},
		// Until it passes, starts are refused (503): registered a moment
		// ago, the search attributes may be unknown to the server's cache.
		"search_attributes": dispatch.SearchAttributesCheck(ctx, tc, p.cfg.TemporalNS),
	}
	// A worker that stops for good fails the process, which stops as on
	// SIGTERM and exits non-zero: a supervisor restarts it.
	ctx, fail := context.WithCancelCause(ctx)
	defer fail(nil)
	context.AfterFunc(ctx, func() {
		if !p.worker {
			p.log.Info("stopping: draining requests (a second signal stops at once)", "cause", context.Cause(ctx).Error(), "within", p.cfg.ShutdownPeriod.String())
			return
		}
		// Before, it said DISPATCHER_SHUTDOWN_TIMEOUT alone, which the
		// worker's first attempts, then its regular activities, may each
		// outlast: an operator sizing a grace period was misled.
		p.log.Info("stopping: draining requests, letting first attempts, then regular activities, end (a second signal stops at once)", "cause", context.Cause(ctx).Error(),
			"requestsWithin", p.cfg.ShutdownPeriod.String(), "eachWithin", workerStopTimeout(p.cfg).String())
	})
	// One starter for the API, the broker intakes and the worker's
	// task_failed events. Eager start only helps when this process's
	// worker takes the first workflow task: serve and worker, not api
	// alone.
	starter := dispatch.Starter{Client: tc, TaskQueue: p.cfg.TaskQueue, Eager: p.worker, Stopping: ctx.Done(), LocalCallLimit: p.cfg.LocalCallLimit,
		Seen: p.acceptedEvents(ctx, tc, store), Now: time.Now, Configs: configs}
	if p.worker {
		workers, err := p.startWorkers(ctx, tc, store, configs, executions, starter, func(err error) {
			fail(fmt.Errorf("the worker stopped for good: %w", err))
		})
		if err != nil {
			return err
		}
		defer workers.stop()
		// The workers stop polling at once, beside the HTTP drain: a
		// stopping worker takes no new work, and its first attempts in
		// flight get their whole time (workerStopTimeout).
		context.AfterFunc(ctx, workers.stop)
		temporal := checks["temporal"]
		checks["worker"] = func(ctx context.Context) error {
			if err := workers.ready(ctx); err != nil {
				return err
			}
			// Started, it polls only while Temporal answers: before, it
			// said ok through an outage.
			return temporal(ctx)
		}
		go p.pruneDeliveryRecords(ctx, store)
	}
	if !p.worker && p.cfg.brokers() {
		// Before, ignored without a word: its events waited in the broker.
		p.log.Warn("DISPATCHER_AMQP_URL or DISPATCHER_NATS_URL is set, but `dispatcher api` takes no events from brokers: `dispatcher serve` or `dispatcher worker` does")
	}
	events, err := intake.NewEvents(reg)
	if err != nil {
		return err
	}
	if p.worker {
		// Deferred last, so it runs first: the sources stop, acknowledging
		// what they started, before the workers and the client do.
		waitSources, err := p.startSources(ctx, starter, reg, events, checks)
		if err != nil {
			return err
		}
		defer waitSources()
	}
	reg.MustRegister(api.Readiness(checks))
	var handler http.Handler
	if p.api {
		if !p.worker {
			// Starting a dispatch sets search attributes, so they must
			// exist even before any worker ran. A namespace without room
			// for them stops the API, as it stops the worker; another
			// failure (Temporal not there yet) only warns: the readiness
			// check registers them again.
			if err := dispatch.RegisterSearchAttributes(ctx, tc, p.cfg.TemporalNS); errors.Is(err, dispatch.ErrSearchAttributesRefused) {
				return err // waiting cannot mend it
			} else if err != nil {
				p.log.Warn("could not register the search attributes; event intake fails until Temporal answers", "err", err)
			}
		}
		// One process kind exports it, so worker replicas do not each
		// read visibility.
		reg.MustRegister(&dispatch.PendingCollector{
			Client: tc, Namespace: p.cfg.TemporalNS, Now: time.Now, Every: 15 * time.Second, Limit: 5000, Logger: p.log,
		})
		// Likewise the gated functions' flow control: one visibility list
		// and a query per running gate.
		reg.MustRegister(&dispatch.FlowCollector{
			Client: tc, Namespace: p.cfg.TemporalNS, Now: time.Now, Every: 10 * time.Second, Limit: 500, Logger: p.log,
		})
		handler, err = api.NewServer(ctx, api.Config{
			Auth:           p.authConfig(),
			MaxBodyBytes:   p.cfg.MaxBodyBytes,
			MaxEventBytes:  p.cfg.MaxEventBytes,
			RequestTimeout: p.cfg.RequestTimeout,
			Limits:         p.cfg.Limits,
			Outbound:       p.cfg.Outbound,
			CodecOrigins:   p.cfg.CodecOrigins,
			CORSOrigins:    p.cfg.CORSOrigins,
			MetricsToken:   p.cfg.MetricsToken,
			APIKeyMaxTTL:   p.cfg.APIKeyMaxTTL,
		}, api.Deps{
			Store:    store,
			Starter:  starter,
			Checks:   checks,
			Registry: reg,
			Gatherer: described{reg},
			Events:   events,
			Tracer:   p.tracer,
			Logger:   p.log,
			Now:      time.Now,
			Build:    build.api(),

			Executions: executions,
			Codec:      codecHandler(p.cfg.Keys),
		})
		if err != nil {
			return err
		}
	} else {
		handler = api.NewOpsHandler(checks, described{reg}, p.cfg.MetricsToken, p.cfg.AuthDisabled, build.api(), p.log)
	}
	if err := p.listen(func(ln net.Listener) error { return p.serveHTTP(ctx, ln, handler) }); err != nil {
		return err
	}
	if err := context.Cause(ctx); !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// newMetrics returns the process's Prometheus registry and the Temporal
// SDK's metrics handler reporting into it.
func newMetrics() (*prometheus.Registry, client.MetricsHandler, func()) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reporter := tallyprom.NewReporter(tallyprom.Options{
		Registerer:       reg,
		DefaultTimerType: tallyprom.HistogramTimerType,
		DefaultHistogramBuckets: []float64{
			// Past 5 minutes, 15 and an hour: an action's duration holds
			// its retries, which take hours by default.
			.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600,
		},
	})
	// Names and label names as Prometheus takes them; label values as
	// they are, as the dispatcher's own series have them. Before, "_" for
	// every other character: a circuit of function always-503 opened as
	// always_503, beside its gauges' always-503, and a-b and a_b were one.
	sanitize := sdktally.PrometheusSanitizeOptions
	// Not U+FFFD, which invalid UTF-8 reads as: Prometheus' client
	// panics on a label value that is not UTF-8.
	sanitize.ValueCharacters = tally.ValidCharacters{Ranges: []tally.SanitizeRange{{' ', utf8.RuneError - 1}, {utf8.RuneError + 1, unicode.MaxRune}}}
	scope, closer := tally.NewRootScope(tally.ScopeOptions{
		CachedReporter:  reporter,
		Separator:       tallyprom.DefaultSeparator,
		SanitizeOptions: &sanitize,
	}, time.Second)
	return reg, sdktally.NewMetricsHandler(sdktally.NewPrometheusNamingScope(scope)), func() { _ = closer.Close() }
}

// described serves the dispatcher's own metrics that reach Prometheus
// through the Temporal SDK's handler (which counts nothing twice when a
// history replays) with their help text, which the handler cannot carry.
type described struct{ prometheus.Gatherer }

func (d described) Gather() ([]*dto.MetricFamily, error) {
	families, err := d.Gatherer.Gather()
	for _, f := range families {
		if help, ok := workflows.MetricHelp[f.GetName()]; ok {
			f.Help = &help
		}
	}
	return families, err
}

// waitingForDatabaseLog is logged when the database refuses the
// process's first connection, which asks again.
const waitingForDatabaseLog = "waiting for the database"

// pingTimeout bounds the start-up's first question to the database: one
// that accepts connections and never answers would hold the process there
// for good, without a word.
const pingTimeout = 15 * time.Second

// pingFailed says why the database at url could not be used: it did not
// answer within pingTimeout, or answered with err (a database that does
// not exist, a password refused).
func pingFailed(url string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("DATABASE_URL: database %s does not answer: %w", redactURL(url), err)
	}
	return fmt.Errorf("DATABASE_URL: database %s: %w", redactURL(url), err)
}

func (p process) openStore(ctx context.Context) (*models.Store, error) {
	db, err := models.Open(p.cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	if err := models.LimitConns(db, int(p.cfg.DBMaxConns)); err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	waiting := func(err error) {
		p.log.Warn(waitingForDatabaseLog, "database", redactURL(p.cfg.DatabaseURL), "within", pingTimeout.String(), "error", err)
	}
	if err := models.Ping(pctx, db, waiting); err != nil {
		return nil, pingFailed(p.cfg.DatabaseURL, err)
	}
	if p.cfg.AutoMigrate {
		n, err := models.Migrate(ctx, db)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			p.log.Info("applied database migrations", "count", n)
		}
	} else if err := schemaReady(pctx, db); err != nil {
		// Else it would say it is ready, and answer 500 to every
		// request that reaches a table it lacks. A newer schema is
		// fine: an upgrade migrates before it rolls out.
		return nil, err
	}
	// A time of their own: the migrations may have waited for another
	// process's, past the ping's.
	cctx, ccancel := context.WithTimeout(ctx, pingTimeout)
	defer ccancel()
	if current, latest, err := models.MigrationStatus(cctx, db); err == nil && current > latest {
		p.log.Warn(schemaAhead, "schema", current, "latest", latest)
	}
	if p.cfg.Keys == nil {
		p.log.Warn("DISPATCHER_ENCRYPTION_KEY is not set: function secrets and headers are stored, and Temporal payloads written, in clear text")
	}
	store := models.NewStore(db, time.Now, models.WithKeys(p.cfg.Keys))
	if err := store.CheckKeys(cctx); err != nil {
		return nil, err
	}
	return store, nil
}

// listen listens on DISPATCHER_HTTP_ADDR and hands the listener to use.
func (p process) listen(use func(net.Listener) error) error {
	ln, err := net.Listen("tcp", p.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("DISPATCHER_HTTP_ADDR: listen on %s: %w", p.cfg.HTTPAddr, err)
	}
	return use(ln)
}

func (p process) serveHTTP(ctx context.Context, ln net.Listener, handler http.Handler) error {
	srv := newHTTPServer(handler)
	requests, endRequests := context.WithCancel(context.Background())
	defer endRequests()
	srv.BaseContext = func(net.Listener) context.Context { return requests }
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	what := "API"
	if !p.api {
		what = "worker health and metrics"
	}
	p.announce(fmt.Sprintf("dispatcher %s listening on http://%s", what, ln.Addr()))

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), p.cfg.ShutdownPeriod)
	defer cancel()
	// The requests still waiting (for a database or a Temporal that does
	// not answer) end before the period does, answered 503, which a
	// producer resends. Before, their connections were closed without an
	// answer once it had passed, and the process exited 1.
	defer time.AfterFunc(p.cfg.ShutdownPeriod-min(requestsCutoff, p.cfg.ShutdownPeriod/2), endRequests).Stop()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// requestsCutoff is how long before the shutdown period ends the requests
// still in flight are canceled, to answer them.
const requestsCutoff = 2 * time.Second

// Timeouts of the HTTP server: a client that sends slowly, reads slowly or
// idles holds a connection and a goroutine no longer than these. The write
// timeout covers the handler too, so it leaves room for the slowest
// answer: an event intake waiting for Temporal, a failures summary reading
// visibility.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = time.Minute // headers and body, up to the largest body on a slow link
	writeTimeout      = 2 * time.Minute
	idleTimeout       = 2 * time.Minute
)

// newHTTPServer returns the server of the API, or of a worker's health and
// metrics, with its timeouts.
func newHTTPServer(handler http.Handler) *http.Server {
	return &http.Server{Handler: handler, ReadHeaderTimeout: readHeaderTimeout, ReadTimeout: readTimeout,
		WriteTimeout: writeTimeout, IdleTimeout: idleTimeout}
}

// authConfig is how the API verifies tokens.
func (p process) authConfig() api.AuthConfig {
	return api.AuthConfig{Disabled: p.cfg.AuthDisabled, Secret: []byte(p.cfg.JWTSecret), JWKSURL: p.cfg.JWKSURL,
		Issuer: p.cfg.JWTIssuer, Audience: p.cfg.JWTAudience, JWKSRequireTenant: p.cfg.JWKSRequireTenant}
}

// checkAuthDisabled refuses DISPATCHER_AUTH_DISABLED=true unless the API
// listens on a loopback address: without authentication, whoever reaches
// the API may change every dispatcher and send every event.
func checkAuthDisabled(cfg config) error {
	if !cfg.AuthDisabled {
		return nil
	}
	host, _, err := net.SplitHostPort(cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("DISPATCHER_HTTP_ADDR=%q: %w", cfg.HTTPAddr, err)
	}
	if dispatcher.LoopbackHost(host) {
		return nil
	}
	return fmt.Errorf("DISPATCHER_AUTH_DISABLED=true is allowed only when DISPATCHER_HTTP_ADDR is a loopback address (127.0.0.1, ::1 or localhost), not %q: anyone who reaches the API could do everything", cfg.HTTPAddr)
}

// redactURL hides the password of a database URL for messages.
func redactURL(raw string) string {
	return redactedValue("", raw)
}
