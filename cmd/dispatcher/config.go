package main

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/activities"
	"github.com/dispatcherhq/dispatcher/api"
	"github.com/dispatcherhq/dispatcher/encryption"
	"github.com/dispatcherhq/dispatcher/internal/redact"
	"github.com/dispatcherhq/dispatcher/jetstream"
	"github.com/dispatcherhq/dispatcher/rabbitmq"
	"github.com/dispatcherhq/dispatcher/wire"
	"github.com/dispatcherhq/dispatcher/workflows"
)

// config is everything the process reads from its environment. The README's
// configuration table lists the same variables; keep them in step.
type config struct {
	DatabaseURL    string
	DBMaxConns     int64
	AutoMigrate    bool
	HTTPAddr       string
	MaxBodyBytes   int64
	MaxEventBytes  int64
	RequestTimeout time.Duration
	Limits         api.RateLimits
	JWTSecret      string
	MetricsToken   string // /metrics wants it as a bearer token
	JWKSURL        string
	JWTIssuer      string
	JWTAudience    string
	// JWKSRequireTenant: DISPATCHER_JWKS_REQUIRE_TENANT.
	JWKSRequireTenant bool
	APIKeyMaxTTL      time.Duration // 0: keys may live for ever
	AuthDisabled      bool
	Keys              *encryption.KeyRing // DISPATCHER_ENCRYPTION_KEY; nil: none
	TemporalAddr      string
	TemporalNS        string
	Temporal          temporalConnection
	TemporalUIURL     string
	CodecOrigins      []string // may call /codec/* from a browser
	CORSOrigins       []string // may call the rest of the API from a browser
	TaskQueue         string
	OutboundAllow     []string
	FunctionQueues    []string
	Outbound          dispatcher.Outbound // built from the two above
	SMTPURL           string
	MailFrom          string
	LocalCallLimit    time.Duration
	// DispatchVersion is the Dispatch workflow version the process starts
	// (workflows.PinDispatchVersion).
	DispatchVersion string
	DedupWindow     time.Duration
	AMQP            rabbitmq.Config // broker intake; URL "" turns it off
	AMQPTenant      string
	NATS            jetstream.Config // broker intake; URL "" turns it off
	NATSTenant      string
	OTLPEndpoint    string
	OTLPTraces      string
	OTelResource    string
	ServiceName     string
	LogFormat       string
	LogLevel        string
	ShutdownPeriod  time.Duration
}

// setting is one environment variable: its name, default and meaning.
type setting struct {
	name, def, doc string
	set            func(c *config, v string) error
}

