package main

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"
	"net/mail"
	"strconv"
	"strings"
	"time"
)

//go:embed templates/*.html
var templateFS embed.FS

// pages are the web UI's templates. html/template escapes every value from a
// mail for where it lands, the HTML body included (into the srcdoc attribute).
var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"addresses": func(list []*mail.Address) string {
		s := make([]string, len(list))
		for i, a := range list {
			s[i] = displayAddress(a)
		}
		return strings.Join(s, ", ")
	},
	"when": func(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") },
	"date": func(t time.Time) string { return t.Format(time.RFC1123Z) },
}).ParseFS(templateFS, "templates/*.html"))

// refreshSeconds is how often the list page reloads itself.
const refreshSeconds = 3

// listPage serves GET /: every message and every function call, newest
// first.
func listPage(store *Store, calls *CallStore, smtpAddr string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		render(w, "list.html", map[string]any{
			"Messages": store.List(),
			"Calls":    calls.List(),
			"SMTP":     smtpAddr,
			"Refresh":  refreshSeconds,
		})
	})
}

// messagePage serves GET /messages/{id}: headers, text and HTML of one mail.
func messagePage(store *Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := lookup(store, r)
		if m == nil {
			http.NotFound(w, r)
			return
		}
		render(w, "message.html", m)
	})
}

// rawMessage serves GET /messages/{id}/raw: the source as sent, as plain
// text that is never sniffed as HTML and is sandboxed even if it were.
func rawMessage(store *Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := lookup(store, r)
		if m == nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Content-Security-Policy", contentSecurityPolicy+"; sandbox")
		w.Write(m.Raw)
	})
}

// lookup returns the message named by the path's {id}, or nil.
func lookup(store *Store, r *http.Request) *Message {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil {
		return nil
	}
	return store.Get(id)
}

// render executes a page into a buffer first, so a template error is a
// clean 500 rather than half a page.
func render(w http.ResponseWriter, name string, data any) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		http.Error(w, "template: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(buf.Bytes())
}
