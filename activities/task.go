package activities

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/dispatcherhq/dispatcher"
)

// HTTP headers of a task call (dispatcher.HeaderSignature says what the
// signature is).
const (
	HeaderIdempotencyKey = dispatcher.HeaderIdempotencyKey
	HeaderSignature      = dispatcher.HeaderSignature
	HeaderAttempt        = dispatcher.HeaderAttempt
)

// maxRetryAfter caps a function's Retry-After, so a bogus value cannot
// park an action for days.
const maxRetryAfter = time.Hour

// CallFunction POSTs the task payload to an HTTP task function. A 2xx
// succeeds; a 4xx other than 408, 409, 425 and 429 fails as non-retryable
// dispatcher.FailureHTTPPermanent; a call the outbound policy refuses (an
// address, a scheme or a redirect not allowed) as non-retryable
// FailureOutboundRefused; anything else is retryable FailureHTTPTemporary
// (honouring Retry-After) or FailureTimeout. It heartbeats from its first
// step while the attempt takes its time. Failure messages never quote the
// function's answer nor its URL's query or user information: they are
// shown to whoever may read executions, and the answer of a host that is
// not what the admin thought it was is exactly what must not leak.
func (a *Effects) CallFunction(ctx context.Context, in dispatcher.TaskInput) (dispatcher.TaskResult, error) {
	ctx = Acting(ctx)
	defer Heartbeat(ctx)() // from the start: a slow store or slot must not pass for a dead worker
	if err := a.superseded(ctx, noStoreWait, in.Reset, in.Run); err != nil {
		return dispatcher.TaskResult{}, err
	}
	f, err := a.cache.function(ctx, in.FunctionName, in.ConfigVersion)
	switch {
	case dispatcher.ErrorCode(err) == dispatcher.ENOTFOUND:
		return dispatcher.TaskResult{}, permanent(ctx, dispatcher.FailureNotFound, fmt.Sprintf("function %q does not exist", in.FunctionName))
	case err != nil:
		return dispatcher.TaskResult{}, temporary(ctx, dispatcher.FailureStore, fmt.Sprintf("loading function %q: %s", in.FunctionName, storeTrouble(ctx, err)))
	case f.Kind != dispatcher.FunctionHTTP:
		return dispatcher.TaskResult{}, permanent(ctx, dispatcher.FailureNotFound, fmt.Sprintf("function %q is not an HTTP function (kind %q)", in.FunctionName, f.Kind))
	}
	payload, err := dispatcher.NewTaskPayload(in, 0) // the attempt is a header: one body under one key
	if err != nil {
		return dispatcher.TaskResult{}, permanent(ctx, dispatcher.FailureTemplate, dispatcher.ErrorMessage(err))
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return dispatcher.TaskResult{}, permanent(ctx, dispatcher.FailureTemplate, err.Error())
	}

	if err := a.claimCall(ctx, in, f.Flow.RateLimit); err != nil {
		return dispatcher.TaskResult{}, err
	}
	if err := waitForSlot(ctx, in.NotBefore, a.now()); err != nil {
		return dispatcher.TaskResult{}, err // canceled before the call: no news of the function
	}
	if rl, late := f.Flow.RateLimit, a.now().Sub(in.NotBefore); rl != nil && !in.NotBefore.IsZero() && late > slotTolerance(*rl) {
		return dispatcher.TaskResult{}, temporary(ctx, dispatcher.FailureSlotMissed,
			fmt.Sprintf("function %q: the call's slot under its rate limit passed %s ago; not made, so that late calls do not bunch", f.Name, late.Round(time.Millisecond)))
	}
	limit := f.Timeout
	if limit <= 0 {
		limit = dispatcher.DefaultFunctionTimeout
	}
	timeout := callBudget(ctx, limit).Round(time.Millisecond)
	if left := in.PermitExpires.Sub(a.now()); !in.PermitExpires.IsZero() && left < timeout {
		return dispatcher.TaskResult{}, temporary(ctx, dispatcher.FailureSlotMissed,
			fmt.Sprintf("function %q: the call's permit expires in %s, before a call of %s could end; not made, so that the function's concurrency limit holds",
				f.Name, max(left, 0).Round(time.Millisecond), timeout))
	}
	call, cancel := callContext(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(call, http.MethodPost, f.URL, bytes.NewReader(body))
	if err != nil {
		return dispatcher.TaskResult{}, permanent(ctx, dispatcher.FailureHTTPPermanent, fmt.Sprintf("function %q: bad URL %s", f.Name, redactRawURL(f.URL)))
	}
	// In order: of two names that differ in case only, saved before the
	// API refused them, the same wins on every call.
	for _, k := range slices.Sorted(maps.Keys(f.Headers)) {
		req.Header.Set(k, f.Headers[k])
	}
	req.Header.Set("Content-Type", "application/json")
	notReplayable(req.Header)
	req.Header[strings.ToLower(HeaderIdempotencyKey)] = []string{in.IdempotencyKey}
	req.Header.Set(HeaderAttempt, strconv.Itoa(attempt(ctx)+in.LocalAttempts))
	if f.Secret != "" {
		req.Header.Set(HeaderSignature, Sign(f.Secret, a.now(), body))
	}

	resp, err := a.http.of(dispatcher.CallerOf(ctx).Tenant).Do(req)
	if err != nil {
		target := redactURL(req.URL)
		if refused, ok := refusal(err); ok {
			return dispatcher.TaskResult{}, permanent(ctx, dispatcher.FailureOutboundRefused, fmt.Sprintf("function %q: POST %s refused: %v", f.Name, target, refused))
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return dispatcher.TaskResult{}, temporary(ctx, dispatcher.FailureTimeout, fmt.Sprintf("function %q did not answer within %s%s", f.Name, timeout, raisedSince(ctx, limit, timeout)))
		}
		return dispatcher.TaskResult{}, temporary(ctx, dispatcher.FailureHTTPTemporary, fmt.Sprintf("function %q: POST %s: %v", f.Name, target, callError(err)))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // lets the connection be reused

	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return dispatcher.TaskResult{StatusCode: resp.StatusCode, Attempt: attempt(ctx)}, nil
	}
	// The code's own name, not the status line's text: that is the
	// function's to write, and the failure is shown to support staff.
	status := strings.TrimSpace(strconv.Itoa(resp.StatusCode) + " " + http.StatusText(resp.StatusCode))
	msg := fmt.Sprintf("function %q answered %s (%s)", f.Name, status, statusReason(resp.StatusCode))
	if permanentStatus(resp.StatusCode) {
		return dispatcher.TaskResult{}, failure(ctx, dispatcher.FailureHTTPPermanent, msg, true, 0, resp.StatusCode)
	}
	return dispatcher.TaskResult{}, failure(ctx, dispatcher.FailureHTTPTemporary, msg, false,
		retryAfter(resp.Header.Get("Retry-After"), a.now()), resp.StatusCode)
}

// claimCall claims a gated call's permit for this run of its first
// attempt (a local activity), until the permit expires: before the call,
// the evidence that it was made. A first attempt runs again when its
// dispatch's workflow task timed out — its worker died or stalled
// mid-call — and that call may still be running at the function: the run
// again finds the claim held, makes nothing, and says so
// (FailureSlotMissed, Held), which the dispatch reports to the gate as
// silent, so the permit's place stays taken until its lease ends, and the
// call asks for another permit. Before, the run again found its slot
// passed (or, with no rate limit, called again under the same permit),
// the gate freed the place, and maxConcurrency was exceeded while the
// first call ran. A regular attempt needs none: it runs once, and its
// heartbeats tell when its worker died.
//
// A store that does not answer within claimWait, or, under a rate limit
// rl, before half the time left to the call's slot and its tolerance,
// leaves the call unclaimed, as before: the claim only matters after a
// crash, and a store that hangs must neither hold the call past its slot
// nor cost its attempt. A call already past its slot is not made anyway:
// its claim says whether it was made before (Held).
func (a *Effects) claimCall(ctx context.Context, in dispatcher.TaskInput, rl *dispatcher.RateLimit) error {
	if in.PermitExpires.IsZero() || !activity.IsActivity(ctx) || !activity.GetInfo(ctx).IsLocalActivity {
		return nil
	}
	wait := claimWait
	if rl != nil && !in.NotBefore.IsZero() {
		if left := in.NotBefore.Add(slotTolerance(*rl)).Sub(a.now()); left > 0 {
			wait = min(wait, left/2)
		}
	}
	// Hashed: a mail's Message-ID never reads so, and any key fits the column.
	sum := sha256.Sum256(fmt.Appendf(nil, "%s@%d", in.IdempotencyKey, in.PermitExpires.UnixMilli()))
	key := "call:" + hex.EncodeToString(sum[:])
	cctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	claim, err := a.store.ClaimMail(cctx, key, claimOwner(), a.now(), in.PermitExpires)
	switch {
	case err != nil:
		activity.GetLogger(ctx).Warn("A gated call not claimed: the configuration database failed; made all the same", "FunctionName", in.FunctionName, "Error", err)
		return nil
	case claim.Sent || !claim.HeldUntil.IsZero():
		return temporal.NewApplicationErrorWithOptions(fmt.Sprintf(
			"function %q: an earlier run of this attempt, whose worker died or stalled, made its call, which may still be running: not made again under its permit, whose place the call keeps until %s",
			in.FunctionName, in.PermitExpires.UTC().Format(time.RFC3339)),
			dispatcher.FailureSlotMissed, temporal.ApplicationErrorOptions{Details: []any{dispatcher.FailureDetails{Attempt: attempt(ctx), Unanswered: true, Held: true}}})
	}
	return nil
}

// claimWait bounds claimCall's write.
const claimWait = 2 * time.Second

// maxSlotWait bounds the wait for a rate limit's slot: a gate grants
// permits at most 2 s ahead (workflows.Gate), and the workflow gives a
// gated call 4 s more for its wait.
const maxSlotWait = 4 * time.Second

// waitForSlot waits until notBefore, the slot a gated function's rate
// limit gave the call, at most maxSlotWait; it fails only when ctx ends
// first.
func waitForSlot(ctx context.Context, notBefore, now time.Time) error {
	d := min(notBefore.Sub(now), maxSlotWait)
	if notBefore.IsZero() || d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// slotTolerance is how late after its slot a rate-limited call may still
// be made: a quarter of the interval between two calls (at least 5 ms),
// so that calls made late cannot bunch into more than the rate.
func slotTolerance(rl dispatcher.RateLimit) time.Duration {
	return max(rl.EmissionInterval()/4, 5*time.Millisecond)
}

// permanentStatus reports whether retrying cannot change the answer: a
// 3xx the client did not follow (no Location, 300, 304: those it may
// follow were followed or refused already), a client error, except those
// that say "try again": a timeout (408), a conflict (409: an idempotency
// layer's answer while a request with the same key is still in flight),
// too early (425) and a rate limit (429).
func permanentStatus(code int) bool {
	if code < 300 || code >= 500 {
		return false
	}
	switch code {
	case http.StatusRequestTimeout, http.StatusConflict, http.StatusTooEarly, http.StatusTooManyRequests:
		return false
	}
	return true
}

// statusReason says in a few words what an answer's status means. It
// stands in for the answer's body, which is never shown.
func statusReason(code int) string {
	switch {
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return "the function refused the call's credentials"
	case code == http.StatusNotFound || code == http.StatusGone || code == http.StatusMethodNotAllowed:
		return "no task function at this URL"
	case code == http.StatusRequestTimeout || code == http.StatusGatewayTimeout:
		return "timed out"
	case code == http.StatusConflict:
		return "a call with the same Idempotency-Key is in progress"
	case code == http.StatusRequestEntityTooLarge:
		return "the payload is too large"
	case code == http.StatusTooEarly || code == http.StatusTooManyRequests:
		return "rate limited"
	case code == http.StatusBadGateway || code == http.StatusServiceUnavailable:
		return "unavailable"
	case code >= 300 && code < 400:
		return "a 3xx with nowhere to follow; configure the function's final URL"
	case code >= 400 && code < 500:
		return "the function refused the call"
	case code >= 500:
		return "the function failed"
	}
	return "unexpected status"
}

// retryAfter reads a Retry-After header (seconds or an HTTP date); 0 means
// "use the retry policy".
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	var d time.Duration
	if s, err := strconv.Atoi(strings.TrimSpace(h)); err == nil {
		d = time.Duration(s) * time.Second
	} else if t, err := http.ParseTime(h); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

// Sign returns the X-Dispatcher-Signature value for body sent at t.
// Receivers recompute hex(HMAC-SHA256(secret, "<t>.<body>")) and compare.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts))
	mac.Write([]byte("."))
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// CallFunctionLocal is CallFunction under the name of a task action's
// first attempt, which runs as a local activity (workflows.LocalCallFunction).
func (a *Effects) CallFunctionLocal(ctx context.Context, in dispatcher.TaskInput) (dispatcher.TaskResult, error) {
	if err := queuedTooLong(ctx); err != nil {
		return dispatcher.TaskResult{}, err
	}
	if err := staleTask(ctx, in.TaskStarted); err != nil {
		return dispatcher.TaskResult{}, err
	}
	if in.ShareBound {
		release, ok := a.firstCalls.take(dispatcher.TenantOf(in.IdempotencyKey)) // the payload's tenant
		if !ok {
			return dispatcher.TaskResult{}, temporal.NewApplicationErrorWithOptions(fmt.Sprintf(
				"its tenant has its share of this worker's %d slots for first attempts' function calls: not made here, a regular attempt makes it", a.firstCalls.slots),
				dispatcher.FailureSlotMissed, temporal.ApplicationErrorOptions{Details: []any{dispatcher.FailureDetails{Attempt: attempt(ctx), Busy: true}}})
		}
		defer release()
	}
	return a.CallFunction(ctx, in)
}

// tenantShare shares a process's slots for function calls made as first
// attempts (local activities) among tenants. A first attempt holds its
// dispatch's workflow task and a local activity slot while it calls: one
// tenant's functions that hang, called by as many events as the worker
// has slots, held them all, and every other tenant's first attempts
// waited for them (a security probe: 39 s for a mail of 0.25 s).
//
// A tenant's share is half of the slots the other tenants' calls leave: a
// call is made while its tenant's calls and all calls together are fewer
// than the slots. Alone a tenant takes half of them; k tenants whose
// calls hang leave the others between slots/(k+1) (their calls
// interleaved) and slots/2^k (one tenant's after another's). Before, each
// took half of them whatever the others held, and two such tenants held
// every slot. A call past its tenant's share is not made
// there (FailureSlotMissed, Busy) when its run says it makes such a call
// as a regular activity, at once and at no attempt's cost
// (TaskInput.ShareBound); a call of an older run is made all the same.
type tenantShare struct {
	slots int // 0: no bound
	mu    sync.Mutex
	n     map[string]int
	all   int
}

// take counts a call of tenant's, unless tenant has its share: then ok is
// false. release ends the call.
func (s *tenantShare) take(tenant string) (release func(), ok bool) {
	if s.slots <= 0 {
		return func() {}, true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n[tenant]+s.all >= s.slots {
		return nil, false
	}
	if s.n == nil {
		s.n = map[string]int{}
	}
	s.n[tenant]++
	s.all++
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.all--
		if s.n[tenant]--; s.n[tenant] == 0 {
			delete(s.n, tenant)
		}
	}, true
}

// PrepareTask builds the payload of a task function that runs as a
// Temporal child workflow: the action's data resolved against the event.
// It runs as a local activity, so that rendering templates, whose cost an
// admin decides, never runs in workflow code.
//
// It also refuses, as non-retryable dispatcher.FailureOutboundRefused, a
// child on a task queue the outbound policy does not allow: a function
// saved before the policy, or under another. It checks the queue the
// dispatch will start the child on (in.TaskQueue), and reads nothing.
func (a *Effects) PrepareTask(ctx context.Context, in dispatcher.TaskInput) (dispatcher.TaskPayload, error) {
	// It makes no call: an attempt may wait for the store until a second
	// is left, and the dispatch retries it (workflows'
	// prepareTaskOptions). Before, a blip of the store failed the action.
	if err := a.superseded(ctx, time.Second, in.Reset, in.Run); err != nil {
		return dispatcher.TaskPayload{}, err
	}
	if !a.outbound.For(dispatcher.CallerOf(Acting(ctx)).Tenant).AllowsTaskQueue(in.TaskQueue) {
		return dispatcher.TaskPayload{}, permanent(ctx, dispatcher.FailureOutboundRefused, fmt.Sprintf(
			"function %q: task queue %q is not one functions may run on; add it to DISPATCHER_FUNCTION_TASK_QUEUES", in.FunctionName, in.TaskQueue))
	}
	p, err := dispatcher.NewTaskPayload(in, 1)
	if err != nil {
		return dispatcher.TaskPayload{}, permanent(ctx, dispatcher.FailureTemplate, dispatcher.ErrorMessage(err))
	}
	// Its result is a marker of the dispatch's workflow task and the
	// child's input: one over the bound would fail the task on every
	// retry, and hold the dispatch for ever.
	if encoded, err := converter.GetDefaultDataConverter().ToPayload(p); err != nil || len(encoded.GetData()) > dispatcher.MaxTaskPayloadBytes {
		return dispatcher.TaskPayload{}, permanent(ctx, dispatcher.FailureTemplate, fmt.Sprintf(
			"data: function %q's payload, the event and the action's data resolved, is %d bytes encoded, more than %d; copy less of the event into data",
			in.FunctionName, len(encoded.GetData()), dispatcher.MaxTaskPayloadBytes))
	}
	return p, nil
}

// notReplayable keeps Go's client from taking a call for one it may make
// again, which it does at once, unseen by the attempt, when a reused
// connection is closed after the request was sent (the function may have
// run it): it looks for an Idempotency-Key or X-Idempotency-Key under
// those names exactly. The call's own key goes under its lower-case name,
// which functions read as the same header; one a function's headers were
// saved with before they were refused is dropped, and an
// X-Idempotency-Key of theirs goes lower-case too. Each call is the
// dispatcher's to make.
func notReplayable(h http.Header) {
	for k, v := range h {
		switch {
		case strings.EqualFold(k, HeaderIdempotencyKey):
			delete(h, k)
		case strings.EqualFold(k, "X-Idempotency-Key") && k != "x-idempotency-key":
			delete(h, k)
			h["x-idempotency-key"] = v
		}
	}
}

// raisedSince explains a call cut short of its function's timeout, limit,
// because the timeout was raised after the action's first regular attempt
// was scheduled: Temporal gives every attempt of an activity the time the
// workflow gave the first (the timeout then and dispatcher.CallRoom), so
// a raise reaches the next dispatches, not this one's retries. Without it,
// support saw a timeout of 13.5 s that no setting said.
func raisedSince(ctx context.Context, limit, timeout time.Duration) string {
	if timeout >= limit || !activity.IsActivity(ctx) {
		return ""
	}
	given := activity.GetInfo(ctx)
	if given.IsLocalActivity || given.StartToCloseTimeout <= 0 || given.StartToCloseTimeout >= limit+dispatcher.CallRoom {
		return ""
	}
	return fmt.Sprintf(" (the function's timeout is %s now, raised after this action's attempts were given %s each, the timeout then and %s: replay the dispatch to call with the new timeout)",
		limit, given.StartToCloseTimeout, dispatcher.CallRoom)
}