// settings lists every variable, in the order the README shows them.
var settings = []setting{
	{"DATABASE_URL", "sqlite:dispatcher.db", "Where configuration is kept: `postgres://user@host/db` or `sqlite:PATH`.", databaseURL(func(c *config) *string { return &c.DatabaseURL })},
	{"DISPATCHER_DB_MAX_CONNS", "32", "Most connections one process opens to a PostgreSQL `DATABASE_URL` (all kept open while idle, up to 5 minutes): size `max_connections` (or the role's limit, or a PgBouncer pool) for every process of the deployment together, with Temporal's (docs/capacity.md). At least 2: the migrations hold one while they take their lock with another.", atLeast(2, func(c *config) *int64 { return &c.DBMaxConns })},
	{"DISPATCHER_AUTO_MIGRATE", "true", "Apply database migrations at start-up (`false`: run `dispatcher migrate` yourself; a process then refuses to start on a schema older than it needs).", boolean(func(c *config) *bool { return &c.AutoMigrate })},
	{"DISPATCHER_HTTP_ADDR", "127.0.0.1:8080", "Address the API listens on (`127.0.0.1:0` picks a free port, logged at start; `:0` one on every interface).", hostPort(func(c *config) *string { return &c.HTTPAddr })},
	{"DISPATCHER_MAX_BODY_BYTES", "1048576", "Largest admin request body; larger ones get 413.", integer(func(c *config) *int64 { return &c.MaxBodyBytes })},
	{"DISPATCHER_MAX_EVENT_BYTES", "262144", "Largest event body at `/events/v1`; larger ones get 413. A broker message larger than this is a dead letter. Raised past about 1 MiB, an event may still be too large for Temporal, which keeps a dispatch's input (the event, as JSON, with its dispatchers' configuration) within 2 MiB: such an event is a 400 naming `content`.", integer(func(c *config) *int64 { return &c.MaxEventBytes })},
	{"DISPATCHER_REQUEST_TIMEOUT", "30s", "How long the API waits for the database and Temporal on a request's behalf (the intake of events, the failures summary and a bulk replay's count: at least 100s in all, each event of a batch waiting up to 10 s for Temporal); past it the request is answered 503 and what it waited for is canceled.", durationAtLeast(time.Second, func(c *config) *time.Duration { return &c.RequestTimeout })},
	{"DISPATCHER_RATE_LIMIT", "100,200", "Requests a second that one token may send to the API (all but `/events/v1`), and after a comma how many at once; more get 429 with `Retry-After`. `0` turns the limit off. Limits count per process.", rateLimit(func(c *config) *api.RateLimit { return &c.Limits.Token })},
	{"DISPATCHER_TENANT_RATE_LIMIT", "500,1000", "The same for all the tokens of one tenant together (tokens without a `tenant` claim share one).", rateLimit(func(c *config) *api.RateLimit { return &c.Limits.Tenant })},
	{"DISPATCHER_INTAKE_RATE_LIMIT", "1000,2000", "Events a second that one token may send to `/events/v1` (a batch counts each event), and after a comma how many at once (at least the largest batch, 100).", rateLimit(func(c *config) *api.RateLimit { return &c.Limits.IntakeToken })},
	{"DISPATCHER_TENANT_INTAKE_RATE_LIMIT", "2000,4000", "The same for all the tokens of one tenant together.", rateLimit(func(c *config) *api.RateLimit { return &c.Limits.IntakeTenant })},
	{"DISPATCHER_TENANT_INTAKE_IN_FLIGHT", "256", "Requests to `/events/v1` that one tenant (all its tokens together) may have in hand at once in one process, read or waiting for Temporal, and one token half of it; more get 429 with `Retry-After`, their body discarded unread, so that one tenant's burst (or one runaway producer's) does not take the process's Temporal client and memory from the others. It bounds what one holds, not what all hold: with large events (`DISPATCHER_MAX_EVENT_BYTES`), size the process's memory for it, or lower it. `0` turns the bound off.", atLeast(0, func(c *config) *int { return &c.Limits.IntakeInFlight })},
	{"DISPATCHER_JWT_SECRET", "", "HS256 secret (at least 32 bytes) that tokens are signed with; `dispatcher token` signs with it.", checked(func(v string) error { return api.CheckSecret([]byte(v)) }, func(c *config) *string { return &c.JWTSecret })},
	{"DISPATCHER_METRICS_TOKEN", "", "Bearer token that `/metrics` requires (Prometheus: `authorization.credentials_file`), at least 16 characters. Unset: `/metrics` answers no one, since its series name tenants, event types and functions (with `DISPATCHER_AUTH_DISABLED`, only this machine's loopback). Secret: never printed.", metricsToken(func(c *config) *string { return &c.MetricsToken })},
	{"DISPATCHER_JWKS_URL", "", "JWKS URL whose keys verify RS256/ES256 tokens (refreshed in the background, every 5 minutes to an hour as its `Cache-Control` says, and on a token with an unknown `kid` at most every 10 s, so a rotated key is known within 10 s of its first token); https, or plain http from a loopback address only.", str(func(c *config) *string { return &c.JWKSURL })},
	{"DISPATCHER_JWT_ISSUER", "", "When set, tokens must carry this `iss`. Required with `DISPATCHER_JWKS_URL`.", str(func(c *config) *string { return &c.JWTIssuer })},
	{"DISPATCHER_JWT_AUDIENCE", "", "When set, tokens must carry this `aud`. Required with `DISPATCHER_JWKS_URL`.", str(func(c *config) *string { return &c.JWTAudience })},
	{"DISPATCHER_JWKS_REQUIRE_TENANT", "false", "`true` refuses (401) a token of the identity provider (`DISPATCHER_JWKS_URL`) without a `tenant` claim, which would act in the implicit tenant, the operators' (README, \"Tenants\"); tokens of `dispatcher token` (`DISPATCHER_JWT_SECRET`) may go without.", boolean(func(c *config) *bool { return &c.JWKSRequireTenant })},
	{"DISPATCHER_APIKEY_MAX_TTL", "", "When set (e.g. `2160h`, 90 days), every API key expires within this long of its creation: one asked for without `expiresAt` gets it, one asked for later is refused (400 naming `expiresAt`). Unset: a key made without `expiresAt` lives until revoked, also one made with a token that expires in an hour. Keys made before keep their expiry.", unlessEmpty(duration(func(c *config) *time.Duration { return &c.APIKeyMaxTTL }))},
	{"DISPATCHER_AUTH_DISABLED", "false", "`true` turns authentication off (every request may do everything); refused unless `DISPATCHER_HTTP_ADDR` is a loopback address. Never in production.", boolean(func(c *config) *bool { return &c.AuthDisabled })},
	{"DISPATCHER_ENCRYPTION_KEY", "", "Keys that encrypt function secrets and headers in the database and every Temporal payload (AES-256-GCM): comma-separated `id:base64key` entries, the first encrypting, all of them decrypting, so keys rotate (docs/operations.md). `dispatcher encryption keygen` makes one. Every process needs the same keys. Unset: stored and sent in clear text, with a warning at start-up. Secret: never printed.", keyRing(func(c *config) **encryption.KeyRing { return &c.Keys })},
	{"TEMPORAL_ADDRESS", "127.0.0.1:7233", "Temporal frontend host:port.", hostPort(func(c *config) *string { return &c.TemporalAddr })},
	{"TEMPORAL_NAMESPACE", "default", "Temporal namespace (Temporal Cloud: `<namespace>.<account>`).", str(func(c *config) *string { return &c.TemporalNS })},
	{"TEMPORAL_TLS", "false", "`true` connects to Temporal over TLS, verifying the frontend's certificate against the system's CAs or `TEMPORAL_TLS_SERVER_CA_CERT_PATH`. Implied by `TEMPORAL_API_KEY` and by every other `TEMPORAL_TLS_*` setting.", boolean(func(c *config) *bool { return &c.Temporal.TLS })},
	{"TEMPORAL_TLS_SERVER_CA_CERT_PATH", "", "PEM file of the CA that signed the frontend's certificate, for a private CA (default: the system's CAs).", str(func(c *config) *string { return &c.Temporal.ServerCAPath })},
	{"TEMPORAL_TLS_SERVER_NAME", "", "Name the frontend's certificate must carry, when it is not the host of `TEMPORAL_ADDRESS` (a load balancer, an IP address).", str(func(c *config) *string { return &c.Temporal.ServerName })},
	{"TEMPORAL_TLS_CLIENT_CERT_PATH", "", "PEM client certificate for mutual TLS (Temporal Cloud's certificate authentication, or a frontend that requires client certificates); needs `TEMPORAL_TLS_CLIENT_KEY_PATH`.", str(func(c *config) *string { return &c.Temporal.ClientCertPath })},
	{"TEMPORAL_TLS_CLIENT_KEY_PATH", "", "PEM private key of `TEMPORAL_TLS_CLIENT_CERT_PATH`.", str(func(c *config) *string { return &c.Temporal.ClientKeyPath })},
	{"TEMPORAL_API_KEY", "", "API key sent as a bearer token on every call to Temporal (Temporal Cloud's API-key authentication); implies TLS. Secret: never printed.", str(func(c *config) *string { return &c.Temporal.APIKey })},
	{"TEMPORAL_GRPC_COMPRESSION", "none", "`none` or `gzip`: compression of the requests to Temporal. gzip costs about 8 % of a worker's CPU and saves bandwidth only on a slow or metered link to Temporal.", oneOf(func(c *config) *string { return &c.Temporal.Compression }, "none", "gzip")},
	{"DISPATCHER_MAX_CONCURRENT_WORKFLOW_TASKS", "1000", "Workflow tasks one process runs at once. A dispatch's first task keeps its slot while the first attempts of its actions run, so this also bounds the dispatches in their first attempt.", atLeast(2, func(c *config) *int64 { return &c.Temporal.MaxWorkflowTasks })},
	{"DISPATCHER_MAX_CONCURRENT_LOCAL_ACTIVITIES", "1000", "First attempts of actions (local activities) one process runs at once. They wait on I/O: each costs a goroutine and a connection, not a core. Tenants share these slots (and `DISPATCHER_MAX_CONCURRENT_WORKFLOW_TASKS`'s, the fewer) for function calls: a tenant's calls take at most half of what the others' leave; past that its calls are made as regular activities, at once and at no attempt's cost, so that a few tenants' slow functions never hold every slot (k of them leave the others at least 1/2^k; keep the slots well above the workflow task pollers, who hold some while they poll).", integer(func(c *config) *int64 { return &c.Temporal.MaxLocalActivities })},
	{"DISPATCHER_WORKFLOW_CACHE_SIZE", "1000", "Open dispatches one process keeps in memory between their workflow tasks (Temporal's sticky cache; a dispatch not kept replays its short history when its next task comes). Each takes about its event's size and 30 KB: keep it and GOMEMLIMIT under the container's memory limit.", integer(func(c *config) *int64 { return &c.Temporal.CacheSize })},
	{"DISPATCHER_MAX_CONCURRENT_ACTIVITIES", "1000", "Retries of actions and other regular activities one process runs at once; more are left in the task queue for another worker.", integer(func(c *config) *int64 { return &c.Temporal.MaxActivities })},
	{"DISPATCHER_TEMPORAL_UI_URL", "http://127.0.0.1:8233", "Temporal Web UI base URL, for links to executions.", webURL(func(c *config) *string { return &c.TemporalUIURL })},
	{"DISPATCHER_CODEC_CORS_ORIGINS", "", "Origins (`https://temporal-ui.example.com`) of Temporal Web UIs whose browsers may call the codec endpoint `/codec/decode`, comma-separated (default: the origin of `DISPATCHER_TEMPORAL_UI_URL`; a loopback one under both its names, `127.0.0.1` and `localhost`).", origins(func(c *config) *[]string { return &c.CodecOrigins })},
	{"DISPATCHER_CORS_ORIGINS", "", "Origins (`https://admin.example.com`) of web apps whose pages may call the API from a browser with a token or an API key, comma-separated (default: none; the console is served from the API's own origin and needs none).", origins(func(c *config) *[]string { return &c.CORSOrigins })},
	{"DISPATCHER_TASK_QUEUE", "dispatcher", "Temporal task queue of the dispatch workflows.", str(func(c *config) *string { return &c.TaskQueue })},
	{"DISPATCHER_OUTBOUND_ALLOW", "", "Exceptions to outbound safety, comma-separated: CIDRs (`10.0.0.0/8`: those addresses, any port; an IPv4-mapped one, `::ffff:10.0.0.0/104`, is its IPv4 range) or `host:port` (`billing.internal:8080`: that host and port, whatever it resolves to); `tenant=entry` opens it to that tenant's functions only (`acme=10.20.0.0/16`). Task functions must otherwise be `https` URLs of public addresses: not private, loopback, link-local, CGNAT or cloud metadata, checked when saved and on every connection and redirect.", list(func(c *config) *[]string { return &c.OutboundAllow })},
	{"DISPATCHER_FUNCTION_TASK_QUEUES", "", "Task queues that `temporal`-kind functions may run on, comma-separated: those your own workers poll (default: none; never `DISPATCHER_TASK_QUEUE`); `tenant=queue` opens it to that tenant's functions only.", list(func(c *config) *[]string { return &c.FunctionQueues })},
	{"DISPATCHER_SMTP_URL", "smtp://127.0.0.1:1025", "SMTP server for mail actions: `smtp://user:pass@host:port` (STARTTLS: required when the URL has a user and the host is not loopback, so a password never crosses the network in clear; otherwise when offered; `?starttls=required`, `opportunistic` or `none`, `&auth=plain`), `smtps://` for implicit TLS.", checked(activities.CheckSMTPURL, func(c *config) *string { return &c.SMTPURL })},
	{"DISPATCHER_MAIL_FROM", "dispatcher@localhost", "Sender address of mail actions.", checked(activities.CheckSender, func(c *config) *string { return &c.MailFrom })},
	{"DISPATCHER_DISPATCH_VERSION", fmt.Sprint(workflows.NewestDispatchVersion), fmt.Sprintf("The version of the Dispatch workflow the process starts: this release's, %d, or, for a rolling upgrade from a release whose workers do not run it, the newest those run (%d or later; their `dispatcher version` says); then roll out again without it (docs/operations.md, Upgrades).", workflows.NewestDispatchVersion, workflows.OldestDispatchVersion), dispatchVersion(func(c *config) *string { return &c.DispatchVersion })},
	{"DISPATCHER_LOCAL_ATTEMPT_TIMEOUT", "1m", "The longest attempt (a function's timeout and 10 s, 14 s with flow control; a mail's minute) whose first attempt runs inside the workflow task as a local activity, the fast path; longer ones run every attempt as a regular, heartbeating activity. Speed only: an attempt is never cut short. Set it alike on every process: the intake puts it in each dispatch, and a stopping worker waits as long as its own for the first attempts in flight.", duration(func(c *config) *time.Duration { return &c.LocalCallLimit })},
	{"DISPATCHER_DEDUP_WINDOW", "168h", "How long an event id stays a duplicate, and a sent mail is not sent again. Temporal's namespace retention covers it when it is as long; otherwise the database keeps a record of accepted events for this long. Set it alike on every process: each worker deletes the records older than its own (a warning under an hour).", duration(func(c *config) *time.Duration { return &c.DedupWindow })},
	{"DISPATCHER_AMQP_URL", "", "RabbitMQ to take events from over AMQP 0-9-1 (`amqp://user:pass@host:5672/vhost`, `amqps://` for TLS): `serve` and `worker` consume its queue, acknowledging a message once Temporal has its events (docs/brokers.md). Unset: no AMQP intake. The password is never printed.", checked(rabbitmq.CheckURL, func(c *config) *string { return &c.AMQP.URL })},
	{"DISPATCHER_AMQP_EXCHANGE", "dispatcher.events", "Durable topic exchange that producers publish events to, the routing key being the event type; declared at start, with `<exchange>.dlx` for dead letters.", amqpName(".dlx", func(c *config) *string { return &c.AMQP.Exchange })},
	{"DISPATCHER_AMQP_QUEUE", "dispatcher.events", "Durable queue the dispatcher consumes, bound to the exchange with `#`; declared at start, with `<queue>.dead`, which keeps the dead letters (the reason in their `x-dispatcher-error` header).", amqpName(".dead", func(c *config) *string { return &c.AMQP.Queue })},
	{"DISPATCHER_AMQP_PREFETCH", "64", "Messages RabbitMQ hands one process before it acknowledges them (the channel's prefetch, 1 to 65535), and so how many it takes in at once.", between(1, rabbitmq.MaxPrefetch, func(c *config) *int { return &c.AMQP.Prefetch })},
	{"DISPATCHER_AMQP_TENANT", "", "Tenant whose events the AMQP intake takes in (default: the implicit tenant of a deployment without tenants). Give each tenant an exchange and a queue of its own (`DISPATCHER_AMQP_EXCHANGE`, `DISPATCHER_AMQP_QUEUE`): the queue takes every event published to its exchange, and one queue cannot serve two exchanges.", tenantName(func(c *config) *string { return &c.AMQPTenant })},
	{"DISPATCHER_NATS_URL", "", "NATS server with JetStream to take events from (`nats://host:4222`, comma-separated for a cluster, `tls://` for TLS, `user:pass@` or a token in the URL): `serve` and `worker` consume its stream, acknowledging a message once Temporal has its events (docs/brokers.md). Unset: no NATS intake.", checked(jetstream.CheckURLs, func(c *config) *string { return &c.NATS.URL })},
	{"DISPATCHER_NATS_STREAM", "DISPATCHER_EVENTS", "JetStream stream of the events, created on the subjects `<subject>.>` when missing.", natsName(func(c *config) *string { return &c.NATS.Stream })},
	{"DISPATCHER_NATS_SUBJECT", "events", "Subject prefix: producers publish an event on `<subject>.<type>`; dead letters go to `<subject>.dead.<type>`, the reason in their `x-dispatcher-error` header.", natsSubject(func(c *config) *string { return &c.NATS.Subject })},
	{"DISPATCHER_NATS_CONSUMER", jetstream.Consumer, "The dispatcher's durable pull consumer on the stream, shared by the processes of a deployment. Deployments that share a stream, each on subjects of its own (one a tenant, say), each need one of their own: the source refuses a consumer of this name that filters on other subjects than `<subject>.>`. Changing it on a deployment starts a new consumer from the stream's start.", natsName(func(c *config) *string { return &c.NATS.Consumer })},
	{"DISPATCHER_NATS_PREFETCH", "64", "Messages one process takes in at once from the stream; more than 1000 is taken as 1000 (with a warning): the consumer hands out at most 1000 unacknowledged, to all the processes together (JetStream's default `MaxAckPending`).", atLeast(1, func(c *config) *int { return &c.NATS.Prefetch })},
	{"DISPATCHER_NATS_MAX_DELIVER", "10", "Deliveries of a message without an acknowledgement (each time a process crashed or stopped holding it, or lost its connection for longer than the ack wait) after which it goes to the dead letters; the last is still tried, waiting for Temporal does not count, and JetStream itself never drops a message.", atLeast(2, func(c *config) *int { return &c.NATS.MaxDeliver })},
	{"DISPATCHER_NATS_ACK_WAIT", "30s", "How long JetStream waits for an acknowledgement before it delivers a message again, e.g. after a crash; a message in hand is kept from redelivery with progress acknowledgements. At least 1s.", durationAtLeast(jetstream.MinAckWait, func(c *config) *time.Duration { return &c.NATS.AckWait })},
	{"DISPATCHER_NATS_TENANT", "", "Tenant whose events the NATS intake takes in (default: the implicit tenant).", tenantName(func(c *config) *string { return &c.NATSTenant })},
	{"OTEL_EXPORTER_OTLP_ENDPOINT", "", "OTLP/HTTP base URL for traces (e.g. `http://otel-collector:4318`): spans go to its path `/v1/traces`. Tracing is off when neither this nor `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set. A function call's span carries its URL as `scheme://host[:port]` only (`url.full`), as logs and failures show it. The other standard `OTEL_EXPORTER_OTLP_*` variables (headers, timeout, compression, certificate, client certificate and key; general or `…_TRACES_…`) apply too, and so do `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG` (e.g. `parentbased_traceidratio` and `0.01`: 1 % of traces), all checked at start; a protocol other than `http/protobuf` is refused, and so is a user and password in the URL (put them in the headers).", str(func(c *config) *string { return &c.OTLPEndpoint })},
	{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "", "Full OTLP/HTTP URL for traces, used as it is (e.g. `https://collector.example.com/v1/traces`); wins over `OTEL_EXPORTER_OTLP_ENDPOINT`.", str(func(c *config) *string { return &c.OTLPTraces })},
	{"OTEL_SERVICE_NAME", "", "Service name on the traces (default: `service.name` of `OTEL_RESOURCE_ATTRIBUTES`, else `dispatcher`).", str(func(c *config) *string { return &c.ServiceName })},
	{"OTEL_RESOURCE_ATTRIBUTES", "", "More attributes of the traces' resource: `key=value` pairs separated by commas, values percent-encoded (e.g. `deployment.environment=prod,k8s.pod.name=dispatcher-1`).", str(func(c *config) *string { return &c.OTelResource })},
	{"DISPATCHER_LOG_FORMAT", "text", "`text` or `json`.", oneOf(func(c *config) *string { return &c.LogFormat }, "text", "json")},
	{"DISPATCHER_LOG_LEVEL", "info", "`debug`, `info`, `warn` or `error`.", logLevel(func(c *config) *string { return &c.LogLevel })},
	{"DISPATCHER_SHUTDOWN_TIMEOUT", "20s", "How long a stopping process waits for in-flight requests; a request still waiting 2 s before it ends (for a database or Temporal that does not answer) is answered 503. A stopping worker lets the first attempts in flight end, then its regular activities, each for up to this or DISPATCHER_LOCAL_ATTEMPT_TIMEOUT and 5 s, whichever is longer (65 s by default), so their calls are recorded rather than made again; a supervisor's grace period must cover twice that, and a preStop hook.", duration(func(c *config) *time.Duration { return &c.ShutdownPeriod })},
}

