package main

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log"
	"net"
	"net/mail"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
)

// mailSlowDelay is how long a slowed first delivery waits before its
// answer: longer than the engine's 5 s first-attempt budget, so the
// dispatcher gives up on an attempt the server goes on to accept.
const mailSlowDelay = 6 * time.Second

// mailFault is what the SMTP sink does to a Message-ID's first delivery.
type mailFault int

const (
	faultNone mailFault = iota
	faultSlow           // answer DATA only after mailSlowDelay
	faultDrop           // read the body, then drop the connection without an answer
)

// smtpSink is a real SMTP server on loopback that records every mail by
// its Message-ID. On a Message-ID's first delivery it strikes, chosen by
// the seed and the event: about 10 % are answered only after mailSlowDelay, about 10 %
// have their connection dropped after the body without a 250 (RFC 5321:
// without the 250 the server took no responsibility, so the sender must
// try again). A Message-ID accepted before is a redelivery, not a second
// mail: receivers deduplicate by Message-ID.
type smtpSink struct {
	addr    string
	ledger  *ledger
	seed    int64
	delay   time.Duration // of a slowed delivery
	srv     *smtp.Server
	closing chan struct{}
}

// startSMTPSink starts the sink on a free loopback port; delay is how
// long a slowed delivery waits (mailSlowDelay).
func startSMTPSink(l *ledger, seed int64, delay time.Duration) (*smtpSink, error) {
	s := &smtpSink{ledger: l, seed: seed, delay: delay, closing: make(chan struct{})}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &smtpSession{sink: s, conn: c}, nil
	}))
	s.srv.Domain = "localhost"
	s.srv.ReadTimeout = time.Minute
	s.srv.WriteTimeout = time.Minute
	s.srv.ErrorLog = log.New(io.Discard, "", 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.addr = ln.Addr().String()
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *smtpSink) close() {
	close(s.closing)
	_ = s.srv.Close()
}

// fault is the seeded choice for the mail of an event. It hangs on the
// event id, not on the Message-ID, which holds the ids of the
// dispatcher and action that each run creates anew: so the same seed
// strikes the same events in every run.
func (s *smtpSink) fault(event string) mailFault {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d/%s", s.seed, event)
	switch h.Sum64() % 10 {
	case 0:
		return faultSlow
	case 1:
		return faultDrop
	}
	return faultNone
}

type smtpSession struct {
	sink *smtpSink
	conn *smtp.Conn
}

func (s *smtpSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *smtpSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *smtpSession) Reset()                               {}
func (s *smtpSession) Logout() error                        { return nil }

// errDropped ends a session whose connection the sink dropped: no answer
// reaches the client, whatever go-smtp tries to write.
var errDropped = errors.New("connection dropped by the chaos sink")

func (s *smtpSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	var messageID, event string
	if m, err := mail.ReadMessage(bytes.NewReader(raw)); err == nil {
		messageID = strings.Trim(strings.TrimSpace(m.Header.Get("Message-ID")), "<>")
		event = strings.TrimSpace(m.Header.Get("X-Dispatcher-Event"))
	}
	if messageID == "" || event == "" {
		s.sink.ledger.malformedDelivery(fmt.Sprintf("mail with Message-ID %q and X-Dispatcher-Event %q", messageID, event))
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Message-ID and X-Dispatcher-Event are required"}
	}
	first := s.sink.ledger.mailArrive(messageID, event)
	slowed := false
	if first {
		switch s.sink.fault(event) {
		case faultDrop:
			// The whole body is in; no answer will follow.
			s.sink.ledger.mailDropped(messageID)
			_ = s.conn.Conn().Close()
			return errDropped
		case faultSlow:
			slowed = true
			select {
			case <-time.After(s.sink.delay):
			case <-s.sink.closing:
				s.sink.ledger.mailDropped(messageID)
				return errDropped
			}
		}
	}
	// Accepted from here on, as an MTA that has queued the mail before
	// it writes 250, whether or not the client still reads it.
	s.sink.ledger.mailAccepted(messageID, slowed)
	return nil
}
