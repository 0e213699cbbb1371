package main

import (
	"errors"
	"io"
	"log"
	"strings"
	"syscall"
	"time"

	"github.com/emersion/go-smtp"
)

// maxMessageBytes bounds one mail; the store holds up to -max of them.
const maxMessageBytes = 32 << 20

// newSMTPServer returns an SMTP server that accepts every mail from anyone
// to anyone, without authentication or TLS, into store.
func newSMTPServer(store *Store, now func() time.Time, logger *log.Logger) *smtp.Server {
	s := smtp.NewServer(&backend{store: store, now: now, log: logger})
	s.Domain = "localhost"
	s.MaxMessageBytes = maxMessageBytes
	s.ReadTimeout = 5 * time.Minute
	s.WriteTimeout = time.Minute
	s.EnableSMTPUTF8 = true
	s.ErrorLog = quietLog{logger}
	return s
}

// quietLog is go-smtp's error log without connections reset by the peer:
// those are port probes (run.sh's, for one), not problems.
type quietLog struct{ *log.Logger }

// Printf implements smtp.Logger.
func (l quietLog) Printf(format string, v ...any) {
	for _, a := range v {
		if err, ok := a.(error); ok && errors.Is(err, syscall.ECONNRESET) {
			return
		}
	}
	l.Logger.Printf(format, v...)
}

// backend is the go-smtp Backend: one session per connection.
type backend struct {
	store *Store
	now   func() time.Time
	log   *log.Logger
}

// NewSession implements smtp.Backend.
func (b *backend) NewSession(*smtp.Conn) (smtp.Session, error) {
	return &session{backend: b}, nil
}

// session collects one mail's envelope; Data stores the mail.
type session struct {
	*backend
	from string
	to   []string
}

// Reset implements smtp.Session; go-smtp also calls it after each mail.
func (s *session) Reset() { s.from, s.to = "", nil }

// Logout implements smtp.Session.
func (s *session) Logout() error { return nil }

// Mail implements smtp.Session.
func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.from, s.to = from, nil
	return nil
}

// Rcpt implements smtp.Session: every recipient is accepted.
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

// Data implements smtp.Session. A mail whose MIME structure cannot be read
// is still kept, with the reason, so it can be inspected raw.
func (s *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := parseMessage(raw)
	m.Received = s.now()
	m.Envelope = Envelope{From: s.from, To: s.to}
	s.store.Add(m)
	s.log.Printf("#%d from %s to %s: %q", m.ID, s.from, strings.Join(s.to, ", "), m.Subject)
	return nil
}
