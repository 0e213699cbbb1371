package dispatcher

import (
	"maps"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
)

// Function kinds.
const (
	FunctionHTTP     = "http"     // called with an HTTP POST to URL
	FunctionTemporal = "temporal" // run as a child workflow named Name on TaskQueue
)

// Function is a named task function that task actions run.
type Function struct {
	ID        string
	Name      string // unique; what task actions name in functionName
	Kind      string
	URL       string            // http
	Timeout   time.Duration     // http: per call
	Secret    string            // http: signs calls with HMAC-SHA256; never shown
	Headers   map[string]string // http: sent with every call
	TaskQueue string            // temporal
	// Flow is its flow control (http): rate limit, concurrency, circuit
	// breaker and pause, enforced across all workers.
	Flow    Flow
	Created time.Time
	Updated time.Time
}

// ReservedWorkflowNames are the dispatcher's own workflow types: a
// temporal task function by one of these names would let whoever may edit
// functions start them (a bulk replay, say) without their permission.
var ReservedWorkflowNames = []string{"Dispatch", "BulkReplay", "Sequence", "Gate"}

// Function call timeouts.
const (
	DefaultFunctionTimeout = 30 * time.Second
	MaxFunctionTimeout     = 10 * time.Minute
	// CallRoom is what a regular attempt of a call is given over its
	// function's timeout: room for loading the function and reading the
	// answer, so that the call's timeout, not the activity's, reports a
	// slow function.
	CallRoom = 10 * time.Second
)

// FunctionUpdate holds the fields a function update may change; nil means
// "leave as it is".
type FunctionUpdate struct {
	Name      *string
	Kind      *string
	URL       *string
	Timeout   *time.Duration
	Secret    *string
	Headers   *map[string]string
	TaskQueue *string
	// Flow control: a nil pointer inside removes the setting, as does a
	// MaxConcurrency of 0.
	RateLimit      **RateLimit
	MaxConcurrency *int
	CircuitBreaker **CircuitBreaker
	PausedUntil    **time.Time
}

// Apply changes f as u says and validates the result. A change of kind
// leaves the settings of the old kind behind.
func (u FunctionUpdate) Apply(f *Function) error {
	if u.Kind != nil && *u.Kind != f.Kind {
		f.URL, f.Timeout, f.Secret, f.Headers, f.TaskQueue = "", 0, "", nil, ""
	}
	if u.URL != nil && *u.URL != "" && !SameTarget(*u.URL, f.URL) {
		// The secret and header values are write-only: moved to another
		// endpoint they would reach whoever may edit the function, who
		// may not read them. Sent again, they are the sender's own.
		var missing []string
		if f.Secret != "" && u.Secret == nil {
			missing = append(missing, "secret")
		}
		if len(f.Headers) > 0 && u.Headers == nil {
			missing = append(missing, "headers")
		}
		if len(missing) > 0 {
			verb := "is"
			if len(missing) > 1 {
				verb = "are"
			}
			return Errorf(EREQUIRED, "%s: %s required when url changes (its scheme, user, host, port, path or query): the function's secret and header values are write-only, "+
				`and go to a new endpoint only when sent again (send "" or {} to remove them)`, strings.Join(missing, ", "), verb)
		}
	}
	set(&f.Name, u.Name)
	set(&f.Kind, u.Kind)
	set(&f.URL, u.URL)
	set(&f.Timeout, u.Timeout)
	set(&f.Secret, u.Secret)
	set(&f.Headers, u.Headers)
	set(&f.TaskQueue, u.TaskQueue)
	set(&f.Flow.RateLimit, u.RateLimit)
	set(&f.Flow.MaxConcurrency, u.MaxConcurrency)
	set(&f.Flow.CircuitBreaker, u.CircuitBreaker)
	set(&f.Flow.PausedUntil, u.PausedUntil)
	return f.validate(&u)
}

