package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/smtp"
	"regexp"
	"sync"
	"testing"
	"time"
)

// catcher is a mailcatcher started by run in-process on :0 ports.
type catcher struct {
	smtpAddr string
	web      string // http://host:port
}

var readyLine = regexp.MustCompile(`mailcatcher: SMTP on (\S+), web UI on (http://\S+)\n`)

// readyWriter is run's stdout: it sends the ready line's addresses once.
type readyWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	sent  bool
	ready chan []string
}

func (w *readyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.sent {
		if m := readyLine.FindStringSubmatch(w.buf.String()); m != nil {
			w.sent = true
			w.ready <- m[1:]
		}
	}
	return len(p), nil
}

// startCatcher runs the program with args added to loopback :0 addresses and
// stops it at the end of the test, failing it if run does not stop cleanly.
func startCatcher(t *testing.T, args ...string) catcher {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &readyWriter{ready: make(chan []string, 1)}
	done := make(chan error, 1)
	args = append([]string{"-smtp", "127.0.0.1:0", "-http", "127.0.0.1:0"}, args...)
	go func() { done <- run(ctx, args, func(string) string { return "" }, out, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run after cancel: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("run did not stop within 10s of its context ending")
		}
	})
	select {
	case m := <-out.ready:
		return catcher{smtpAddr: m[0], web: m[1]}
	case err := <-done:
		t.Fatalf("run ended before it was ready: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no ready line within 10s")
	}
	return catcher{}
}

// get fetches path and returns the response with its body read.
func (c catcher) get(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(c.web + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// messages returns GET /api/messages.
func (c catcher) messages(t *testing.T) []apiMessage {
	t.Helper()
	resp, body := c.get(t, "/api/messages")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/messages: %s %s", resp.Status, body)
	}
	var list []apiMessage
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatalf("GET /api/messages: %v in %s", err, body)
	}
	return list
}

// sendRaw sends a minimal mail with net/smtp.
func (c catcher) sendRaw(t *testing.T, from, to, subject, body string) {
	t.Helper()
	msg := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\n\r\n%s\r\n", from, to, subject, body)
	if err := smtp.SendMail(c.smtpAddr, nil, from, []string{to}, []byte(msg)); err != nil {
		t.Fatalf("send %q: %v", subject, err)
	}
}
