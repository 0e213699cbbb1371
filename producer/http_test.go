package producer

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// request is what a test server received.
type request struct {
	method, path, auth, contentType string
	body                            string
}

// answer is one answer of a test server: a status, headers and a body.
type answer struct {
	status  int
	headers map[string]string
	body    string
	hang    bool // wait until the client gives up
}

// intake is a stand-in for the dispatcher's intake that answers with its
// answers in turn (202 once they run out) and records the requests.
type intake struct {
	mu       sync.Mutex
	answers  []answer
	requests []request
}

func (in *intake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	in.mu.Lock()
	in.requests = append(in.requests, request{r.Method, r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("Content-Type"), string(b)})
	a := answer{status: 202, body: `{"id":"x","type":"t","workflowId":"dispatch-x","runId":"run-1","duplicate":true}`}
	if len(in.answers) > 0 {
		a, in.answers = in.answers[0], in.answers[1:]
	}
	in.mu.Unlock()
	if a.hang {
		<-r.Context().Done()
		return
	}
	for k, v := range a.headers {
		w.Header().Set(k, v)
	}
	w.WriteHeader(a.status)
	_, _ = io.WriteString(w, a.body)
}

func startIntake(t *testing.T, answers ...answer) (*intake, string) {
	t.Helper()
	in := &intake{answers: answers}
	srv := httptest.NewServer(in)
	t.Cleanup(srv.Close)
	return in, srv.URL
}

func TestHTTPRequest(t *testing.T) {
	for _, tt := range []struct {
		name, base, token string
		envelope          Envelope
		path, auth, ctype string
	}{
		{"lk with an API key", "", "dsp_key", EnvelopeLK, "/events/v1", "Bearer dsp_key", "application/json"},
		{"CloudEvents with a JWT", "/", "eyJh.x.y", EnvelopeCloudEvents, "/events/v1", "Bearer eyJh.x.y", "application/cloudevents+json; charset=utf-8"},
		{"behind a path prefix", "/dispatcher/", "t", EnvelopeLK, "/dispatcher/events/v1", "Bearer t", "application/json"},
		{"the full intake URL", "/events/v1", "t", EnvelopeLK, "/events/v1", "Bearer t", "application/json"},
		// Before, /events/v1/events/v1.
		{"the full intake URL with a trailing slash", "/events/v1/", "t", EnvelopeLK, "/events/v1", "Bearer t", "application/json"},
		{"no token", "", "", EnvelopeLK, "/events/v1", "", "application/json"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in, url := startIntake(t)
			p := newProducer(t, HTTP(url+tt.base, tt.token), nil, WithEnvelope(tt.envelope))
			ev, err := p.Dispatch(context.Background(), "user_deleted", map[string]int{"userId": 42})
			if err != nil {
				t.Fatal(err)
			}
			want := request{"POST", tt.path, tt.auth, tt.ctype, string(ev.Body)}
			if len(in.requests) != 1 || in.requests[0] != want {
				t.Errorf("requests %+v, want [%+v]", in.requests, want)
			}
			if r := ev.Receipt; r.WorkflowID != "dispatch-x" || r.RunID != "run-1" || !r.Duplicate || r.Attempts != 1 {
				t.Errorf("receipt %+v: not the dispatcher's answer", r)
			}
		})
	}
}