// ownVariable reports whether name is a variable dispatcher reads for
// itself: a setting of the server, or the client's URL and token. None is
// a function's secret, and a dispatchers file naming one would send it to
// the function's URL.
func ownVariable(name string) bool {
	secretFile, ok := strings.CutSuffix(name, "_FILE")
	return name == "DISPATCHER_URL" || name == "DISPATCHER_TOKEN" || isSetting(name) || ok && slices.Contains(secretSettings, secretFile)
}

// isSetting reports whether name is a setting's.
func isSetting(name string) bool {
	return slices.ContainsFunc(settings, func(s setting) bool { return s.name == name })
}

// secretSettings are the settings that hold a secret: each may be given
// in a file instead, <NAME>_FILE (a mounted Kubernetes Secret, a Docker
// secret), which keeps it out of the process's environment, where
// /proc/<pid>/environ, `docker inspect` and crash reports show it.
var secretSettings = []string{"DATABASE_URL", "DISPATCHER_JWT_SECRET", "DISPATCHER_METRICS_TOKEN", "DISPATCHER_ENCRYPTION_KEY",
	"TEMPORAL_API_KEY", "DISPATCHER_SMTP_URL", "DISPATCHER_AMQP_URL", "DISPATCHER_NATS_URL"}

// withSecretFiles returns getenv with the secrets given in files
// (secretSettings) read from them, the line ending at their end left out,
// and whether a setting's value came from a file.
func withSecretFiles(getenv func(string) string) (func(string) string, func(string) bool, error) {
	files := map[string]string{}
	for _, name := range secretSettings {
		path := strings.TrimSpace(getenv(name + "_FILE"))
		if path == "" {
			continue
		}
		if strings.TrimSpace(getenv(name)) != "" {
			return nil, nil, fmt.Errorf("%s and %s_FILE are both set: set one of them", name, name)
		}
		v, err := readSecretFile(path)
		if err != nil {
			return nil, nil, fmt.Errorf("%s_FILE: %w", name, err)
		}
		files[name] = v
	}
	fromFile := func(name string) bool { _, ok := files[name]; return ok }
	return func(name string) string {
		if v, ok := files[name]; ok {
			return v
		}
		return getenv(name)
	}, fromFile, nil
}

