package sandbox

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"text/template/parse"
	"time"
)

// Templates are written by admins and run against events that anyone with
// CREATE_EVENTS sends, in the worker and in the API's dry run. Go templates
// are not a sandbox — `{{range 100000000000}}` spins a CPU forever — so
// these limits keep every rendering bounded:
//   - range may only iterate over data (a field path), never over a number,
//     a variable holding one, or a function's result, and nests at most
//     maxRangeDepth deep;
//   - integer literals stay within ±maxIntLiteral;
//   - {{define}}, {{template}} and {{block}} are refused (they allow
//     recursion);
//   - the data has no methods that return numbers (times are strings,
//     numbers a type none of whose methods gives one). Its lists and maps
//     are whole, so that len counts every item and a template finds every
//     key by name: a range pays a step per item, and the budget bounds it;
//   - every rendering has a budget of maxSteps steps (budget.go), which
//     bounds the work that writes no output;
//   - printf refuses widths and precisions beyond maxWidth (funcs.go);
//   - the output of one rendering stops at maxOutput bytes.
//
// When a template is saved (Check), checkPaths also refuses field paths
// that no event has (.evnt, .event.contnt), wherever they read the data
// itself: a rendering that reaches one fails. Not when it renders: one in
// a branch no event took rendered before, and renders still.
const (
	maxRangeDepth = 2
	maxIntLiteral = 1000
	maxOutput     = 1 << 20
)

// checkSet checks a parsed template: one tree, and no other templates
// defined beside it.
func checkSet(tree *parse.Tree, templates int) error {
	if templates > 1 {
		return fmt.Errorf("template: %s:1: {{template}}, {{define}} and {{block}} are not supported", tree.ParseName)
	}
	return checkTree(tree)
}

// checkTree refuses template constructs that could run unbounded. Its
// errors read like the template package's own ("template: NAME:LINE:
// ..."), so they name the line the same way.
func checkTree(tree *parse.Tree) error {
	if tree == nil || tree.Root == nil {
		return nil
	}
	c := checker{tree: tree}
	return c.node(tree.Root, 0)
}

// checkPaths is checkTree with the field paths of the data checked too.
func checkPaths(tree *parse.Tree) error {
	if tree == nil || tree.Root == nil {
		return nil
	}
	c := checker{tree: tree, paths: true, root: true}
	return c.node(tree.Root, 0)
}

// checker walks a tree; paths says it checks field paths of the data,
// root that dot is the data itself, not an item of a range or the value
// of a with.
type checker struct {
	tree        *parse.Tree
	paths, root bool
}

// inner is c within a range or a with, where dot is another value.
func (c checker) inner() checker {
	c.root = false
	return c
}

func (c checker) errorf(n parse.Node, format string, args ...any) error {
	loc, _ := c.tree.ErrorContext(n)
	return fmt.Errorf("template: %s: %s", loc, fmt.Sprintf(format, args...))
}

func (c checker) node(n parse.Node, depth int) error {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, child := range n.Nodes {
			if err := c.node(child, depth); err != nil {
				return err
			}
		}
	case *parse.ActionNode:
		return c.pipe(n.Pipe)
	case *parse.IfNode:
		return c.branch(&n.BranchNode, depth, c)
	case *parse.WithNode:
		return c.branch(&n.BranchNode, depth, c.inner())
	case *parse.RangeNode:
		if depth+1 > maxRangeDepth {
			return c.errorf(n, "range nests deeper than %d", maxRangeDepth)
		}
		if !rangeable(n.Pipe) {
			return c.errorf(n, "range may only iterate over a field of the event, like .content.items")
		}
		return c.branch(&n.BranchNode, depth+1, c.inner())
	case *parse.TemplateNode:
		return c.errorf(n, "{{template}}, {{define}} and {{block}} are not supported")
	}
	return nil
}

// branch checks b, whose list runs with body (dot rebound by a range or
// a with) and whose else list with c.
func (c checker) branch(b *parse.BranchNode, depth int, body checker) error {
	if err := c.pipe(b.Pipe); err != nil {
		return err
	}
	if err := body.node(b.List, depth); err != nil {
		return err
	}
	if b.ElseList != nil {
		return c.node(b.ElseList, depth)
	}
	return nil
}

// pipe refuses integer literals beyond ±maxIntLiteral anywhere, the
// functions of the step budget, which are the sandbox's, not the
// template's, and calls every rendering would refuse (call).
func (c checker) pipe(p *parse.PipeNode) error {
	if p == nil {
		return nil
	}
	for i, cmd := range p.Cmds {
		for _, arg := range cmd.Args {
			if err := c.arg(arg); err != nil {
				return err
			}
		}
		if err := c.call(cmd, i > 0); err != nil {
			return err
		}
	}
	return nil
}

