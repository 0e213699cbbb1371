package models

import (
	"encoding/json"
	"time"

	"github.com/dispatcherhq/dispatcher"
)

// flowDoc is a function's flow control as the flow column stores it, in
// names of its own, so that the domain type can change without a
// migration of the column.
type flowDoc struct {
	RateLimit *struct {
		PerSecond float64 `json:"perSecond"`
		Burst     int     `json:"burst"`
	} `json:"rateLimit,omitempty"`
	MaxConcurrency int `json:"maxConcurrency,omitempty"`
	CircuitBreaker *struct {
		Failures        int   `json:"failures"`
		WindowMs        int64 `json:"windowMs"`
		ProbeIntervalMs int64 `json:"probeIntervalMs"`
	} `json:"circuitBreaker,omitempty"`
	PausedUntil *int64 `json:"pausedUntil,omitempty"` // epoch ms
}

// flowText is f as the flow column stores it; nil when it sets nothing.
func flowText(f dispatcher.Flow) *string {
	if !f.Gated() {
		return nil
	}
	var d flowDoc
	if r := f.RateLimit; r != nil {
		d.RateLimit = &struct {
			PerSecond float64 `json:"perSecond"`
			Burst     int     `json:"burst"`
		}{r.PerSecond, r.Burst}
	}
	d.MaxConcurrency = f.MaxConcurrency
	if c := f.CircuitBreaker; c != nil {
		d.CircuitBreaker = &struct {
			Failures        int   `json:"failures"`
			WindowMs        int64 `json:"windowMs"`
			ProbeIntervalMs int64 `json:"probeIntervalMs"`
		}{c.Failures, c.Window.Milliseconds(), c.ProbeInterval.Milliseconds()}
	}
	if f.PausedUntil != nil {
		ms := f.PausedUntil.UnixMilli()
		d.PausedUntil = &ms
	}
	b, _ := json.Marshal(d) // numbers and structs: cannot fail
	s := string(b)
	return &s
}

// flow reads a stored flow control; one that does not parse (written by
// hand) reads as none rather than failing every read of the function.
func flow(s *string) dispatcher.Flow {
	var f dispatcher.Flow
	if s == nil {
		return f
	}
	var d flowDoc
	if err := json.Unmarshal([]byte(*s), &d); err != nil {
		return f
	}
	if r := d.RateLimit; r != nil {
		f.RateLimit = &dispatcher.RateLimit{PerSecond: r.PerSecond, Burst: r.Burst}
	}
	f.MaxConcurrency = d.MaxConcurrency
	if c := d.CircuitBreaker; c != nil {
		f.CircuitBreaker = &dispatcher.CircuitBreaker{Failures: c.Failures,
			Window: time.Duration(c.WindowMs) * time.Millisecond, ProbeInterval: time.Duration(c.ProbeIntervalMs) * time.Millisecond}
	}
	if d.PausedUntil != nil {
		t := time.UnixMilli(*d.PausedUntil).UTC()
		f.PausedUntil = &t
	}
	return f
}
