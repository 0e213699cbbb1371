package activities_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/activities"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
)

// parseMail returns the headers of raw and its decoded text parts by
// media type.
func parseMail(t *testing.T, raw []byte) (mail.Header, map[string]string) {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("reading the mail: %v", err)
	}
	parts := map[string]string{}
	var walk func(header map[string][]string, body io.Reader)
	walk = func(header map[string][]string, body io.Reader) {
		h := mail.Header(header)
		mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
		if err != nil {
			t.Fatalf("content type %q: %v", h.Get("Content-Type"), err)
		}
		if strings.HasPrefix(mt, "multipart/") {
			mr := multipart.NewReader(body, params["boundary"])
			for {
				p, err := mr.NextRawPart()
				if err == io.EOF {
					return
				}
				if err != nil {
					t.Fatalf("multipart: %v", err)
				}
				walk(p.Header, p)
			}
		}
		if strings.EqualFold(h.Get("Content-Transfer-Encoding"), "quoted-printable") {
			body = quotedprintable.NewReader(body)
		}
		b, err := io.ReadAll(body)
		if err != nil {
			t.Fatalf("reading part %s: %v", mt, err)
		}
		parts[mt] = string(b)
	}
	walk(m.Header, m.Body)
	return m.Header, parts
}

func TestSendMail(t *testing.T) {
	sink := testenv.SMTP(t)
	store := newFakeStore()
	store.templates["tpl-1"] = dispatcher.Template{
		ID:      "tpl-1",
		Subject: "Goodbye {{ .event.content.name }}",
		Text:    "Your account {{ .content.userId }} is gone.",
		HTML:    "<p>Bye {{ .content.name }} {{ \"&\" }} co</p>",
	}
	store.templates["tpl-bad"] = dispatcher.Template{ID: "tpl-bad", Subject: "{{ .content.nope }}"}
	a := newActivities(t, activities.Options{
		Store: store, SMTPURL: "smtp://" + sink.Addr, MailFrom: "Dispatcher <no-reply@example.com>",
	})
	in := dispatcher.MailInput{
		Event:      testEvent(),
		TemplateID: "tpl-1",
		Recipients: dispatcher.Recipients{
			To:  []string{"{{ .event.content.email }}"},
			CC:  []string{"cc@example.com"},
			BCC: []string{"audit@example.com"},
		},
		MessageID: "dispatch-ev-1.d1.a1@dispatcher",
	}

	var res dispatcher.MailResult
	if err := execute(t, a, a.SendMail, in, &res); err != nil {
		t.Fatalf("SendMail: %v", err)
	}
	if res.MessageID != in.MessageID {
		t.Errorf("result MessageID = %q, want %q", res.MessageID, in.MessageID)
	}
	mails := sink.Mails()
	if len(mails) != 1 {
		t.Fatalf("the sink received %d mails, want 1", len(mails))
	}
	got := mails[0]
	if got.From != "no-reply@example.com" {
		t.Errorf("MAIL FROM = %q", got.From)
	}
	if strings.Join(got.To, ",") != "ann@example.com,cc@example.com,audit@example.com" {
		t.Errorf("RCPT TO = %v", got.To)
	}
	h, parts := parseMail(t, got.Data)
	for name, want := range map[string]string{
		"Subject":             "Goodbye Ann",
		"Message-ID":          "<" + in.MessageID + ">",
		"To":                  "<ann@example.com>",
		"Cc":                  "<cc@example.com>",
		"X-Dispatcher-Event":  "ev-1",
		"Bcc":                 "",
		"X-Dispatcher-Replay": "",
	} {
		if h.Get(name) != want {
			t.Errorf("header %s = %q, want %q", name, h.Get(name), want)
		}
	}
	if parts["text/plain"] != "Your account 42 is gone." {
		t.Errorf("text part = %q", parts["text/plain"])
	}
	if parts["text/html"] != "<p>Bye Ann &amp; co</p>" {
		t.Errorf("html part = %q", parts["text/html"])
	}

	t.Run("a retry after the mail was sent sends nothing", func(t *testing.T) {
		// A worker that died after the SMTP server's 250 but before
		// Temporal recorded the result retries the same input.
		before := len(sink.Mails())
		var again dispatcher.MailResult
		if err := execute(t, a, a.SendMail, in, &again); err != nil {
			t.Fatalf("SendMail again: %v", err)
		}
		if n := len(sink.Mails()); n != before {
			t.Fatalf("the retry sent the mail again: %d mails, want %d", n, before)
		}
		if again.MessageID != res.MessageID {
			t.Errorf("the retry reports Message-ID %q, want %q", again.MessageID, res.MessageID)
		}
	})

	t.Run("a subject with a word longer than a header line", func(t *testing.T) {
		// Before, go-mail wrote it on one line of 2,000 bytes, which
		// servers refuse (RFC 5322 allows 998).
		long := "Report " + strings.Repeat("a_b=c?d", 300) + " is ready"
		store.templates["tpl-long"] = dispatcher.Template{ID: "tpl-long", Subject: long, Text: "x"}
		in := in
		in.TemplateID, in.MessageID = "tpl-long", "long."+in.MessageID
		if err := execute(t, a, a.SendMail, in, &res); err != nil {
			t.Fatalf("SendMail: %v", err)
		}
		mails := sink.Mails()
		raw := mails[len(mails)-1].Data
		for line := range strings.SplitSeq(string(raw), "\r\n") {
			if len(line) > 998 {
				t.Fatalf("a line of %d bytes: %.60q…", len(line), line)
			}
			for w := range strings.FieldsSeq(line) {
				if strings.HasPrefix(w, "=?") && len(w) > 75 {
					t.Fatalf("an encoded word of %d characters (RFC 2047 allows 75): %s", len(w), w)
				}
			}
		}
		h, _ := parseMail(t, raw)
		got, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
		if err != nil || got != long {
			t.Errorf("the subject reads %q (%v), want %q", got, err, long)
		}
	})

	// Text of the event that looks like an encoded word reads as written,
	// as the preview shows it. Before, readers decoded it: "Hi encoded".
	t.Run("a subject with what looks like an encoded word", func(t *testing.T) {
		subject := "=?UTF-8?B?SGk=?= =?UTF-8?q?x?= encoded"
		store.templates["tpl-word"] = dispatcher.Template{ID: "tpl-word", Subject: subject, Text: "x"}
		in := in
		in.TemplateID, in.MessageID = "tpl-word", "word."+in.MessageID
		if err := execute(t, a, a.SendMail, in, &res); err != nil {
			t.Fatalf("SendMail: %v", err)
		}
		mails := sink.Mails()
		h, _ := parseMail(t, mails[len(mails)-1].Data)
		got, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
		if err != nil || got != subject {
			t.Errorf("the subject reads %q (%v), want %q", got, err, subject)
		}
	})

	// Before, in UTF-8, which a server without SMTPUTF8 refuses.
	t.Run("a domain in UTF-8 goes in ASCII", func(t *testing.T) {
		in := in
		in.MessageID = "idn." + in.MessageID
		in.Recipients = dispatcher.Recipients{To: []string{"Jörg <user@bücher.de>"}}
		if err := execute(t, a, a.SendMail, in, &res); err != nil {
			t.Fatalf("SendMail: %v", err)
		}
		mails := sink.Mails()
		if got := mails[len(mails)-1].To; len(got) != 1 || got[0] != "user@xn--bcher-kva.de" {
			t.Errorf("sent to %q, want user@xn--bcher-kva.de", got)
		}
	})

	t.Run("replay marker", func(t *testing.T) {
		in := in
		in.Run = "r1"
		in.MessageID = "replay-r1." + in.MessageID
		if err := execute(t, a, a.SendMail, in, &res); err != nil {
			t.Fatalf("SendMail: %v", err)
		}
		mails := sink.Mails()
		h, _ := parseMail(t, mails[len(mails)-1].Data)
		if h.Get("X-Dispatcher-Replay") != "r1" {
			t.Errorf("X-Dispatcher-Replay = %q", h.Get("X-Dispatcher-Replay"))
		}
	})
}

