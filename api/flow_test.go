package api

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
	"github.com/dispatcherhq/dispatcher/models"
)

// flowExecutions is the executions service as far as a function's flow
// goes: the state of its gate.
type flowExecutions struct {
	Executions // not called
	state      dispatcher.FlowState
	running    bool
	err        error
	asked      string
}

func (f *flowExecutions) FunctionFlow(_ context.Context, name string) (dispatcher.FlowState, bool, error) {
	f.asked = name
	return f.state, f.running, f.err
}

// flowHarness is the harness on SQLite with x as the executions service.
func flowHarness(t *testing.T, x Executions) *harness {
	t.Helper()
	db, err := models.Open(testenv.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := models.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	var ticks atomic.Int64
	store := models.NewStore(db, func() time.Time { return time.Now().Add(time.Duration(ticks.Add(1)) * time.Millisecond) })
	h, err := NewServer(t.Context(), Config{Auth: AuthConfig{Secret: []byte(harnessSecret)}, MaxBodyBytes: 4096, MaxEventBytes: 2048,
		Outbound: harnessOutbound(t)},
		Deps{Store: store, Starter: &fakeStarter{}, Executions: x, Registry: prometheus.NewRegistry(), Resolver: harnessHosts})
	if err != nil {
		t.Fatal(err)
	}
	hs := &harness{t: t, h: h, store: store}
	hs.token = hs.tokenWith(Permissions()...)
	return hs
}

// TestFunctionFlowValidation: flow control settings are checked when a
// function is saved, and a 400 names the field and says what is wrong.
func TestFunctionFlowValidation(t *testing.T) {
	hs := flowHarness(t, nil)
	id := hs.must(200, "POST", "/functions/v1", `{"name":"erase","url":"http://127.0.0.1:9/erase"}`)["id"].(string)
	for _, tt := range []struct {
		body, field string
	}{
		{`{"rateLimit":{"perSecond":0}}`, "rateLimit.perSecond: must be between 1/86400 (one call a day) and 1000"},
		{`{"rateLimit":{"burst":3}}`, "rateLimit.perSecond: must be between 1/86400 (one call a day) and 1000; a rateLimit is given whole, perSecond with it"},
		// Before, accepted, and the limit let every call through.
		{`{"rateLimit":{"perSecond":1e-10}}`, "rateLimit.perSecond: must be between"},
		{`{"rateLimit":{"perSecond":5000}}`, "rateLimit.perSecond"},
		{`{"rateLimit":{"perSecond":5,"burst":-1}}`, "rateLimit.burst"},
		{`{"rateLimit":{"perSecond":"fast"}}`, "rateLimit.perSecond: must be a number"},
		{`{"maxConcurrency":-1}`, "maxConcurrency"},
		{`{"maxConcurrency":100000}`, "maxConcurrency"},
		{`{"circuitBreaker":{"failures":-2}}`, "circuitBreaker.failures"},
		{`{"circuitBreaker":{"windowSeconds":999999999999}}`, "circuitBreaker.windowSeconds"},
		{`{"circuitBreaker":{"probeIntervalSeconds":-1}}`, "circuitBreaker.probeIntervalSeconds"},
		{`{"circuitBreaker":{"probeIntervalSeconds":0.5}}`, "circuitBreaker.probeIntervalSeconds: must be"},
		{`{"pausedUntil":"tomorrow"}`, "pausedUntil: \"tomorrow\" is not an ISO-8601 date-time such as 2030-01-31T09:00:00.000Z, a date, nor epoch milliseconds"},
		{`{"pausedUntil":{"at":1}}`, "pausedUntil"},
		{`{"kind":"temporal","taskQueue":"teams","maxConcurrency":2}`, "maxConcurrency: flow control applies to http functions"},
	} {
		t.Run(tt.body, func(t *testing.T) {
			for _, req := range []struct{ method, path, body string }{
				{"PUT", "/functions/v1/" + id, tt.body},
				{"POST", "/functions/v1", `{"name":"other",` + urlUnlessTemporal(tt.body) + tt.body[1:]},
			} {
				code, out := hs.do(req.method, req.path, req.body)
				if code != 400 || !strings.Contains(out["message"].(string), tt.field) {
					t.Errorf("%s %s: %d %v, want 400 naming %q", req.method, req.path, code, out, tt.field)
				}
			}
		})
	}
	if out := hs.must(200, "GET", "/functions/v1/"+id, ""); out["rateLimit"] != nil || out["flow"] != nil {
		t.Errorf("a refused update changed the function: %v", out)
	}
}

// TestFunctionFlowRoundTrip: the settings come back with their defaults
// filled in; null removes them; GET shows where a gated function stands,
// from its gate when one runs, else from its settings.
func TestFunctionFlowRoundTrip(t *testing.T) {
	x := &flowExecutions{}
	hs := flowHarness(t, x)
	until := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
	created := hs.must(200, "POST", "/functions/v1", `{"name":"erase","url":"http://127.0.0.1:9/erase",
		"rateLimit":{"perSecond":2.5},"maxConcurrency":3,"circuitBreaker":{"failures":10},"pausedUntil":`+
		jsonString(until.Format(time.RFC3339Nano))+`}`)
	id := created["id"].(string)
	got := hs.must(200, "GET", "/functions/v1/"+id, "")
	if rl := got["rateLimit"].(map[string]any); rl["perSecond"] != 2.5 || rl["burst"] != 1.0 {
		t.Errorf("rateLimit = %v, want 2.5/s with the default burst 1", rl)
	}
	if cb := got["circuitBreaker"].(map[string]any); cb["failures"] != 10.0 || cb["windowSeconds"] != 60.0 || cb["probeIntervalSeconds"] != 30.0 {
		t.Errorf("circuitBreaker = %v, want 10 failures and the default window and probe interval", cb)
	}
	if got["maxConcurrency"] != 3.0 || got["pausedUntil"] != until.Format("2006-01-02T15:04:05.000Z07:00") {
		t.Errorf("maxConcurrency %v, pausedUntil %v", got["maxConcurrency"], got["pausedUntil"])
	}
	// No gate runs: the settings say paused.
	if fl := got["flow"].(map[string]any); fl["state"] != "paused" || fl["waiting"] != 0.0 || fl["pausedUntil"] != float64(until.UnixMilli()) {
		t.Errorf("flow = %v, want paused until %v with nothing waiting", fl, until)
	}
	if x.asked != "erase" {
		t.Errorf("the gate of %q was asked, want erase's", x.asked)
	}

	// Its gate runs: its state.
	opened := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	x.state = dispatcher.FlowState{Function: "erase", State: dispatcher.FlowOpen, Waiting: 12, InFlight: 1,
		OpenedAt: opened, NextProbe: opened.Add(30 * time.Second)}
	x.running = true
	fl := hs.must(200, "GET", "/functions/v1/"+id, "")["flow"].(map[string]any)
	if fl["state"] != "open" || fl["waiting"] != 12.0 || fl["inFlight"] != 1.0 || fl["openedAt"] != float64(opened.UnixMilli()) ||
		fl["nextProbe"] != float64(opened.Add(30*time.Second).UnixMilli()) {
		t.Errorf("flow = %v, want the gate's state", fl)
	}
	// An idle gate, which reads the pause set since when a call comes:
	// paused, as the settings say. Before, its "closed".
	x.state = dispatcher.FlowState{Function: "erase", State: dispatcher.FlowClosed, InFlight: 1}
	if fl := hs.must(200, "GET", "/functions/v1/"+id, "")["flow"].(map[string]any); fl["state"] != "paused" || fl["inFlight"] != 1.0 ||
		fl["pausedUntil"] != float64(until.UnixMilli()) {
		t.Errorf("flow of an idle gate = %v, want paused until %v, its call in flight", fl, until)
	}
	// The gate does not answer: the function still shows, with what its
	// settings say, and that its live state is unknown. Before, as a gate
	// with no call waiting.
	x.err = dispatcher.Errorf(dispatcher.EUNAVAILABLE, "temporal is unavailable")
	if fl := hs.must(200, "GET", "/functions/v1/"+id, "")["flow"].(map[string]any); fl["state"] != "paused" || fl["unknown"] != true {
		t.Errorf("flow without its gate = %v, want paused, unknown", fl)
	}
	x.err = nil
	if fl := hs.must(200, "GET", "/functions/v1/"+id, "")["flow"].(map[string]any); fl["unknown"] != nil {
		t.Errorf("flow of an answering gate = %v, want no unknown", fl)
	}

	hs.must(200, "PUT", "/functions/v1/"+id, `{"rateLimit":null,"circuitBreaker":null,"pausedUntil":null,"maxConcurrency":0}`)
	got = hs.must(200, "GET", "/functions/v1/"+id, "")
	for _, k := range []string{"rateLimit", "maxConcurrency", "circuitBreaker", "pausedUntil", "flow"} {
		if got[k] != nil {
			t.Errorf("after removing the flow control, %s = %v", k, got[k])
		}
	}
	// The list shows the settings, never the live state.
	hs.must(200, "PUT", "/functions/v1/"+id, `{"maxConcurrency":2}`)
	// An idle gate that read a pause taken off since: closed.
	x.err, x.state = nil, dispatcher.FlowState{Function: "erase", State: dispatcher.FlowPaused, PausedUntil: until}
	if fl := hs.must(200, "GET", "/functions/v1/"+id, "")["flow"].(map[string]any); fl["state"] != "closed" || fl["pausedUntil"] != nil {
		t.Errorf("flow of an idle gate whose pause was taken off = %v, want closed", fl)
	}
	list := hs.must(200, "GET", "/functions/v1", "")["data"].([]any)
	if f := list[0].(map[string]any); f["maxConcurrency"] != 2.0 || f["flow"] != nil {
		t.Errorf("listed %v", f)
	}
}

func jsonString(s string) string { return `"` + s + `"` }

// urlUnlessTemporal is the url field of an http function, for a body
// that does not make it temporal: a temporal function has none.
func urlUnlessTemporal(body string) string {
	if strings.Contains(body, `"kind":"temporal"`) {
		return ""
	}
	return `"url":"http://127.0.0.1:9/x",`
}