// maxSecretFile bounds a secret's file: a setting, not a document.
const maxSecretFile = 64 << 10

// readSecretFile reads a secret from the regular file at path (a link to
// one, as Kubernetes mounts a Secret's keys), which must hold one of at
// most maxSecretFile bytes; never a device or a pipe, which could block
// the start for ever.
func readSecretFile(path string) (string, error) {
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return "", err
	case !fi.Mode().IsRegular():
		return "", fmt.Errorf("%s is not a regular file", path)
	case fi.Size() > maxSecretFile:
		return "", fmt.Errorf("%s holds %d bytes, more than a secret's %d: is it the right file?", path, fi.Size(), maxSecretFile)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	v := strings.TrimRight(string(b), "\r\n")
	if strings.TrimSpace(v) == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return v, nil
}

// loadConfig reads every setting from getenv, using defaults for unset
// ones, and secrets from the files named (withSecretFiles).
func loadConfig(getenv func(string) string) (config, error) {
	var c config
	getenv, fromFile, err := withSecretFiles(getenv)
	if err != nil {
		return c, err
	}
	for _, s := range settings {
		v := strings.TrimSpace(getenv(s.name))
		if v == "" {
			v = s.def
		}
		if err := s.set(&c, v); err != nil {
			if fromFile(s.name) { // not quoted: the file may be another secret's
				return c, fmt.Errorf("%s, from the file %s_FILE names: %w", s.name, s.name, err)
			}
			return c, fmt.Errorf("%s=%q: %w", s.name, redacted(s.name, v), err)
		}
	}
	// The exporter speaks OTLP/HTTP with protobuf whatever the protocol
	// says (the traces' own, else the general one): grpc, said and not
	// done, would export nothing. Checked only when tracing is on.
	for _, name := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		v := strings.TrimSpace(getenv(name))
		if v == "" || c.OTLPEndpoint == "" && c.OTLPTraces == "" {
			continue
		}
		if v != "http/protobuf" {
			return c, fmt.Errorf("%s=%q: traces are exported over OTLP/HTTP with protobuf only (http/protobuf): point OTEL_EXPORTER_OTLP_ENDPOINT at the collector's HTTP port (4318)", name, v)
		}
		break
	}
	if c.OTLPEndpoint != "" || c.OTLPTraces != "" {
		if err := checkOTLPEnv(getenv); err != nil {
			return c, err
		}
	}
	if t := c.Temporal; strings.TrimSpace(getenv("TEMPORAL_TLS")) != "" && !t.TLS {
		// Said off, and turned on by another setting: the process would
		// dial a plaintext frontend over TLS and retry for ever.
		for _, s := range []struct{ name, value string }{{"TEMPORAL_API_KEY", t.APIKey}, {"TEMPORAL_TLS_SERVER_CA_CERT_PATH", t.ServerCAPath},
			{"TEMPORAL_TLS_SERVER_NAME", t.ServerName}, {"TEMPORAL_TLS_CLIENT_CERT_PATH", t.ClientCertPath}, {"TEMPORAL_TLS_CLIENT_KEY_PATH", t.ClientKeyPath}} {
			if s.value != "" {
				return c, fmt.Errorf("TEMPORAL_TLS=false, but %s is set, which goes over TLS only: unset one of them", s.name)
			}
		}
	}
	if c.Outbound, err = dispatcher.NewOutbound(c.OutboundAllow, c.FunctionQueues); err != nil {
		return c, err // naming the setting
	}
	for _, own := range []string{c.TaskQueue, workflows.ReplayTaskQueue(c.TaskQueue)} {
		if c.Outbound.OpensTaskQueue(own) {
			// Its workers would take the function's workflow and fail it,
			// "unable to find workflow type", and the dispatch wait forever.
			return c, fmt.Errorf("DISPATCHER_FUNCTION_TASK_QUEUES: %q is one of the dispatcher's own task queues (DISPATCHER_TASK_QUEUE, and its bulk replays'), whose workers run no workflows of yours; list the queues your workers poll", own)
		}
	}
	if len(c.CodecOrigins) == 0 {
		c.CodecOrigins = defaultCodecOrigins(c.TemporalUIURL)
	}
	return c, nil
}

