package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/activities"
	"github.com/dispatcherhq/dispatcher/dispatch"
	"github.com/dispatcherhq/dispatcher/workflows"

	"go.opentelemetry.io/otel/trace"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
)

// temporalConnection is how the process reaches the Temporal frontend
// beyond its address and namespace: TLS, credentials, compression, and
// how much work its workers take at once.
type temporalConnection struct {
	TLS            bool
	ServerCAPath   string
	ServerName     string
	ClientCertPath string
	ClientKeyPath  string
	APIKey         string
	Compression    string // none or gzip

	MaxWorkflowTasks   int64
	CacheSize          int64 // of the sticky workflow cache
	MaxLocalActivities int64
	MaxActivities      int64
}

// newTemporalClient returns the process's Temporal client. It is lazy: it
// connects on first use, so the API can start (and answer /readyz with the
// reason) while Temporal is down.
func newTemporalClient(cfg config, log *slog.Logger, metrics client.MetricsHandler, tracer trace.TracerProvider) (client.Client, error) {
	opts, err := clientOptions(cfg, log, metrics, tracer)
	if err != nil {
		return nil, err
	}
	tc, err := client.NewLazyClient(opts)
	if err != nil {
		return nil, fmt.Errorf("temporal client: %w", err)
	}
	return tc, nil
}

// heldTasks logs the SDK's "[TMPRL1104] <run>:<event>:<attempt> Workflow
// task duration exceeded 5 seconds" of a Dispatch at debug: its first
// workflow task holds its first attempts, local activities of up to a
// minute, by design. At warn, every dispatch with a function slower than
// 5 s logged it twice, its run id in the message, so that the lines could
// be neither grouped nor silenced. Other workflows' stay warnings: theirs
// tell of a task nearing its timeout. And the SDK's "Activity error." of
// an attempt that a dependency failed (dependencyFailure) is a warning: a
// mail server's 451 or a function's 404 is not the process's error, and
// at error level every retried attempt set off the alerts on errors. The
// process's own (its store, a bug) stay errors; an action that fails for
// good is the dispatch's warning "Action failed".
type heldTasks struct{ slog.Handler }

func (h heldTasks) Handle(ctx context.Context, r slog.Record) error {
	level := r.Level
	switch {
	case r.Level == slog.LevelWarn && strings.HasPrefix(r.Message, "[TMPRL1104]") && ofDispatch(r):
		level = slog.LevelDebug
	case r.Level == slog.LevelError && r.Message == "Activity error." && dependencyFailure(r):
		level = slog.LevelWarn
	}
	if level != r.Level {
		if !h.Enabled(ctx, level) {
			return nil
		}
		r = r.Clone()
		r.Level = level
	}
	return h.Handler.Handle(ctx, r)
}

// dependencyFailure reports whether r's error is an attempt's failure
// that a dependency caused (the mail server, the function, their
// configuration, a replay a bulk replay found refused), or that was
// expected: a gated call's missed slot, a cancel.
func dependencyFailure(r slog.Record) bool {
	var err error
	r.Attrs(func(a slog.Attr) bool {
		if e, ok := a.Value.Any().(error); ok && a.Key == "Error" {
			err = e
		}
		return err == nil
	})
	var appErr *temporal.ApplicationError
	switch {
	case err == nil:
		return false
	case errors.Is(err, context.Canceled) || temporal.IsCanceledError(err):
		return true
	case !errors.As(err, &appErr):
		return false
	}
	switch appErr.Type() {
	case dispatcher.FailureSMTPTemporary, dispatcher.FailureSMTPPermanent, dispatcher.FailureHTTPTemporary,
		dispatcher.FailureHTTPPermanent, dispatcher.FailureTimeout, dispatcher.FailureOutboundRefused,
		dispatcher.FailureTemplate, dispatcher.FailureRecipient, dispatcher.FailureNotFound,
		dispatcher.FailureSlotMissed, workflows.FailureReplayRefused:
		return true
	}
	return false
}

// ofDispatch reports whether r is about a Dispatch workflow's task.
func ofDispatch(r slog.Record) bool {
	dispatch := false
	r.Attrs(func(a slog.Attr) bool {
		dispatch = a.Key == "WorkflowType" && a.Value.String() == workflows.WorkflowDispatch
		return !dispatch
	})
	return dispatch
}

func (h heldTasks) WithAttrs(attrs []slog.Attr) slog.Handler {
	return heldTasks{h.Handler.WithAttrs(attrs)}
}

func (h heldTasks) WithGroup(name string) slog.Handler { return heldTasks{h.Handler.WithGroup(name)} }

// clientOptions are the connection's options plus the process's logger,
// metrics and, with tracer set, the tracing interceptor. With tracer nil
// (tracing off) the interceptor is left out: even on a no-op provider it
// costs CPU on every call and in every workflow task.
func clientOptions(cfg config, log *slog.Logger, metrics client.MetricsHandler, tracer trace.TracerProvider) (client.Options, error) {
	opts, err := temporalOptions(cfg)
	if err != nil {
		return opts, err
	}
	opts.Logger = tlog.NewStructuredLogger(slog.New(heldTasks{log.Handler()}).With("component", "temporal"))
	opts.MetricsHandler = metrics
	if tracer != nil {
		tracing, err := temporalTracing(tracer)
		if err != nil {
			return opts, err
		}
		opts.Interceptors = []interceptor.ClientInterceptor{tracing}
	}
	return opts, nil
}

