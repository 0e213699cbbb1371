package testenv

import (
	"io"
	"net"
	"sync"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// SMTPSink is a real SMTP server on loopback that records the mails it
// receives. Reject, when set, is the answer to DATA (RejectRecipient to
// RCPT); User and Pass, when
// set, make AUTH PLAIN required.
type SMTPSink struct {
	Addr string

	mu       sync.Mutex
	received []Mail
	reject   *smtp.SMTPError
	rcpt     map[string]*smtp.SMTPError // answers to RCPT, by address
	user     string
	pass     string
}

// Mail is one received mail.
type Mail struct {
	From string
	To   []string
	Data []byte
}

// SMTP starts an SMTP sink for the test; it stops with the test.
func SMTP(t testing.TB) *SMTPSink {
	t.Helper()
	sink := &SMTPSink{}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &smtpSession{sink: sink}, nil
	}))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true // loopback only
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sink.Addr = l.Addr().String()
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return sink
}

// Mails returns the mails received so far.
func (s *SMTPSink) Mails() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.received...)
}

// Reject makes the sink answer DATA with code and message (nil code 0
// accepts again).
func (s *SMTPSink) Reject(code int, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reject = nil
	if code != 0 {
		s.reject = &smtp.SMTPError{Code: code, Message: message}
	}
}

// RejectRecipient makes the sink answer RCPT for addr with code and
// message.
func (s *SMTPSink) RejectRecipient(addr string, code int, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rcpt == nil {
		s.rcpt = map[string]*smtp.SMTPError{}
	}
	s.rcpt[addr] = &smtp.SMTPError{Code: code, Message: message}
}

// RequireAuth makes AUTH PLAIN with user and pass required.
func (s *SMTPSink) RequireAuth(user, pass string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.user, s.pass = user, pass
}

type smtpSession struct {
	sink   *SMTPSink
	authed bool
	cur    Mail
}

func (s *smtpSession) AuthMechanisms() []string {
	s.sink.mu.Lock()
	defer s.sink.mu.Unlock()
	if s.sink.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *smtpSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		s.sink.mu.Lock()
		defer s.sink.mu.Unlock()
		if user != s.sink.user || pass != s.sink.pass {
			return &smtp.SMTPError{Code: 535, Message: "bad credentials"}
		}
		s.authed = true
		return nil
	}), nil
}

func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	s.sink.mu.Lock()
	required := s.sink.user != ""
	s.sink.mu.Unlock()
	if required && !s.authed {
		return smtp.ErrAuthRequired
	}
	s.cur = Mail{From: from}
	return nil
}

func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.sink.mu.Lock()
	defer s.sink.mu.Unlock()
	if err := s.sink.rcpt[to]; err != nil {
		return err
	}
	s.cur.To = append(s.cur.To, to)
	return nil
}

func (s *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.sink.mu.Lock()
	defer s.sink.mu.Unlock()
	if s.sink.reject != nil {
		return s.sink.reject
	}
	s.cur.Data = b
	s.sink.received = append(s.sink.received, s.cur)
	return nil
}

func (s *smtpSession) Reset()        { s.cur = Mail{} }
func (s *smtpSession) Logout() error { return nil }
