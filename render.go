package dispatcher

import (
	"bytes"
	"encoding/json"
	"errors"
	htmltemplate "html/template"
	"io"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
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
	data = withoutNulls(data).(map[string]any)
	var m RenderedMail
	if m.Subject, err = renderText("subject", t.Subject, data); err != nil {
		return RenderedMail{}, err
	}
	if m.Text, err = renderText("text", t.Text, data); err != nil {
		return RenderedMail{}, err
	}
	if m.HTML, err = renderHTML("html", t.HTML, data); err != nil {
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

// ResolveValue resolves the templated strings in a JSON value against ev:
// every string that contains "{{" is rendered. A string that is exactly
// one field path, like "{{ .event.content.userId }}", becomes the value it
// points to with its JSON type (number, object, bool, null); any other
// template becomes a string. Object keys keep their order. Errors are
// *Error with code EINVALID naming the value's path from "data", e.g.
// `data.user.id: line 1: map has no entry for key "nope"`.
func ResolveValue(raw json.RawMessage, ev Event) (json.RawMessage, error) {
	if len(bytes.TrimSpace(raw)) == 0 || !bytes.Contains(raw, []byte("{{")) {
		return raw, nil // nothing to resolve: keep the bytes as they are
	}
	data, err := templateData(ev)
	if err != nil {
		return nil, err
	}
	r := resolver{data: data, printable: withoutNulls(data).(map[string]any)}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var out bytes.Buffer
	if err := r.value(dec, &out, "data"); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// ResolveRecipients resolves templated addresses in r against ev and
// checks that every address parses (net/mail). A single field path that
// points at a list of strings expands into one recipient each. Errors are
// *Error with code EINVALID naming the list and index, e.g.
// `recipients.to[0]: "nobody" is not an email address`.
func ResolveRecipients(r Recipients, ev Event) (Recipients, error) {
	var res resolver
	if hasTemplate(r.To) || hasTemplate(r.CC) || hasTemplate(r.BCC) {
		data, err := templateData(ev)
		if err != nil {
			return Recipients{}, err
		}
		res = resolver{data: data, printable: withoutNulls(data).(map[string]any)}
	}
	var out Recipients
	var err error
	if out.To, err = res.addresses("recipients.to", r.To); err != nil {
		return Recipients{}, err
	}
	if out.CC, err = res.addresses("recipients.cc", r.CC); err != nil {
		return Recipients{}, err
	}
	if out.BCC, err = res.addresses("recipients.bcc", r.BCC); err != nil {
		return Recipients{}, err
	}
	if len(out.To) == 0 {
		return Recipients{}, Errorf(EINVALID, "recipients.to: resolves to no address")
	}
	return out, nil
}

func hasTemplate(addrs []string) bool {
	for _, a := range addrs {
		if isTemplate(a) {
			return true
		}
	}
	return false
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

// withoutNulls returns a copy of v with JSON nulls replaced by "", since
// text/template prints a nil value as "<no value>".
func withoutNulls(v any) any {
	switch v := v.(type) {
	case nil:
		return ""
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[k] = withoutNulls(e)
		}
		return m
	case []any:
		s := make([]any, len(v))
		for i, e := range v {
			s[i] = withoutNulls(e)
		}
		return s
	default:
		return v
	}
}

func parseText(name, src string) (*template.Template, error) {
	return template.New(name).Option("missingkey=error").Parse(src)
}

func parseHTML(name, src string) (*htmltemplate.Template, error) {
	return htmltemplate.New(name).Option("missingkey=error").Parse(src)
}

func renderText(name, src string, data any) (string, error) {
	if src == "" {
		return "", nil
	}
	t, err := parseText(name, src)
	if err != nil {
		return "", templateError(name, err)
	}
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return "", templateError(name, err)
	}
	return b.String(), nil
}

func renderHTML(name, src string, data any) (string, error) {
	if src == "" {
		return "", nil
	}
	t, err := parseHTML(name, src)
	if err != nil {
		return "", templateError(name, err)
	}
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return "", templateError(name, err)
	}
	return b.String(), nil
}

// templateErrorPattern takes apart the errors of text/template and
// html/template ("template: subject:1:10: executing \"subject\" at
// <.x>: map has no entry for key \"x\"", "html/template:html:1:5: ...")
// so that the message names the field the admin edits, not our internal
// template name.
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

// resolver resolves templated strings. data keeps JSON nulls for field
// paths that keep their type; printable is data without nulls, for
// rendering to text.
type resolver struct {
	data      map[string]any
	printable map[string]any
}

// value copies one JSON value from dec to out, resolving its strings.
func (r resolver) value(dec *json.Decoder, out *bytes.Buffer, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return Errorf(EINVALID, "%s: is not JSON: %v", path, err)
	}
	switch tok := tok.(type) {
	case json.Delim:
		switch tok {
		case '{':
			out.WriteByte('{')
			for i := 0; dec.More(); i++ {
				kt, err := dec.Token()
				if err != nil {
					return Errorf(EINVALID, "%s: is not JSON: %v", path, err)
				}
				key, _ := kt.(string)
				if i > 0 {
					out.WriteByte(',')
				}
				if err := writeJSON(out, path, key); err != nil {
					return err
				}
				out.WriteByte(':')
				if err := r.value(dec, out, path+"."+key); err != nil {
					return err
				}
			}
			out.WriteByte('}')
		case '[':
			out.WriteByte('[')
			for i := 0; dec.More(); i++ {
				if i > 0 {
					out.WriteByte(',')
				}
				if err := r.value(dec, out, path+"["+strconv.Itoa(i)+"]"); err != nil {
					return err
				}
			}
			out.WriteByte(']')
		}
		_, err := dec.Token() // the closing delimiter
		if err != nil {
			return Errorf(EINVALID, "%s: is not JSON: %v", path, err)
		}
		return nil
	case string:
		v, err := r.resolve(path, tok)
		if err != nil {
			return err
		}
		return writeJSON(out, path, v)
	default: // json.Number, bool, nil
		return writeJSON(out, path, tok)
	}
}

