package main

import (
	"net"
	"net/http"
	"strconv"
	"time"
)

// contentSecurityPolicy applies to every response. Mail HTML is shown in a
// srcdoc frame, which inherits this policy from its page: no script runs,
// no form posts, nothing is framed elsewhere; mails keep their inline styles
// and images.
const contentSecurityPolicy = "default-src 'none'; script-src 'none'; style-src 'unsafe-inline'; " +
	"img-src data: http: https:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// newHandler returns the whole HTTP surface: the web UI and the JSON API
// over store and calls, and /fn/{name}, which task functions may call.
// smtpAddr is shown on the list page.
func newHandler(store *Store, calls *CallStore, smtpAddr string) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", listPage(store, calls, smtpAddr))
	mux.Handle("/fn/{name}", receiveCall(calls, time.Now))
	mux.Handle("GET /calls/{id}", callPage(calls))
	mux.Handle("GET /api/calls", listCalls(calls))
	mux.Handle("DELETE /api/calls", clearCalls(calls))
	mux.Handle("GET /messages/{id}", messagePage(store))
	mux.Handle("GET /messages/{id}/raw", rawMessage(store))
	mux.Handle("GET /api/messages", listMessages(store))
	mux.Handle("DELETE /api/messages", clearMessages(store))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	return secureHeaders(mux)
}

// loopbackOnly answers only requests to a loopback name (localhost,
// 127.0.0.1, [::1]): a page that rebinds its own name to 127.0.0.1 sends
// that name, and would otherwise read every caught mail and call as its
// own origin. -unsafe-listen goes without it.
func loopbackOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			http.Error(w, "mailcatcher answers only requests to localhost or a loopback address, not to "+strconv.Quote(r.Host), http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// secureHeaders sets the headers that keep mail content inert.
func secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}
