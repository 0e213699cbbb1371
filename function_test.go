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

// A URL that can never be called is refused when saved: a port out of
// range, a host that reads as a number but is no IP address (Go's
// resolver reads only dotted-decimal IPv4, and looks the rest up as names
// no DNS has). Before, they were saved, and every call failed as a
// temporary error, retried.
func TestFunctionURLThatCannotBeCalled(t *testing.T) {
	for url, want := range map[string]string{
		"https://example.com:0/x":     "url: port 0 is not between 1 and 65535",
		"https://example.com:99999/x": "url: port 99999 is not between 1 and 65535",
		"https://167772161/x":         `url: host "167772161" reads as a number`,
		"https://0xa.0.0.1/x":         `url: host "0xa.0.0.1" reads as a number`,
		"https://10.1/x":              `url: host "10.1" reads as a number`,
		"https://0/x":                 `url: host "0" reads as a number`,
		"https://example.com:8443/x":  "",
		"https://10.0.0.1/x":          "",
		"https://[::1]:8443/x":        "",
		"https://1password.com/x":     "",
	} {
		err := (&dispatcher.Function{Name: "f", URL: url}).Validate()
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %v, want it saved", url, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: %v, want %q", url, err, want)
		}
	}
}