// environ lists the process's environment for misnamed; the tests set
// their own.
var environ = os.Environ

// blankSharedNames refuses a name that environ sets, but to nothing, of
// what deployments may share: the Temporal namespace and task queue, and
// the names of the broker intake c takes events from. An empty setting
// means its default, and a default name is the one other deployments may
// use too. Before, DISPATCHER_AMQP_EXCHANGE= (a template that filled in
// an empty variable) bound this deployment's queue to the shared
// exchange, and its intake took every other deployment's events, under
// its own tenant (broker probe); DISPATCHER_TASK_QUEUE= polled the
// default queue, shown by dispatcher config as set.
func blankSharedNames(environ []string, c config) error {
	names := map[string]bool{"TEMPORAL_NAMESPACE": true, "DISPATCHER_TASK_QUEUE": true}
	if c.AMQP.URL != "" {
		names["DISPATCHER_AMQP_EXCHANGE"], names["DISPATCHER_AMQP_QUEUE"] = true, true
	}
	if c.NATS.URL != "" {
		names["DISPATCHER_NATS_STREAM"], names["DISPATCHER_NATS_SUBJECT"], names["DISPATCHER_NATS_CONSUMER"] = true, true, true
	}
	for _, kv := range environ {
		if name, v, _ := strings.Cut(kv, "="); names[name] && strings.TrimSpace(v) == "" {
			return fmt.Errorf("%s is set, but empty: unset it for its default (%s), which other deployments may take too, or name this deployment's own", name, settingDefault(name))
		}
	}
	return nil
}

