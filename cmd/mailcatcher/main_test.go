package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRefusesNonLoopbackAddresses(t *testing.T) {
	for _, args := range [][]string{
		{"-smtp", "0.0.0.0:0"},
		{"-smtp", ":0"},
		{"-http", "[::]:0"},
		{"-http", "192.0.2.10:8025"},
		{"-smtp", "example.com:25"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			// Already cancelled: were the address accepted, run would
			// listen and return nil at once instead of serving.
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			all := append([]string{"-smtp", "127.0.0.1:0", "-http", "127.0.0.1:0"}, args...)
			err := run(ctx, all, nil, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), "-unsafe-listen") {
				t.Errorf("run %q: %v, want a refusal that names -unsafe-listen", args, err)
			}
		})
	}
}

func TestCheckListen(t *testing.T) {
	for _, tt := range []struct {
		addr   string
		unsafe bool
		ok     bool
	}{
		{"127.0.0.1:1025", false, true},
		{"127.0.0.2:1025", false, true},
		{"[::1]:1025", false, true},
		{"localhost:1025", false, true},
		{"0.0.0.0:1025", false, false},
		{":1025", false, false},
		{"10.0.0.5:1025", false, false},
		{"mail.example.com:1025", false, false},
		{"0.0.0.0:1025", true, true},
		{":1025", true, true},
		{"no-port", true, false},
	} {
		err := checkListen(tt.addr, tt.unsafe)
		if (err == nil) != tt.ok {
			t.Errorf("checkListen(%q, unsafe=%v) = %v, want ok=%v", tt.addr, tt.unsafe, err, tt.ok)
		}
	}
}

// A page on another site that rebinds its name to 127.0.0.1 reaches the
// catcher's port as its own origin; the Host it sends is still its own
// name, and the catcher answers only requests to a loopback name, which
// holds every caught mail and call. Before, any Host was answered.
func TestAnswersOnlyLoopbackHosts(t *testing.T) {
	h := loopbackOnly(newHandler(NewStore(10), NewCallStore(10), "127.0.0.1:1025"))
	for host, want := range map[string]int{
		"127.0.0.1:8025": http.StatusOK, "localhost:8025": http.StatusOK, "[::1]:8025": http.StatusOK, "localhost": http.StatusOK,
		"attacker.example:8025": http.StatusForbidden, "attacker.example": http.StatusForbidden, "127.0.0.1.nip.io:8025": http.StatusForbidden,
	} {
		for _, path := range []string{"/api/messages", "/api/calls"} {
			req := httptest.NewRequest("GET", path, nil)
			req.Host = host
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != want {
				t.Errorf("GET %s with Host %s = %d, want %d", path, host, rec.Code, want)
			}
		}
	}
}
