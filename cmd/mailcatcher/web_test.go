package main

import (
	"fmt"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	gomail "github.com/wneessen/go-mail"
)

func TestMultipartMailIsDecodedAndShownInert(t *testing.T) {
	c := startCatcher(t)
	const (
		text = "Your account 42 was deleted.\nThis line is long enough, and non-ASCII enough (Café, naïve, 日本語), that quoted-printable has to wrap it."
		html = `<p>Bye <b>Ann</b></p><script>alert("pwned")</script><img src=x onerror="alert(1)">`
	)
	msg := gomail.NewMsg()
	if err := msg.From("Dispatcher <noreply@example.com>"); err != nil {
		t.Fatal(err)
	}
	if err := msg.To("Ann <ann@example.com>"); err != nil {
		t.Fatal(err)
	}
	if err := msg.Cc("bob@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := msg.Bcc("audit@example.com"); err != nil {
		t.Fatal(err)
	}
	msg.Subject("Goodbye Ann ✓")
	msg.SetBodyString(gomail.TypeTextPlain, text)
	msg.AddAlternativeString(gomail.TypeTextHTML, html)
	host, port, _ := net.SplitHostPort(c.smtpAddr)
	p, _ := strconv.Atoi(port)
	client, err := gomail.NewClient(host, gomail.WithPort(p), gomail.WithTLSPolicy(gomail.NoTLS))
	if err != nil {
		t.Fatal(err)
	}
	if err := client.DialAndSend(msg); err != nil {
		t.Fatalf("send: %v", err)
	}

	list := c.messages(t)
	if len(list) != 1 {
		t.Fatalf("got %d messages, want 1", len(list))
	}
	got := list[0]
	if got.From != "noreply@example.com" || !slices.Equal(got.To, []string{"ann@example.com"}) || !slices.Equal(got.Cc, []string{"bob@example.com"}) {
		t.Errorf("from %q to %q cc %q", got.From, got.To, got.Cc)
	}
	if !slices.Equal(got.Envelope.To, []string{"ann@example.com", "bob@example.com", "audit@example.com"}) {
		t.Errorf("envelope to %q, want all three recipients, Bcc included", got.Envelope.To)
	}
	if got.Subject != "Goodbye Ann ✓" {
		t.Errorf("subject %q", got.Subject)
	}
	// go-mail normalises line ends to CRLF; the decoded content is otherwise exact.
	if s := strings.ReplaceAll(got.Text, "\r\n", "\n"); s != text {
		t.Errorf("text:\n%q\nwant\n%q", s, text)
	}
	if strings.TrimSpace(got.HTML) != html {
		t.Errorf("html %q, want %q", got.HTML, html)
	}
	if time.Since(got.Date) > time.Minute {
		t.Errorf("date %v", got.Date)
	}

	// The raw source shows the parts really were quoted-printable encoded,
	// and is served as text that no browser runs.
	resp, raw := c.get(t, fmt.Sprintf("/messages/%d/raw", got.ID))
	if !strings.Contains(raw, "multipart/alternative") || !strings.Contains(raw, "Content-Transfer-Encoding: quoted-printable") {
		t.Errorf("raw source lacks the multipart/QP structure:\n%s", raw)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Errorf("raw Content-Type %q", ct)
	}
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "sandbox") {
		t.Errorf("raw headers %v", resp.Header)
	}

	// The message page: the script is never live markup, the frame may not
	// run scripts, and the page's policy (inherited by the srcdoc frame)
	// forbids them too.
	resp, page := c.get(t, fmt.Sprintf("/messages/%d", got.ID))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("message page: %s", resp.Status)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'none'") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("message page CSP %q does not forbid scripts", csp)
	}
	if strings.Contains(strings.ToLower(page), "<script") {
		t.Errorf("message page contains a live <script>:\n%s", page)
	}
	if strings.Contains(page, "allow-scripts") || strings.Contains(page, `onerror="alert`) {
		t.Errorf("message page lets the mail's script run:\n%s", page)
	}
	if !regexp.MustCompile(`<iframe sandbox="" [^>]*srcdoc="[^"]*&lt;script&gt;alert\(&#34;pwned&#34;\)&lt;/script&gt;`).MatchString(page) {
		t.Errorf("message page does not show the HTML in a sandboxed srcdoc frame:\n%s", page)
	}
	if !strings.Contains(page, "naïve, 日本語") {
		t.Errorf("message page lacks the decoded text:\n%s", page)
	}
}

func TestListPageEscapesMailContent(t *testing.T) {
	c := startCatcher(t)
	c.sendRaw(t, "eve@example.com", "ann@example.com", "<b>x</b>", "hi")

	resp, page := c.get(t, "/")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("list page: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	if strings.Contains(page, "<b>x</b>") {
		t.Errorf("list page has the subject as markup:\n%s", page)
	}
	if !strings.Contains(page, "&lt;b&gt;x&lt;/b&gt;") {
		t.Errorf("list page lacks the escaped subject:\n%s", page)
	}
	if !strings.Contains(page, `<meta http-equiv="refresh"`) {
		t.Errorf("list page does not refresh itself:\n%s", page)
	}
}

func TestKeepsOnlyTheNewestMessages(t *testing.T) {
	c := startCatcher(t, "-max", "2")
	for i := 1; i <= 3; i++ {
		c.sendRaw(t, "a@example.com", "b@example.com", fmt.Sprintf("mail %d", i), "body")
	}

	list := c.messages(t)
	var subjects []string
	for _, m := range list {
		subjects = append(subjects, m.Subject)
	}
	if !slices.Equal(subjects, []string{"mail 3", "mail 2"}) {
		t.Errorf("subjects %q, want the newest two, newest first", subjects)
	}
	if resp, _ := c.get(t, "/messages/1"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("evicted message: %s, want 404", resp.Status)
	}
	if resp, _ := c.get(t, fmt.Sprintf("/messages/%d", list[0].ID)); resp.StatusCode != http.StatusOK {
		t.Errorf("newest message: %s", resp.Status)
	}
}

func TestDeleteClearsMessages(t *testing.T) {
	c := startCatcher(t)
	c.sendRaw(t, "a@example.com", "b@example.com", "first", "body")

	req, _ := http.NewRequest(http.MethodDelete, c.web+"/api/messages", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %s", resp.Status)
	}
	if list := c.messages(t); len(list) != 0 {
		t.Fatalf("after DELETE: %d messages", len(list))
	}

	// IDs are not reused, so an old link never shows a different mail.
	c.sendRaw(t, "a@example.com", "b@example.com", "second", "body")
	if list := c.messages(t); len(list) != 1 || list[0].ID != 2 {
		t.Errorf("after a new mail: %+v, want one message with id 2", list)
	}
}