// settingDefault returns the default of the setting named name.
func settingDefault(name string) string {
	for _, s := range settings {
		if s.name == name {
			return s.def
		}
	}
	return ""
}

// settingPrefixes are the prefixes of the settings' names that another
// variable's name may begin with by mistake.
var settingPrefixes = []string{"DISPATCHER_", "TEMPORAL_", "OTEL_"}

// misnamed returns a warning for each variable of environ ("NAME=value")
// that is surely meant as a setting but is not one, and is ignored: a
// setting's name with DISPATCHER_ put before it, or, after the same
// prefix, misspelt by a letter or two (wire.Nearly). Unwarned, the
// setting's default is used: DISPATCHER_DATABASE_URL left the store in
// ./dispatcher.db. Other variables, the CLI's and scripts' included, are
// no concern of the settings.
func misnamed(environ []string) []string {
	var warnings []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if ownVariable(name) {
			continue
		}
		if path, ok := strings.CutSuffix(name, "_DATA"); ok && isSetting(path+"_PATH") {
			// Temporal's SDKs read inline TLS data under these names.
			warnings = append(warnings, fmt.Sprintf("%s is set, but the dispatcher reads no inline TLS data and ignores it: write it to a file and set %s_PATH", name, path))
			continue
		}
		if base, ok := strings.CutSuffix(name, "_FILE"); ok && isSetting(base) {
			warnings = append(warnings, fmt.Sprintf("%s is set, but %s is no secret, and only secrets are read from files (%s): set it itself", name, base, strings.Join(secretSettings, ", ")))
			continue
		} else if ok {
			if i := slices.IndexFunc(secretSettings, func(s string) bool { return base == "DISPATCHER_"+s || nearlyNamed(base, s) }); i >= 0 {
				warnings = append(warnings, fmt.Sprintf("%s is set, but is not a setting and is ignored: did you mean %s_FILE?", name, secretSettings[i]))
				continue
			}
		}
		if setting, ok := otherToolsNames[name]; ok {
			if !slices.ContainsFunc(environ, func(kv string) bool { return strings.HasPrefix(kv, setting+"=") }) {
				warnings = append(warnings, fmt.Sprintf("%s is set, but is not a setting and is ignored (another Temporal tool's name): did you mean %s?", name, setting))
			}
			continue
		}
		for _, s := range settings {
			if name == "DISPATCHER_"+s.name || nearlyNamed(name, s.name) {
				warnings = append(warnings, fmt.Sprintf("%s is set, but is not a setting and is ignored: did you mean %s? (`dispatcher config` lists the settings)", name, s.name))
				break
			}
		}
		// The CLI's own: before, a misspelt one was met only by "missing
		// bearer token", or the default URL.
		for _, own := range []string{"DISPATCHER_URL", "DISPATCHER_TOKEN"} {
			if nearlyNamed(name, own) {
				warnings = append(warnings, fmt.Sprintf("%s is set, but is not a setting and is ignored: did you mean %s? (the CLI reads it)", name, own))
			}
		}
	}
	slices.Sort(warnings)
	return warnings
}

