package main

import (
	"slices"
	"strings"
	"testing"
)

// crlf turns a readable LF message into the CRLF form SMTP carries.
func crlf(s string) []byte { return []byte(strings.ReplaceAll(s, "\n", "\r\n")) }

func TestParseMessage(t *testing.T) {
	for _, tt := range []struct {
		name        string
		raw         string
		subject     string
		from        string
		text, html  string
		attachments []Attachment
		parseError  string // a substring; "" means none
	}{{
		name:    "plain, no MIME headers",
		raw:     "From: a@example.com\nTo: b@example.com\nSubject: hello\n\nline 1\nline 2\n",
		subject: "hello", from: "a@example.com", text: "line 1\r\nline 2\r\n",
	}, {
		name: "alternative, quoted-printable and base64",
		raw: `From: =?utf-8?q?Z=C3=B6e?= <zoe@example.com>
Subject: =?utf-8?b?R29vZGJ5ZSDinJM=?=
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="b1"

--b1
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Caf=C3=A9 and a soft=
 break
--b1
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: base64

PHA+Q2Fmw6k8L3A+PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==
--b1--
`,
		subject: "Goodbye ✓", from: "zoe@example.com",
		text: "Café and a soft break", html: "<p>Café</p><script>alert(1)</script>",
	}, {
		name: "mixed with nested alternative and attachments",
		raw: `From: a@example.com
Subject: report
Content-Type: multipart/mixed; boundary=outer

--outer
Content-Type: multipart/alternative; boundary=inner

--inner
Content-Type: text/plain

the text
--inner
Content-Type: text/html

<p>the html</p>
--inner--
--outer
Content-Type: text/plain; name="notes.txt"
Content-Disposition: attachment; filename="notes.txt"

not the body
--outer
Content-Type: application/pdf
Content-Disposition: attachment; filename="=?utf-8?q?r=C3=A9sum=C3=A9.pdf?="
Content-Transfer-Encoding: base64

JVBERi0=
--outer--
`,
		subject: "report", from: "a@example.com", text: "the text", html: "<p>the html</p>",
		attachments: []Attachment{{Name: "notes.txt", Type: "text/plain", Size: 12}, {Name: "résumé.pdf", Type: "application/pdf", Size: 5}},
	}, {
		name:    "latin-1 text",
		raw:     "Subject: =?iso-8859-1?q?caf=E9?=\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\nna=EFve\n",
		subject: "café", text: "naïve\r\n",
	}, {
		name:       "multipart without a boundary is kept, with the reason",
		raw:        "Subject: broken\nContent-Type: multipart/mixed\n\nwhatever\n",
		subject:    "broken",
		parseError: "without a boundary",
	}, {
		name:       "bad base64 is kept, with the reason",
		raw:        "Subject: bad\nContent-Transfer-Encoding: base64\n\n!!!not base64!!!\n",
		subject:    "bad",
		parseError: "illegal base64",
	}} {
		t.Run(tt.name, func(t *testing.T) {
			raw := crlf(tt.raw)
			m := parseMessage(raw)
			if m.Subject != tt.subject {
				t.Errorf("subject %q, want %q", m.Subject, tt.subject)
			}
			var from string
			if len(m.From) > 0 {
				from = m.From[0].Address
			}
			if from != tt.from {
				t.Errorf("from %q, want %q", from, tt.from)
			}
			if strings.TrimRight(m.Text, "\r\n") != strings.TrimRight(tt.text, "\r\n") {
				t.Errorf("text %q, want %q", m.Text, tt.text)
			}
			if strings.TrimRight(m.HTML, "\r\n") != tt.html {
				t.Errorf("html %q, want %q", m.HTML, tt.html)
			}
			if !slices.Equal(m.Attachments, tt.attachments) {
				t.Errorf("attachments %+v, want %+v", m.Attachments, tt.attachments)
			}
			if (tt.parseError == "") != (m.ParseError == "") || !strings.Contains(m.ParseError, tt.parseError) {
				t.Errorf("parse error %q, want one containing %q", m.ParseError, tt.parseError)
			}
			if string(m.Raw) != string(raw) {
				t.Error("raw source not kept as sent")
			}
		})
	}
}

func TestParseMessageStopsAtDeepNesting(t *testing.T) {
	var b strings.Builder
	b.WriteString("Subject: deep\n")
	for i := range maxDepth + 2 {
		b.WriteString("Content-Type: multipart/mixed; boundary=b" + string(rune('a'+i)) + "\n\n--b" + string(rune('a'+i)) + "\n")
	}
	m := parseMessage(crlf(b.String()))
	if !strings.Contains(m.ParseError, "nested too deeply") {
		t.Errorf("parse error %q, want one about nesting", m.ParseError)
	}
}
