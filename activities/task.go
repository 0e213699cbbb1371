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
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dispatcherhq/dispatcher"
)

// HTTP headers of a task call.
const (
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderSignature is "t=<unix seconds>,v1=<hex HMAC-SHA256 of
	// "<t>.<body>" keyed with the function's secret>", sent when the
	// function has a secret; the timestamp lets receivers reject replays.
	HeaderSignature = "X-Dispatcher-Signature"
)

// maxRetryAfter caps a function's Retry-After, so a bogus value cannot
// park an action for days.
const maxRetryAfter = time.Hour

// CallFunction POSTs the task payload to an HTTP task function. A 2xx
// succeeds; a 4xx other than 408, 409, 425 and 429 fails as non-retryable
// dispatcher.FailureHTTPPermanent; anything else is retryable
// FailureHTTPTemporary (honouring Retry-After) or FailureTimeout. It
// heartbeats while the function takes its time.
func (a *Effects) CallFunction(ctx context.Context, in dispatcher.TaskInput) (dispatcher.TaskResult, error) {
	f, err := a.cache.function(ctx, in.FunctionName, in.ConfigVersion)
	switch {
	case dispatcher.ErrorCode(err) == dispatcher.ENOTFOUND:
		return dispatcher.TaskResult{}, permanent(ctx, dispatcher.FailureNotFound, fmt.Sprintf("function %q does not exist", in.FunctionName))
	case err != nil:
		return dispatcher.TaskResult{}, temporary(ctx, dispatcher.FailureStore, fmt.Sprintf("loading function %q: %v", in.FunctionName, err))
	case f.Kind != dispatcher.FunctionHTTP:
		return dispatcher.TaskResult{}, permanent(ctx, dispatcher.FailureNotFound, fmt.Sprintf("function %q is not an HTTP function (kind %q)", in.FunctionName, f.Kind))
	}
	payload, err := dispatcher.NewTaskPayload(in, attempt(ctx)+in.LocalAttempts)
	if err != nil {
		return dispatcher.TaskResult{}, permanent(ctx, dispatcher.FailureTemplate, dispatcher.ErrorMessage(err))
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return dispatcher.TaskResult{}, permanent(ctx, dispatcher.FailureTemplate, err.Error())
	}

	timeout := f.Timeout
	if timeout <= 0 {
		timeout = dispatcher.DefaultFunctionTimeout
	}
	timeout = callBudget(ctx, timeout).Round(time.Millisecond)
	defer Heartbeat(ctx)()
	ctx, cancel := callContext(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.URL, bytes.NewReader(body))
	if err != nil {
		return dispatcher.TaskResult{}, permanent(ctx, dispatcher.FailureHTTPPermanent, fmt.Sprintf("function %q: bad URL: %v", f.Name, err))
	}
	for k, v := range f.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderIdempotencyKey, in.IdempotencyKey)
	if f.Secret != "" {
		req.Header.Set(HeaderSignature, Sign(f.Secret, a.now(), body))
	}

	resp, err := a.http.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return dispatcher.TaskResult{}, temporary(ctx, dispatcher.FailureTimeout, fmt.Sprintf("function %q did not answer within %s", f.Name, timeout))
		}
		return dispatcher.TaskResult{}, temporary(ctx, dispatcher.FailureHTTPTemporary, fmt.Sprintf("function %q: %v", f.Name, err))
	}
	defer resp.Body.Close()
	excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // lets the connection be reused

	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return dispatcher.TaskResult{StatusCode: resp.StatusCode, Attempt: attempt(ctx)}, nil
	}
	msg := fmt.Sprintf("function %q answered %s", f.Name, resp.Status)
	if s := strings.TrimSpace(string(excerpt)); s != "" {
		msg += ": " + s
	}
	if permanentStatus(resp.StatusCode) {
		return dispatcher.TaskResult{}, failure(ctx, dispatcher.FailureHTTPPermanent, msg, true, 0, resp.StatusCode)
	}
	return dispatcher.TaskResult{}, failure(ctx, dispatcher.FailureHTTPTemporary, msg, false,
		retryAfter(resp.Header.Get("Retry-After"), a.now()), resp.StatusCode)
}

// permanentStatus reports whether retrying cannot change the answer: a
// client error, except those that say "try again": a timeout (408), a
// conflict (409: an idempotency layer's answer while a request with the
// same key is still in flight), too early (425) and a rate limit (429).
func permanentStatus(code int) bool {
	if code < 400 || code >= 500 {
		return false
	}
	switch code {
	case http.StatusRequestTimeout, http.StatusConflict, http.StatusTooEarly, http.StatusTooManyRequests:
		return false
	}
	return true
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
	return a.CallFunction(ctx, in)
}

// PrepareTask builds the payload of a task function that runs as a
// Temporal child workflow: the action's data resolved against the event.
// It runs as a local activity, so that rendering templates, whose cost an
// admin decides, never runs in workflow code.
func (a *Effects) PrepareTask(ctx context.Context, in dispatcher.TaskInput) (dispatcher.TaskPayload, error) {
	p, err := dispatcher.NewTaskPayload(in, 1)
	if err != nil {
		return dispatcher.TaskPayload{}, permanent(ctx, dispatcher.FailureTemplate, dispatcher.ErrorMessage(err))
	}
	return p, nil
}
