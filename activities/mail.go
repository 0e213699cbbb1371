package activities

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"net/textproto"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	gomail "github.com/wneessen/go-mail"
	"go.temporal.io/sdk/activity"
	"golang.org/x/net/idna"

	"github.com/dispatcherhq/dispatcher"
)

// mailTimeout bounds one SMTP delivery when the attempt's deadline allows
// more.
const mailTimeout = 50 * time.Second

// Headers the dispatcher adds to every mail, so a receiver can trace it.
const (
	HeaderEvent  = "X-Dispatcher-Event"
	HeaderReplay = "X-Dispatcher-Replay"
)

// SendMail renders the action's template with the event and sends it,
// once: a mail whose Message-ID the store recorded as sent is not sent
// again (a retry after the worker died between the server's 250 and
// Temporal recording this activity's result). Missing template, render
// errors and bad recipients fail as non-retryable
// (dispatcher.FailureNotFound, FailureTemplate, FailureRecipient); an SMTP
// 5xx as non-retryable FailureSMTPPermanent; an SMTP 4xx, a connection
// error or a store that does not answer as retryable FailureSMTPTemporary
// or FailureStore.
//
// An attempt claims the mail until its deadline before it sends it, so
// that two attempts running at once (a worker stalled past its workflow
// task's timeout goes on while another runs the attempt again) never both
// send it: the second waits for the first's claim to expire, within its
// own attempt when that leaves it time to send (so the wait costs no
// attempt), and then finds the mail sent, or sends it if the first died.
func (a *Effects) SendMail(ctx context.Context, in dispatcher.MailInput) (dispatcher.MailResult, error) {
	ctx = Acting(ctx)
	defer Heartbeat(ctx)() // from the start: a slow store must not pass for a dead worker
	if err := a.superseded(ctx, mailKeep(ctx), in.Reset, in.Run); err != nil {
		return dispatcher.MailResult{}, err
	}
	owner := claimOwner()
	for {
		var claim dispatcher.MailClaim
		var now time.Time
		err := untilStoreAnswers(ctx, mailKeep(ctx), func() (err error) {
			now = time.Now() // the wall clock, as the deadline's: claims compare them
			claim, err = a.store.ClaimMail(ctx, in.MessageID, owner, now, claimUntil(ctx, now))
			return err
		})
		switch {
		case err != nil:
			return dispatcher.MailResult{}, temporary(ctx, dispatcher.FailureStore, fmt.Sprintf("claiming mail %s: %s", in.MessageID, storeTrouble(ctx, err)))
		case claim.Sent:
			activity.GetLogger(ctx).Info("Mail already sent; not sending it again", "MessageID", in.MessageID)
			return dispatcher.MailResult{MessageID: in.MessageID, Attempt: attempt(ctx)}, nil
		case claim.HeldUntil.IsZero():
			return a.sendClaimed(ctx, in, owner)
		}
		deadline, ok := ctx.Deadline()
		if !ok || claim.HeldUntil.Add(sendAfterWait).After(deadline) {
			wait := max(claim.HeldUntil.Sub(now), time.Second)
			return dispatcher.MailResult{}, held(ctx, fmt.Sprintf(
				"another attempt may be sending mail %s now (one that got no answer to its end, or whose worker stalled); an attempt after this one, if any, comes once its claim expires, in %s",
				in.MessageID, wait.Round(time.Second)), wait)
		}
		select {
		case <-ctx.Done():
			return dispatcher.MailResult{}, temporary(ctx, dispatcher.FailureTimeout, fmt.Sprintf("waiting for another attempt of mail %s: %v", in.MessageID, ctx.Err()))
		case <-time.After(time.Until(claim.HeldUntil)):
		}
	}
}

// minSendTime is the least time a mail's attempt keeps to send the mail
// when it waits for the store (mailKeep).
const minSendTime = 5 * time.Second

// sendAfterWait is the time an attempt that waited for another's claim
// must have left, to send the mail with the budget of any send; with less
// it fails, to come back once the claim has expired, with its whole time.
// Before, 5 s was enough: after a worker died mid-send, the attempt that
// waited for its claim sent the mail with 4 s to wait for the server's
// answer, gave up on a server answering in 10 s, and the attempt after it
// sent a third copy while the server was still taking the second.
const sendAfterWait = mailTimeout + callMargin

