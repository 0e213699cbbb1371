package dispatcher

import (
	"bytes"
	"encoding/json"
	"errors"
	htmltemplate "html/template"
	"io"
	"regexp"
	"strconv"
	"strings"
	"text/template"
)

// The functions in this file are pure and deterministic, so the workflow
// may call them as well as the activities.
//
// Templates see the event as .event ({id, type, content, time, source})
// and its content again as .content. Content is decoded as JSON with
// numbers kept as written (json.Number), so ids and amounts print exactly
// rather than as 1e+06. Every lookup runs with missingkey=error: a variable
// the event does not have is an error, never an empty string; a JSON null
// that is present renders as "".

// RenderedMail is a mail template rendered against an event.
type RenderedMail struct {
	Subject string
	Text    string
	HTML    string
}

// RenderMail renders t against ev: subject and text with text/template,
// html with html/template (auto-escaped). Errors are *Error with code
// EINVALID naming the part and line, e.g.
// `subject: line 1: at <.event.content.nope>: map has no entry for key "nope"`.
func RenderMail(t Template, ev Event) (RenderedMail, error) {
	data, err := templateData(ev)
	if err != nil {
		return RenderedMail{}, err
	}
	data = printable(data).(map[string]any)
	var m RenderedMail
	if m.Subject, err = render("subject", t.Subject, data, parseText); err != nil {
		return RenderedMail{}, err
	}
	if m.Text, err = render("text", t.Text, data, parseText); err != nil {
		return RenderedMail{}, err
	}
	if m.HTML, err = render("html", t.HTML, data, parseHTML); err != nil {
		return RenderedMail{}, err
	}
	return m, nil
}

// ParseTemplate checks the syntax of t's subject, text and html, as done
// when a template is saved. Errors are *Error with code EINVALID naming the
// field and the line, e.g. `html: line 3: unexpected "}" in operand`.
func ParseTemplate(t Template) error {
	if _, err := parseText("subject", t.Subject); err != nil {
		return templateError("subject", err)
	}
	if _, err := parseText("text", t.Text); err != nil {
		return templateError("text", err)
	}
	h, err := parseHTML("html", t.HTML)
	if err != nil {
		return templateError("html", err)
	}
	// html/template finds contextual escaping problems (an action inside
	// an attribute name, an unclosed tag) only when it first executes.
	// Executing with no data surfaces them now; the lookup errors that
	// the missing data causes are expected and ignored.
	var escErr *htmltemplate.Error
	if err := h.Execute(io.Discard, nil); errors.As(err, &escErr) {
		return templateError("html", err)
	}
	return nil
}

// templateData is what templates see: the event as .event and its
// decoded content as .content.
func templateData(ev Event) (map[string]any, error) {
	var content any
	if len(bytes.TrimSpace(ev.Content)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(ev.Content))
		dec.UseNumber()
		if err := dec.Decode(&content); err != nil {
			return nil, Errorf(EINVALID, "event content: is not JSON: %v", err)
		}
	}
	return map[string]any{
		"event": map[string]any{
			"id":      ev.ID,
			"type":    ev.Type,
			"content": content,
			"time":    ev.Time,
			"source":  ev.Source,
		},
		"content": content,
	}, nil
}

func parseText(name, src string) (*template.Template, error) {
	t, err := template.New(name).Option("missingkey=error").Funcs(funcs).Parse(src)
	if err != nil {
		return nil, err
	}
	return t, checkSet(t.Tree, len(t.Templates()))
}

func parseHTML(name, src string) (*htmltemplate.Template, error) {
	t, err := htmltemplate.New(name).Option("missingkey=error").Funcs(funcs).Parse(src)
	if err != nil {
		return nil, err
	}
	return t, checkSet(t.Tree, len(t.Templates()))
}

// executor is what text/template and html/template have in common.
type executor interface {
	Execute(w io.Writer, data any) error
}

// render renders the template source src, named for errors, with data.
func render[T executor](name, src string, data any, parse func(name, src string) (T, error)) (string, error) {
	if src == "" {
		return "", nil
	}
	t, err := parse(name, src)
	if err != nil {
		return "", templateError(name, err)
	}
	var b strings.Builder
	if err := t.Execute(&limitedWriter{w: &b, n: maxOutput}, data); err != nil {
		return "", templateError(name, err)
	}
	return b.String(), nil
}

var templateErrorPattern = regexp.MustCompile(`^(?:html/)?template: ?[^:]*:(\d+)(?::\d+)?: (?:executing "[^"]*" at (<[^>]*>): )?(.*)$`)

func templateError(field string, err error) *Error {
	m := templateErrorPattern.FindStringSubmatch(err.Error())
	if m == nil {
		return Errorf(EINVALID, "%s: %v", field, err)
	}
	line, _ := strconv.Atoi(m[1])
	if m[2] != "" {
		return Errorf(EINVALID, "%s: line %d: at %s: %s", field, line, m[2], m[3])
	}
	return Errorf(EINVALID, "%s: line %d: %s", field, line, m[3])
}
