package wire

import (
	"maps"
	"slices"
	"time"

	"github.com/dispatcherhq/dispatcher"
)

// FunctionRequest is the body of POST and PUT /functions/v1.
type FunctionRequest struct {
	Name           *string            `json:"name"`
	Kind           *string            `json:"kind"`
	URL            *string            `json:"url"`
	TimeoutSeconds *int               `json:"timeoutSeconds"`
	Secret         *string            `json:"secret"`
	Headers        *map[string]string `json:"headers"`
	TaskQueue      *string            `json:"taskQueue"`
	// Flow control (http functions); null removes a setting, as does a
	// maxConcurrency of 0.
	RateLimit      Optional[RateLimit]      `json:"rateLimit"`
	MaxConcurrency Optional[int]            `json:"maxConcurrency"`
	CircuitBreaker Optional[CircuitBreaker] `json:"circuitBreaker"`
	PausedUntil    Optional[PausedUntil]    `json:"pausedUntil"`
}

// Function is a function in an answer. It never carries the secret nor
// header values: both are write-only (headers are where API keys go), so
// only header names show.
type Function struct {
	ID             string   `json:"id"`
	Name           string   `json:"name"`
	Kind           string   `json:"kind"`
	URL            string   `json:"url,omitempty"`
	TimeoutSeconds int      `json:"timeoutSeconds,omitempty"`
	HasSecret      bool     `json:"hasSecret"`
	HeaderNames    []string `json:"headerNames,omitempty"`
	TaskQueue      string   `json:"taskQueue,omitempty"`
	// Flow control, when set.
	RateLimit         *RateLimit      `json:"rateLimit,omitempty"`
	MaxConcurrency    int             `json:"maxConcurrency,omitempty"`
	CircuitBreaker    *CircuitBreaker `json:"circuitBreaker,omitempty"`
	PausedUntil       string          `json:"pausedUntil,omitempty"` // ISO-8601
	CreationTimestamp int64           `json:"creationTimestamp"`
	UpdateTimestamp   int64           `json:"updateTimestamp"`
}

// Update converts a create or update request.
func (r FunctionRequest) Update() dispatcher.FunctionUpdate {
	u := dispatcher.FunctionUpdate{Name: r.Name, Kind: r.Kind, URL: r.URL, Secret: r.Secret, Headers: r.Headers, TaskQueue: r.TaskQueue}
	if r.TimeoutSeconds != nil {
		// Out of range values must not wrap around into range, nor 0
		// become the default, which only a field left out means.
		secs := *r.TimeoutSeconds
		if secs == 0 {
			secs = -1
		}
		secs = min(max(secs, -1), int(dispatcher.MaxFunctionTimeout.Seconds())+1)
		d := time.Duration(secs) * time.Second
		u.Timeout = &d
	}
	if r.RateLimit.Set {
		var rl *dispatcher.RateLimit
		if !r.RateLimit.Null {
			rl = &dispatcher.RateLimit{PerSecond: r.RateLimit.Value.PerSecond, Burst: r.RateLimit.Value.Burst}
		}
		u.RateLimit = &rl
	}
	if r.MaxConcurrency.Set {
		n := r.MaxConcurrency.Value // null: 0, no limit
		u.MaxConcurrency = &n
	}
	if r.CircuitBreaker.Set {
		var cb *dispatcher.CircuitBreaker
		if !r.CircuitBreaker.Null {
			v := r.CircuitBreaker.Value
			cb = &dispatcher.CircuitBreaker{Failures: v.Failures,
				Window: flowSeconds(v.WindowSeconds, dispatcher.MaxCircuitWindow), ProbeInterval: flowSeconds(v.ProbeIntervalSeconds, dispatcher.MaxProbeInterval)}
		}
		u.CircuitBreaker = &cb
	}
	if r.PausedUntil.Set {
		var until *time.Time
		if !r.PausedUntil.Null {
			t := r.PausedUntil.Value.Time
			until = &t
		}
		u.PausedUntil = &until
	}
	return u
}

// flowSeconds converts seconds of a flow control setting, keeping out of
// range values out of range rather than wrapping them into it.
func flowSeconds(secs int, limit time.Duration) time.Duration {
	return time.Duration(min(max(secs, -1), int(limit.Seconds())+1)) * time.Second
}

// FromFunction converts a function for an answer.
func FromFunction(f dispatcher.Function) Function {
	out := Function{ID: f.ID, Name: f.Name, Kind: f.Kind, URL: f.URL, TimeoutSeconds: int(f.Timeout.Seconds()),
		HasSecret: f.Secret != "", HeaderNames: slices.Sorted(maps.Keys(f.Headers)), TaskQueue: f.TaskQueue,
		MaxConcurrency: f.Flow.MaxConcurrency, CreationTimestamp: f.Created.UnixMilli(), UpdateTimestamp: f.Updated.UnixMilli()}
	if r := f.Flow.RateLimit; r != nil {
		out.RateLimit = &RateLimit{PerSecond: r.PerSecond, Burst: r.Burst}
	}
	if c := f.Flow.CircuitBreaker; c != nil {
		out.CircuitBreaker = &CircuitBreaker{Failures: c.Failures, WindowSeconds: int(c.Window.Seconds()),
			ProbeIntervalSeconds: int(c.ProbeInterval.Seconds())}
	}
	if f.Flow.PausedUntil != nil {
		out.PausedUntil = f.Flow.PausedUntil.UTC().Format(isoMillis)
	}
	return out
}