// sendClaimed sends the mail that owner claimed, and records it as sent;
// the claim of a mail not sent is released.
func (a *Effects) sendClaimed(ctx context.Context, in dispatcher.MailInput, owner string) (dispatcher.MailResult, error) {
	sent := false
	defer func() {
		if !sent {
			a.releaseMail(ctx, in.MessageID, owner)
		}
	}()
	var t dispatcher.Template
	err := untilStoreAnswers(ctx, mailKeep(ctx), func() (err error) {
		t, err = a.cache.template(ctx, in.TemplateID, in.ConfigVersion)
		return err
	})
	switch {
	case dispatcher.ErrorCode(err) == dispatcher.ENOTFOUND:
		return dispatcher.MailResult{}, permanent(ctx, dispatcher.FailureNotFound, fmt.Sprintf("template %q does not exist", in.TemplateID))
	case err != nil:
		return dispatcher.MailResult{}, temporary(ctx, dispatcher.FailureStore, fmt.Sprintf("loading template %q: %s", in.TemplateID, storeTrouble(ctx, err)))
	}
	rendered, err := dispatcher.RenderMail(t, in.Event)
	if err != nil {
		return dispatcher.MailResult{}, permanent(ctx, dispatcher.FailureTemplate, fmt.Sprintf("template %q (%s): %s", t.Name, in.TemplateID, dispatcher.ErrorMessage(err)))
	}
	rcpts, err := dispatcher.ResolveRecipients(in.Recipients, in.Event)
	if err != nil {
		return dispatcher.MailResult{}, permanent(ctx, dispatcher.FailureRecipient, dispatcher.ErrorMessage(err))
	}
	rcpts = asciiDomains(rcpts)
	if a.smtp == nil {
		// Retryable: configuring SMTP and restarting the worker fixes it.
		return dispatcher.MailResult{}, temporary(ctx, dispatcher.FailureSMTPTemporary, "no SMTP server is configured")
	}
	msg, err := a.message(in, rendered, rcpts)
	if err != nil {
		return dispatcher.MailResult{}, permanent(ctx, dispatcher.FailureRecipient, err.Error())
	}
	if maybeSent, err := a.deliver(ctx, msg, places(rcpts), func() []string { return quotable(rendered, in.Event.Content) }); err != nil {
		// Handed over but not answered: the server may have accepted
		// it. The claim stays until it expires, so that no attempt sends
		// it while the server may still be accepting it from this one.
		sent = maybeSent
		return dispatcher.MailResult{}, err
	}
	sent = true
	// The mail is sent: failing now would send it again. A record that
	// cannot be written leaves only the at-least-once window it would have
	// closed. Nor may it take the attempt past its deadline: Temporal would
	// take the attempt for failed, and the next one send the mail again.
	// An attempt Temporal gave up on (its heartbeats lost, or the worker
	// stopping) still writes it: the next attempt waits for this one's
	// claim to expire, and must then find the mail sent.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordBudget(ctx))
	defer cancel()
	if err := a.store.RecordMailSent(rctx, in.MessageID, a.now()); err != nil {
		activity.GetLogger(ctx).Warn("Mail sent, but recording it failed: a retry of this attempt would send it again",
			"MessageID", in.MessageID, "Error", err)
	}
	return dispatcher.MailResult{MessageID: in.MessageID, Attempt: attempt(ctx)}, nil
}

// recordBudget is how long the record of a sent mail may take: half what
// is left of the attempt, at most 5 s, so that its success is reported in
// time even when the database stalls; 5 s for an attempt that has ended,
// which has nothing to report in time.
func recordBudget(ctx context.Context) time.Duration {
	budget := 5 * time.Second
	if deadline, ok := ctx.Deadline(); ok && ctx.Err() == nil {
		budget = min(budget, time.Until(deadline)/2)
	}
	return budget
}

// releaseMail ends the claim of an attempt that did not send its mail,
// also after its deadline: the next attempt need not wait for it.
func (a *Effects) releaseMail(ctx context.Context, messageID, owner string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := a.store.ReleaseMail(ctx, messageID, owner); err != nil && activity.IsActivity(ctx) {
		activity.GetLogger(ctx).Warn("Releasing the claim of a mail not sent failed: its next attempt waits for the claim to expire",
			"MessageID", messageID, "Error", err)
	}
}

// claimGrace is how long a mail's claim outlasts its attempt's deadline:
// the clocks of two workers may differ by this much.
const claimGrace = 5 * time.Second

// claimUntil is when the claim of an attempt ending at ctx's deadline
// expires.
func claimUntil(ctx context.Context, now time.Time) time.Time {
	end, ok := ctx.Deadline()
	if !ok {
		end = now.Add(mailTimeout)
	}
	return end.Add(claimGrace)
}

