package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"time"
)

// httpSink is the task functions' receiver: idempotent by the
// Idempotency-Key header, as a payment API is. The first request with a
// key is applied when it completes, even when the caller has hung up by
// then (the receiver's work does not depend on who still listens); a
// request whose key is in flight gets 409 Conflict; one whose key was
// applied gets 200 again, and nothing happens. /slow takes slow to
// complete, /quick answers at once.
type httpSink struct {
	url     string // base URL; the functions are url+"/slow" and url+"/quick"
	ledger  *ledger
	slow    time.Duration
	srv     *http.Server
	closing chan struct{}
}

// startHTTPSink starts the functions on a free loopback port; /slow takes
// slow to complete.
func startHTTPSink(l *ledger, slow time.Duration) (*httpSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &httpSink{url: "http://" + ln.Addr().String(), ledger: l, slow: slow, closing: make(chan struct{})}
	s.srv = &http.Server{Handler: s, ErrorLog: log.New(io.Discard, "", 0), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// close stops the sink; slow calls still in flight end without effect.
func (s *httpSink) close() {
	close(s.closing)
	_ = s.srv.Close()
}

// taskBody is the part of the dispatcher's task payload the sink reads.
type taskBody struct {
	Data struct {
		Event struct {
			ID string `json:"id"`
		} `json:"event"`
	} `json:"data"`
}

func (s *httpSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	action := strings.TrimPrefix(r.URL.Path, "/")
	if r.Method != http.MethodPost || (action != actionSlow && action != actionQuick) {
		http.Error(w, "no such function", http.StatusNotFound)
		return
	}
	var body taskBody
	_ = json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body)
	key, event := r.Header.Get("Idempotency-Key"), body.Data.Event.ID
	if key == "" || event == "" {
		s.ledger.malformedDelivery(fmt.Sprintf("POST /%s with Idempotency-Key %q and data.event.id %q", action, key, event))
		http.Error(w, "Idempotency-Key and data.event.id are required", http.StatusBadRequest)
		return
	}
	switch s.ledger.httpArrive(key, event, action) {
	case arrivalInFlight:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusConflict)
		_, _ = io.WriteString(w, `{"error":"a request with this Idempotency-Key is in progress"}`)
		return
	case arrivalRedelivery:
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true,"replayed":true}`)
		return
	}
	if action == actionSlow {
		select {
		case <-time.After(s.slow):
		case <-s.closing:
			s.ledger.httpAborted(key)
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
	}
	s.ledger.httpApplied(key)
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"ok":true}`)
}
