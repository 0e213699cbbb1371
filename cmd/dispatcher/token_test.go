package main

import (
	"testing"
	"time"
)

// TestDaysFlag: --ttl takes whole days, as --expires and --from do, and
// Go's durations. Before, --ttl 1d was refused.
func TestDaysFlag(t *testing.T) {
	for in, want := range map[string]time.Duration{"1d": 24 * time.Hour, "2D": 48 * time.Hour, "7d": 7 * 24 * time.Hour, "90m": 90 * time.Minute, "36h": 36 * time.Hour} {
		var d days
		if err := d.Set(in); err != nil || time.Duration(d) != want {
			t.Errorf("%q: %v, %v; want %v", in, time.Duration(d), err, want)
		}
	}
	for _, in := range []string{"1x", "d", "-1d", "0d", "1.5d", ""} {
		var d days
		if err := d.Set(in); err == nil {
			t.Errorf("%q: taken as %v", in, time.Duration(d))
		}
	}
}
