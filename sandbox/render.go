package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"text/template/parse"
)

// Check parses the template source src, named for errors, and applies the
// limits and the field paths of the data (checkPaths), as done when a
// template is saved; html selects html/template,
// whose contextual escaping problems (an action inside an attribute name,
// an unclosed tag) are found too. Errors are *Error naming the part and
// the line, e.g. `html: line 3: unexpected "}" in operand`.
func Check(name, src string, html bool) error {
	if !html {
		if _, err := parseText(name, src, newBudget(), checkPaths); err != nil {
			return templateError(name, err)
		}
		return nil
	}
	h, err := parseHTML(name, src, newBudget(), checkPaths)
	if err != nil {
		return templateError(name, err)
	}
	// html/template finds escaping problems only when it first executes.
	// Executing with no data surfaces them now; the lookup errors that the
	// missing data causes are expected and ignored.
	var escErr *htmltemplate.Error
	if err := h.Execute(io.Discard, nil); errors.As(err, &escErr) {
		if escErr.ErrorCode == htmltemplate.ErrEndContext {
			// Its message names no line, only html/template's state.
			return errorf(name, "line %d: the template ends inside %s", strings.Count(src, "\n")+1, unclosed(escErr.Description))
		}
		return templateError(name, err)
	}
	return nil
}

// unclosed says what an html template left open, from the state that
// html/template's ErrEndContext describes ("{stateURL delimDoubleQuote …}").
func unclosed(state string) string {
	for _, c := range []struct{ in, what string }{
		{"stateHTMLCmt", "a comment: --> is missing"},
		{"delimDoubleQuote", "an attribute's value: its closing \" is missing"},
		{"delimSingleQuote", "an attribute's value: its closing ' is missing"},
		{"elementScript", "a <script>: </script> is missing"},
		{"elementStyle", "a <style>: </style> is missing"},
		{"elementTextarea", "a <textarea>: </textarea> is missing"},
		{"elementTitle", "a <title>: </title> is missing"},
	} {
		if strings.Contains(state, c.in) {
			return c.what
		}
	}
	return "a tag: its > is missing"
}

// Render renders the template source src, named for errors, with d:
// html/template (auto-escaped) when html, text/template otherwise. An
// empty source renders empty. Errors are *Error naming the part and line,
// e.g. `subject: line 1: at <.event.content.nope>: map has no entry for key "nope"`.
func (d *Data) Render(name, src string, html bool) (string, error) {
	if html {
		return htmlTemplates.render(name, src, d.printable)
	}
	return textTemplates.render(name, src, d.printable)
}

// parseText parses src as a text template that spends b as it runs,
// after checking it against the limits and the checks given (checkPaths).
func parseText(name, src string, b *budget, checks ...func(*parse.Tree) error) (*template.Template, error) {
	t, err := template.New(name).Option("missingkey=error").Funcs(b.funcs()).Parse(src)
	if err != nil {
		return nil, err
	}
	if err := checked(t.Tree, len(t.Templates()), checks); err != nil {
		return nil, err
	}
	instrument(t.Tree)
	return t, nil
}

// checked runs checkSet and checks on tree, before it is instrumented.
func checked(tree *parse.Tree, templates int, checks []func(*parse.Tree) error) error {
	if err := checkSet(tree, templates); err != nil {
		return err
	}
	for _, check := range checks {
		if err := check(tree); err != nil {
			return err
		}
	}
	return nil
}

// parseHTML is parseText for html/template, which escapes what the
// instrumented tree writes when it first executes.
func parseHTML(name, src string, b *budget, checks ...func(*parse.Tree) error) (*htmltemplate.Template, error) {
	t, err := htmltemplate.New(name).Option("missingkey=error").Funcs(htmltemplate.FuncMap(b.funcs())).Parse(src)
	if err != nil {
		return nil, err
	}
	if err := checked(t.Tree, len(t.Templates()), checks); err != nil {
		return nil, err
	}
	instrument(t.Tree)
	return t, nil
}

// executor is what text/template and html/template have in common.
type executor interface {
	Execute(w io.Writer, data any) error
}

// templates keeps the templates Render parsed, checked and instrumented,
// so that a template is parsed once per process rather than once per
// mail (and an HTML one escaped once): by name and source, a pool of
// them, each bound to a budget of its own (its functions spend it), which
// a rendering resets, so each gets the whole budget and renderings run
// concurrently on different copies. Sources over maxCachedSource are
// parsed for each rendering, as before; the sources kept add up to at
// most maxCachedBytes, past which the cache starts over.
type templates struct {
	parse func(name, src string, b *budget) (executor, error)
	pools sync.Map // templateKey → *sync.Pool of *parsed

	mu    sync.Mutex // adding a source
	bytes int        // of the sources kept
}

type templateKey struct{ name, src string }

// parsed is a template bound to its budget.
type parsed struct {
	t executor
	b *budget
}

const (
	maxCachedSource = 64 << 10
	maxCachedBytes  = 16 << 20
)

var (
	textTemplates = &templates{parse: func(name, src string, b *budget) (executor, error) { return parseText(name, src, b) }}
	htmlTemplates = &templates{parse: func(name, src string, b *budget) (executor, error) { return parseHTML(name, src, b) }}
)

