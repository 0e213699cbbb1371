package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
)

// clock is a settable clock for limiters.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestLimiter(t *testing.T) {
	clk := &clock{t: authNow}
	l := newLimiter(RateLimit{Rate: 2, Burst: 4}, RateLimit{Rate: 3, Burst: 6}, "requests", clk.now)
	alice, bob := principal{Subject: "alice", Tenant: "acme"}, principal{Subject: "bob", Tenant: "acme"}
	other := principal{Subject: "alice", Tenant: "globex"}

	// A new token has its whole burst.
	for i := range 4 {
		if r := l.take(alice, 1); r != nil {
			t.Fatalf("request %d of alice refused: %+v", i+1, r)
		}
	}
	r := l.take(alice, 1)
	if r == nil || r.retryAfter != 500*time.Millisecond || !strings.Contains(r.message, `the token of "alice" in tenant "acme" may send 2 requests a second, 4 at once`) {
		t.Fatalf("alice's 5th request: %+v, want refused for 0.5 s by her token's limit", r)
	}
	// Bob has a bucket of his own, but shares acme's, which holds 2 more.
	for i := range 2 {
		if r := l.take(bob, 1); r != nil {
			t.Fatalf("request %d of bob refused: %+v", i+1, r)
		}
	}
	r = l.take(bob, 1)
	if r == nil || !strings.Contains(r.message, `tenant "acme" (all its tokens together) may send 3 requests a second, 6 at once`) {
		t.Fatalf("bob's 3rd request: %+v, want refused by acme's limit", r)
	}
	// Another tenant's token of the same name is another bucket.
	if r := l.take(other, 1); r != nil {
		t.Fatalf("alice of globex refused: %+v", r)
	}
	// A request refused by the tenant costs the token nothing: after a
	// second acme has 3 again and bob 4 (full), and he gets 3.
	clk.advance(time.Second)
	for i := range 3 {
		if r := l.take(bob, 1); r != nil {
			t.Fatalf("after a second, request %d of bob refused: %+v", i+1, r)
		}
	}
	// n at once: more than the bucket holds waits for the missing part.
	clk.advance(10 * time.Second)
	if r := l.take(alice, 5); r == nil || r.retryAfter != 500*time.Millisecond {
		t.Fatalf("5 at once from a full bucket of 4: %+v, want refused for 0.5 s", r)
	}
	if r := l.take(alice, 4); r != nil {
		t.Fatalf("4 at once from a full bucket of 4: %+v", r)
	}

	// Idle buckets go: a minute on, every bucket is full and dropped, and
	// only bob's and acme's, which he has just used, are back.
	clk.advance(sweepEvery)
	l.take(bob, 1)
	l.mu.Lock()
	n := len(l.buckets)
	l.mu.Unlock()
	if n != 2 { // bob's token and acme
		t.Errorf("%d buckets after a sweep, want 2", n)
	}

	var off *limiter
	if r := off.take(alice, 1000); r != nil {
		t.Errorf("a nil limiter refused: %+v", r)
	}
	if r := newLimiter(RateLimit{}, RateLimit{}, "requests", clk.now).take(alice, 1000); r != nil {
		t.Errorf("a limiter without limits refused: %+v", r)
	}
}

func TestRateLimitsConfig(t *testing.T) {
	for _, tt := range []struct {
		limits RateLimits
		want   string
	}{
		{RateLimits{}, ""},
		{RateLimits{Token: RateLimit{Rate: 1, Burst: 1}, IntakeToken: RateLimit{Rate: 1, Burst: dispatcher.MaxEventBatch}}, ""},
		{RateLimits{Token: RateLimit{Rate: -1, Burst: 1}}, "DISPATCHER_RATE_LIMIT: the rate must be a positive number"},
		{RateLimits{Tenant: RateLimit{Rate: 1}}, "DISPATCHER_TENANT_RATE_LIMIT: the burst must be at least 1, not 0"},
		{RateLimits{IntakeToken: RateLimit{Rate: 10, Burst: 50}}, fmt.Sprintf("DISPATCHER_INTAKE_RATE_LIMIT: the burst must be at least %d, not 50", dispatcher.MaxEventBatch)},
		{RateLimits{IntakeTenant: RateLimit{Rate: 10, Burst: 5}}, "DISPATCHER_TENANT_INTAKE_RATE_LIMIT"},
	} {
		_, err := NewServer(t.Context(), Config{Auth: AuthConfig{Disabled: true}, MaxBodyBytes: 1, MaxEventBytes: 1, Limits: tt.limits},
			Deps{Registry: prometheus.NewRegistry()})
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%+v: %v", tt.limits, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%+v: error %v, want one containing %q", tt.limits, err, tt.want)
		}
	}
}

