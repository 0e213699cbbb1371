package main

import (
	"strings"
	"testing"
)

// A setting that cannot mean anything is refused at start-up, naming it.
// Before, DISPATCHER_LOG_LEVEL=verbose ran at info, and TEMPORAL_ADDRESS
// without a port dialled port 443 and waited for Temporal for ever.
func TestConfigRefusesMeaninglessSettings(t *testing.T) {
	for _, tt := range []struct{ name, value, want string }{
		{"DISPATCHER_LOG_LEVEL", "verbose", `DISPATCHER_LOG_LEVEL="verbose": want debug, info, warn or error`},
		{"DISPATCHER_LOG_FORMAT", "yaml", `DISPATCHER_LOG_FORMAT="yaml": want text or json`},
		{"TEMPORAL_ADDRESS", "localhost", `TEMPORAL_ADDRESS="localhost": want host:port`},
		{"TEMPORAL_ADDRESS", "temporal:", `TEMPORAL_ADDRESS="temporal:": want host:port`},
		{"DISPATCHER_LOG_LEVEL", "WARN", ""},
		{"DISPATCHER_LOG_LEVEL", "debug", ""},
		{"TEMPORAL_ADDRESS", "temporal.example.com:7233", ""},
		{"TEMPORAL_ADDRESS", "[::1]:7233", ""},
		{"DISPATCHER_DISPATCH_VERSION", "7", `DISPATCHER_DISPATCH_VERSION="7": want 9 or 8`},
		{"DISPATCHER_DISPATCH_VERSION", "8", ""},
		{"DISPATCHER_NATS_CONSUMER", "tenant.b", `DISPATCHER_NATS_CONSUMER="tenant.b": want a name without white space, dots`},
		{"DISPATCHER_NATS_CONSUMER", "dispatcher-tenant-b", ""},
	} {
		_, err := loadConfig(func(k string) string {
			if k == tt.name {
				return tt.value
			}
			return ""
		})
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s=%q: %v", tt.name, tt.value, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s=%q: error %v, want one containing %q", tt.name, tt.value, err, tt.want)
		}
	}
}
