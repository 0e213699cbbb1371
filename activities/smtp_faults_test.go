package activities_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/activities"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
)

// scriptedSMTP is an SMTP server on loopback that misbehaves as a real one
// may: it answers every command after delay; with dropQuit it hangs up at
// QUIT without answering, with hangUpAfterMail right after accepting a
// mail (as a server closing an idle session does). It counts the
// connections and the mails it accepted (250 to DATA). With stallOnReuse
// a connection that delivered a mail stops answering (a half-dead session
// kept in a pool), and the connections after the first answer after
// laterDelay.
type scriptedSMTP struct {
	delay, laterDelay         time.Duration
	dropQuit, hangUpAfterMail bool
	stallOnReuse              bool
	// dataDelay delays the answer to the end of a mail's data only, as a
	// server that scans the mail before it accepts it does.
	dataDelay time.Duration
	// laterDataDelay is dataDelay for the mails after the first.
	laterDataDelay  time.Duration
	conns, accepted atomic.Int32
}

func (s *scriptedSMTP) start(t *testing.T) (addr string) {
	t.Helper()
	return testenv.AcceptLoopback(t, func(c net.Conn) {
		delay := s.delay
		if s.conns.Add(1) > 1 && s.laterDelay > 0 {
			delay = s.laterDelay
		}
		go s.serve(c, delay)
	})
}

func (s *scriptedSMTP) serve(c net.Conn, delay time.Duration) {
	defer c.Close()
	r := bufio.NewReader(c)
	delivered := false
	say := func(line string) {
		time.Sleep(delay) // the misbehaviour under test: a slow server
		_, _ = c.Write([]byte(line + "\r\n"))
	}
	say("220 scripted ESMTP")
	inData := false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if inData {
			if line == ".\r\n" {
				inData = false
				if s.accepted.Load() > 0 && s.laterDataDelay > 0 {
					time.Sleep(s.laterDataDelay)
				} else {
					time.Sleep(s.dataDelay)
				}
				s.accepted.Add(1)
				delivered = true
				say("250 accepted")
				if s.hangUpAfterMail {
					return
				}
			}
			continue
		}
		switch cmd := strings.ToUpper(strings.TrimSpace(line)); {
		case s.stallOnReuse && delivered:
			_, _ = io.Copy(io.Discard, r) // no answer, until the client hangs up
			return
		case strings.HasPrefix(cmd, "EHLO"):
			say("250 scripted")
		case strings.HasPrefix(cmd, "DATA"):
			say("354 go ahead")
			inData = true
		case strings.HasPrefix(cmd, "QUIT"):
			if !s.dropQuit {
				say("221 bye")
			}
			return
		default:
			say("250 ok")
		}
	}
}

func scriptedMail(t *testing.T, addr string) (*activities.Effects, dispatcher.MailInput) {
	t.Helper()
	a, in, _ := mailWithStore(t, addr)
	return a, in
}

// A slow server cannot stretch a delivery past its attempt's deadline:
// Temporal would then run the next attempt while this one still sends.
// Before, each step of the session got the whole budget anew (9 s here).
func TestSendMailEndsWithinItsAttempt(t *testing.T) {
	a, in := scriptedMail(t, (&scriptedSMTP{delay: 2 * time.Second}).start(t))
	sendWithin6s(t, a, in)
}

// sendWithin6s sends in as an attempt with a 6 s deadline, which it must
// keep, and returns how it ended. Called directly: the test environment
// fixes every deadline at 10 min.
func sendWithin6s(t *testing.T, a *activities.Effects, in dispatcher.MailInput) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
	defer cancel()
	start := time.Now()
	_, err := a.SendMail(ctx, in)
	if took := time.Since(start); took > 6*time.Second {
		t.Fatalf("SendMail took %v, past the attempt's 6 s deadline (err %v)", took, err)
	}
	return err
}

// A server that takes its time to accept a mail's data (a content scan)
// gets it once: the mail's transaction may take what the attempt has left,
// not a third of it. Before, the attempt gave up after a third, and the
// next one sent the mail again while the server was still accepting it
// (20 copies of 5 mails against a server answering in 20 s).
func TestSendMailWaitsForASlowAcceptance(t *testing.T) {
	server := &scriptedSMTP{dataDelay: 3 * time.Second}
	a, in := scriptedMail(t, server.start(t))
	if err := sendWithin6s(t, a, in); err != nil {
		t.Fatalf("SendMail: %v", err)
	}
	if n := server.accepted.Load(); n != 1 {
		t.Errorf("the server accepted %d mails, want 1", n)
	}
}

// The same on a pooled session: once it answers, the mail may take what
// the attempt has left. Before, a pooled session had a third of it for
// the whole mail, so a mail that a server scanned for longer failed the
// attempt, and the next one sent it again.
func TestSendMailWaitsForASlowAcceptanceOnAPooledSession(t *testing.T) {
	server := &scriptedSMTP{laterDataDelay: 3 * time.Second}
	a, in := scriptedMail(t, server.start(t))
	if err := sendWithin6s(t, a, in); err != nil { // fills the pool
		t.Fatal(err)
	}
	in.MessageID = "m2@dispatcher"
	if err := sendWithin6s(t, a, in); err != nil {
		t.Fatalf("SendMail on the pooled session: %v", err)
	}
	if n, c := server.accepted.Load(), server.conns.Load(); n != 2 || c != 1 {
		t.Errorf("the server accepted %d mails on %d connections, want 2 on 1", n, c)
	}
}