// TestSendMailRefusedForGoodWhateverTheOrder: a mail with one recipient
// refused for good (550) and another refused for now (450) fails for
// good, in either order: it never goes. Before, go-mail's code of the last
// refused decided, and [gone, grey] was retried as temporary (a probe).
func TestSendMailRefusedForGoodWhateverTheOrder(t *testing.T) {
	store := newFakeStore()
	store.templates["tpl-1"] = dispatcher.Template{ID: "tpl-1", Subject: "Hi", Text: "x"}
	for _, cc := range [][]string{{"grey@example.com", "gone@example.com"}, {"gone@example.com", "grey@example.com"}} {
		sink := testenv.SMTP(t)
		sink.RejectRecipient("grey@example.com", 450, "4.2.0 greylisted, try again later")
		sink.RejectRecipient("gone@example.com", 550, "5.1.1 no such user")
		a := newActivities(t, activities.Options{Store: store, SMTPURL: "smtp://" + sink.Addr, MailFrom: "no-reply@example.com"})
		in := dispatcher.MailInput{Event: testEvent(), TemplateID: "tpl-1", MessageID: "m@dispatcher",
			Recipients: dispatcher.Recipients{To: []string{"ann@example.com"}, CC: cc}}
		var res dispatcher.MailResult
		wantFailure(t, execute(t, a, a.SendMail, in, &res), dispatcher.FailureSMTPPermanent, false)
	}
}