// pool returns the pool of src's copies, adding it; nil when src is not
// kept.
func (c *templates) pool(name, src string) *sync.Pool {
	key := templateKey{name, src}
	if p, ok := c.pools.Load(key); ok {
		return p.(*sync.Pool)
	}
	if len(src) > maxCachedSource {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.pools.Load(key); ok {
		return p.(*sync.Pool)
	}
	if c.bytes+len(src) > maxCachedBytes {
		c.pools.Clear()
		c.bytes = 0
	}
	p := &sync.Pool{}
	c.pools.Store(key, p)
	c.bytes += len(src)
	return p
}

// render renders src with data under a whole budget.
func (c *templates) render(name, src string, data any) (string, error) {
	if src == "" {
		return "", nil
	}
	pool := c.pool(name, src)
	var p *parsed
	if pool != nil {
		p, _ = pool.Get().(*parsed)
	}
	if p == nil {
		b := newBudget()
		t, err := c.parse(name, src, b)
		if err != nil {
			return "", templateError(name, err) // refused when saved: rare
		}
		p = &parsed{t: t, b: b}
	}
	if pool != nil {
		defer pool.Put(p)
	}
	p.b.left = maxSteps
	var b strings.Builder
	if err := p.t.Execute(&limitedWriter{w: &b, n: maxOutput}, data); err != nil {
		return "", templateError(name, err)
	}
	return b.String(), nil
}

var templateErrorPattern = regexp.MustCompile(`^(?:html/)?template: ?[^:]*:(\d+)(?::\d+)?: (?:executing "[^"]*" at (<[^>]*>): )?(.*)$`)

// templateError rewords a template package error as an *Error on path,
// keeping the line and the failing action; a rendering out of steps names
// the line alone, as the action is the budget's, not the admin's.
func templateError(path string, err error) *Error {
	m := templateErrorPattern.FindStringSubmatch(err.Error())
	if m == nil {
		return errorf(path, "%v", err)
	}
	line, _ := strconv.Atoi(m[1])
	if stepsExceeded(err) {
		return errorf(path, "line %d: %v", line, errTooManySteps)
	}
	// The budget's functions and types are not the admin's.
	msg := strings.ReplaceAll(m[3], "sandbox.number", "number")
	for _, fn := range []string{rangeFunc, readFunc, printFunc, truthFunc, captureFunc} {
		msg = strings.TrimPrefix(msg, "error calling "+fn+": ")
	}
	msg = strings.ReplaceAll(strings.ReplaceAll(msg, " | "+printFunc, ""), " | "+truthFunc, "") // html/template's errors quote the action
	if c := cantEvaluate.FindStringSubmatch(msg); c != nil {
		msg = fmt.Sprintf("no field %q: the value it is read from is not an object", c[1])
	}
	// A value that fails only once printed (what index found absent) fails
	// in the print that printed added, which is no action of the admin's.
	if m[2] != "" && m[2] != "<"+printFunc+">" && m[2] != "<"+captureFunc+">" {
		return errorf(path, "line %d: at %s: %s", line, unmetered(m[2]), msg)
	}
	return errorf(path, "line %d: %s", line, msg)
}

// unmetered returns the action s as the admin wrote it, without what
// meter, truthful and printed inserted: (_sandboxRead X) and
// (_sandboxTruth X) are X, | _sandboxRead, | _sandboxTruth and
// | _sandboxPrint are nothing, and a range's step is the range.
func unmetered(s string) string {
	for _, fn := range []string{readFunc, truthFunc, printFunc} {
		s = strings.ReplaceAll(s, " | "+fn, "")
	}
	if m := rangeStepAction.FindStringSubmatch(s); m != nil {
		return "<range " + m[1] + ">"
	}
	for _, fn := range []string{readFunc, truthFunc} {
		if strings.HasPrefix(s, "<"+fn+" ") { // <_sandboxRead (or .a .b)>
			s = strings.TrimPrefix(s, "<"+fn+" ")
			if strings.HasPrefix(s, "(") && strings.HasSuffix(s, ")>") {
				s = strings.TrimSuffix(strings.TrimPrefix(s, "("), ")>") + ">"
			}
			s = "<" + s
		}
		for {
			i := strings.Index(s, "("+fn+" ")
			if i < 0 {
				break
			}
			depth, j := 0, i
			for ; j < len(s); j++ {
				if s[j] == '(' {
					depth++
				} else if s[j] == ')' {
					if depth--; depth == 0 {
						break
					}
				}
			}
			if j == len(s) {
				return s
			}
			s = s[:i] + s[i+len(fn)+2:j] + s[j+1:]
		}
	}
	return s
}

// rangeStepAction matches the step of a range (see instrument), whose
// error is the range's: <_sandboxRange 3 .content.list>.
var rangeStepAction = regexp.MustCompile(`^<` + rangeFunc + ` \d+ (.*)>$`)

// cantEvaluate matches the template package's words for a field read from
// a value that has none (a string, a number): its Go type, not the admin's.
var cantEvaluate = regexp.MustCompile(`^can't evaluate field (\S+) in type .*$`)

// CheckJSON checks, as Check does, every templated string of a JSON value
// whose path is path, so that a syntax error is found when the value is
// saved rather than each time it is resolved. Errors are *Error naming the
// string's path, e.g. `data.user.id: line 1: unclosed action`. A value
// that is not JSON has nothing to check.
func CheckJSON(raw json.RawMessage, path string) error {
	if !bytes.Contains(raw, []byte("{{")) {
		return nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil
	}
	return checkValue(v, path)
}

func checkValue(v any, path string) error {
	switch v := v.(type) {
	case string:
		if IsTemplate(v) {
			return Check(path, v, false)
		}
	case []any:
		for i, e := range v {
			if err := checkValue(e, path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			if err := checkValue(v[k], path+"."+k); err != nil {
				return err
			}
		}
	}
	return nil
}
