package main

import (
	"context"
	"io"
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