// temporalOptions turns the connection settings into client options.
// Errors name the setting at fault and never carry the API key.
func temporalOptions(cfg config) (client.Options, error) {
	c := cfg.Temporal
	opts := client.Options{HostPort: cfg.TemporalAddr, Namespace: cfg.TemporalNS,
		// Workers, intake and the executions service all use this client:
		// every payload they write is encrypted, every one they read
		// decrypted (dispatch.PayloadCodec).
		DataConverter: dispatch.DataConverter(cfg.Keys), FailureConverter: dispatch.FailureConverter(cfg.Keys)}
	if c.Compression != "gzip" {
		// The SDK gzips by default; on a worker that is about 8 % of
		// its CPU for traffic that mostly stays inside one network.
		opts.ConnectionOptions.GrpcCompression = &client.GrpcCompressionNone{}
	}
	tlsConfig, err := temporalTLS(c)
	if err != nil {
		return opts, err
	}
	opts.ConnectionOptions.TLS = tlsConfig
	if c.APIKey != "" {
		// Sent as "authorization: Bearer <key>" on every call; with TLS
		// set above, the SDK does not add a TLS config of its own.
		opts.Credentials = client.NewAPIKeyStaticCredentials(c.APIKey)
	}
	return opts, nil
}

// temporalTLS returns the TLS configuration of the connection, or nil for
// plaintext. Any TLS setting turns TLS on: a CA file or a client
// certificate on a plaintext connection would be a silent mistake, and an
// API key must never travel in clear text.
func temporalTLS(c temporalConnection) (*tls.Config, error) {
	if !c.TLS && c.APIKey == "" && c.ServerCAPath == "" && c.ServerName == "" && c.ClientCertPath == "" && c.ClientKeyPath == "" {
		return nil, nil
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if c.ServerCAPath != "" {
		pem, err := os.ReadFile(c.ServerCAPath)
		if err != nil {
			return nil, fmt.Errorf("TEMPORAL_TLS_SERVER_CA_CERT_PATH: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TEMPORAL_TLS_SERVER_CA_CERT_PATH: %s holds no PEM certificate", c.ServerCAPath)
		}
		conf.RootCAs = pool
	}
	if c.ClientCertPath != "" || c.ClientKeyPath != "" {
		if c.ClientCertPath == "" || c.ClientKeyPath == "" {
			return nil, errors.New("TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH: set both for mutual TLS, or neither")
		}
		cert, err := loadClientCert(c.ClientCertPath, c.ClientKeyPath)
		if err != nil {
			return nil, err
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	return conf, nil
}

// loadClientCert reads the client certificate and key, telling which file
// is wrong: tls.LoadX509KeyPair alone does not say.
func loadClientCert(certPath, keyPath string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("TEMPORAL_TLS_CLIENT_CERT_PATH: %w", err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("TEMPORAL_TLS_CLIENT_KEY_PATH: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// The error text never quotes the key's bytes.
		return tls.Certificate{}, fmt.Errorf("TEMPORAL_TLS_CLIENT_CERT_PATH %s and TEMPORAL_TLS_CLIENT_KEY_PATH %s: %w", certPath, keyPath, err)
	}
	return cert, nil
}

// workerOptions are the options of the dispatch worker: its task slots,
// how long a stopping worker waits for what it runs, and what it does when
// it stops for good (fatal).
func workerOptions(cfg config, fatal func(error)) worker.Options {
	return worker.Options{
		WorkerStopTimeout: workerStopTimeout(cfg),
		OnFatalError:      fatal,
		// The SDK sends heartbeats at most every 80% of the heartbeat
		// timeout; capping that at the activities' own pace leaves a
		// loaded worker room before the server takes a slow call for a
		// dead worker's and starts the next attempt beside it.
		MaxHeartbeatThrottleInterval:            activities.HeartbeatEvery,
		MaxConcurrentWorkflowTaskExecutionSize:  int(cfg.Temporal.MaxWorkflowTasks),
		MaxConcurrentLocalActivityExecutionSize: int(cfg.Temporal.MaxLocalActivities),
		MaxConcurrentActivityExecutionSize:      int(cfg.Temporal.MaxActivities),
	}
}

// firstCallSlots are the slots a worker's tenants share for function
// calls made as first attempts (activities.Options.FirstCallSlots): the
// fewer of those they hold, a workflow task's and a local activity's (0
// is the SDK's 1,000).
func firstCallSlots(cfg config) int {
	slots := func(n int64) int64 {
		if n <= 0 {
			return 1000
		}
		return n
	}
	return int(min(slots(cfg.Temporal.MaxWorkflowTasks), slots(cfg.Temporal.MaxLocalActivities)))
}

// workerStopTimeout is how long a stopping worker waits for each of its
// parts, one after the other: its workflow tasks, whose first attempts
// (local activities) must end within the local call limit for their
// results to be recorded — cut off, a call was made again by the next
// worker, beside the first — then its regular activities, retried
// elsewhere if cut off.
func workerStopTimeout(cfg config) time.Duration {
	return max(cfg.ShutdownPeriod, cfg.LocalCallLimit+5*time.Second)
}

// replayWorkerOptions are the options of the bulk replays' worker: few
// activity slots, so thousands of replay starts never take all of a
// process next to the dispatches.
func replayWorkerOptions(cfg config, fatal func(error)) worker.Options {
	return worker.Options{WorkerStopTimeout: cfg.ShutdownPeriod, OnFatalError: fatal, MaxConcurrentActivityExecutionSize: 20,
		MaxHeartbeatThrottleInterval: activities.HeartbeatEvery}
}