// otherToolsNames are the names other Temporal tools (the older Temporal
// CLI, tctl) give settings of the dispatcher's: set without the
// dispatcher's own (for those tools, the shell's), they are said. Before,
// ignored without a word: the process dialled Temporal without TLS and
// waited for ever.
var otherToolsNames = map[string]string{
	"TEMPORAL_TLS_CERT": "TEMPORAL_TLS_CLIENT_CERT_PATH", "TEMPORAL_CLI_TLS_CERT": "TEMPORAL_TLS_CLIENT_CERT_PATH",
	"TEMPORAL_TLS_KEY": "TEMPORAL_TLS_CLIENT_KEY_PATH", "TEMPORAL_CLI_TLS_KEY": "TEMPORAL_TLS_CLIENT_KEY_PATH",
	"TEMPORAL_TLS_CA": "TEMPORAL_TLS_SERVER_CA_CERT_PATH", "TEMPORAL_CLI_TLS_CA": "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
}

// nearlyNamed reports whether name and setting have the same prefix and,
// after it, nearly the same name, or the one a word of the other spelt
// out or cut short (ADDRESS for ADDR).
func nearlyNamed(name, setting string) bool {
	for _, p := range settingPrefixes {
		if strings.HasPrefix(setting, p) && len(name) > len(p) && strings.EqualFold(name[:len(p)], p) {
			n, s := strings.ToUpper(name[len(p):]), setting[len(p):]
			return wire.Nearly(n, s) || lengthened(n, s) || lengthened(s, n)
		}
	}
	return false
}

// lengthened reports whether long is short with letters added to its
// last word.
func lengthened(long, short string) bool {
	return len(long) > len(short) && strings.HasPrefix(long, short) && !strings.Contains(long[len(short):], "_")
}

// logLevel reads a log level slog knows (debug, info, warn, error, in any
// case).
func logLevel(field func(*config) *string) func(*config, string) error {
	return func(c *config, v string) error {
		var l slog.Level
		if err := l.UnmarshalText([]byte(v)); err != nil {
			return fmt.Errorf("want debug, info, warn or error")
		}
		*field(c) = v
		return nil
	}
}

// hostPort reads an address with its port: without one, a client would
// pick a port of its own, and wait there for ever.
func hostPort(field func(*config) *string) func(*config, string) error {
	return func(c *config, v string) error {
		_, port, err := net.SplitHostPort(v)
		if err != nil || port == "" {
			return fmt.Errorf("want host:port")
		}
		// Before, a port past 65535 passed, and the listener failed only
		// after the migrations and the worker had started.
		if n, err := net.LookupPort("tcp", port); err != nil || n < 0 || n > 65535 {
			return fmt.Errorf("want host:port, the port from 0 to 65535")
		}
		*field(c) = v
		return nil
	}
}

// oneOf accepts only the values given.
func oneOf(field func(*config) *string, values ...string) func(*config, string) error {
	return func(c *config, v string) error {
		if !slices.Contains(values, v) {
			return fmt.Errorf("want %s", strings.Join(values, " or "))
		}
		*field(c) = v
		return nil
	}
}