// resolve renders one string: a single field path gives the value it
// points to, any other template gives a string.
func (r resolver) resolve(path, s string) (any, error) {
	if !isTemplate(s) {
		return s, nil
	}
	t, err := parseText(path, s)
	if err != nil {
		return nil, templateError(path, err)
	}
	if v, ok := r.lookup(fieldPath(t)); ok {
		return v, nil
	}
	var b strings.Builder
	if err := t.Execute(&b, r.printable); err != nil {
		return nil, templateError(path, err)
	}
	return b.String(), nil
}

// lookup follows a field path through the event data. ok is false when
// the path leaves the JSON data (e.g. a method of .event.time) or a key is
// missing, so the caller renders the template instead, which gives the
// method's result or the error with its line.
func (r resolver) lookup(idents []string) (v any, ok bool) {
	if len(idents) == 0 {
		return nil, false
	}
	var cur any = r.data
	for _, id := range idents {
		m, isMap := cur.(map[string]any)
		if !isMap {
			return nil, false
		}
		if cur, isMap = m[id]; !isMap {
			return nil, false // rendering reports the missing key with its line
		}
	}
	return cur, true
}

// fieldPath returns the identifiers of t when t is exactly one action
// holding one field path ({{ .event.content.userId }}), else nil.
func fieldPath(t *template.Template) []string {
	if t.Tree == nil || t.Tree.Root == nil {
		return nil
	}
	var action *parse.ActionNode
	for _, n := range t.Tree.Root.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
			if len(bytes.TrimSpace(n.Text)) > 0 {
				return nil
			}
		case *parse.ActionNode:
			if action != nil {
				return nil
			}
			action = n
		default:
			return nil
		}
	}
	if action == nil || len(action.Pipe.Decl) > 0 || len(action.Pipe.Cmds) != 1 {
		return nil
	}
	args := action.Pipe.Cmds[0].Args
	if len(args) != 1 {
		return nil
	}
	f, ok := args[0].(*parse.FieldNode)
	if !ok {
		return nil
	}
	return f.Ident
}

// addresses resolves one recipient list.
func (r resolver) addresses(field string, in []string) ([]string, error) {
	var out []string
	for i, a := range in {
		path := field + "[" + strconv.Itoa(i) + "]"
		var resolved []string
		if !isTemplate(a) {
			resolved = []string{a}
		} else {
			v, err := r.resolve(path, a)
			if err != nil {
				return nil, err
			}
			switch v := v.(type) {
			case string:
				resolved = []string{v}
			case []any:
				for _, e := range v {
					s, ok := e.(string)
					if !ok {
						return nil, Errorf(EINVALID, "%s: resolves to a list holding %v, not an email address", path, e)
					}
					resolved = append(resolved, s)
				}
			default:
				return nil, Errorf(EINVALID, "%s: resolves to %v, not an email address", path, v)
			}
		}
		for _, s := range resolved {
			if _, err := mail.ParseAddress(s); err != nil {
				return nil, Errorf(EINVALID, "%s: %q is not an email address", path, s)
			}
			out = append(out, s)
		}
	}
	return out, nil
}

// writeJSON appends v as JSON without HTML escaping, so "<" in a value
// reaches the task function as written.
func writeJSON(out *bytes.Buffer, path string, v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return Errorf(EINVALID, "%s: %v", path, err)
	}
	out.Write(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
	return nil
}
