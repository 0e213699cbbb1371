package dispatcher

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"time"
)

// Flow is a function's flow control: how fast and how many of its calls
// may run, across every worker, when a failing function stops being
// called, and until when it is paused. Its zero value limits nothing: the
// calls of a function without flow control take the fast path, exactly as
// if flow control did not exist (Gated).
//
// A gated function's calls each wait for a permit from the function's
// Gate workflow (GateWorkflowID) before they are made. Waiting for a
// permit never consumes an attempt of the action's retry policy: only
// calls that are made do.
type Flow struct {
	// RateLimit bounds how many calls start per second.
	RateLimit *RateLimit
	// MaxConcurrency bounds the calls in flight at once; 0 means no bound.
	MaxConcurrency int
	// CircuitBreaker stops calling a function that keeps failing.
	CircuitBreaker *CircuitBreaker
	// PausedUntil, while in the future, holds every call until then.
	PausedUntil *time.Time
}

// RateLimit is a token bucket: PerSecond calls a second on average, and
// up to Burst at once after a quiet spell.
type RateLimit struct {
	PerSecond float64
	Burst     int // 0 means DefaultBurst
}

// CircuitBreaker opens a function's circuit after Failures consecutive
// failed calls within Window: its calls then wait, on durable timers,
// until ProbeInterval has passed, when one call goes through as a probe.
// The probe's success closes the circuit; its failure opens it for
// another ProbeInterval. A call fails, for the breaker, when the function
// answered a retryable error (5xx, 408, 429, …) or not at all; a
// permanent refusal (another 4xx) is an answer, and ends a streak.
type CircuitBreaker struct {
	Failures      int           // 0 means DefaultCircuitFailures
	Window        time.Duration // 0 means DefaultCircuitWindow
	ProbeInterval time.Duration // 0 means DefaultProbeInterval
}

// Flow control defaults, for the fields a function's flow control leaves
// out, and bounds.
const (
	// DefaultBurst: calls are spaced evenly, none at once.
	DefaultBurst           = 1
	DefaultCircuitFailures = 5
	DefaultCircuitWindow   = time.Minute
	DefaultProbeInterval   = 30 * time.Second

	// MinRatePerSecond is one call a day: slower, the interval between
	// calls (EmissionInterval) outgrew time.Duration and the limit let
	// every call through. A rate saved below it before is read as it
	// (activities.FunctionFlow), so that the Gates' histories replay.
	MinRatePerSecond   = 1.0 / 86400
	MaxRatePerSecond   = 1000
	MaxBurst           = 1000
	MaxFlowConcurrency = 1000
	MaxCircuitFailures = 1000
	MaxCircuitWindow   = 24 * time.Hour
	MaxProbeInterval   = 24 * time.Hour
)

// Flow states, as a gate shows them: closed (calls go as the limits
// allow), open (the circuit is open: calls wait for a probe), paused
// (PausedUntil is ahead).
const (
	FlowClosed = "closed"
	FlowOpen   = "open"
	FlowPaused = "paused"
)

// Gated reports whether the flow control sets anything: the function's
// calls then go through its gate. A PausedUntil in the past still counts
// (the gate lets the calls through at once); clear it to take the
// function off the gate. A dispatch's configuration records it per
// function (FunctionRef.Gated).
func (f Flow) Gated() bool {
	return f.RateLimit != nil || f.MaxConcurrency > 0 || f.CircuitBreaker != nil || f.PausedUntil != nil
}

// Paused reports whether calls are held at now.
func (f Flow) Paused(now time.Time) bool {
	return f.PausedUntil != nil && f.PausedUntil.After(now)
}

