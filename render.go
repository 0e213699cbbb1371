package dispatcher

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/mail"
	"slices"
	"strings"

	"github.com/dispatcherhq/dispatcher/sandbox"
	"golang.org/x/net/idna"
)

// The functions in this file put the template sandbox to the domain's use;
// they are pure and deterministic, and turn the sandbox's errors into
// EINVALID *Error values that name the field and the line.

// RenderedMail is a mail template rendered against an event.
type RenderedMail struct {
	Subject string
	Text    string
	HTML    string
}

// RenderMail renders t against ev: subject and text as text, html as
// auto-escaped HTML. Errors name the part and line, e.g.
// `subject: line 1: at <.event.content.nope>: map has no entry for key "nope"`.
func RenderMail(t Template, ev Event) (RenderedMail, error) {
	d, err := templateData(ev)
	if err != nil {
		return RenderedMail{}, err
	}
	var m RenderedMail
	for _, p := range []struct {
		name, src string
		html      bool
		dst       *string
	}{{"subject", t.Subject, false, &m.Subject}, {"text", t.Text, false, &m.Text}, {"html", t.HTML, true, &m.HTML}} {
		if *p.dst, err = d.Render(p.name, p.src, p.html); err != nil {
			return RenderedMail{}, domainError(err)
		}
	}
	return m, nil
}

// ParseTemplate checks the syntax and limits of t's subject, text and
// html, as done when a template is saved. Errors name the field and the
// line, e.g. `html: line 3: unexpected "}" in operand`.
func ParseTemplate(t Template) error {
	return domainError(errors.Join(
		sandbox.Check("subject", t.Subject, false),
		sandbox.Check("text", t.Text, false),
		sandbox.Check("html", t.HTML, true),
	))
}

// ResolveValue resolves the templated strings in a JSON value against ev
// (see sandbox.Data.ResolveJSON). Errors name the value's path from
// "data", e.g. `data.user.id: line 1: map has no entry for key "nope"`.
func ResolveValue(raw json.RawMessage, ev Event) (json.RawMessage, error) {
	if !bytes.Contains(raw, []byte("{{")) {
		return raw, nil // nothing to resolve: keep the bytes as they are
	}
	d, err := templateData(ev)
	if err != nil {
		return nil, err
	}
	out, err := d.ResolveJSON(raw, "data")
	return out, domainError(err)
}

// ResolveRecipients resolves templated addresses in r against ev and
// checks that every address parses. A single field path that points at a
// list of strings expands into one recipient each; to, cc and bcc
// together may hold at most MaxResolvedRecipients addresses. Errors name
// the list and index, e.g. `recipients.to[0]: "nobody" is not an email
// address`.
func ResolveRecipients(r Recipients, ev Event) (Recipients, error) {
	var d *sandbox.Data
	if hasTemplate(r.To) || hasTemplate(r.CC) || hasTemplate(r.BCC) {
		var err error
		if d, err = templateData(ev); err != nil {
			return Recipients{}, err
		}
	}
	var out Recipients
	for _, l := range []struct {
		field   string
		in      []string
		resolve *[]string
	}{{"recipients.to", r.To, &out.To}, {"recipients.cc", r.CC, &out.CC}, {"recipients.bcc", r.BCC, &out.BCC}} {
		addrs, err := d.Addresses(l.field, l.in)
		if err != nil {
			return Recipients{}, domainError(err)
		}
		*l.resolve = addrs
	}
	if len(out.To) == 0 {
		return Recipients{}, Errorf(EINVALID, "recipients.to: resolves to no address")
	}
	total := 0
	for _, l := range []struct {
		field string
		addrs []string
	}{{"recipients.to", out.To}, {"recipients.cc", out.CC}, {"recipients.bcc", out.BCC}} {
		if total += len(l.addrs); total > MaxResolvedRecipients {
			return Recipients{}, Errorf(EINVALID, "%s: to, cc and bcc resolve to %d addresses together; a mail may go to at most %d",
				l.field, len(out.To)+len(out.CC)+len(out.BCC), MaxResolvedRecipients)
		}
	}
	// Each address once, where it comes first (to, cc, bcc), in any case,
	// its domain as it is sent (ASCII: a@bücher.de is a@xn--bcher-kva.de):
	// a server that does not drop a recipient given twice delivered a copy
	// each.
	seen := map[string]bool{}
	for _, l := range []*[]string{&out.To, &out.CC, &out.BCC} {
		*l = slices.DeleteFunc(*l, func(a string) bool {
			if p, err := mail.ParseAddress(a); err == nil {
				a = p.Address
			}
			if at := strings.LastIndex(a, "@"); at >= 0 {
				if domain, err := idna.Lookup.ToASCII(a[at+1:]); err == nil {
					a = a[:at+1] + domain
				}
			}
			a = strings.ToLower(a)
			dup := seen[a]
			seen[a] = true
			return dup
		})
	}
	return out, nil
}

func templateData(ev Event) (*sandbox.Data, error) {
	d, err := sandbox.NewData(sandbox.Event{ID: ev.ID, Type: ev.Type, Content: ev.Content, Time: ev.Time, Source: ev.Source})
	return d, domainError(err)
}

func hasTemplate(addrs []string) bool {
	for _, a := range addrs {
		if sandbox.IsTemplate(a) {
			return true
		}
	}
	return false
}

// domainError turns the sandbox errors in err (one, or those joined) into
// one EINVALID *Error with their messages, each naming its field: a
// template with a bad subject and a bad text says both at once.
func domainError(err error) error {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	var msgs []string
	for _, err := range errs {
		var e *sandbox.Error
		if errors.As(err, &e) {
			msgs = append(msgs, e.Error())
		}
	}
	if len(msgs) == 0 {
		return err
	}
	return &Error{Code: EINVALID, Message: strings.Join(msgs, "; ")}
}