func TestSendMailFailures(t *testing.T) {
	store := newFakeStore()
	store.templates["tpl-1"] = dispatcher.Template{ID: "tpl-1", Subject: "Hi {{ .content.name }}", Text: "x"}
	store.templates["tpl-bad"] = dispatcher.Template{ID: "tpl-bad", Name: "goodbye", Subject: "Hi {{ .content.nope }}"}
	ok := dispatcher.MailInput{
		Event: testEvent(), TemplateID: "tpl-1",
		Recipients: dispatcher.Recipients{To: []string{"ann@example.com"}}, MessageID: "m@dispatcher",
	}
	with := func(f func(*dispatcher.MailInput)) dispatcher.MailInput {
		in := ok
		f(&in)
		return in
	}

	tests := []struct {
		name       string
		reject     *smtpError
		rejectRcpt string // the address reject answers RCPT for; "" for DATA
		smtpURL    string // "" means the sink
		in         dispatcher.MailInput
		wantType   string
		retryable  bool
		wantMsg    string
	}{
		{name: "missing template", in: with(func(in *dispatcher.MailInput) { in.TemplateID = "nope" }),
			wantType: dispatcher.FailureNotFound, wantMsg: `template "nope" does not exist`},
		{name: "render error", in: with(func(in *dispatcher.MailInput) { in.TemplateID = "tpl-bad" }),
			wantType: dispatcher.FailureTemplate, wantMsg: `template "goodbye" (tpl-bad): subject: line 1: at <.content.nope>: map has no entry for key "nope"`},
		{name: "invalid recipient", in: with(func(in *dispatcher.MailInput) { in.Recipients.To = []string{"{{ .event.type }}"} }),
			wantType: dispatcher.FailureRecipient, wantMsg: `recipients.to[0]: resolves to a string that is not an email address`},
		{name: "550 is permanent", reject: &smtpError{550, "mailbox unavailable"}, in: ok,
			wantType: dispatcher.FailureSMTPPermanent, wantMsg: "mailbox unavailable"},
		{name: "a reply quoting the recipient does not show it", reject: &smtpError{550, "5.1.1 <ann@example.com>: Recipient address rejected"}, in: ok,
			wantType: dispatcher.FailureSMTPPermanent, wantMsg: "<(recipients.to[0])>: Recipient address rejected\", affected message ID: <m@dispatcher>"},
		{name: "a recipient without a dot in its domain is not shown either", reject: &smtpError{550, "5.1.1 <Jane.Doe@hr-intranet>: unknown; user jane.doe unknown"},
			in:       with(func(in *dispatcher.MailInput) { in.Recipients.To = []string{"jane.doe@hr-intranet"} }),
			wantType: dispatcher.FailureSMTPPermanent, wantMsg: "<(recipients.to[0])>: unknown; user (recipients.to[0]) unknown"},
		{name: "nor a quoted local part", reject: &smtpError{550, `5.1.1 <"ann smith"@example.com> unknown; ann smith unknown`},
			in:       with(func(in *dispatcher.MailInput) { in.Recipients.To = []string{`"ann smith"@example.com`} }),
			wantType: dispatcher.FailureSMTPPermanent, wantMsg: `(recipients.to[0])\"@example.com> unknown; (recipients.to[0]) unknown`},
		{name: "nor a short local part quoted alone, as a word only", reject: &smtpError{550, "5.1.1 user ANN unknown: cannot deliver, annual quota"},
			in:       ok,
			wantType: dispatcher.FailureSMTPPermanent, wantMsg: "user (recipients.to[0]) unknown: cannot deliver, annual quota"},
		// Nor what it quotes of the mail, which holds the event's
		// content: those without VIEW_EVENT_CONTENT read the message.
		{name: "nor the mail a reply quotes", reject: &smtpError{554, "5.7.1 rejected as spam: Subject: Hi Ann Diagnosed | x"},
			in: with(func(in *dispatcher.MailInput) {
				in.Event.Content = json.RawMessage(`{"name":"Ann Diagnosed","email":"ann@example.com"}`)
			}),
			wantType: dispatcher.FailureSMTPPermanent, wantMsg: "rejected as spam: Subject: (the mail's text) | x"},
		{name: "nor an event's value it quotes alone", reject: &smtpError{554, "5.7.1 contains HIVpositive"},
			in: with(func(in *dispatcher.MailInput) {
				in.Event.Content = json.RawMessage(`{"name":"Ann","tags":["HIVpositive"]}`)
			}),
			wantType: dispatcher.FailureSMTPPermanent, wantMsg: "5.7.1 contains (the mail's text)"},
		// Addresses are hidden before the mail's text: a value inside an
		// address (its domain) does not leave the rest of it shown.
		{name: "nor an address a quoted value is part of", reject: &smtpError{554, "5.7.1 sender bob.jones@corp.example refused for corp.example"},
			in: with(func(in *dispatcher.MailInput) {
				in.Event.Content = json.RawMessage(`{"name":"Ann","domain":"corp.example"}`)
			}),
			wantType: dispatcher.FailureSMTPPermanent, wantMsg: "sender (address) refused for (the mail's text)"},
		// One recipient refused at RCPT fails the whole mail, which goes
		// to none: the failure names which, by its place. Before, every
		// address was "(address)", and which list held it was unknown.
		{name: "a refused recipient is named by its place", rejectRcpt: "archive@example.com", reject: &smtpError{550, "5.1.1 no such user"},
			in: with(func(in *dispatcher.MailInput) {
				in.Recipients.CC = []string{"bob@example.com"}
				in.Recipients.BCC = []string{"carol@example.com", "archive@example.com"}
			}),
			wantType: dispatcher.FailureSMTPPermanent, wantMsg: "affected recipient(s): <(recipients.bcc[1])>"},
		// Too many recipients: another try of the same mail never gets
		// through. Before, retried until its attempts ran out (a probe).
		{name: "a server's recipient limit is permanent", rejectRcpt: "carol@example.com", reject: &smtpError{452, "4.5.3 Maximum limit of 2 recipients reached"},
			in: with(func(in *dispatcher.MailInput) {
				in.Recipients.CC = []string{"bob@example.com", "carol@example.com"}
			}),
			wantType: dispatcher.FailureSMTPPermanent, wantMsg: "takes fewer recipients in one mail than this one's 3"},
		{name: "451 is temporary", reject: &smtpError{451, "try again later"}, in: ok,
			wantType: dispatcher.FailureSMTPTemporary, retryable: true, wantMsg: "try again later"},
		{name: "unreachable server is temporary", smtpURL: "smtp://127.0.0.1:1", in: ok,
			wantType: dispatcher.FailureSMTPTemporary, retryable: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := testenv.SMTP(t)
			switch {
			case tt.rejectRcpt != "":
				sink.RejectRecipient(tt.rejectRcpt, tt.reject.code, tt.reject.msg)
			case tt.reject != nil:
				sink.Reject(tt.reject.code, tt.reject.msg)
			}
			url := tt.smtpURL
			if url == "" {
				url = "smtp://" + sink.Addr
			}
			a := newActivities(t, activities.Options{Store: store, SMTPURL: url, MailFrom: "no-reply@example.com"})
			var res dispatcher.MailResult
			appErr := wantFailure(t, execute(t, a, a.SendMail, tt.in, &res), tt.wantType, tt.retryable)
			if !strings.Contains(appErr.Error(), tt.wantMsg) {
				t.Errorf("error = %q, want it to contain %q", appErr.Error(), tt.wantMsg)
			}
			// Shown to whoever may read executions, who may not read
			// events: no recipient.
			if msg := strings.ToLower(appErr.Error()); strings.Contains(msg, "archive@") || strings.Contains(msg, "ann@example.com") || strings.Contains(msg, "jane.doe") || strings.Contains(msg, "ann smith") || strings.Contains(msg, " ann ") {
				t.Errorf("error = %q shows the recipient", appErr.Error())
			}
			if msg := appErr.Error(); strings.Contains(msg, "Diagnosed") || strings.Contains(msg, "HIVpositive") {
				t.Errorf("error = %q shows the event's content", msg)
			}
			if n := len(sink.Mails()); n != 0 {
				t.Errorf("the sink received %d mails, want 0", n)
			}
		})
	}
}