// limitedServer is a server with limits, whose events starter starts,
// and a maker of tokens of a subject in a tenant for it.
func limitedServer(t *testing.T, limits RateLimits, starter Starter, now func() time.Time) (http.Handler, func(subject, tenant string) string) {
	t.Helper()
	h, err := NewServer(t.Context(), Config{
		Auth:          AuthConfig{Secret: []byte(harnessSecret), Now: now},
		MaxBodyBytes:  1 << 20,
		MaxEventBytes: 1 << 20,
		Limits:        limits,
	}, Deps{Executions: &fakeExecutions{}, Starter: starter, Registry: prometheus.NewRegistry(), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return h, func(subject, tenant string) string {
		return bearer(t, jwt.SigningMethodHS256, []byte(harnessSecret), "", &tokenClaims{
			RegisteredClaims: jwt.RegisteredClaims{Subject: subject, ExpiresAt: jwt.NewNumericDate(authNow.Add(time.Hour))},
			Permissions:      Permissions(), Tenant: tenant,
		})
	}
}

// TestRateLimitedRoutes sends requests through the real engine: the API
// and the intake count apart, a batch counts each event, and a refusal is
// 429 with Retry-After and a message that says which limit.
func TestRateLimitedRoutes(t *testing.T) {
	clk := &clock{t: authNow}
	h, token := limitedServer(t, RateLimits{
		Token:        RateLimit{Rate: 1, Burst: 2},
		IntakeToken:  RateLimit{Rate: 10, Burst: dispatcher.MaxEventBatch},
		IntakeTenant: RateLimit{Rate: 20, Burst: 2 * dispatcher.MaxEventBatch},
	}, &fakeStarter{}, clk.now)
	ann, bob := token("ann", "acme"), token("bob", "acme")
	send := func(auth, method, path, contentType, body string) *httptest.ResponseRecorder {
		t.Helper()
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Host = "localhost"
		req.Header.Set("Authorization", auth)
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	wantLimited := func(rec *httptest.ResponseRecorder, retryAfter, mention string) {
		t.Helper()
		assertRefused(t, rec, errTooManyRequests)
		if got := rec.Header().Get("Retry-After"); got != retryAfter {
			t.Errorf("Retry-After = %q, want %q", got, retryAfter)
		}
		if !strings.Contains(rec.Body.String(), mention) {
			t.Errorf("body %s lacks %q", rec.Body, mention)
		}
	}

	for i := range 2 {
		if rec := send(ann, "GET", "/executions/v1", "", ""); rec.Code != http.StatusOK {
			t.Fatalf("request %d = %d %s", i+1, rec.Code, rec.Body)
		}
	}
	wantLimited(send(ann, "GET", "/executions/v1", "", ""), "1",
		`rate limit exceeded: the token of \"ann\" in tenant \"acme\" may send 1 requests a second, 2 at once; retry in 1 s`)
	if rec := send(bob, "GET", "/executions/v1", "", ""); rec.Code != http.StatusOK {
		t.Fatalf("bob, another token, = %d %s", rec.Code, rec.Body)
	}
	// The intake has limits of its own: ann's API limit does not stop her events.
	event := func(i int) string {
		return fmt.Sprintf(`{"specversion":"1.0","id":"e-%d","source":"test","type":"t"}`, i)
	}
	batch := func(from, n int) string {
		evs := make([]string, n)
		for i := range evs {
			evs[i] = event(from + i)
		}
		return "[" + strings.Join(evs, ",") + "]"
	}
	if rec := send(ann, "POST", "/events/v1", "application/cloudevents-batch+json", batch(0, dispatcher.MaxEventBatch)); rec.Code != http.StatusAccepted {
		t.Fatalf("a full batch = %d %s", rec.Code, rec.Body)
	}
	// Her bucket is empty: one event waits a tenth of a second, and a
	// whole batch ten seconds.
	wantLimited(send(ann, "POST", "/events/v1", "application/cloudevents+json", event(1000)), "1",
		`may send 10 events a second, 100 at once`)
	wantLimited(send(ann, "POST", "/events/v1", "application/cloudevents-batch+json", batch(2000, dispatcher.MaxEventBatch)), "10",
		`retry in 10 s`)
	// Bob empties acme's bucket; then carol, whose token has never sent a
	// thing, waits for the tenant's.
	if rec := send(bob, "POST", "/events/v1", "application/cloudevents-batch+json", batch(3000, dispatcher.MaxEventBatch)); rec.Code != http.StatusAccepted {
		t.Fatalf("bob's batch = %d %s", rec.Code, rec.Body)
	}
	carol := token("carol", "acme")
	wantLimited(send(carol, "POST", "/events/v1", "application/cloudevents+json", event(4000)), "1",
		`tenant \"acme\" (all its tokens together) may send 20 events a second, 200 at once`)
	clk.advance(time.Second)
	if rec := send(carol, "POST", "/events/v1", "application/cloudevents+json", event(5000)); rec.Code != http.StatusAccepted {
		t.Fatalf("after a second, carol's event = %d %s", rec.Code, rec.Body)
	}
}

// heldStarter holds the start of each event it has a release for until
// it is released, and starts the others at once; it says when one arrives.
type heldStarter struct {
	arrived chan string              // event ids
	release map[string]chan struct{} // by event id
}

func (h *heldStarter) Start(ctx context.Context, ev dispatcher.Event) (dispatcher.StartResult, error) {
	h.arrived <- ev.ID
	release, held := h.release[ev.ID]
	if !held {
		return dispatcher.StartResult{WorkflowID: dispatcher.WorkflowID(ev.ID), RunID: "r"}, nil
	}
	select {
	case <-release:
	case <-ctx.Done():
		return dispatcher.StartResult{}, ctx.Err()
	}
	return dispatcher.StartResult{WorkflowID: dispatcher.WorkflowID(ev.ID), RunID: "r"}, nil
}

// TestIntakeInFlight: a token with half as many event requests in hand
// as its tenant may have, or a tenant with all of them, gets 429 for one
// more, which is not started, and the other tenants' events go through
// meanwhile. Before, a burst of one tenant's large events held the memory
// and the Temporal client of the process, and another tenant's event
// waited seconds behind it.
func TestIntakeInFlight(t *testing.T) {
	starter := &heldStarter{arrived: make(chan string, 10), release: map[string]chan struct{}{}}
	for _, id := range []string{"a1", "b1", "c2", "g1"} {
		starter.release[id] = make(chan struct{})
	}
	h, token := limitedServer(t, RateLimits{IntakeInFlight: 2}, starter, func() time.Time { return authNow })
	send := func(auth, id string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/events/v1", strings.NewReader(`{"id":"`+id+`","type":"t"}`))
		req.Host = "localhost"
		req.Header.Set("Authorization", auth)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	held := func(auth, id string) chan *httptest.ResponseRecorder {
		done := make(chan *httptest.ResponseRecorder, 1)
		go func() { done <- send(auth, id) }()
		select {
		case got := <-starter.arrived:
			if got != id {
				t.Fatalf("started %q, want %q", got, id)
			}
		case rec := <-done:
			t.Fatalf("event %s answered %d %s, not started", id, rec.Code, rec.Body)
		}
		return done
	}
	wantRefused := func(rec *httptest.ResponseRecorder, mention string) {
		t.Helper()
		assertRefused(t, rec, errTooManyRequests)
		if got := rec.Header().Get("Retry-After"); got != "1" {
			t.Errorf("Retry-After = %q, want 1", got)
		}
		if !strings.Contains(rec.Body.String(), mention) {
			t.Errorf("body %s lacks %q", rec.Body, mention)
		}
	}
	answered := func(done chan *httptest.ResponseRecorder, id string) {
		t.Helper()
		close(starter.release[id])
		if rec := <-done; rec.Code != http.StatusAccepted {
			t.Fatalf("event %s = %d %s", id, rec.Code, rec.Body)
		}
	}
	ann, bob, cat, gus := token("ann", "acme"), token("bob", "acme"), token("cat", "acme"), token("gus", "globex")

	a1 := held(ann, "a1")
	// Ann has her half of acme's 2 in hand: her next is refused.
	wantRefused(send(ann, "a2"), `the token of \"ann\" may have 1 requests to /events/v1 in hand at once`)
	// Bob, of acme too, still has his; then acme has all of its.
	b1 := held(bob, "b1")
	wantRefused(send(cat, "c1"), `tenant \"acme\" (all its tokens together) may have 2 requests to /events/v1 in hand at once`)
	// Globex is another tenant: its event goes through meanwhile.
	answered(held(gus, "g1"), "g1")
	// Once ann's is answered, acme may send again.
	answered(a1, "a1")
	answered(held(cat, "c2"), "c2")
	answered(b1, "b1")
	if len(starter.arrived) != 0 {
		t.Fatalf("started %q too", <-starter.arrived)
	}
}
