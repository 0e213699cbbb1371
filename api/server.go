// Package api serves the HTTP surface of the dispatcher with gin: the
// Extra Horizon compatible dispatcher CRUD, event intake, templates,
// functions, health and metrics. It is the only package that imports gin,
// and the only one that maps domain errors to HTTP statuses.
package api

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/intake"
	"github.com/dispatcherhq/dispatcher/wire"
	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/contrib/instrumentation/github.com/gin-gonic/gin/otelgin"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Store is what the API needs of the configuration store. Methods return
// *dispatcher.Error values: ENOTFOUND, ECONFLICT, EINVALID, EREQUIRED,
// EQUERY; anything else is a 500.
type Store interface {
	FindDispatchers(ctx context.Context, q dispatcher.Query) ([]dispatcher.Dispatcher, int, error)
	FindDispatcher(ctx context.Context, id string) (dispatcher.Dispatcher, error)
	CreateDispatcher(ctx context.Context, d *dispatcher.Dispatcher) error
	// The changes of a dispatcher, a template or a function apply to it
	// as it was last updated at ifUpdated, unless it is zero, or return
	// ECHANGED; those of a dispatcher's actions to the dispatcher as it
	// was. They return when it is updated now: its new version.
	UpdateDispatcher(ctx context.Context, id string, u dispatcher.DispatcherUpdate, ifUpdated time.Time) (time.Time, error)
	DeleteDispatcher(ctx context.Context, id string, ifUpdated time.Time) error
	CreateAction(ctx context.Context, dispatcherID string, a *dispatcher.Action, ifUpdated time.Time) (time.Time, error)
	UpdateAction(ctx context.Context, dispatcherID, actionID string, u dispatcher.ActionUpdate, ifUpdated time.Time) (time.Time, error)
	DeleteAction(ctx context.Context, dispatcherID, actionID string, ifUpdated time.Time) (time.Time, error)
	ApplyBatch(ctx context.Context, id string, b *dispatcher.Batch, ifUpdated time.Time) (dispatcher.Dispatcher, error)
	TemplateIDByName(ctx context.Context, name string) (string, error)

	TemplateNames(ctx context.Context) ([]dispatcher.Template, error)
	FindTemplates(ctx context.Context, ids []string) ([]dispatcher.Template, error)
	FindTemplate(ctx context.Context, id string) (dispatcher.Template, error)
	CreateTemplate(ctx context.Context, t *dispatcher.Template) error
	UpdateTemplate(ctx context.Context, id string, u dispatcher.TemplateUpdate, ifUpdated time.Time) (time.Time, error)
	DeleteTemplate(ctx context.Context, id string, ifUpdated time.Time) error

	FunctionNames(ctx context.Context) ([]dispatcher.Function, error)
	FindFunctions(ctx context.Context, ids []string) ([]dispatcher.Function, error)
	FindFunction(ctx context.Context, id string) (dispatcher.Function, error)
	CreateFunction(ctx context.Context, f *dispatcher.Function) error
	UpdateFunction(ctx context.Context, id string, u dispatcher.FunctionUpdate, ifUpdated time.Time) (time.Time, error)
	DeleteFunction(ctx context.Context, id string, ifUpdated time.Time) error

	// FindAuditRecords returns a page of the caller's tenant's audit
	// trail, newest first unless the query sorts otherwise, and how many
	// records its filter matches.
	FindAuditRecords(ctx context.Context, q dispatcher.Query) ([]dispatcher.AuditRecord, int, error)

	// API keys are the caller's tenant's; FindAPIKeyByHash and
	// TouchAPIKey (keyLookup) serve authentication, across tenants.
	FindAPIKeys(ctx context.Context) ([]dispatcher.APIKey, error)
	CreateAPIKey(ctx context.Context, k *dispatcher.APIKey) error
	RevokeAPIKey(ctx context.Context, id string) error
	keyLookup
}

// Check reports whether a dependency answers; /readyz runs them all.
type Check func(ctx context.Context) error