type smtpError struct {
	code int
	msg  string
}

func TestSendMailAuth(t *testing.T) {
	sink := testenv.SMTP(t)
	sink.RequireAuth("dispatcher", "s3cret")
	store := newFakeStore()
	store.templates["tpl-1"] = dispatcher.Template{ID: "tpl-1", Subject: "s", Text: "t"}
	in := dispatcher.MailInput{Event: testEvent(), TemplateID: "tpl-1",
		Recipients: dispatcher.Recipients{To: []string{"ann@example.com"}}, MessageID: "m@dispatcher"}

	a := newActivities(t, activities.Options{Store: store, MailFrom: "no-reply@example.com",
		SMTPURL: "smtp://dispatcher:s3cret@" + sink.Addr + "?starttls=none&auth=plain"})
	var res dispatcher.MailResult
	if err := execute(t, a, a.SendMail, in, &res); err != nil {
		t.Fatalf("SendMail with the right password: %v", err)
	}
	if len(sink.Mails()) != 1 {
		t.Fatalf("the sink received %d mails, want 1", len(sink.Mails()))
	}

	a = newActivities(t, activities.Options{Store: store, MailFrom: "no-reply@example.com",
		SMTPURL: "smtp://dispatcher:wrong@" + sink.Addr + "?starttls=none&auth=plain"})
	in.MessageID = "other@dispatcher"
	wantFailure(t, execute(t, a, a.SendMail, in, &res), dispatcher.FailureSMTPPermanent, false)
}