// claimOwner is a fresh owner for a claim: each attempt is its own, also
// the same attempt run again elsewhere.
func claimOwner() string {
	return rand.Text()
}

func (a *Effects) message(in dispatcher.MailInput, r dispatcher.RenderedMail, rcpts dispatcher.Recipients) (*gomail.Msg, error) {
	m := gomail.NewMsg()
	if err := m.From(a.mailFrom); err != nil {
		return nil, fmt.Errorf("sender %q: %v", a.mailFrom, err)
	}
	if err := m.To(rcpts.To...); err != nil {
		return nil, fmt.Errorf("recipients.to: %v", err)
	}
	if err := m.Cc(rcpts.CC...); err != nil {
		return nil, fmt.Errorf("recipients.cc: %v", err)
	}
	if err := m.Bcc(rcpts.BCC...); err != nil {
		return nil, fmt.Errorf("recipients.bcc: %v", err)
	}
	m.Subject(foldable(r.Subject))
	m.SetMessageIDWithValue(in.MessageID)
	m.SetDateWithValue(a.now())
	m.SetGenHeader(HeaderEvent, in.Event.ID)
	if in.Run != "" {
		m.SetGenHeader(HeaderReplay, in.Run)
	}
	switch {
	case r.HTML != "" && r.Text != "":
		m.SetBodyString(gomail.TypeTextPlain, r.Text)
		m.AddAlternativeString(gomail.TypeTextHTML, r.HTML)
	case r.HTML != "":
		m.SetBodyString(gomail.TypeTextHTML, r.HTML)
	default:
		m.SetBodyString(gomail.TypeTextPlain, r.Text)
	}
	return m, nil
}

// asciiDomains writes the domains of r's addresses in ASCII (IDNA:
// bücher.de as xn--bcher-kva.de), which every server takes; before, they
// went out in UTF-8, which a server without SMTPUTF8 refuses. A local part
// in UTF-8 still needs a server that takes it.
func asciiDomains(r dispatcher.Recipients) dispatcher.Recipients {
	conv := func(addrs []string) []string {
		out := make([]string, len(addrs))
		for i, s := range addrs {
			out[i] = s
			a, err := mail.ParseAddress(s)
			if err != nil {
				continue
			}
			at := strings.LastIndex(a.Address, "@")
			domain, err := idna.Lookup.ToASCII(a.Address[at+1:])
			if err != nil || domain == a.Address[at+1:] {
				continue
			}
			a.Address = a.Address[:at+1] + domain
			out[i] = a.String()
		}
		return out
	}
	return dispatcher.Recipients{To: conv(r.To), CC: conv(r.CC), BCC: conv(r.BCC)}
}

// foldable returns a subject that go-mail writes in lines a server takes
// (at most 998 bytes, RFC 5322) and that readers show as it was rendered.
// go-mail folds a header at its spaces, and encodes (RFC 2047) only a
// subject that is not printable ASCII, in words short enough; a word of
// ASCII longer than a line went out as one line, and one that looks like an
// encoded word (=?UTF-8?B?SGk=?=, from an event) was decoded by readers
// ("Hi"), unlike the preview. Such a word is written as encoded words of
// at most 75 characters, which readers join again; after another, with
// the space between them, which readers drop between encoded words.
func foldable(subject string) string {
	const longest = 900
	words := strings.Split(subject, " ")
	encode := func(w string) bool { return len(w) > longest || strings.Contains(w, "=?") }
	if !slices.ContainsFunc(words, encode) ||
		strings.ContainsFunc(subject, func(r rune) bool { return r < ' ' && r != '\t' || r > '~' }) {
		return subject
	}
	for i, w := range words {
		if !encode(w) {
			continue
		}
		var encoded []string
		word := ""
		if i > 0 && encode(words[i-1]) {
			word = "_" // the space before it, a space in q encoding
		}
		for _, c := range []byte(w) {
			e := string(c)
			if c <= ' ' || c > '~' || c == '=' || c == '?' || c == '_' {
				e = fmt.Sprintf("=%02X", c)
			}
			if len(word)+len(e) > 63 { // 75 with =?UTF-8?q? and ?= (RFC 2047)
				encoded, word = append(encoded, "=?UTF-8?q?"+word+"?="), ""
			}
			word += e
		}
		words[i] = strings.Join(append(encoded, "=?UTF-8?q?"+word+"?="), " ")
	}
	return strings.Join(words, " ")
}