// Config is the API's configuration.
type Config struct {
	Auth          AuthConfig
	MaxBodyBytes  int64 // admin request bodies above it get 413
	MaxEventBytes int64 // event bodies above it get 413
	// Outbound is where task functions may go: a function it refuses is
	// not saved (400 naming the field). Its zero value allows https to
	// public addresses and no task queue.
	Outbound dispatcher.Outbound
	// Limits answer 429 to tokens and tenants that send too much; the
	// zero value limits nothing.
	Limits RateLimits
	// CodecOrigins are the origins (https://host[:port]) of the Temporal
	// Web UIs whose browsers may call /codec/*.
	CodecOrigins []string
	// CORSOrigins are the origins of the web apps whose pages may call
	// the rest of the API from a browser (apiCORS).
	CORSOrigins []string
	// MetricsToken is the bearer token /metrics requires; empty, /metrics
	// answers nobody, or with authentication disabled only this machine's
	// loopback (metricsGuard).
	MetricsToken string
	// RequestTimeout bounds what a request waits for: the database and
	// Temporal calls it makes end with its context, and it is answered
	// 503. Zero: the request's client alone bounds it.
	RequestTimeout time.Duration
	// APIKeyMaxTTL bounds how long after its creation an API key expires;
	// zero: keys may live until revoked.
	APIKeyMaxTTL time.Duration
}

// Deps are the API's dependencies.
type Deps struct {
	Store    Store
	Starter  Starter
	Checks   map[string]Check // readiness checks, by name
	Registry *prometheus.Registry
	Gatherer prometheus.Gatherer // what /metrics serves; nil: Registry
	// Events counts the events accepted, also by the broker intakes;
	// nil: a counter of the API's own on Registry.
	Events   *intake.Events
	Tracer   trace.TracerProvider // nil: no tracing
	Logger   *slog.Logger         // nil discards
	Now      func() time.Time     // nil means time.Now
	Build    BuildInfo            // shown on /health
	Resolver dispatcher.Resolver  // looks up functions' hosts; nil means net.DefaultResolver

	// Executions serves /executions/v1; nil leaves those routes failing.
	Executions Executions
	// Codec serves Temporal's codec server protocol at /codec/encode and
	// /codec/decode (converter.NewPayloadCodecHTTPHandler); nil answers
	// 404 there.
	Codec http.Handler
}

// Server holds the API's dependencies; its methods are the handlers.
type Server struct {
	cfg     Config
	store   Store
	starter Starter
	auth    *authenticator
	checks  map[string]Check
	metrics *metrics
	log     *slog.Logger
	now     func() time.Time
	build   BuildInfo

	outbound dispatcher.Outbound // checks functions before they are saved
	resolver dispatcher.Resolver

	executions   Executions   // serves /executions/v1
	codecHandler http.Handler // serves /codec/*; nil: none

	requests *limiter // requests to every authenticated route but intake
	intake   *limiter // events at /events/v1

	console map[string]consoleAsset // the console's files, by path
}