func TestNewRejectsBadSMTPConfig(t *testing.T) {
	for _, tt := range []struct{ url, from string }{
		{"http://localhost:25", "a@example.com"},
		{"smtp://", "a@example.com"},
		{"smtp://localhost:99999", "a@example.com"},
		{"smtp://localhost?starttls=maybe", "a@example.com"},
		{"smtp://localhost?auth=magic", "a@example.com"},
		{"smtp://localhost", "not an address"},
	} {
		if _, err := activities.New(activities.Options{Store: newFakeStore(), SMTPURL: tt.url, MailFrom: tt.from}); err == nil {
			t.Errorf("New(SMTPURL %q, MailFrom %q): no error", tt.url, tt.from)
		}
	}
}

// stalledRecord is a store whose record of a sent mail hangs, as a
// database that stopped answering does, until its caller gives up.
type stalledRecord struct{ *fakeStore }

func (s stalledRecord) RecordMailSent(ctx context.Context, _ string, _ time.Time) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Minute):
		return errors.New("stalled a minute")
	}
}

// A mail sent while the database stalls is reported sent before the
// attempt's deadline, its record given up. Before, the record waited for
// the deadline, Temporal took the attempt for failed, and the next attempt
// sent the mail again.
func TestSendMailRecordStalls(t *testing.T) {
	sink := testenv.SMTP(t)
	store := newFakeStore()
	store.templates["tpl-1"] = dispatcher.Template{ID: "tpl-1", Subject: "s", Text: "t"}
	a := newActivities(t, activities.Options{Store: stalledRecord{store}, SMTPURL: "smtp://" + sink.Addr, MailFrom: "no-reply@example.com"})
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	begin := time.Now()
	_, err := env.ExecuteActivity(a.SendMail, dispatcher.MailInput{Event: testEvent(), TemplateID: "tpl-1",
		Recipients: dispatcher.Recipients{To: []string{"ann@example.com"}}, MessageID: "stall.d1.a1@dispatcher"})
	if err != nil {
		t.Fatalf("SendMail: %v", err)
	}
	if took := time.Since(begin); took > 10*time.Second {
		t.Errorf("SendMail took %v: it waited for the stalled record", took)
	}
	if n := len(sink.Mails()); n != 1 {
		t.Errorf("%d mails sent, want 1", n)
	}
}