// A pooled session that stalls, then a slow new one, still end within the
// attempt's deadline. Before, the new session's steps each got a third of
// the whole budget anew, after the stalled one had used a third: here
// 1.7 s (stalled MAIL FROM) + 1.5 s (greeting) + 1.5 s (EHLO) + 1.7 s (the
// mail) = 6.4 s, past the 6 s deadline.
func TestSendMailPoolThenRedialEndsWithinItsAttempt(t *testing.T) {
	server := &scriptedSMTP{stallOnReuse: true, laterDelay: 1500 * time.Millisecond}
	a, in := scriptedMail(t, server.start(t))
	var res dispatcher.MailResult
	if err := execute(t, a, a.SendMail, in, &res); err != nil { // fills the pool
		t.Fatal(err)
	}
	in.MessageID = "m2@dispatcher"
	if err := sendWithin6s(t, a, in); err == nil {
		t.Fatal("SendMail succeeded on a server too slow for its deadline")
	}
}

// A server that accepted the mail and then hangs up at QUIT has the mail:
// before, the goodbye's failure failed the attempt and the retry sent the
// mail again.
func TestSendMailAcceptedThenQuitFails(t *testing.T) {
	server := &scriptedSMTP{dropQuit: true}
	a, in := scriptedMail(t, server.start(t))
	for attempt := 1; attempt <= 2; attempt++ {
		var res dispatcher.MailResult
		if err := execute(t, a, a.SendMail, in, &res); err != nil {
			t.Fatalf("attempt %d: %v", attempt, err)
		}
	}
	if n := server.accepted.Load(); n != 1 {
		t.Fatalf("the server accepted the mail %d times, want once", n)
	}
}

// Mails share a connection: before, every mail paid a TCP (and TLS, and
// AUTH) handshake and a QUIT. A pooled connection the server dropped while
// it idled costs a new connection, not the mail, and sends nothing twice.
func TestSendMailPoolsConnections(t *testing.T) {
	for _, tt := range []struct {
		name      string
		server    *scriptedSMTP
		wantConns int32
	}{
		{"reused", &scriptedSMTP{}, 1},
		{"dropped by the server while idle", &scriptedSMTP{hangUpAfterMail: true}, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, in := scriptedMail(t, tt.server.start(t))
			for i := range 3 {
				in.MessageID = fmt.Sprintf("m%d@dispatcher", i)
				var res dispatcher.MailResult
				if err := execute(t, a, a.SendMail, in, &res); err != nil {
					t.Fatalf("mail %d: %v", i, err)
				}
			}
			if c, n := tt.server.conns.Load(), tt.server.accepted.Load(); c != tt.wantConns || n != 3 {
				t.Fatalf("%d mails over %d connections, want 3 over %d", n, c, tt.wantConns)
			}
		})
	}
}

// Two attempts of one mail running at once send it once. That happens
// when a worker stalls past its workflow task's timeout: it goes on with
// its first attempt while another worker runs the attempt again. The
// second finds the first's claim and fails retryably, to come back once
// the first's deadline (and the claim's grace) has passed; the attempt
// after that finds the mail sent. Before, both read "not sent", and both
// sent it.
func TestSendMailConcurrentAttemptsSendOnce(t *testing.T) {
	smtp := &scriptedSMTP{delay: 300 * time.Millisecond}
	a, in := scriptedMail(t, smtp.start(t))
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
	defer cancel()
	deadline, _ := ctx.Deadline()
	first := make(chan error, 1)
	go func() {
		_, err := a.SendMail(ctx, in)
		first <- err
	}()
	testenv.Eventually(t, 5*time.Second, func() string {
		if smtp.conns.Load() == 0 {
			return "waiting for the first attempt to reach the server"
		}
		return ""
	})
	_, err := sendWithin6sAt(t, a, in)
	wait := wantFailure(t, err, dispatcher.FailureSMTPTemporary, true).NextRetryDelay()
	if until := time.Now().Add(wait); until.Before(deadline.Add(4 * time.Second)) {
		t.Errorf("the second attempt asks to come back in %v, before the first's deadline and grace", wait)
	}
	if err := <-first; err != nil {
		t.Fatalf("the first attempt: %v", err)
	}
	var res dispatcher.MailResult
	if err := execute(t, a, a.SendMail, in, &res); err != nil {
		t.Fatalf("the attempt after: %v", err)
	}
	if n := smtp.accepted.Load(); n != 1 {
		t.Fatalf("the server accepted %d mails, want 1", n)
	}
}

