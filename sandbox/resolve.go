package sandbox

import (
	"bytes"
	"encoding/json"
	"net/mail"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/template"
	"text/template/parse"
)

// ResolveJSON resolves the templated strings in a JSON value, whose path
// (for errors) is path: every string that contains "{{" is rendered. A
// string that is exactly one field path, like "{{ .event.content.userId }}",
// becomes the value it points to with its JSON type (number, object, bool,
// null); a string that is one other expression, like "{{ index
// .event.content.items 0 }}", becomes its value with its type; any
// other template becomes a string. Object keys keep their
// order. The strings share one budget of steps, and the whole value
// resolves to at most maxOutput bytes, as a rendering does. Errors are
// *Error naming the value's path, e.g.
// `data.user.id: line 1: map has no entry for key "nope"`.
func (d *Data) ResolveJSON(raw json.RawMessage, path string) (json.RawMessage, error) {
	if len(bytes.TrimSpace(raw)) == 0 || !bytes.Contains(raw, []byte("{{")) {
		return raw, nil // nothing to resolve: keep the bytes as they are
	}
	r := &resolver{data: d.raw, printable: d.printable, budget: newBudget(), root: path}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var out bytes.Buffer
	if err := r.value(dec, &out, path); err != nil {
		return nil, err
	}
	if err := r.checkSize(&out); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// Addresses resolves one list of mail addresses, field naming it for
// errors, and checks that every address parses (net/mail). A single field
// path that points at a list of strings expands into one address each.
// d may be nil when no address is templated. Errors are *Error naming the
// list and index, e.g. `recipients.to[0]: "nobody" is not an email address`.
func (d *Data) Addresses(field string, in []string) ([]string, error) {
	r := &resolver{budget: newBudget()}
	if d != nil {
		r.data, r.printable = d.raw, d.printable
	}
	return r.addresses(field, in)
}

// resolver resolves templated strings. data is the event as decoded, for
// field paths that keep their type; printable is the data templates
// execute with (see printable); budget is shared by all the strings it resolves,
// root is the path of the whole value.
type resolver struct {
	data      map[string]any
	printable map[string]any
	budget    *budget
	root      string
}

// checkSize fails once the resolved value passes maxOutput: field paths
// copy parts of the event, and a value of many could copy it many times.
func (r *resolver) checkSize(out *bytes.Buffer) error {
	if out.Len() > maxOutput {
		return errorf(r.root, "resolves to more than %d bytes of JSON", maxOutput)
	}
	return nil
}

// value copies one JSON value from dec to out, resolving its strings.
func (r *resolver) value(dec *json.Decoder, out *bytes.Buffer, path string) error {
	if err := r.checkSize(out); err != nil {
		return err
	}
	tok, err := dec.Token()
	if err != nil {
		return errorf(path, "is not JSON: %v", err)
	}
	switch tok := tok.(type) {
	case json.Delim:
		switch tok {
		case '{':
			out.WriteByte('{')
			for i := 0; dec.More(); i++ {
				kt, err := dec.Token()
				if err != nil {
					return errorf(path, "is not JSON: %v", err)
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
			return errorf(path, "is not JSON: %v", err)
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
func (r *resolver) resolve(path, s string) (any, error) {
	if !IsTemplate(s) {
		return s, nil
	}
	if idents := fieldPaths.of(s); idents != nil {
		if err := r.budget.spend(1 + len(idents)); err != nil {
			return nil, errorf(path, "line 1: %v", err)
		}
		if v, ok := r.lookup(idents); ok {
			return v, nil
		}
	}
	t, err := parseText(path, s, r.budget)
	if err != nil {
		return nil, templateError(path, err)
	}
	// One expression's value is captured rather than printed.
	captures := false
	if a := soleAction(t); a != nil && len(a.Pipe.Decl) == 0 && isPrint(a.Pipe.Cmds[len(a.Pipe.Cmds)-1]) {
		a.Pipe.Cmds[len(a.Pipe.Cmds)-1] = command(t.Tree, captureFunc, a.Pipe.Pos)
		captures = true
	}
	var b strings.Builder
	r.budget.captured = nil
	if err := t.Execute(&limitedWriter{w: &b, n: maxOutput}, r.printable); err != nil {
		return nil, templateError(path, err)
	}
	if captures {
		return r.budget.captured, nil
	}
	return b.String(), nil
}

// lookup follows a field path through the event data. ok is false when
// the path leaves the JSON data (e.g. a method of .event.time) or a key is
// missing, so the caller renders the template instead, which gives the
// method's result or the error with its line.
func (r *resolver) lookup(idents []string) (v any, ok bool) {
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

// fieldPathCache keeps what fieldPath found in the templated strings
// resolve saw, so that a recipient or a task's data field such as
// "{{ .event.content.email }}" is parsed once per process rather than for
// every event. A string that is not one field path is kept as nil, and
// parsed for every rendering. It keeps strings of up to maxCachedPath
// bytes, and at most maxCachedPathBytes of them and their identifiers,
// past which it starts over.
type fieldPathCache struct {
	paths sync.Map     // string → []string
	bytes atomic.Int64 // of the strings kept and their identifiers
}

const (
	maxCachedPath      = 1 << 10
	maxCachedPathBytes = 4 << 20
)

var fieldPaths = &fieldPathCache{}

// of returns the identifiers of the field path that s is exactly, or nil;
// a string over maxCachedPath bytes is parsed each time, not kept.
func (c *fieldPathCache) of(s string) (idents []string) {
	if idents, ok := c.paths.Load(s); ok {
		return idents.([]string)
	}
	if t, err := parseText("", s, newBudget()); err == nil {
		idents = fieldPath(t)
	}
	if len(s) > maxCachedPath {
		return idents
	}
	// The identifiers are substrings of s: their headers are what they add.
	size := int64(len(s) + 16*len(idents))
	if c.bytes.Add(size) > maxCachedPathBytes {
		c.paths.Clear()
		c.bytes.Store(size)
	}
	c.paths.Store(s, idents)
	return idents
}

// fieldPath returns the identifiers of t when t is exactly one action
// holding one field path ({{ .event.content.userId }}), else nil. The
// budget's steps do not count.
func fieldPath(t *template.Template) []string {
	action := soleAction(t)
	if action == nil || len(action.Pipe.Decl) > 0 || len(action.Pipe.Cmds) != 2 || !isPrint(action.Pipe.Cmds[1]) {
		return nil // not {{ .a.b | _sandboxPrint }}
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

// soleAction returns the action of t when t is that action alone, with
// only spaces around it, else nil. The budget's steps do not count.
func soleAction(t *template.Template) *parse.ActionNode {
	if t.Tree == nil || t.Tree.Root == nil {
		return nil
	}
	var action *parse.ActionNode
	for _, n := range t.Tree.Root.Nodes {
		switch n := n.(type) {
		case *parse.IfNode:
			if !isStep(n) {
				return nil
			}
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
	return action
}

// addresses resolves one recipient list.
func (r *resolver) addresses(field string, in []string) ([]string, error) {
	var out []string
	for i, a := range in {
		path := field + "[" + strconv.Itoa(i) + "]"
		var resolved []string
		list := false // a list the template resolved to
		if !IsTemplate(a) {
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
				list = true
				for j, e := range v {
					s, ok := e.(string)
					if !ok {
						return nil, errorf(path, "resolves to a list holding %s at [%d], not an email address", kind(e), j)
					}
					resolved = append(resolved, s)
				}
			default:
				return nil, errorf(path, "resolves to %s, not an email address", kind(v))
			}
		}
		for j, s := range resolved {
			_, err := mail.ParseAddress(s)
			switch {
			case err != nil && list:
				return nil, errorf(path, "resolves to a list holding a string at [%d] that is not an email address", j)
			case err != nil && IsTemplate(a):
				return nil, errorf(path, "resolves to a string that is not an email address")
			case err != nil:
				return nil, errorf(path, "%q is not an email address", s)
			}
			out = append(out, s)
		}
	}
	return out, nil
}

// kind names the JSON kind of v, for errors that must not quote the
// event's content: they are shown to whoever may read executions, which
// is not whoever may read events.
func kind(v any) string {
	switch v.(type) {
	case nil, null:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	default:
		return "a number"
	}
}

// writeJSON appends v as JSON without HTML escaping, so "<" in a value
// reaches the task function as written.
func writeJSON(out *bytes.Buffer, path string, v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return errorf(path, "%v", err)
	}
	out.Write(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
	return nil
}
