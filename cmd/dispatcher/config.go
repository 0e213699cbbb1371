package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// config is everything the process reads from its environment. The README's
// configuration table lists the same variables; keep them in step.
type config struct {
	DatabaseURL    string
	AutoMigrate    bool
	HTTPAddr       string
	MaxBodyBytes   int64
	MaxEventBytes  int64
	JWTSecret      string
	JWKSURL        string
	JWTIssuer      string
	JWTAudience    string
	AuthDisabled   bool
	TemporalAddr   string
	TemporalNS     string
	TemporalUIURL  string
	TaskQueue      string
	SMTPURL        string
	MailFrom       string
	LocalCallLimit time.Duration
	DedupWindow    time.Duration
	OTLPEndpoint   string
	ServiceName    string
	LogFormat      string
	LogLevel       string
	ShutdownPeriod time.Duration
}

// setting is one environment variable: its name, default and meaning.
type setting struct {
	name, def, doc string
	set            func(c *config, v string) error
}

// settings lists every variable, in the order the README shows them.
var settings = []setting{
	{"DATABASE_URL", "sqlite:dispatcher.db", "Where configuration is kept: `postgres://user@host/db` or `sqlite:PATH`.", str(func(c *config) *string { return &c.DatabaseURL })},
	{"DISPATCHER_AUTO_MIGRATE", "true", "Apply database migrations at start-up (`false`: run `dispatcher migrate` yourself).", boolean(func(c *config) *bool { return &c.AutoMigrate })},
	{"DISPATCHER_HTTP_ADDR", "127.0.0.1:8080", "Address the API listens on (`:0` picks a free port).", str(func(c *config) *string { return &c.HTTPAddr })},
	{"DISPATCHER_MAX_BODY_BYTES", "1048576", "Largest admin request body; larger ones get 413.", integer(func(c *config) *int64 { return &c.MaxBodyBytes })},
	{"DISPATCHER_MAX_EVENT_BYTES", "262144", "Largest event body at `/events/v1`; larger ones get 413.", integer(func(c *config) *int64 { return &c.MaxEventBytes })},
	{"DISPATCHER_JWT_SECRET", "", "HS256 secret (at least 32 bytes) that tokens are signed with; `dispatcher token` signs with it.", str(func(c *config) *string { return &c.JWTSecret })},
	{"DISPATCHER_JWKS_URL", "", "JWKS URL whose keys verify RS256/ES256 tokens (refreshed in the background).", str(func(c *config) *string { return &c.JWKSURL })},
	{"DISPATCHER_JWT_ISSUER", "", "When set, tokens must carry this `iss`.", str(func(c *config) *string { return &c.JWTIssuer })},
	{"DISPATCHER_JWT_AUDIENCE", "", "When set, tokens must carry this `aud`.", str(func(c *config) *string { return &c.JWTAudience })},
	{"DISPATCHER_AUTH_DISABLED", "false", "`true` turns authentication off (every request may do everything). Never in production.", boolean(func(c *config) *bool { return &c.AuthDisabled })},
	{"TEMPORAL_ADDRESS", "127.0.0.1:7233", "Temporal frontend host:port.", str(func(c *config) *string { return &c.TemporalAddr })},
	{"TEMPORAL_NAMESPACE", "default", "Temporal namespace.", str(func(c *config) *string { return &c.TemporalNS })},
	{"DISPATCHER_TEMPORAL_UI_URL", "http://127.0.0.1:8233", "Temporal Web UI base URL, for links to executions.", str(func(c *config) *string { return &c.TemporalUIURL })},
	{"DISPATCHER_TASK_QUEUE", "dispatcher", "Temporal task queue of the dispatch workflows.", str(func(c *config) *string { return &c.TaskQueue })},
	{"DISPATCHER_SMTP_URL", "smtp://127.0.0.1:1025", "SMTP server for mail actions: `smtp://user:pass@host:port` (STARTTLS when offered; `?starttls=required` or `none`, `&auth=plain`), `smtps://` for implicit TLS.", str(func(c *config) *string { return &c.SMTPURL })},
	{"DISPATCHER_MAIL_FROM", "dispatcher@localhost", "Sender address of mail actions.", str(func(c *config) *string { return &c.MailFrom })},
	{"DISPATCHER_LOCAL_ATTEMPT_TIMEOUT", "1m", "The longest call (a function's timeout, a mail's minute) whose first attempt runs inside the workflow task as a local activity, the fast path; longer ones run every attempt as a regular, heartbeating activity. Speed only: an attempt is never cut short.", duration(func(c *config) *time.Duration { return &c.LocalCallLimit })},
	{"DISPATCHER_DEDUP_WINDOW", "168h", "How long an event id stays a duplicate, and a sent mail is not sent again. Temporal's namespace retention covers it when it is as long; otherwise the database keeps a record of accepted events for this long.", duration(func(c *config) *time.Duration { return &c.DedupWindow })},
	{"OTEL_EXPORTER_OTLP_ENDPOINT", "", "OTLP/HTTP endpoint for traces (e.g. `http://otel-collector:4318`); tracing is off when unset. The other standard `OTEL_EXPORTER_OTLP_*` variables apply too.", str(func(c *config) *string { return &c.OTLPEndpoint })},
	{"OTEL_SERVICE_NAME", "dispatcher", "Service name on the traces.", str(func(c *config) *string { return &c.ServiceName })},
	{"DISPATCHER_LOG_FORMAT", "text", "`text` or `json`.", str(func(c *config) *string { return &c.LogFormat })},
	{"DISPATCHER_LOG_LEVEL", "info", "`debug`, `info`, `warn` or `error`.", str(func(c *config) *string { return &c.LogLevel })},
	{"DISPATCHER_SHUTDOWN_TIMEOUT", "20s", "How long a stopping process waits for in-flight requests and activities.", duration(func(c *config) *time.Duration { return &c.ShutdownPeriod })},
}

// loadConfig reads every setting from getenv, using defaults for unset ones.
func loadConfig(getenv func(string) string) (config, error) {
	var c config
	for _, s := range settings {
		v := strings.TrimSpace(getenv(s.name))
		if v == "" {
			v = s.def
		}
		if err := s.set(&c, v); err != nil {
			return c, fmt.Errorf("%s=%q: %w", s.name, v, err)
		}
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return c, fmt.Errorf("DISPATCHER_LOG_FORMAT=%q: want text or json", c.LogFormat)
	}
	return c, nil
}

func str(field func(*config) *string) func(*config, string) error {
	return func(c *config, v string) error { *field(c) = v; return nil }
}

func boolean(field func(*config) *bool) func(*config, string) error {
	return func(c *config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("want true or false")
		}
		*field(c) = b
		return nil
	}
}

func integer(field func(*config) *int64) func(*config, string) error {
	return func(c *config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return fmt.Errorf("want a positive whole number")
		}
		*field(c) = n
		return nil
	}
}

func duration(field func(*config) *time.Duration) func(*config, string) error {
	return func(c *config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("want a positive duration such as 5s or 2m")
		}
		*field(c) = d
		return nil
	}
}
