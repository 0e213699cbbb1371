package producer

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/redact"
)

// EventsPath is where the dispatcher takes events in.
const EventsPath = "/events/v1"

// HTTPOption configures the HTTP transport.
type HTTPOption func(*httpTransport)

// HTTPClient sets the client requests go through (default: a client of
// its own; the producer's attempt timeout bounds each request either way).
func HTTPClient(c *http.Client) HTTPOption { return func(t *httpTransport) { t.client = c } }

// HTTP sends events to the dispatcher's intake: POST <baseURL>/events/v1
// (baseURL may already end in /events/v1) with token as the bearer token,
// a JWT or an API key (dsp_…); an empty token sends none. 202 means the
// dispatcher has started the dispatch (Receipt's WorkflowID, RunID and
// Duplicate say which). 5xx, 429 and failures to connect or read the
// answer are retryable, honouring Retry-After; other 4xx are not
// (ErrRejected, with the dispatcher's error code and message).
func HTTP(baseURL, token string, opts ...HTTPOption) Transport {
	t := &httpTransport{token: token, client: &http.Client{}}
	for _, o := range opts {
		o(t)
	}
	u, err := url.Parse(baseURL)
	switch {
	case err != nil:
		// url.Parse's error quotes the URL, password and all.
		t.err = fmt.Errorf("producer: http: URL: %v", redact.URL(err))
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		t.err = fmt.Errorf("producer: http: URL %s: must be http(s)://host[:port][/path]", shownURL(u))
	default:
		// "/events/v1/" is the intake too: before, it became
		// /events/v1/events/v1.
		path := strings.TrimSuffix(u.Path, "/")
		if !strings.HasSuffix(path, EventsPath) {
			path += EventsPath
		}
		u.Path = path
		t.url = u.String()
		t.shown = shownURL(u)
	}
	return t
}

// shownURL is u for messages, which land in logs: no password, no query.
func shownURL(u *url.URL) string {
	shown := *u
	if shown.RawQuery != "" {
		shown.RawQuery = "…"
	}
	if shown.Opaque != "" {
		// "user:s3cret@host" parses as the scheme "user" and the opaque
		// "s3cret@host", which Redacted does not hide.
		shown.Opaque = "…"
	}
	return shown.Redacted()
}

type httpTransport struct {
	url    string
	shown  string // url in messages
	token  string
	client *http.Client
	err    error
}

func (t *httpTransport) configErr() error { return t.err }

// acceptedEvent is the dispatcher's answer to an event it took.
type acceptedEvent struct {
	WorkflowID string `json:"workflowId"`
	RunID      string `json:"runId"`
	Duplicate  bool   `json:"duplicate"`
}

// errorBody is the dispatcher's error answer.
type errorBody struct {
	Code    int    `json:"code"`
	Name    string `json:"name"`
	Message string `json:"message"`
}

// maxAnswer bounds what is read of an answer.
const maxAnswer = 64 << 10

func (t *httpTransport) Send(ctx context.Context, ev Event) (Receipt, error) {
	if t.err != nil {
		return Receipt{}, &Error{Transport: "http", Message: t.err.Error(), Err: ErrInvalid}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(ev.Body))
	if err != nil {
		return Receipt{}, &Error{Transport: "http", Message: "request", Err: err}
	}
	req.Header.Set("Content-Type", ev.ContentType)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "dispatcher-producer-go")
	if t.token != "" {
		req.Header.Set("Authorization", "Bearer "+t.token)
	}
	res, err := t.client.Do(req)
	if err != nil {
		var cert *tls.CertificateVerificationError
		retryable := !errors.As(err, &cert)
		// A *url.Error quotes the URL, query and all, which t.shown hides:
		// what it wraps says why (and is ctx's error when ctx ended).
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return Receipt{}, &Error{Transport: "http", Retryable: retryable, Message: "POST " + t.shown, Err: err}
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, maxAnswer))
	if res.StatusCode/100 == 2 {
		if err != nil {
			return Receipt{}, &Error{Transport: "http", Retryable: true, Status: res.StatusCode, Message: "reading the answer", Err: err}
		}
		// Only the dispatcher's answer says it took the event: before, any
		// 2xx did, and an event sent to a gateway that answers every path
		// with a page was lost without an error.
		a, ok := accepted(raw)
		if !ok {
			return Receipt{}, &Error{Transport: "http", Status: res.StatusCode, Err: ErrRejected, Message: fmt.Sprintf(
				"POST %s answered %s, but not as the dispatcher's intake does (no workflowId): is the URL the dispatcher's API? The event may not have been taken", t.shown, res.Status)}
		}
		return Receipt{WorkflowID: a.WorkflowID, RunID: a.RunID, Duplicate: a.Duplicate}, nil
	}
	return Receipt{}, statusError(res, raw)
}

// accepted reads the dispatcher's answer to events it took: an object, or
// for a batch a list of them (the first stands for all, a duplicate only
// when all are). Only that answer says the events were taken.
func accepted(raw []byte) (acceptedEvent, bool) {
	var list []acceptedEvent
	if json.Unmarshal(raw, &list) != nil {
		var a acceptedEvent
		if json.Unmarshal(raw, &a) != nil {
			return a, false
		}
		list = []acceptedEvent{a}
	}
	if len(list) == 0 {
		return acceptedEvent{}, false
	}
	out := list[0]
	for _, a := range list {
		if a.WorkflowID == "" {
			return acceptedEvent{}, false
		}
		out.Duplicate = out.Duplicate && a.Duplicate
	}
	return out, true
}

// statusError is the error of an answer other than 2xx.
func statusError(res *http.Response, raw []byte) *Error {
	e := &Error{Transport: "http", Status: res.StatusCode, Message: res.Status}
	var body errorBody
	if json.Unmarshal(raw, &body) == nil && body.Message != "" {
		e.Code = body.Code
		e.Message = fmt.Sprintf("%s: %s", res.Status, body.Message)
		if body.Code != 0 || body.Name != "" { // before, "(code 0 )" for another server's error
			e.Message += strings.TrimSuffix(fmt.Sprintf(" (code %d %s", body.Code, body.Name), " ") + ")"
		}
	} else if s := strings.TrimSpace(string(raw)); s != "" {
		e.Message = res.Status + ": " + abbreviate([]byte(s))
	}
	if res.StatusCode == http.StatusTooManyRequests || res.StatusCode >= 500 {
		e.Retryable = true
		e.RetryAfter = retryAfter(res.Header.Get("Retry-After"), time.Now())
	} else {
		// Another 4xx, or a 3xx the client did not follow: the same
		// request would get the same answer.
		e.Err = ErrRejected
	}
	return e
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(h)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func (t *httpTransport) Close() error {
	t.client.CloseIdleConnections()
	return nil
}
