package api

import (
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/gin-gonic/gin"
)

// RateLimit is a token bucket: Rate requests (or events) a second on
// average, up to Burst at once. A Rate of 0 turns the limit off.
type RateLimit struct {
	Rate  float64
	Burst int
}

// RateLimits are the API's limits. Each is kept per token (the principal's
// tenant and subject) and per tenant (all its tokens together; "" is the
// implicit tenant of tokens without a tenant claim). They count in one
// process: N API replicas let N times as much through.
type RateLimits struct {
	// Token and Tenant limit the requests to every authenticated route
	// but the event intake.
	Token, Tenant RateLimit
	// IntakeToken and IntakeTenant limit the events at /events/v1; a
	// batch counts each of its events.
	IntakeToken, IntakeTenant RateLimit
	// IntakeInFlight bounds the requests to /events/v1 that one tenant
	// has in hand at once (read, or waiting for Temporal), and one token
	// half of it; 0: no bound.
	// A rate lets a burst through all at once: before, one tenant's burst
	// of large events held the memory and the Temporal client of the
	// process, and the other tenants' events waited seconds behind it.
	IntakeInFlight int
}

// check refuses a limit that could never let a request through, naming
// its setting; minBurst is the most one request may take at once.
func (l RateLimit) check(setting string, minBurst int) error {
	switch {
	case l.Rate == 0:
		return nil
	case !(l.Rate > 0) || math.IsInf(l.Rate, 0):
		return fmt.Errorf("%s: the rate must be a positive number of requests a second, or 0 to turn the limit off, not %g", setting, l.Rate)
	case l.Burst < minBurst:
		return fmt.Errorf("%s: the burst must be at least %d, not %d", setting, minBurst, l.Burst)
	}
	return nil
}

// Check refuses a limit that could never let a request through, naming
// its setting.
func (ls RateLimits) Check() error {
	for _, l := range []struct {
		limit    RateLimit
		setting  string
		minBurst int
	}{
		{ls.Token, "DISPATCHER_RATE_LIMIT", 1},
		{ls.Tenant, "DISPATCHER_TENANT_RATE_LIMIT", 1},
		// A batch takes all its events at once: a smaller burst would
		// refuse the largest batches for ever.
		{ls.IntakeToken, "DISPATCHER_INTAKE_RATE_LIMIT", dispatcher.MaxEventBatch},
		{ls.IntakeTenant, "DISPATCHER_TENANT_INTAKE_RATE_LIMIT", dispatcher.MaxEventBatch},
	} {
		if err := l.limit.check(l.setting, l.minBurst); err != nil {
			return err
		}
	}
	return nil
}

// limiter keeps a token bucket per token and per tenant.
type limiter struct {
	token, tenant RateLimit
	unit          string // what it counts, for messages: "requests", "events"
	now           func() time.Time

	mu      sync.Mutex
	buckets map[bucketKey]*bucket
	swept   time.Time
}

// bucketKey names a bucket: a tenant's, or one token's within its tenant.
type bucketKey struct {
	tenant  string
	subject string
	token   bool
}

type bucket struct {
	tokens float64
	at     time.Time // when tokens was last brought up to date
}

// sweepEvery is how often buckets that have refilled, and so are the same
// as new ones, are dropped: memory follows the tokens active lately, not
// every token ever seen.
const sweepEvery = time.Minute

func newLimiter(token, tenant RateLimit, unit string, now func() time.Time) *limiter {
	return &limiter{token: token, tenant: tenant, unit: unit, now: now, buckets: make(map[bucketKey]*bucket)}
}

// refusal says which limit refused a request and when to come back.
type refusal struct {
	retryAfter time.Duration
	message    string
}

// take takes n from the buckets of p's token and tenant, or from neither:
// a request that one refuses costs the other nothing.
func (l *limiter) take(p principal, n int) *refusal {
	if l == nil || (l.token.Rate == 0 && l.tenant.Rate == 0) {
		return nil
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	type scope struct {
		limit RateLimit
		key   bucketKey
	}
	var scopes []scope
	if l.token.Rate > 0 {
		scopes = append(scopes, scope{l.token, bucketKey{tenant: p.Tenant, subject: p.Subject, token: true}})
	}
	if l.tenant.Rate > 0 {
		scopes = append(scopes, scope{l.tenant, bucketKey{tenant: p.Tenant}})
	}
	var refused *refusal
	taken := make([]*bucket, len(scopes))
	for i, s := range scopes {
		b := l.bucket(s.key, s.limit, now)
		taken[i] = b
		if b.tokens >= float64(n) {
			continue
		}
		wait := time.Duration((float64(n) - b.tokens) / s.limit.Rate * float64(time.Second))
		if refused == nil || wait > refused.retryAfter {
			refused = &refusal{retryAfter: wait, message: l.message(s.key, s.limit, p)}
		}
	}
	if refused != nil {
		return refused
	}
	for _, b := range taken {
		b.tokens -= float64(n)
	}
	return nil
}

// bucket returns key's bucket brought up to now; a new one is full.
func (l *limiter) bucket(key bucketKey, limit RateLimit, now time.Time) *bucket {
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{tokens: float64(limit.Burst), at: now}
		l.buckets[key] = b
		return b
	}
	if elapsed := now.Sub(b.at); elapsed > 0 {
		b.tokens = min(float64(limit.Burst), b.tokens+elapsed.Seconds()*limit.Rate)
		b.at = now
	}
	return b
}