// ctxRecord is a store whose record of a sent mail fails on a context
// that has ended, as a database driver's does.
type ctxRecord struct{ *fakeStore }

func (s ctxRecord) RecordMailSent(ctx context.Context, id string, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.fakeStore.RecordMailSent(ctx, id, at)
}

// An attempt that Temporal gives up on while the SMTP server takes its
// time (its heartbeats lost: the SDK cancels its context), whose mail the
// server accepts all the same, records the mail as sent: the next attempt
// waits for its claim to expire, then finds the mail sent. Before, the
// record went with the canceled context, and the next attempt sent the
// mail again.
func TestSendMailRecordedWhenGivenUp(t *testing.T) {
	smtp := &scriptedSMTP{dataDelay: 2 * time.Second}
	addr := smtp.start(t)
	store := newFakeStore()
	store.templates["tpl-1"] = dispatcher.Template{ID: "tpl-1", Subject: "s", Text: "t"}
	a := newActivities(t, activities.Options{Store: ctxRecord{store}, SMTPURL: "smtp://" + addr + "?starttls=none", MailFrom: "a@example.com"})
	giveUp, stop := context.WithCancel(context.Background())
	defer stop()
	time.AfterFunc(time.Second, stop) // mid-DATA
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.SetWorkerOptions(worker.Options{BackgroundActivityContext: giveUp})
	env.RegisterActivity(a)
	_, _ = env.ExecuteActivity(a.SendMail, dispatcher.MailInput{Event: testEvent(), TemplateID: "tpl-1",
		Recipients: dispatcher.Recipients{To: []string{"x@example.com"}}, MessageID: "m1@dispatcher"})
	if smtp.accepted.Load() != 1 {
		t.Fatalf("the SMTP server accepted %d mails, want 1", smtp.accepted.Load())
	}
	later := time.Now().Add(time.Hour) // the claim has long expired
	if claim, _ := store.ClaimMail(context.Background(), "m1@dispatcher", "next", later, later.Add(time.Minute)); !claim.Sent {
		t.Errorf("the next attempt finds %+v: not sent, so it sends the mail again", claim)
	}
}