// SameTarget reports whether two function URLs name the same endpoint:
// scheme, host and port (in any case), user, path and query: where a function's
// secret and header values may go without being sent again
// (FunctionUpdate.Apply). Not the origin alone: on a shared host (a
// webhook relay, an API gateway) another path is another receiver.
func SameTarget(a, b string) bool {
	ua, errA := url.Parse(a)
	ub, errB := url.Parse(b)
	return errA == nil && errB == nil && strings.EqualFold(ua.Scheme, ub.Scheme) && strings.EqualFold(ua.Host, ub.Host) &&
		ua.EscapedPath() == ub.EscapedPath() && ua.RawQuery == ub.RawQuery && ua.User.String() == ub.User.String()
}

// HTTP headers of a task call that the dispatcher sets.
const (
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderSignature is "t=<unix seconds>,v1=<hex HMAC-SHA256 of
	// "<t>.<body>" keyed with the function's secret>", sent when the
	// function has a secret; the timestamp lets receivers reject replays.
	HeaderSignature = "X-Dispatcher-Signature"
	// HeaderAttempt is the number of the attempt making the call, from 1.
	// It is a header, not a field of the body, so that every attempt of
	// one action sends the same body under its Idempotency-Key: an
	// idempotency layer that checks a reused key's request (the IETF
	// draft's 422, Stripe's idempotency_error) answers the retry of a call
	// whose answer was lost with the first call's answer.
	HeaderAttempt = "X-Dispatcher-Attempt"
)

// callHeaders are the headers a function's own may not name, in canonical
// form: those the dispatcher sets on every call (the trace context when
// tracing is on), those Go's HTTP client takes from the request itself,
// those that change the exchange rather than describe the request
// (hop-by-hop, but Connection: close, which only asks for no keep-alive),
// and Content-Encoding, which would mislabel the JSON body. Before, they
// were accepted and then overwritten, dropped or obeyed, and a signature
// header was sent as configured.
var callHeaders = []string{"Content-Type", "Content-Encoding", HeaderIdempotencyKey, HeaderSignature, HeaderAttempt, "Traceparent", "Tracestate",
	"Host", "Content-Length", "Transfer-Encoding", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization",
	"Upgrade", "Te", "Trailer", "Expect"}

// Validate checks a function for its kind and fills in defaults.
func (f *Function) Validate() error { return f.validate(nil) }