// call refuses a call of formatTime with other than its two arguments,
// and of printf with a literal format over the limits or with other than
// an argument for each verb: each rendering would fail on it. piped says the pipeline's value comes as a last
// argument.
func (c checker) call(cmd *parse.CommandNode, piped bool) error {
	fn, ok := cmd.Args[0].(*parse.IdentifierNode)
	if !ok {
		return nil
	}
	args := cmd.Args[1:]
	switch n := len(args); {
	case fn.Ident == "formatTime" && piped && n != 1, fn.Ident == "formatTime" && !piped && n != 2:
		if piped {
			n++
		}
		return c.errorf(cmd, "formatTime takes 2 arguments, not %d: {{ formatTime .event.time \"2006-01-02\" }}", n)
	case fn.Ident == "printf" && n > 0:
		if format, ok := args[0].(*parse.StringNode); ok {
			f, err := parseFormat(format.Text)
			if err != nil {
				return c.errorf(cmd, "%v", err)
			}
			if piped {
				n++
			}
			if given := n - 1; given < f.args || !f.indexed && given > f.args {
				return c.errorf(cmd, "%v", f.wrongCount(given))
			}
		}
	}
	return nil
}

func (c checker) arg(arg parse.Node) error {
	switch a := arg.(type) {
	case *parse.NumberNode:
		if a.IsInt && (a.Int64 > maxIntLiteral || a.Int64 < -maxIntLiteral) {
			return c.errorf(a, "integer %s is beyond ±%d", a.Text, maxIntLiteral)
		}
	case *parse.IdentifierNode:
		if a.Ident == stepFunc || a.Ident == rangeFunc || a.Ident == readFunc || a.Ident == printFunc || a.Ident == truthFunc || a.Ident == captureFunc {
			return c.errorf(a, "function %q not defined", a.Ident)
		}
	case *parse.NilNode:
		// It names no value of the event, and prints "<nil>" or
		// "<no value>" wherever it is given (print nil, html nil).
		return c.errorf(a, "nil is not a value a template may use")
	case *parse.FieldNode:
		if c.paths && c.root {
			return c.path(a, a.Ident)
		}
	case *parse.VariableNode:
		if c.paths && a.Ident[0] == "$" && len(a.Ident) > 1 {
			return c.path(a, a.Ident[1:])
		}
	case *parse.ChainNode:
		return c.arg(a.Node)
	case *parse.PipeNode:
		return c.pipe(a)
	}
	return nil
}

// eventFields are the fields of .event (NewData); content is the only one
// with fields of its own.
var eventFields = []string{"id", "type", "content", "creationTimestamp", "time", "source"}

// path refuses a field path of the data that no event has: one not under
// .event or .content, a field .event does not have, or one of a field
// that has none.
func (c checker) path(n parse.Node, idents []string) error {
	switch {
	case idents[0] == "content":
		return nil
	case idents[0] != "event":
		return c.errorf(n, "no event has .%s: a template sees .event (%s) and .content, the event's content",
			idents[0], strings.Join(eventFields, ", "))
	case len(idents) == 1 || idents[1] == "content":
		return nil
	case !slices.Contains(eventFields, idents[1]):
		return c.errorf(n, "no event has .event.%s: .event has %s", idents[1], strings.Join(eventFields, ", "))
	case len(idents) > 2:
		return c.errorf(n, ".event.%s has no field %s: only .event.content has fields", idents[1], idents[2])
	}
	return nil
}

// rangeable reports whether a range pipeline is a field path of the data
// (.a.b, $.a, $item.lines), not a number, a plain variable or a function.
func rangeable(p *parse.PipeNode) bool {
	if len(p.Cmds) != 1 || len(p.Cmds[0].Args) != 1 {
		return false
	}
	switch a := p.Cmds[0].Args[0].(type) {
	case *parse.FieldNode:
		return true
	case *parse.VariableNode:
		return len(a.Ident) > 1 || a.Ident[0] == "$"
	case *parse.ChainNode:
		_, ok := a.Node.(*parse.FieldNode)
		return ok
	}
	return false
}

// printable returns the data templates execute with: JSON nulls as null
// (text/template prints nil as "<no value>"), numbers as number, times as
// RFC 3339 strings.
func printable(v any) any {
	switch v := v.(type) {
	case nil:
		return null("")
	case json.Number:
		return number(v)
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[k] = printable(e)
		}
		return m
	case []any:
		s := make([]any, len(v))
		for i, e := range v {
			s[i] = printable(e)
		}
		return s
	default:
		return v
	}
}

// errOutputTooLong stops a rendering whose output passed maxOutput.
var errOutputTooLong = fmt.Errorf("the output is longer than %d bytes", maxOutput)

// limitedWriter fails once more than n bytes were written.
type limitedWriter struct {
	w interface{ Write([]byte) (int, error) }
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n -= len(p); l.n < 0 {
		return 0, errOutputTooLong
	}
	return l.w.Write(p)
}
