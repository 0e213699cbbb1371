package wire

import (
	"encoding/json"
	"time"

	"github.com/dispatcherhq/dispatcher"
)

// RateLimit is a function's rate limit: perSecond calls a second, burst
// at once after a quiet spell (default 1).
type RateLimit struct {
	PerSecond float64 `json:"perSecond"`
	Burst     int     `json:"burst,omitempty"`
}

// CircuitBreaker is a function's circuit breaker: it opens after failures
// consecutive failed calls within windowSeconds, and lets a probe through
// every probeIntervalSeconds while open. Fields left out take defaults.
type CircuitBreaker struct {
	Failures             int `json:"failures,omitempty"`
	WindowSeconds        int `json:"windowSeconds,omitempty"`
	ProbeIntervalSeconds int `json:"probeIntervalSeconds,omitempty"`
}

// PausedUntil is a function's pausedUntil in a request: an ISO-8601
// date-time or epoch milliseconds.
type PausedUntil struct {
	Time time.Time
}

// UnmarshalJSON implements json.Unmarshaler.
func (p *PausedUntil) UnmarshalJSON(b []byte) error {
	t, err := ParseTimestamp(b)
	if err != nil {
		return dispatcher.Errorf(dispatcher.EINVALID, "pausedUntil: %v", err)
	}
	p.Time = t
	return nil
}

// MarshalJSON implements json.Marshaler: ISO-8601, as answers write it.
func (p PausedUntil) MarshalJSON() ([]byte, error) {
	return json.Marshal(p.Time.UTC().Format(isoMillis))
}

// FunctionFlow is where a gated function's flow control stands, in the
// answer to GET /functions/v1/{id}: state closed, open (the circuit) or
// paused; the calls waiting for a permit and those in flight; when the
// longest-waiting call asked, when the circuit opened and when its next
// probe may go (epoch ms). Unknown: the function's gate could not be
// read (Temporal unreachable, no worker answering, or its workflow task
// failing): the state is what the settings imply, and the calls waiting
// and in flight are not known.
type FunctionFlow struct {
	State         string `json:"state"`
	Unknown       bool   `json:"unknown,omitempty"`
	Waiting       int    `json:"waiting"`
	InFlight      int    `json:"inFlight"`
	OldestWaiting *int64 `json:"oldestWaiting,omitempty"`
	OpenedAt      *int64 `json:"openedAt,omitempty"`
	NextProbe     *int64 `json:"nextProbe,omitempty"`
	PausedUntil   *int64 `json:"pausedUntil,omitempty"`
}

// FunctionDetail is a function with, when it has flow control, where that
// stands.
type FunctionDetail struct {
	Function
	Flow *FunctionFlow `json:"flow,omitempty"`
}

// FromFlowState converts a flow state for an answer.
func FromFlowState(s dispatcher.FlowState) *FunctionFlow {
	return &FunctionFlow{State: s.State, Waiting: s.Waiting, InFlight: s.InFlight, OldestWaiting: optionalMillis(s.OldestWaiting),
		OpenedAt: optionalMillis(s.OpenedAt), NextProbe: optionalMillis(s.NextProbe), PausedUntil: optionalMillis(s.PausedUntil)}
}