// validate is Validate for the function the update up left (nil: a new
// one). Headers stored before callHeaders was refused, and settings of
// the other kind stored before they were, are checked only when up sets
// them: an update that leaves them alone (a pause, in an incident) must
// not fail.
func (f *Function) validate(up *FunctionUpdate) error {
	if up == nil {
		up = &setsAll
	}
	pairs := []string{"name", f.Name, "url", f.URL, "secret", f.Secret, "taskQueue", f.TaskQueue}
	for k, v := range f.Headers {
		pairs = append(pairs, "headers."+k, v)
	}
	if err := checkText(pairs...); err != nil {
		return err
	}
	if f.Name == "" {
		return Errorf(EREQUIRED, "name: is required")
	}
	if up.Name != nil {
		if err := validateName(f.Name); err != nil {
			return err
		}
	}
	if len(f.TaskQueue) > 256 {
		return Errorf(EINVALID, "taskQueue: must be at most 256 characters")
	}
	if f.Kind == "" {
		f.Kind = FunctionHTTP
	}
	switch f.Kind {
	case FunctionHTTP:
		if f.TaskQueue != "" && up.TaskQueue != nil {
			return Errorf(EINVALID, "taskQueue: an http function has none; it is called at its url")
		}
		if f.URL == "" {
			return Errorf(EREQUIRED, "url: is required for an http function")
		}
		u, err := url.Parse(f.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return Errorf(EINVALID, "url: not an absolute http(s) URL")
		}
		if u.User != nil {
			return Errorf(EINVALID, "url: must not carry credentials; use secret or headers, which are never shown")
		}
		if err := callableHost(u); err != nil {
			return err
		}
		if f.Timeout == 0 {
			f.Timeout = DefaultFunctionTimeout
		}
		if f.Timeout < time.Second || f.Timeout > MaxFunctionTimeout {
			return Errorf(EINVALID, "timeoutSeconds: must be between 1 and %d", int(MaxFunctionTimeout.Seconds()))
		}
		seen := make(map[string]string, len(f.Headers)) // canonical name → name
		for _, k := range slices.Sorted(maps.Keys(f.Headers)) {
			v := f.Headers[k]
			if !httpguts.ValidHeaderFieldName(k) {
				return Errorf(EINVALID, "headers: %q is not a valid header name", k)
			}
			if other, ok := seen[http.CanonicalHeaderKey(k)]; ok && up.Headers != nil {
				// A call would send one of the two. Only when they are
				// set: one saved before still takes a pause.
				return Errorf(EINVALID, "headers.%s: the same header as %q (header names ignore case); keep one", k, other)
			}
			seen[http.CanonicalHeaderKey(k)] = k
			if !httpguts.ValidHeaderFieldValue(v) {
				return Errorf(EINVALID, "headers.%s: the value has characters a header cannot carry", k)
			}
			if up.Headers != nil && slices.Contains(callHeaders, http.CanonicalHeaderKey(k)) {
				return Errorf(EINVALID, "headers.%s: the dispatcher or HTTP itself sets this header on a call; it cannot be configured", k)
			}
			if up.Headers != nil && http.CanonicalHeaderKey(k) == "Connection" && !strings.EqualFold(strings.TrimSpace(v), "close") {
				// Any other value names headers to drop on the way, or an upgrade.
				return Errorf(EINVALID, "headers.%s: only \"close\" may be configured (no keep-alive); other values change the exchange", k)
			}
		}
	case FunctionTemporal:
		for _, o := range []struct {
			field    string
			has, set bool
		}{
			{"url", f.URL != "", up.URL != nil},
			{"secret", f.Secret != "", up.Secret != nil},
			{"headers", len(f.Headers) > 0, up.Headers != nil},
			{"timeoutSeconds", f.Timeout != 0, up.Timeout != nil},
		} {
			if o.has && o.set {
				return Errorf(EINVALID, "%s: a temporal function has none; it runs as a workflow on its taskQueue", o.field)
			}
		}
		if slices.Contains(ReservedWorkflowNames, f.Name) {
			return Errorf(EINVALID, "name: %q is a workflow of the dispatcher itself and cannot be a task function", f.Name)
		}
		if f.TaskQueue == "" {
			return Errorf(EREQUIRED, "taskQueue: is required for a temporal function")
		}
	default:
		return Errorf(EINVALID, "kind: must be http or temporal, not %q", f.Kind)
	}
	return f.Flow.Validate(f.Kind)
}

// setsAll is what validate checks a new function as: an update that
// sets every setting.
var setsAll = FunctionUpdate{Name: new(string), URL: new(string), Timeout: new(time.Duration), Secret: new(string),
	Headers: new(map[string]string), TaskQueue: new(string)}

// numericHost matches a host of numbers and dots only (decimal, octal,
// hex: 167772161, 0xa.0.0.1, 10.1), which no DNS name is.
var numericHost = regexp.MustCompile(`(?i)^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+))*\.?$`)

// callableHost refuses a URL no call can reach: a port out of range, or a
// host that reads as a number but is no IP address, which Go's resolver
// (dotted-decimal IPv4 only) would look up as a name and never find.
func callableHost(u *url.URL) error {
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return Errorf(EINVALID, "url: port %s is not between 1 and 65535", p)
		}
	}
	if h := u.Hostname(); net.ParseIP(h) == nil && numericHost.MatchString(h) {
		return Errorf(EINVALID, "url: host %q reads as a number but is not an IP address; write an IPv4 address as four decimal numbers (10.0.0.1)", h)
	}
	return nil
}
