package dispatcher_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
)

// TestFunctionCallHeaders: headers the call sets itself are refused when
// they are set, and a function stored with one before they were still
// takes an update that leaves its headers alone (a pause, in an incident).
func TestFunctionCallHeaders(t *testing.T) {
	stored := dispatcher.Function{Name: "erase", URL: "https://erase.example.com", Headers: map[string]string{"Content-Type": "application/json"}}
	until := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	paused := &until
	if err := (dispatcher.FunctionUpdate{PausedUntil: &paused}).Apply(&stored); err != nil {
		t.Fatalf("pausing a function stored with Content-Type: %v", err)
	}
	set := map[string]string{"content-type": "text/plain", "X-Api-Key": "k"}
	err := (dispatcher.FunctionUpdate{Headers: &set}).Apply(&stored)
	if err == nil || !strings.Contains(err.Error(), "headers.content-type: the dispatcher or HTTP itself sets this header") {
		t.Fatalf("setting Content-Type: %v, want it refused", err)
	}
	for _, h := range []string{"Host", "Idempotency-Key", "X-Dispatcher-Signature", "Transfer-Encoding"} {
		f := dispatcher.Function{Name: "f", URL: "https://f.example.com", Headers: map[string]string{h: "v"}}
		if err := f.Validate(); err == nil || !strings.Contains(err.Error(), "headers."+h) {
			t.Errorf("a new function with %s: %v, want it refused", h, err)
		}
	}
	ok := dispatcher.Function{Name: "f", URL: "https://f.example.com", Headers: map[string]string{"Connection": "close", "Authorization": "Bearer k"}}
	if err := ok.Validate(); err != nil {
		t.Errorf("a function with Connection and Authorization: %v", err)
	}
}
