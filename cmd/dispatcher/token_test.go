package main

import (
	"bytes"
	"strings"
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

// Without the secret, token says where to find the server's: before, it
// said only that tokens are signed with it (a probe).
func TestTokenWithoutTheSecret(t *testing.T) {
	var out bytes.Buffer
	err := run(t.Context(), []string{"token", "--admin"}, func(string) string { return "" }, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "set it to the server's (under make run, the file .run/jwt-secret)") {
		t.Errorf("token without DISPATCHER_JWT_SECRET: %v, want it to say where the secret is", err)
	}
}