func TestHTTPRetries(t *testing.T) {
	fast := WithRetry(Retry{Attempts: 3, Initial: time.Millisecond, Max: 10 * time.Second})
	for _, tt := range []struct {
		name      string
		answers   []answer
		attempts  int
		waits     []time.Duration // each up to a fifth longer; nil: not checked
		status    int             // of the error; 0: success
		code      int
		retryable bool
		message   string
	}{
		{name: "503 then 202, after Retry-After", attempts: 2, waits: []time.Duration{2 * time.Second},
			answers: []answer{{status: 503, headers: map[string]string{"Retry-After": "2"}, body: `{"code":16,"name":"UNAVAILABLE","message":"temporal is down"}`}}},
		{name: "429 then 202", attempts: 2, answers: []answer{{status: 429, headers: map[string]string{"Retry-After": "1"}}}},
		{name: "a hung request, then 202", attempts: 2, answers: []answer{{hang: true}}},
		{name: "400 is not retried", attempts: 1, status: 400, code: 14,
			answers: []answer{{status: 400, body: `{"code":14,"name":"FIELD_FORMAT_EXCEPTION","message":"type: is required"}`}},
			message: "400 Bad Request: type: is required (code 14 FIELD_FORMAT_EXCEPTION)"},
		{name: "401 is not retried", attempts: 1, status: 401, answers: []answer{{status: 401, body: "no"}}, message: "401 Unauthorized: no"},
		{name: "403 is not retried", attempts: 1, status: 403, answers: []answer{{status: 403}}},
		// Before, accepted: an event sent to a gateway that answers every
		// path with a page was lost without an error.
		{name: "a 200 that is not the dispatcher's is not taken", attempts: 1, status: 200,
			answers: []answer{{status: 200, headers: map[string]string{"Content-Type": "text/html"}, body: "<html>welcome</html>"}},
			message: "answered 200 OK, but not as the dispatcher's intake does (no workflowId): is the URL the dispatcher's API?"},
		{name: "a batch's answer is taken", attempts: 1,
			answers: []answer{{status: 202, body: `[{"workflowId":"dispatch-a","runId":"r1","duplicate":true},{"workflowId":"dispatch-b","runId":"r2"}]`}}},
		{name: "a list that is not the dispatcher's is not", attempts: 1, status: 200,
			answers: []answer{{status: 200, body: `[{"id":1}]`}}, message: "not as the dispatcher's intake does"},
		{name: "another server's error without a code", attempts: 1, status: 405, answers: []answer{{status: 405, body: `{"message":"Method Not Allowed"}`}},
			message: "405 Method Not Allowed: Method Not Allowed: event rejected"},
		{name: "500 until the attempts run out", attempts: 3, status: 500, retryable: true,
			answers: []answer{{status: 500}, {status: 502}, {status: 500, body: "oops"}}, message: "500 Internal Server Error: oops"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in, url := startIntake(t, tt.answers...)
			w := &waits{}
			p := newProducer(t, HTTP(url, "t"), w, fast, WithAttemptTimeout(200*time.Millisecond))
			ev, err := p.Dispatch(context.Background(), "user_deleted", nil)
			if len(in.requests) != tt.attempts || ev.Receipt.Attempts != tt.attempts {
				t.Fatalf("%d requests, Receipt.Attempts %d (err %v); want %d", len(in.requests), ev.Receipt.Attempts, err, tt.attempts)
			}
			for _, r := range in.requests {
				if r.body != string(ev.Body) {
					t.Errorf("an attempt sent %s, not the event %s", r.body, ev.Body)
				}
			}
			if tt.waits != nil && !slices.EqualFunc(w.d, tt.waits, func(got, want time.Duration) bool { return got >= want && got <= want+want/5 }) {
				t.Errorf("waits %v, want %v, each up to a fifth longer", w.d, tt.waits)
			}
			if tt.status == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want an *Error", err)
			}
			if e.Status != tt.status || e.Code != tt.code || e.Retryable != tt.retryable || e.Transport != "http" ||
				errors.Is(err, ErrRejected) == tt.retryable || !strings.Contains(err.Error(), tt.message) {
				t.Errorf("err = %q %+v; want status %d, code %d, retryable %v, saying %q", err, e, tt.status, tt.code, tt.retryable, tt.message)
			}
		})
	}
}

func TestHTTPUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	p := newProducer(t, HTTP(url, "t"), &waits{}, WithRetry(Retry{Attempts: 2, Initial: time.Millisecond, Max: time.Millisecond}))
	ev, err := p.Dispatch(context.Background(), "t", nil)
	if !Retryable(err) || ev.Receipt.Attempts != 2 || ev.ID == "" {
		t.Errorf("err = %v after %d attempts; want a retryable error after 2", err, ev.Receipt.Attempts)
	}
}

// A request that failed is not quoted with its query, which may hold a
// key. Before, net/http's *url.Error, wrapped, quoted the URL whole.
func TestHTTPFailureHidesTheQuery(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	gone := srv.URL
	srv.Close()
	_, hung := startIntake(t, answer{hang: true})
	for _, tt := range []struct {
		name, url string
		want      error
	}{
		{"nothing listening", gone, nil},
		{"no answer in time", hung, context.DeadlineExceeded},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := newProducer(t, HTTP(tt.url+"/?key=QS3CRET", "t"), nil, WithRetry(Retry{Attempts: 1}), WithAttemptTimeout(200*time.Millisecond))
			_, err := p.Dispatch(context.Background(), "t", nil)
			if err == nil || strings.Contains(err.Error(), "QS3CRET") || !strings.Contains(err.Error(), "POST "+tt.url+"/events/v1?…") ||
				!Retryable(err) || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v; want it retryable, %v, without the query", err, tt.want)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for h, want := range map[string]time.Duration{
		"":                              0,
		"7":                             7 * time.Second,
		" 0 ":                           0,
		"-3":                            0,
		"soon":                          0,
		"Tue, 01 Jan 2030 00:00:30 GMT": 30 * time.Second,
		"Mon, 31 Dec 2029 23:00:00 GMT": 0, // in the past
	} {
		if got := retryAfter(h, now); got != want {
			t.Errorf("retryAfter(%q) = %s, want %s", h, got, want)
		}
	}
}
