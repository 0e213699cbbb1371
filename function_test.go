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
	for _, h := range []string{"Host", "Idempotency-Key", "X-Dispatcher-Signature", "x-dispatcher-attempt", "Transfer-Encoding", "content-encoding", "traceparent",
		"Upgrade", "Expect", "TE", "Proxy-Authorization"} {
		f := dispatcher.Function{Name: "f", URL: "https://f.example.com", Headers: map[string]string{h: "v"}}
		if err := f.Validate(); err == nil || !strings.Contains(err.Error(), "headers."+h) {
			t.Errorf("a new function with %s: %v, want it refused", h, err)
		}
	}
	// Connection: close only asks for no keep-alive; any other value
	// names headers for the hops to drop, or asks for an upgrade.
	for _, v := range []string{"Upgrade", "close, X-Api-Key", "keep-alive"} {
		f := dispatcher.Function{Name: "f", URL: "https://f.example.com", Headers: map[string]string{"Connection": v}}
		if err := f.Validate(); err == nil || !strings.Contains(err.Error(), `headers.Connection: only "close" may be configured`) {
			t.Errorf("a function with Connection: %s: %v, want it refused", v, err)
		}
	}
	ok := dispatcher.Function{Name: "f", URL: "https://f.example.com", Headers: map[string]string{"Connection": "Close", "Authorization": "Bearer k"}}
	if err := ok.Validate(); err != nil {
		t.Errorf("a function with Connection and Authorization: %v", err)
	}
}

// Two headers whose names differ in case only are refused: a call sent
// one of them, which one by chance. Before, both were saved.
func TestFunctionHeadersDifferingInCase(t *testing.T) {
	f := dispatcher.Function{Name: "f", URL: "https://f.example.com", Headers: map[string]string{"x-a": "lower", "X-A": "upper", "X-B": "b"}}
	if err := f.Validate(); err == nil || dispatcher.ErrorMessage(err) != `headers.x-a: the same header as "X-A" (header names ignore case); keep one` {
		t.Errorf("x-a beside X-A: %v, want it refused", err)
	}
	f.Headers = map[string]string{"x-a": "lower", "X-B": "b"}
	if err := f.Validate(); err != nil {
		t.Errorf("distinct headers: %v", err)
	}
	// One saved with both before still takes an update that leaves its
	// headers alone (a pause, in an incident): their values are never
	// shown, so they could not be sent again without one.
	stored := dispatcher.Function{Name: "f", URL: "https://f.example.com", Headers: map[string]string{"x-a": "lower", "X-A": "upper"}}
	until := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	paused := &until
	if err := (dispatcher.FunctionUpdate{PausedUntil: &paused}).Apply(&stored); err != nil {
		t.Errorf("pausing a function stored with x-a and X-A: %v", err)
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

// A setting of the other kind is refused rather than kept and ignored: a
// secret on a temporal function signs nothing, a task queue on an http
// function runs nothing. Changing the kind leaves the old kind's settings
// behind; a function stored with both before keeps taking updates that
// leave them alone.
func TestFunctionSettingsOfTheOtherKind(t *testing.T) {
	temporal := func() dispatcher.Function {
		return dispatcher.Function{Name: "erase", Kind: dispatcher.FunctionTemporal, TaskQueue: "erasers"}
	}
	for field, f := range map[string]func(*dispatcher.Function){
		"url":            func(f *dispatcher.Function) { f.URL = "https://erase.example.com" },
		"secret":         func(f *dispatcher.Function) { f.Secret = "s3cret" },
		"headers":        func(f *dispatcher.Function) { f.Headers = map[string]string{"X-Api-Key": "k"} },
		"timeoutSeconds": func(f *dispatcher.Function) { f.Timeout = time.Minute },
	} {
		fn := temporal()
		f(&fn)
		if err := fn.Validate(); err == nil || !strings.Contains(err.Error(), field+": a temporal function has none") {
			t.Errorf("a temporal function with %s: %v, want it refused", field, err)
		}
	}
	http := dispatcher.Function{Name: "erase", URL: "https://erase.example.com", TaskQueue: "erasers"}
	if err := http.Validate(); err == nil || !strings.Contains(err.Error(), "taskQueue: an http function has none") {
		t.Errorf("an http function with a task queue: %v, want it refused", err)
	}

	// http → temporal: the URL, secret, headers and timeout go.
	fn := dispatcher.Function{Name: "erase", URL: "https://erase.example.com", Secret: "s", Headers: map[string]string{"X-K": "v"}}
	if err := fn.Validate(); err != nil {
		t.Fatal(err)
	}
	kind, queue := dispatcher.FunctionTemporal, "erasers"
	if err := (dispatcher.FunctionUpdate{Kind: &kind, TaskQueue: &queue}).Apply(&fn); err != nil {
		t.Fatalf("http → temporal: %v", err)
	}
	if fn.URL != "" || fn.Secret != "" || fn.Headers != nil || fn.Timeout != 0 {
		t.Errorf("http → temporal kept %+v", fn)
	}
	// … and back: the task queue goes, the default timeout comes.
	kind, url := dispatcher.FunctionHTTP, "https://erase.example.com"
	if err := (dispatcher.FunctionUpdate{Kind: &kind, URL: &url}).Apply(&fn); err != nil {
		t.Fatalf("temporal → http: %v", err)
	}
	if fn.TaskQueue != "" || fn.Timeout != dispatcher.DefaultFunctionTimeout {
		t.Errorf("temporal → http: %+v", fn)
	}
	// Setting one of the other kind in an update is refused …
	secret := "s"
	stored := temporal()
	if err := (dispatcher.FunctionUpdate{Secret: &secret}).Apply(&stored); err == nil || !strings.Contains(err.Error(), "secret: a temporal function has none") {
		t.Errorf("a secret for a temporal function: %v, want it refused", err)
	}
	// … clearing it is not, and one stored before still takes a rename.
	stored.URL = "https://erase.example.com"
	name := "erase-user"
	if err := (dispatcher.FunctionUpdate{Name: &name}).Apply(&stored); err != nil {
		t.Errorf("renaming a temporal function stored with a URL: %v", err)
	}
	none := ""
	if err := (dispatcher.FunctionUpdate{URL: &none}).Apply(&stored); err != nil || stored.URL != "" {
		t.Errorf("clearing its URL: %v (%q)", err, stored.URL)
	}
}