// deliver sends m and classifies the failure, within the call's budget
// (see smtpConfig.send). maybeSent says that the failure left it unknown
// whether the server accepted the mail: it had the whole of it and did
// not answer.
func (a *Effects) deliver(ctx context.Context, m *gomail.Msg, recipients []recipient, quotable func() []string) (maybeSent bool, err error) {
	// The call's own context: the claim, and so the next attempt's
	// wait, is the attempt's (ctx's deadline); the call's ends sooner.
	call, cancel := callContext(ctx, callBudget(ctx, mailTimeout))
	defer cancel()
	err = a.smtp.send(call, m)
	if err == nil || m.IsDelivered() {
		// The server accepted the mail (250): a failure to say goodbye
		// (QUIT) afterwards changes nothing, and failing would send it
		// again.
		return false, nil
	}
	msg := withoutQuotes(withoutAddresses(err.Error(), recipients), quotable(), recipients)
	code := smtpCode(err)
	if code >= 400 && code < 500 && refusedForGood.MatchString(err.Error()) {
		// go-mail keeps the code of the last recipient refused: one
		// refused for good before one refused for now is still a mail
		// that never goes. Before, it depended on their order.
		code = 550
	}
	switch {
	case code == 452 && strings.Contains(err.Error(), "4.5.3"):
		// Too many recipients (RFC 3463, X.5.3): the server would take
		// the rest in another mail, and retrying the same one never gets
		// through. Before, it was retried until its attempts ran out.
		return false, permanent(ctx, dispatcher.FailureSMTPPermanent, fmt.Sprintf(
			"SMTP %s takes fewer recipients in one mail than this one's %d, and a mail action sends one mail to all of them: split them over several actions, or raise the server's limit: %s",
			a.smtp, len(recipients), msg))
	case code >= 500 && code < 600:
		return false, permanent(ctx, dispatcher.FailureSMTPPermanent, fmt.Sprintf("SMTP %s refused the mail: %s", a.smtp, msg))
	case code == 0 && afterData(err):
		// The next attempt comes when this one's claim, which it keeps,
		// has expired. Before, it came after the policy's interval, found
		// the claim held and failed, a whole attempt spent on nothing: a
		// mail with two attempts was never tried again; and again when
		// the claim was read off the call's context, 10 s too soon.
		wait := max(time.Until(claimUntil(ctx, time.Now())), time.Second)
		return true, unanswered(ctx, fmt.Sprintf(
			"SMTP %s did not answer the end of the mail in time (it may have accepted it; an attempt after this one, if any, waits for this one's claim to expire): %s", a.smtp, msg), wait)
	}
	return false, temporary(ctx, dispatcher.FailureSMTPTemporary, fmt.Sprintf("SMTP %s: %s", a.smtp, msg))
}