// sweep drops the buckets that are full again.
func (l *limiter) sweep(now time.Time) {
	if now.Sub(l.swept) < sweepEvery {
		return
	}
	l.swept = now
	for key, b := range l.buckets {
		limit := l.tenant
		if key.token {
			limit = l.token
		}
		if b.tokens+now.Sub(b.at).Seconds()*limit.Rate >= float64(limit.Burst) {
			delete(l.buckets, key)
		}
	}
}

func (l *limiter) message(key bucketKey, limit RateLimit, p principal) string {
	who := fmt.Sprintf("the token of %q", p.Subject)
	switch {
	case key.token && p.Tenant != "":
		who = fmt.Sprintf("the token of %q in tenant %q", p.Subject, p.Tenant)
	case !key.token && p.Tenant != "":
		who = fmt.Sprintf("tenant %q (all its tokens together)", p.Tenant)
	case !key.token:
		who = "all tokens together"
	}
	return fmt.Sprintf("rate limit exceeded: %s may send %g %s a second, %d at once", who, limit.Rate, l.unit, limit.Burst)
}

// refuse answers 429 with Retry-After, in whole seconds (RFC 9110 §10.2.3),
// rounded up so that a client that waits that long gets through.
func refuse(c *gin.Context, r *refusal) {
	secs := max(1, int(math.Ceil(r.retryAfter.Seconds())))
	c.Header("Retry-After", strconv.Itoa(secs))
	abort(c, errTooManyRequests, fmt.Sprintf("%s; retry in %d s", r.message, secs))
}

// limitRequests returns the middleware that counts each request against
// l; it goes after authenticate, whose principal it counts for.
func limitRequests(l *limiter) gin.HandlerFunc {
	return func(c *gin.Context) {
		if r := l.take(principalOf(c), 1); r != nil {
			refuse(c, r)
		}
	}
}

// then runs a and, unless a aborted, b: one handler for routes.go's list.
func then(a, b gin.HandlerFunc) gin.HandlerFunc {
	return func(c *gin.Context) {
		a(c)
		if !c.IsAborted() {
			b(c)
		}
	}
}

// inFlight counts the event requests each tenant, and each token of it,
// has in hand.
type inFlight struct {
	most int // a tenant's; a token's is half of it, so that one runaway
	// producer leaves room for the tenant's others
	mu sync.Mutex
	n  map[bucketKey]int
}

func newInFlight(most int) *inFlight { return &inFlight{most: most, n: map[bucketKey]int{}} }

// limit refuses, with 429, an event request of a token that has half of
// f.most in hand already, or of a tenant that has f.most, before its body
// is read (it is drained, and not kept: see drain).
func (f *inFlight) limit() gin.HandlerFunc {
	return func(c *gin.Context) {
		p := principalOf(c)
		tenant, token := bucketKey{tenant: p.Tenant}, bucketKey{tenant: p.Tenant, subject: p.Subject, token: true}
		f.mu.Lock()
		var who string
		var most int
		switch {
		case f.n[token] >= max(f.most/2, 1):
			who, most = fmt.Sprintf("the token of %q", p.Subject), max(f.most/2, 1)
		case f.n[tenant] >= f.most:
			who, most = "all tokens without a tenant together", f.most
			if p.Tenant != "" {
				who = fmt.Sprintf("tenant %q (all its tokens together)", p.Tenant)
			}
		}
		if who != "" {
			f.mu.Unlock()
			refuse(c, &refusal{retryAfter: time.Second, message: fmt.Sprintf("too many events in hand: %s may have %d requests to /events/v1 in hand at once", who, most)})
			drain(c, c.Request.Body)
			return
		}
		f.n[tenant]++
		f.n[token]++
		f.mu.Unlock()
		defer func() {
			f.mu.Lock()
			defer f.mu.Unlock()
			for _, k := range []bucketKey{tenant, token} {
				if f.n[k]--; f.n[k] == 0 {
					delete(f.n, k)
				}
			}
		}()
		c.Next()
	}
}
