package main

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"
)

// maxDepth bounds multipart nesting, so a hostile mail cannot recurse forever.
const maxDepth = 10

// Message is one caught mail: the SMTP envelope, the raw source and what
// could be read from it. It is not changed once the Store has it.
type Message struct {
	ID       int
	Received time.Time
	Envelope Envelope
	Raw      []byte

	RawHeader   string // the header section as sent
	From        []*mail.Address
	To, Cc      []*mail.Address
	Subject     string    // RFC 2047 words decoded
	Date        time.Time // zero when the Date header is missing or malformed
	Text        string    // the first text/plain part, decoded to UTF-8
	HTML        string    // the first text/html part, decoded to UTF-8
	Attachments []Attachment
	ParseError  string // why the message could not be read completely
}

// Envelope is what the SMTP client said in MAIL FROM and RCPT TO; it differs
// from the headers for Bcc recipients.
type Envelope struct {
	From string
	To   []string
}

// Attachment is a part that is neither the text nor the HTML body.
type Attachment struct {
	Name string
	Type string
	Size int
}

// header is what mail.Header and textproto.MIMEHeader share.
type header interface {
	Get(key string) string
}

var wordDecoder = &mime.WordDecoder{} // utf-8, iso-8859-1 and us-ascii built in

// parseMessage reads an RFC 5322 message. It never fails: what cannot be
// read is described in ParseError, and the raw source is always kept.
func parseMessage(raw []byte) *Message {
	m := &Message{Raw: raw}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		m.ParseError = err.Error()
		return m
	}
	m.RawHeader = headerSection(raw)
	m.From = addressList(msg.Header, "From")
	m.To = addressList(msg.Header, "To")
	m.Cc = addressList(msg.Header, "Cc")
	m.Subject = decodeWords(msg.Header.Get("Subject"))
	if d, err := msg.Header.Date(); err == nil {
		m.Date = d
	}
	if err := m.readPart(msg.Header, msg.Body, 0); err != nil {
		m.ParseError = err.Error()
	}
	return m
}

// readPart reads one MIME entity: a multipart's parts in order, or a leaf,
// which becomes the text, the HTML or an attachment.
func (m *Message) readPart(h header, body io.Reader, depth int) error {
	mediaType, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		mediaType, params = "text/plain", nil // RFC 2045 §5.2
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		if depth >= maxDepth {
			return errors.New("MIME parts nested too deeply")
		}
		if params["boundary"] == "" {
			return fmt.Errorf("%s without a boundary", mediaType)
		}
		mr := multipart.NewReader(body, params["boundary"])
		for {
			// NextRawPart: readPart decodes the transfer encoding itself,
			// the same way for a part as for a single-part message.
			p, err := mr.NextRawPart()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			if err := m.readPart(p.Header, p, depth+1); err != nil {
				return err
			}
		}
	}

	data, err := io.ReadAll(transferDecoder(h.Get("Content-Transfer-Encoding"), body))
	if err != nil {
		return fmt.Errorf("%s part: %v", mediaType, err)
	}
	disposition, dparams, _ := mime.ParseMediaType(h.Get("Content-Disposition"))
	inline := disposition != "attachment"
	switch {
	case inline && mediaType == "text/plain" && m.Text == "":
		m.Text = toUTF8(data, params["charset"])
	case inline && mediaType == "text/html" && m.HTML == "":
		m.HTML = toUTF8(data, params["charset"])
	default:
		name := dparams["filename"]
		if name == "" {
			name = params["name"]
		}
		m.Attachments = append(m.Attachments, Attachment{Name: decodeWords(name), Type: mediaType, Size: len(data)})
	}
	return nil
}

// transferDecoder undoes a Content-Transfer-Encoding; 7bit, 8bit and binary
// need nothing.
func transferDecoder(encoding string, r io.Reader) io.Reader {
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "quoted-printable":
		return quotedprintable.NewReader(r)
	case "base64":
		return base64.NewDecoder(base64.StdEncoding, r) // skips the line breaks
	}
	return r
}

// toUTF8 converts a text part from its charset. Latin-1 is converted;
// anything else is taken as UTF-8, its invalid bytes replaced, so a page
// never shows broken encoding.
func toUTF8(data []byte, charset string) string {
	switch strings.ToLower(charset) {
	case "iso-8859-1", "latin1", "latin-1":
		var b strings.Builder
		for _, c := range data {
			b.WriteRune(rune(c))
		}
		return b.String()
	}
	if utf8.Valid(data) {
		return string(data)
	}
	return strings.ToValidUTF8(string(data), "\uFFFD")
}

// addressList parses an address header; one that does not parse is kept as
// a single address holding its decoded text.
func addressList(h mail.Header, key string) []*mail.Address {
	v := h.Get(key)
	if v == "" {
		return nil
	}
	list, err := h.AddressList(key)
	if err != nil {
		return []*mail.Address{{Address: decodeWords(v)}}
	}
	return list
}

// decodeWords decodes RFC 2047 encoded words, keeping s when it cannot.
func decodeWords(s string) string {
	d, err := wordDecoder.DecodeHeader(s)
	if err != nil {
		return s
	}
	return d
}

// headerSection returns raw up to the blank line that ends the header.
func headerSection(raw []byte) string {
	for _, sep := range []string{"\r\n\r\n", "\n\n"} {
		if i := bytes.Index(raw, []byte(sep)); i >= 0 {
			return string(raw[:i])
		}
	}
	return string(raw)
}

// displayAddress formats a as "Name <address>", or the bare address, with
// the name decoded (mail.Address.String would re-encode it).
func displayAddress(a *mail.Address) string {
	if a.Name == "" {
		return a.Address
	}
	return fmt.Sprintf("%s <%s>", a.Name, a.Address)
}