// Validate checks the flow control of a function of kind, naming the
// field, and fills in the defaults of the objects given partially.
func (f *Flow) Validate(kind string) error {
	if (f.RateLimit != nil || f.MaxConcurrency != 0 || f.CircuitBreaker != nil || f.PausedUntil != nil) && kind != FunctionHTTP {
		field := "rateLimit"
		switch {
		case f.RateLimit != nil:
		case f.MaxConcurrency != 0:
			field = "maxConcurrency"
		case f.CircuitBreaker != nil:
			field = "circuitBreaker"
		default:
			field = "pausedUntil"
		}
		return Errorf(EINVALID, "%s: flow control applies to http functions; a temporal function's workers limit their task queue themselves", field)
	}
	if r := f.RateLimit; r != nil {
		if math.IsNaN(r.PerSecond) || r.PerSecond < MinRatePerSecond || r.PerSecond > MaxRatePerSecond {
			hint := ""
			if r.PerSecond == 0 { // or left out
				hint = "; a rateLimit is given whole, perSecond with it (an update replaces it, null removes it)"
			}
			return Errorf(EINVALID, "rateLimit.perSecond: must be between 1/86400 (one call a day) and %d%s", MaxRatePerSecond, hint)
		}
		if r.Burst == 0 {
			r.Burst = DefaultBurst
		}
		if r.Burst < 1 || r.Burst > MaxBurst {
			return Errorf(EINVALID, "rateLimit.burst: must be between 1 and %d", MaxBurst)
		}
	}
	if f.MaxConcurrency < 0 || f.MaxConcurrency > MaxFlowConcurrency {
		return Errorf(EINVALID, "maxConcurrency: must be between 0 (no limit) and %d", MaxFlowConcurrency)
	}
	if c := f.CircuitBreaker; c != nil {
		if c.Failures == 0 {
			c.Failures = DefaultCircuitFailures
		}
		if c.Window == 0 {
			c.Window = DefaultCircuitWindow
		}
		if c.ProbeInterval == 0 {
			c.ProbeInterval = DefaultProbeInterval
		}
		if c.Failures < 1 || c.Failures > MaxCircuitFailures {
			return Errorf(EINVALID, "circuitBreaker.failures: must be between 1 and %d", MaxCircuitFailures)
		}
		if c.Window < time.Second || c.Window > MaxCircuitWindow {
			return Errorf(EINVALID, "circuitBreaker.windowSeconds: must be between 1 and %d", int(MaxCircuitWindow.Seconds()))
		}
		if c.ProbeInterval < time.Second || c.ProbeInterval > MaxProbeInterval {
			return Errorf(EINVALID, "circuitBreaker.probeIntervalSeconds: must be between 1 and %d", int(MaxProbeInterval.Seconds()))
		}
	}
	return nil
}

// EmissionInterval is the time between two calls at the rate limit's
// pace: the token bucket in whole nanoseconds, so that every worker
// computes the same schedule.
func (r RateLimit) EmissionInterval() time.Duration {
	return max(time.Duration(float64(time.Second)/r.PerSecond), 1)
}

// FlowState is where a gated function's flow control stands: its state
// (a Flow* state), the calls waiting for a permit and those in flight,
// when its circuit opened and when its next probe may go, and until when
// it is paused.
type FlowState struct {
	Function      string
	State         string
	Waiting       int
	InFlight      int
	OldestWaiting time.Time // when the longest-waiting call asked; zero when none waits
	OpenedAt      time.Time // zero while the circuit is closed
	NextProbe     time.Time // zero while the circuit is closed
	PausedUntil   time.Time // zero when not paused
}

// GateWorkflowID is the workflow ID of the Gate of tenant's function
// name: one per function, derived from a hash of its name so that any name
// makes a valid ID.
func GateWorkflowID(tenant, function string) string {
	sum := sha256.Sum256([]byte(function))
	return TenantWorkflowID(tenant, "gate-"+hex.EncodeToString(sum[:16]))
}

// FunctionFlowInput asks for the current flow control of the function
// Name (a Gate reads it with a local activity); a function that does not
// exist has none.
type FunctionFlowInput struct {
	Name string
}
