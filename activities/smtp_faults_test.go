package activities_test

import (
	"bufio"
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/activities"
)

// scriptedSMTP is an SMTP server on loopback that misbehaves as a real one
// may: it answers every command after delay, and with dropQuit hangs up at
// QUIT without answering. It counts the mails it accepted (250 to DATA).
func scriptedSMTP(t *testing.T, delay time.Duration, dropQuit bool) (addr string, accepted *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted = &atomic.Int32{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveScripted(c, delay, dropQuit, accepted)
		}
	}()
	return ln.Addr().String(), accepted
}

func serveScripted(c net.Conn, delay time.Duration, dropQuit bool, accepted *atomic.Int32) {
	defer c.Close()
	r := bufio.NewReader(c)
	say := func(s string) {
		time.Sleep(delay) // the misbehaviour under test: a slow server
		_, _ = c.Write([]byte(s + "\r\n"))
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
				accepted.Add(1)
				say("250 accepted")
			}
			continue
		}
		switch cmd := strings.ToUpper(strings.TrimSpace(line)); {
		case strings.HasPrefix(cmd, "EHLO"):
			say("250 scripted")
		case strings.HasPrefix(cmd, "DATA"):
			say("354 go ahead")
			inData = true
		case strings.HasPrefix(cmd, "QUIT"):
			if !dropQuit {
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
	store := newFakeStore()
	store.templates["tpl-1"] = dispatcher.Template{ID: "tpl-1", Subject: "s", Text: "t"}
	a := newActivities(t, activities.Options{Store: store, SMTPURL: "smtp://" + addr + "?starttls=none", MailFrom: "a@example.com"})
	return a, dispatcher.MailInput{Event: testEvent(), TemplateID: "tpl-1",
		Recipients: dispatcher.Recipients{To: []string{"x@example.com"}}, MessageID: "m1@dispatcher"}
}

// A slow server cannot stretch a delivery past its attempt's deadline:
// Temporal would then run the next attempt while this one still sends.
// Before, each step of the session got the whole budget anew (9 s here).
func TestSendMailEndsWithinItsAttempt(t *testing.T) {
	addr, _ := scriptedSMTP(t, 2*time.Second, false)
	a, in := scriptedMail(t, addr)
	// Called directly: the test environment fixes every deadline at 10 min.
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
	defer cancel()
	start := time.Now()
	_, err := a.SendMail(ctx, in)
	if took := time.Since(start); took > 6*time.Second {
		t.Fatalf("SendMail took %v, past the attempt's 6 s deadline (err %v)", took, err)
	}
}

// A server that accepted the mail and then hangs up at QUIT has the mail:
// before, the goodbye's failure failed the attempt and the retry sent the
// mail again.
func TestSendMailAcceptedThenQuitFails(t *testing.T) {
	addr, accepted := scriptedSMTP(t, 0, true)
	a, in := scriptedMail(t, addr)
	for attempt := 1; attempt <= 2; attempt++ {
		var res dispatcher.MailResult
		if err := execute(t, a, a.SendMail, in, &res); err != nil {
			t.Fatalf("attempt %d: %v", attempt, err)
		}
	}
	if n := accepted.Load(); n != 1 {
		t.Fatalf("the server accepted the mail %d times, want once", n)
	}
}