// quotable is what an SMTP server's reply may quote of a mail that holds
// event content: the lines of the rendered mail, and the event's string
// values. A failure's message is shown to those without
// VIEW_EVENT_CONTENT, and a server that refuses a mail may quote its
// subject or body ("554 rejected as spam: Diagnosis for …").
func quotable(m dispatcher.RenderedMail, content json.RawMessage) []string {
	var out []string
	add := func(s string) {
		// An address alone is withoutAddresses', which says what it hid.
		if s = strings.TrimSpace(s); utf8.RuneCountInString(s) >= 4 && emailAddress.FindString(s) != s {
			out = append(out, s)
		}
	}
	for _, part := range []string{m.Subject, m.Text, m.HTML} {
		for line := range strings.Lines(part) {
			add(line)
		}
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			add(v)
		case []any:
			for _, e := range v {
				walk(e)
			}
		case map[string]any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	var v any
	if json.Unmarshal(content, &v) == nil {
		walk(v)
	}
	return out
}

// withoutQuotes hides in s, a reply withoutAddresses has gone over, what
// it quotes of quoted (quotable), gone over the same way: in one pass,
// longest first, so that no hidden part is hidden again inside another.
func withoutQuotes(s string, quoted []string, recipients []recipient) string {
	var olds []string
	for _, q := range quoted {
		// Of what is left once its addresses are hidden, 4 letters at
		// least, as quotable takes them.
		q = withoutAddresses(q, recipients)
		if utf8.RuneCountInString(strings.TrimSpace(hidden.ReplaceAllString(q, ""))) >= 4 {
			olds = append(olds, q)
		}
	}
	slices.SortStableFunc(olds, func(a, b string) int { return len(b) - len(a) })
	pairs := make([]string, 0, 2*len(olds))
	for _, q := range olds {
		pairs = append(pairs, q, "(the mail's text)")
	}
	return strings.NewReplacer(pairs...).Replace(s)
}

// emailAddress matches what looks like an email address: a domain with
// a dot, so the dispatcher's Message-IDs (<…@dispatcher>) stay.
var emailAddress = regexp.MustCompile(`[^\s<>"',;:]+@[^\s<>"',;.]+\.[^\s<>"',;]+`)

// recipient is an address a mail goes to, and its place among the
// action's resolved recipients, "(recipients.bcc[0])", which a failure
// shows instead.
type recipient struct{ addr, place string }

// places returns the recipients of r with their places.
func places(r dispatcher.Recipients) []recipient {
	var out []recipient
	for _, l := range []struct {
		name  string
		addrs []string
	}{{"to", r.To}, {"cc", r.CC}, {"bcc", r.BCC}} {
		for i, a := range l.addrs {
			out = append(out, recipient{a, fmt.Sprintf("(recipients.%s[%d])", l.name, i)})
		}
	}
	return out
}

// hidden matches what withoutAddresses puts in an address's stead.
var hidden = regexp.MustCompile(`\((address|recipients\.(to|cc|bcc)\[\d+\])\)`)

// withoutAddresses hides the email addresses in an SMTP failure (go-mail
// lists the affected recipients; servers quote them in their replies):
// they come from the event, and failures are shown to whoever may read
// executions, who may not read events. The mail's recipients go first,
// whatever their form (jane.doe@hr-intranet), each as its place, so that
// the one a server refused is known ("(recipients.bcc[0])"); then their
// local parts, which a server may quote alone ("ann smith" of "ann
// smith"@example.com); then whatever else looks like an address, as
// "(address)".
func withoutAddresses(s string, recipients []recipient) string {
	type form struct{ text, place string }
	var forms []form
	for _, r := range recipients {
		forms = append(forms, form{strings.Trim(r.addr, "<>"), r.place})
		if a, err := mail.ParseAddress(r.addr); err == nil {
			forms = append(forms, form{a.Address, r.place}) // a quoted local part unquoted, a name left out
		}
	}
	// Every whole address first: a local part hidden before would leave
	// another recipient's address that holds it unmatched.
	for _, f := range forms {
		s = replaceFold(s, f.text, "", f.place)
	}
	for _, f := range forms {
		switch i := strings.LastIndex(f.text, "@"); {
		case i >= 4:
			s = replaceFold(s, f.text[:i], "", f.place)
		case i > 0:
			// A short one only as a word of its own: "ann", not "annual".
			s = replaceFold(s, f.text[:i], `[^\pL\pN]`, f.place)
		}
	}
	return emailAddress.ReplaceAllString(s, "(address)")
}

// replaceFold replaces every occurrence of old in s, in any case, with
// place; with a boundary, only those between the start or end of s or a
// character it matches.
func replaceFold(s, old, boundary, place string) string {
	if boundary == "" {
		return regexp.MustCompile("(?i)"+regexp.QuoteMeta(old)).ReplaceAllLiteralString(s, place)
	}
	re := regexp.MustCompile("(?i)(^|" + boundary + ")" + regexp.QuoteMeta(old) + "($|" + boundary + ")")
	for { // twice: "ann ann" shares the space between its matches
		next := re.ReplaceAllString(s, "${1}"+strings.ReplaceAll(place, "$", "$$")+"${2}")
		if next == s {
			return s
		}
		s = next
	}
}

// refusedForGood matches, in go-mail's error for refused recipients
// ("…: 450 "…", 550 "…", affected recipient(s): …"), a refusal for good.
var refusedForGood = regexp.MustCompile(`RCPT TO command.*?(?:: |, )5\d\d "`)

// smtpCode returns the server's reply code in err, 0 if it has none
// (a connection error). Delivery errors carry it in a go-mail SendError;
// a refused login, during the dial, in a textproto.Error.
func smtpCode(err error) int {
	var se *gomail.SendError
	if errors.As(err, &se) && se.ErrorCode() != 0 {
		return se.ErrorCode()
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}

// CheckSender reports what is wrong with from as a mail sender.
func CheckSender(from string) error { return validateSender(from) }

func validateSender(from string) error {
	if _, err := mail.ParseAddress(from); err != nil {
		return fmt.Errorf("mail sender %q: %v", from, err)
	}
	return nil
}

// SendMailLocal is SendMail under the name of a mail action's first
// attempt, which runs as a local activity (workflows.LocalSendMail): a
// method of its own because the SDK keys registrations by function too.
func (a *Effects) SendMailLocal(ctx context.Context, in dispatcher.MailInput) (dispatcher.MailResult, error) {
	if err := queuedTooLong(ctx); err != nil {
		return dispatcher.MailResult{}, err
	}
	return a.SendMail(ctx, in)
}