// NewServer returns the API's HTTP handler. ctx bounds background work
// (JWKS refresh).
func NewServer(ctx context.Context, cfg Config, deps Deps) (http.Handler, error) {
	if cfg.MaxBodyBytes <= 0 || cfg.MaxEventBytes <= 0 {
		return nil, fmt.Errorf("body limits must be positive, got %d and %d", cfg.MaxBodyBytes, cfg.MaxEventBytes)
	}
	if err := cfg.Limits.Check(); err != nil {
		return nil, err
	}
	auth, err := newAuthenticator(ctx, cfg.Auth)
	if err != nil {
		return nil, err
	}
	if deps.Store != nil {
		auth.keys = deps.Store
	}
	m, err := newMetrics(deps.Registry, deps.Events)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, store: deps.Store, starter: deps.Starter, auth: auth, checks: deps.Checks, metrics: m,
		log: deps.Logger, now: deps.Now, build: deps.Build, executions: deps.Executions,
		outbound: cfg.Outbound, resolver: deps.Resolver, codecHandler: deps.Codec}
	if s.resolver == nil {
		s.resolver = net.DefaultResolver
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.console, err = loadConsole(); err != nil {
		return nil, err
	}
	s.requests = newLimiter(cfg.Limits.Token, cfg.Limits.Tenant, "requests", s.now)
	s.intake = newLimiter(cfg.Limits.IntakeToken, cfg.Limits.IntakeTenant, "events", s.now)
	if cfg.Auth.Disabled {
		s.log.WarnContext(ctx, "authentication is disabled: every request acts as \"anonymous\" with every permission")
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(gin.Recovery(), noStore)
	if deps.Tracer != nil { // off, it would cost every request a span for nothing
		r.Use(otelgin.Middleware("dispatcher", otelgin.WithTracerProvider(deps.Tracer), otelgin.WithPropagators(propagation.TraceContext{})))
	}
	r.Use(s.requestLog(), m.observe())
	if cfg.RequestTimeout > 0 {
		r.Use(deadline(cfg.RequestTimeout))
	}
	if cfg.Auth.Disabled {
		r.Use(localOnly(append(slices.Clone(cfg.CodecOrigins), cfg.CORSOrigins...)))
	}
	if len(cfg.CORSOrigins) > 0 {
		r.Use(apiCORS(cfg.CORSOrigins))
	}
	r.ContextWithFallback = true
	// A path with a trailing slash that no route has is unknown, as any
	// other: gin's redirect to the path without it came before
	// authentication, and told anyone which routes exist. The roots that
	// clients call with the slash have routes of their own (routes).
	r.RedirectTrailingSlash = false
	r.HandleMethodNotAllowed = true
	r.NoRoute(func(c *gin.Context) {
		abort(c, errResourceUnknown, wire.NoRoute+method(c.Request)+" "+c.Request.URL.Path)
	})
	r.NoMethod(func(c *gin.Context) {
		c.AbortWithStatusJSON(http.StatusMethodNotAllowed, wire.Error{Code: 16, Name: errResourceUnknown.Name, Message: "method " + method(c.Request) + " is not allowed on " + c.Request.URL.Path})
	})
	metrics := deps.Gatherer
	if metrics == nil {
		metrics = deps.Registry
	}
	s.routes(r, metrics)
	return headAsGet{r}, nil
}

// noStore has no browser and no proxy keep an answer, nor guess its type:
// they hold configuration, events' content and API keys, which a shared
// proxy, or the browser's disk, kept before. The console's files say for
// themselves how they are kept.
func noStore(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	c.Next()
}

// headAsGet answers HEAD as GET (RFC 9110 §9.3.2), which gin routes
// nowhere: uptime monitors and load balancers probe /health so, and got
// 405. The engine serves a GET copy of the request; the server's
// response, made for the HEAD request, drops the body it writes.
type headAsGet struct{ *gin.Engine }

func (h headAsGet) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodHead {
		r = r.Clone(context.WithValue(r.Context(), headKey{}, true))
		r.Method = http.MethodGet
	}
	h.Engine.ServeHTTP(w, r)
}

// headKey marks the context of a HEAD request that headAsGet serves as GET.
type headKey struct{}

// method is the request's method as the client sent it, for the request
// log, the metrics and errors: HEAD for a HEAD served as GET.
func method(r *http.Request) string {
	if r.Context().Value(headKey{}) != nil {
		return http.MethodHead
	}
	return r.Method
}

// validID refuses a malformed id path parameter with 400 code 12 before
// any handler sees it.
func validID(params ...string) gin.HandlerFunc {
	return func(c *gin.Context) {
		for _, p := range params {
			if id := c.Param(p); !dispatcher.ValidID(id) {
				abort(c, errIDFormat, fmt.Sprintf("%s: %q is not a valid id (24 lowercase hexadecimal characters)", p, id))
				return
			}
		}
		c.Next()
	}
}

// slowRoutes may rightly take longer than a request's timeout, up to
// slowTimeout, which the server's write timeout (2 minutes) leaves room
// for: the intake of a batch starts each of its events in turn, waiting
// for Temporal, the failures summary reads up to 40,000 runs from
// visibility, and a bulk replay's count (its dry run, and its start) up to
// 20,000 with what replaced them.
var slowRoutes = map[string]bool{"/events/v1": true, "/events/v1/": true, "/executions/v1/failures": true, "/executions/v1/replays": true}

const slowTimeout = 100 * time.Second

// deadlineKey holds, in a request's gin context, how long deadline gave it.
type deadlineKey struct{}

// deadline gives each request's context a deadline of timeout (of
// slowTimeout on the slow routes): a database that stops answering then
// costs a request 503 and gives its pooled connection back, instead of
// holding both for as long as the client waits (a client that waits for
// good wedged the pool).
func deadline(timeout time.Duration) gin.HandlerFunc {
	return func(c *gin.Context) {
		d := timeout
		if slowRoutes[c.FullPath()] {
			d = max(d, slowTimeout)
		}
		ctx, cancel := context.WithTimeout(c.Request.Context(), d)
		defer cancel()
		c.Request = c.Request.WithContext(ctx)
		c.Set(deadlineKey{}, d)
		c.Next()
	}
}