// dispatchVersion reads a Dispatch version this release may start
// (workflows.PinDispatchVersion).
func dispatchVersion(field func(*config) *string) func(*config, string) error {
	return func(c *config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < workflows.OldestDispatchVersion || n > workflows.NewestDispatchVersion {
			return fmt.Errorf("want a whole number from %d to %d", workflows.OldestDispatchVersion, workflows.NewestDispatchVersion)
		}
		*field(c) = v
		return nil
	}
}

// list reads comma-separated values, leaving out empty ones.
func list(field func(*config) *[]string) func(*config, string) error {
	return func(c *config, v string) error {
		var out []string
		for e := range strings.SplitSeq(v, ",") {
			if e = strings.TrimSpace(e); e != "" {
				out = append(out, e)
			}
		}
		*field(c) = out
		return nil
	}
}

// maxRateLimit bounds a rate limit's rate: twice 1e300 was no burst.
const maxRateLimit = 1_000_000

// rateLimit reads "RATE" or "RATE,BURST": a positive number a second and
// how many at once (default twice the rate); "0" turns the limit off.
func rateLimit(field func(*config) *api.RateLimit) func(*config, string) error {
	return func(c *config, v string) error {
		rate, burst, hasBurst := strings.Cut(v, ",")
		r, err := strconv.ParseFloat(strings.TrimSpace(rate), 64)
		if err != nil || r < 0 || r > maxRateLimit || math.IsNaN(r) {
			return fmt.Errorf("want a number a second up to %d, optionally a comma and a burst (100 or 100,200), or 0 for no limit", maxRateLimit)
		}
		l := api.RateLimit{Rate: r, Burst: int(math.Ceil(2 * r))}
		if hasBurst {
			b, err := strconv.Atoi(strings.TrimSpace(burst))
			if err != nil || b <= 0 {
				return fmt.Errorf("the burst after the comma must be a positive whole number")
			}
			l.Burst = b
		}
		if r == 0 {
			l = api.RateLimit{}
		}
		*field(c) = l
		return nil
	}
}

// webURL reads an http:// or https:// URL with a host: a link, and the
// origin the codec's CORS allows by default. Links are made by appending
// a path, so a trailing slash is dropped (before, links went to
// //namespaces/…, a 404 of the Web UI), and a query or fragment refused.
func webURL(field func(*config) *string) func(*config, string) error {
	return func(c *config, v string) error {
		u, err := url.Parse(v)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			return fmt.Errorf("want an http:// or https:// URL with a host")
		case u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(v, "?") || strings.HasSuffix(v, "#"):
			return fmt.Errorf("want a base URL, without a query or fragment: links append a path to it")
		}
		*field(c) = strings.TrimRight(v, "/")
		return nil
	}
}

// checked reads a value that check accepts, or nothing: a broker's URL
// (rabbitmq.CheckURL, jetstream.CheckURLs) that cannot be dialled is
// refused at start-up rather than on every attempt to connect; a bad SMTP
// URL, sender or JWT secret stopped the process only once its workers had
// started, in an error that did not name the setting.
func checked(check func(string) error, field func(*config) *string) func(*config, string) error {
	return func(c *config, v string) error {
		if v != "" {
			if err := check(v); err != nil {
				return err
			}
		}
		*field(c) = v
		return nil
	}
}

func str(field func(*config) *string) func(*config, string) error {
	return func(c *config, v string) error { *field(c) = v; return nil }
}

// databaseURL reads DATABASE_URL. A PostgreSQL URL whose password holds
// an unencoded @, / or # is refused: the driver would take a piece of the
// password for the host, and quote it in its errors.
func databaseURL(field func(*config) *string) func(*config, string) error {
	return func(c *config, v string) error {
		if scheme, rest, ok := strings.Cut(v, "://"); ok && strings.HasPrefix(scheme, "postgres") {
			// At most one @, before the path: the user information's end.
			head, _, _ := strings.Cut(rest, "?")
			at, slash := strings.Index(head, "@"), strings.Index(head, "/")
			if strings.Count(head, "@") > 1 || at >= 0 && slash >= 0 && at > slash || strings.Contains(v, "#") || redact.Ambiguous(v) != nil {
				return errors.New("not a valid URL: percent-encode a password's special characters (@ as %40, / as %2F, # as %23, % as %25)")
			}
		}
		*field(c) = v
		return nil
	}
}

// metricsToken reads a bearer token long enough not to be guessed.
func metricsToken(field func(*config) *string) func(*config, string) error {
	return func(c *config, v string) error {
		if v != "" && len(v) < 16 {
			return fmt.Errorf("want at least 16 characters (openssl rand -hex 24 makes one)")
		}
		*field(c) = v
		return nil
	}
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

func integer(field func(*config) *int64) func(*config, string) error { return atLeast(1, field) }

// atLeast reads a whole number of at least least.
func atLeast[T int | int64](least T, field func(*config) *T) func(*config, string) error {
	return func(c *config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < int64(least) || int64(T(n)) != n {
			return fmt.Errorf("want a whole number of at least %d", least)
		}
		*field(c) = T(n)
		return nil
	}
}

// unlessEmpty is parse for a setting that may be left unset.
func unlessEmpty(parse func(*config, string) error) func(*config, string) error {
	return func(c *config, v string) error {
		if v == "" {
			return nil
		}
		return parse(c, v)
	}
}

func duration(field func(*config) *time.Duration) func(*config, string) error {
	return func(c *config, v string) error {
		d, err := parseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("want a positive duration such as 5s, 2m or 7d")
		}
		*field(c) = d
		return nil
	}
}
