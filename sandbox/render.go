package sandbox

import (
	"errors"
	htmltemplate "html/template"
	"io"
	"regexp"
	"strconv"
	"strings"
	"text/template"
)

// Check parses the template source src, named for errors, and applies the
// limits, as done when a template is saved; html selects html/template,
// whose contextual escaping problems (an action inside an attribute name,
// an unclosed tag) are found too. Errors are *Error naming the part and
// the line, e.g. `html: line 3: unexpected "}" in operand`.
func Check(name, src string, html bool) error {
	if !html {
		if _, err := parseText(name, src, newBudget()); err != nil {
			return templateError(name, err)
		}
		return nil
	}
	h, err := parseHTML(name, src, newBudget())
	if err != nil {
		return templateError(name, err)
	}
	// html/template finds escaping problems only when it first executes.
	// Executing with no data surfaces them now; the lookup errors that the
	// missing data causes are expected and ignored.
	var escErr *htmltemplate.Error
	if err := h.Execute(io.Discard, nil); errors.As(err, &escErr) {
		return templateError(name, err)
	}
	return nil
}

// Render renders the template source src, named for errors, with d:
// html/template (auto-escaped) when html, text/template otherwise. An
// empty source renders empty. Errors are *Error naming the part and line,
// e.g. `subject: line 1: at <.event.content.nope>: map has no entry for key "nope"`.
func (d *Data) Render(name, src string, html bool) (string, error) {
	if html {
		return render(name, src, d.printable, parseHTML)
	}
	return render(name, src, d.printable, parseText)
}

// parseText parses src as a text template that spends b as it runs,
// after checking it against the limits.
func parseText(name, src string, b *budget) (*template.Template, error) {
	t, err := template.New(name).Option("missingkey=error").Funcs(b.funcs()).Parse(src)
	if err != nil {
		return nil, err
	}
	if err := checkSet(t.Tree, len(t.Templates())); err != nil {
		return nil, err
	}
	instrument(t.Tree)
	return t, nil
}

// parseHTML is parseText for html/template, which escapes what the
// instrumented tree writes when it first executes.
func parseHTML(name, src string, b *budget) (*htmltemplate.Template, error) {
	t, err := htmltemplate.New(name).Option("missingkey=error").Funcs(htmltemplate.FuncMap(b.funcs())).Parse(src)
	if err != nil {
		return nil, err
	}
	if err := checkSet(t.Tree, len(t.Templates())); err != nil {
		return nil, err
	}
	instrument(t.Tree)
	return t, nil
}

// executor is what text/template and html/template have in common.
type executor interface {
	Execute(w io.Writer, data any) error
}

// render renders src with data under a budget of its own.
func render[T executor](name, src string, data any, parse func(name, src string, b *budget) (T, error)) (string, error) {
	if src == "" {
		return "", nil
	}
	t, err := parse(name, src, newBudget())
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
	if m[2] != "" {
		return errorf(path, "line %d: at %s: %s", line, m[2], m[3])
	}
	return errorf(path, "line %d: %s", line, m[3])
}
