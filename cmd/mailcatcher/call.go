package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Call is one request a task function received at /fn/{name}: the
// dispatcher's HTTP task functions can point here on a developer's
// machine, so that what they are called with is shown beside the mails.
type Call struct {
	ID       int
	Function string // the {name} of /fn/{name}
	Received time.Time
	Method   string
	Query    string
	Headers  http.Header // the request's headers but Authorization
	Body     []byte      // up to maxCallBody bytes
	Status   int         // what the catcher answered
}

// maxCallBody bounds the body kept of each call.
const maxCallBody = 256 << 10

// PrettyBody is the body, indented when it is JSON.
func (c *Call) PrettyBody() string {
	var out bytes.Buffer
	if json.Indent(&out, c.Body, "", "  ") == nil {
		return out.String()
	}
	return string(c.Body)
}

// Header is the first value of a request header.
func (c *Call) Header(name string) string { return c.Headers.Get(name) }

// CallStore keeps the newest calls in memory. It is safe for concurrent
// use; the calls it hands out must not be changed.
type CallStore struct {
	mu    sync.Mutex
	max   int
	last  int     // the last ID given out; never reused
	calls []*Call // oldest first
}

// NewCallStore returns an empty CallStore that keeps at most max calls.
func NewCallStore(max int) *CallStore { return &CallStore{max: max} }

// Add numbers c, stores it and drops the oldest calls beyond the limit.
func (s *CallStore) Add(c *Call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last++
	c.ID = s.last
	if drop := len(s.calls) + 1 - s.max; drop > 0 {
		n := copy(s.calls, s.calls[drop:])
		clear(s.calls[n:])
		s.calls = s.calls[:n]
	}
	s.calls = append(s.calls, c)
}

// List returns the stored calls, newest first.
func (s *CallStore) List() []*Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Call, len(s.calls))
	for i, c := range s.calls {
		out[len(s.calls)-1-i] = c
	}
	return out
}

// Get returns the call with the given ID, or nil.
func (s *CallStore) Get(id int) *Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.calls {
		if c.ID == id {
			return c
		}
	}
	return nil
}

// Clear forgets every call.
func (s *CallStore) Clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = nil
}

// receiveCall serves /fn/{name}: it records the call and answers 200
// {"ok":true,"call":<id>}, or the status that ?status=<code> asks for
// (e.g. 422 to see a permanent failure, 503 a retried one).
func receiveCall(calls *CallStore, now func() time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status := http.StatusOK
		if v := r.URL.Query().Get("status"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 200 || n > 599 {
				http.Error(w, "status: want a code from 200 to 599, not "+strconv.Quote(v), http.StatusBadRequest)
				return
			}
			status = n
		}
		body, _ := io.ReadAll(io.LimitReader(r.Body, maxCallBody))
		h := r.Header.Clone()
		h.Del("Authorization")
		c := &Call{Function: r.PathValue("name"), Received: now(), Method: r.Method, Query: r.URL.RawQuery,
			Headers: h, Body: body, Status: status}
		calls.Add(c)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"ok":%t,"call":%d}`+"\n", status < 300, c.ID)
	})
}

// apiCall is a Call as GET /api/calls shows it.
type apiCall struct {
	ID       int               `json:"id"`
	Function string            `json:"function"`
	Received time.Time         `json:"received"`
	Method   string            `json:"method"`
	Query    string            `json:"query,omitempty"`
	Headers  map[string]string `json:"headers"`
	Body     json.RawMessage   `json:"body,omitempty"` // when it is JSON
	Text     string            `json:"text,omitempty"` // when it is not
	Status   int               `json:"status"`
}

func toAPICall(c *Call) apiCall {
	a := apiCall{ID: c.ID, Function: c.Function, Received: c.Received, Method: c.Method, Query: c.Query,
		Headers: map[string]string{}, Status: c.Status}
	for k := range c.Headers {
		a.Headers[k] = c.Headers.Get(k)
	}
	if json.Valid(c.Body) {
		a.Body = c.Body
	} else {
		a.Text = string(c.Body)
	}
	return a
}

// listCalls serves GET /api/calls: a JSON array, newest first.
func listCalls(calls *CallStore) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		list := calls.List()
		out := make([]apiCall, len(list))
		for i, c := range list {
			out[i] = toAPICall(c)
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(out)
	})
}

// clearCalls serves DELETE /api/calls.
func clearCalls(calls *CallStore) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Clear()
		w.WriteHeader(http.StatusNoContent)
	})
}

// callPage serves GET /calls/{id}: one call's headers and body.
func callPage(calls *CallStore) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.Atoi(r.PathValue("id"))
		c := calls.Get(id)
		if err != nil || c == nil {
			http.NotFound(w, r)
			return
		}
		render(w, "call.html", c)
	})
}