// An attempt that gave up waiting for the server's answer to the end of
// a mail keeps its claim: the server may still accept the mail, and the
// next attempt waits for the claim to expire instead of sending it
// alongside. Before, the claim was released, and against a server taking
// 55 s to answer, attempts sent the mail 5 times, overlapping.
func TestSendMailUnansweredKeepsItsClaim(t *testing.T) {
	server := &scriptedSMTP{dataDelay: 8 * time.Second}
	a, in := scriptedMail(t, server.start(t))
	deadline := time.Now().Add(6 * time.Second)
	first := wantFailure(t, sendWithin6s(t, a, in), dispatcher.FailureSMTPTemporary, true)
	// Its retry comes once its claim, the attempt's deadline and 5 s of
	// grace, has expired, not to fail on it and spend an attempt on
	// nothing. Before, it came a second sooner here (10 s in production):
	// the claim was read off the SMTP call's deadline.
	if until := time.Now().Add(first.NextRetryDelay()); until.Before(deadline.Add(5*time.Second - 300*time.Millisecond)) {
		t.Errorf("the first attempt asks to come back in %v, %v before its deadline and grace", first.NextRetryDelay(), deadline.Add(5*time.Second).Sub(until))
	}
	_, err := sendWithin6sAt(t, a, in)
	next := wantFailure(t, err, dispatcher.FailureSMTPTemporary, true)
	if !strings.Contains(next.Error(), "another attempt may be sending") {
		t.Errorf("the next attempt: %v, want it to wait for the first one's claim", next)
	}
	// Both say the server may have the mail, so that a replay keeps its
	// Message-ID: before, it sent it again under a new one.
	for name, f := range map[string]*temporal.ApplicationError{"the first attempt": first, "the next attempt": next} {
		var det dispatcher.FailureDetails
		if !f.HasDetails() || f.Details(&det) != nil || !det.Unanswered {
			t.Errorf("%s: details %+v, want Unanswered", name, det)
		}
	}
	testenv.Eventually(t, 10*time.Second, func() string {
		if server.accepted.Load() == 0 {
			return "waiting for the server to accept the first attempt's mail"
		}
		return ""
	})
	if n, c := server.accepted.Load(), server.conns.Load(); n != 1 || c != 1 {
		t.Errorf("the server accepted %d mails on %d connections, want 1 on 1: the next attempt sent it while the first could still be accepted", n, c)
	}
}

// sendWithin6sAt sends in as an attempt with a 6 s deadline.
func sendWithin6sAt(t *testing.T, a *activities.Effects, in dispatcher.MailInput) (dispatcher.MailResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
	defer cancel()
	return a.SendMail(ctx, in)
}

// An attempt that finds the claim of one that died (its worker killed
// after claiming) waits for the claim to expire within its own attempt,
// when that leaves it time to send, and sends the mail: the wait costs no
// attempt. Before, it failed, and with no attempt left the mail was never
// sent.
func TestSendMailWaitsForADeadAttemptsClaim(t *testing.T) {
	smtp, a, in, held := deadAttemptsClaim(t)                             // the dead attempt's
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a regular attempt's
	defer cancel()
	if _, err := a.SendMail(ctx, in); err != nil {
		t.Fatalf("SendMail: %v, want it sent once the dead attempt's claim expired", err)
	}
	if time.Now().Before(held) {
		t.Error("sent before the other attempt's claim expired")
	}
	if n := smtp.accepted.Load(); n != 1 {
		t.Fatalf("the server accepted %d mails, want 1", n)
	}
}

// An attempt that would be left less than a whole send's time once a dead
// attempt's claim expires does not wait for it: it fails, to come back
// then with its whole time. Before, it waited and sent the mail with what
// was left (4 s against a server answering in 10 s), gave up on the
// answer, and the attempt after it sent a third copy while the server
// was still taking the second.
func TestSendMailDoesNotSendWithTheRestOfAnAttempt(t *testing.T) {
	smtp, a, in, _ := deadAttemptsClaim(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := a.SendMail(ctx, in)
	f := wantFailure(t, err, dispatcher.FailureSMTPTemporary, true)
	if wait := f.NextRetryDelay(); wait < 500*time.Millisecond || wait > 2*time.Second {
		t.Errorf("it asks to come back in %v, want about when the claim expires (1 s)", wait)
	}
	if n := smtp.conns.Load(); n != 0 {
		t.Fatalf("the server got %d connections, want none", n)
	}
}

// deadAttemptsClaim is a mail whose claim a dead attempt holds for one
// more second, the activities to send it with, and their SMTP server.
func deadAttemptsClaim(t *testing.T) (*scriptedSMTP, *activities.Effects, dispatcher.MailInput, time.Time) {
	t.Helper()
	smtp := &scriptedSMTP{}
	store := newFakeStore()
	store.templates["tpl-1"] = dispatcher.Template{ID: "tpl-1", Subject: "s", Text: "t"}
	a := newActivities(t, activities.Options{Store: store, SMTPURL: "smtp://" + smtp.start(t) + "?starttls=none", MailFrom: "a@example.com"})
	in := dispatcher.MailInput{Event: testEvent(), TemplateID: "tpl-1", Recipients: dispatcher.Recipients{To: []string{"x@example.com"}}, MessageID: "m1@dispatcher"}
	held := time.Now().Add(time.Second)
	store.claims[in.MessageID] = held
	return smtp, a, in, held
}
