package dispatcher_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
)

func TestFlowValidate(t *testing.T) {
	for _, tt := range []struct {
		name  string
		kind  string
		flow  dispatcher.Flow
		err   string // a part of the message; empty: valid
		check func(dispatcher.Flow) bool
	}{
		{"none", dispatcher.FunctionHTTP, dispatcher.Flow{}, "", func(f dispatcher.Flow) bool { return !f.Gated() }},
		{"rate with the default burst", dispatcher.FunctionHTTP, dispatcher.Flow{RateLimit: &dispatcher.RateLimit{PerSecond: 5}}, "",
			func(f dispatcher.Flow) bool { return f.Gated() && f.RateLimit.Burst == 1 }},
		{"breaker with defaults", dispatcher.FunctionHTTP, dispatcher.Flow{CircuitBreaker: &dispatcher.CircuitBreaker{}}, "",
			func(f dispatcher.Flow) bool {
				return *f.CircuitBreaker == dispatcher.CircuitBreaker{Failures: 5, Window: time.Minute, ProbeInterval: 30 * time.Second}
			}},
		{"a past pause still gates", dispatcher.FunctionHTTP, dispatcher.Flow{PausedUntil: &time.Time{}}, "",
			func(f dispatcher.Flow) bool { return f.Gated() && !f.Paused(time.Now()) }},
		{"rate of 0", dispatcher.FunctionHTTP, dispatcher.Flow{RateLimit: &dispatcher.RateLimit{}}, "rateLimit.perSecond", nil},
		{"burst too large", dispatcher.FunctionHTTP, dispatcher.Flow{RateLimit: &dispatcher.RateLimit{PerSecond: 1, Burst: 5000}}, "rateLimit.burst", nil},
		{"negative concurrency", dispatcher.FunctionHTTP, dispatcher.Flow{MaxConcurrency: -1}, "maxConcurrency", nil},
		{"window under a second", dispatcher.FunctionHTTP, dispatcher.Flow{CircuitBreaker: &dispatcher.CircuitBreaker{Window: time.Millisecond}}, "circuitBreaker.windowSeconds", nil},
		{"temporal function", dispatcher.FunctionTemporal, dispatcher.Flow{CircuitBreaker: &dispatcher.CircuitBreaker{}}, "circuitBreaker: flow control applies to http functions", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.flow.Validate(tt.kind)
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err) || dispatcher.ErrorCode(err) != dispatcher.EINVALID):
				t.Fatalf("Validate = %v, want EINVALID naming %q", err, tt.err)
			case tt.check != nil && !tt.check(tt.flow):
				t.Fatalf("flow after Validate = %+v", tt.flow)
			}
		})
	}
}

func TestGateWorkflowID(t *testing.T) {
	id := dispatcher.GateWorkflowID("", "erase user/data")
	if !strings.HasPrefix(id, "gate-") || len(id) != len("gate-")+32 || id != dispatcher.GateWorkflowID("", "erase user/data") {
		t.Errorf("GateWorkflowID = %q, want gate-<32 hex digits>, the same every time", id)
	}
	if other := dispatcher.GateWorkflowID("acme", "erase user/data"); other != "acme:"+id || dispatcher.TenantOf(other) != "acme" {
		t.Errorf("a tenant's gate = %q", other)
	}
	if dispatcher.GateWorkflowID("", "erase") == id {
		t.Error("two functions share a gate")
	}
	if got := (dispatcher.RateLimit{PerSecond: 3}).EmissionInterval(); got != 333333333*time.Nanosecond {
		t.Errorf("3/s: %v between calls", got)
	}
}
