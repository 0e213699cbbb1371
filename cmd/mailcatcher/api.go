package main

import (
	"encoding/json"
	"net/http"
	"net/mail"
	"time"
)

// apiMessage is a Message as GET /api/messages shows it. Addresses are bare
// (ann@example.com), so scripts can compare them.
type apiMessage struct {
	ID          int             `json:"id"`
	From        string          `json:"from"`
	To          []string        `json:"to"`
	Cc          []string        `json:"cc"`
	Subject     string          `json:"subject"`
	Date        time.Time       `json:"date"` // the Date header, else when it was received
	Received    time.Time       `json:"received"`
	Text        string          `json:"text"`
	HTML        string          `json:"html"`
	Envelope    apiEnvelope     `json:"envelope"`
	Attachments []apiAttachment `json:"attachments"`
	ParseError  string          `json:"parseError,omitempty"`
}

type apiEnvelope struct {
	From string   `json:"from"`
	To   []string `json:"to"`
}

type apiAttachment struct {
	Name string `json:"name"`
	Type string `json:"type"`
	Size int    `json:"size"`
}

// toAPIMessage converts a Message for the JSON API.
func toAPIMessage(m *Message) apiMessage {
	a := apiMessage{
		ID:          m.ID,
		To:          bareAddresses(m.To),
		Cc:          bareAddresses(m.Cc),
		Subject:     m.Subject,
		Date:        m.Date,
		Received:    m.Received,
		Text:        m.Text,
		HTML:        m.HTML,
		Envelope:    apiEnvelope{From: m.Envelope.From, To: append([]string{}, m.Envelope.To...)},
		Attachments: []apiAttachment{},
		ParseError:  m.ParseError,
	}
	if len(m.From) > 0 {
		a.From = m.From[0].Address
	}
	if a.Date.IsZero() {
		a.Date = m.Received
	}
	for _, at := range m.Attachments {
		a.Attachments = append(a.Attachments, apiAttachment(at))
	}
	return a
}

// bareAddresses returns the addresses without names, never nil.
func bareAddresses(list []*mail.Address) []string {
	out := make([]string, len(list))
	for i, a := range list {
		out[i] = a.Address
	}
	return out
}

// listMessages serves GET /api/messages: a JSON array, newest first.
func listMessages(store *Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		msgs := store.List()
		out := make([]apiMessage, len(msgs))
		for i, m := range msgs {
			out[i] = toAPIMessage(m)
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(out)
	})
}

// clearMessages serves DELETE /api/messages: forgets every message.
func clearMessages(store *Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		store.Clear()
		w.WriteHeader(http.StatusNoContent)
	})
}
