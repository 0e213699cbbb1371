package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"text/template/parse"
)

// A rendering's work is bounded by a budget of steps, because the other
// limits bound the output, not the work that writes none:
// {{range .a}}{{range $.a}}{{end}}{{end}} over two lists of a thousand, or
// {{$s := printf "%v" $.content}} in a loop, ran for seconds without a
// byte of output. A step is
//   - one node of an action, if, with or range pipeline that runs: the
//     node itself, each command, argument and field name
//     ({{.content.name}} is 1 + 1 + 2);
//   - one iteration of a range, and one key of a map it ranges over (range
//     sorts the keys first);
//   - stepBytes bytes of text that a function builds (see funcs.go), of a
//     string that a comparison or index reads (see meter), or of what an
//     action prints (see printed): html/template's escaper reads all of
//     it, and in some places writes next to nothing ("ZgotmplZ" for an
//     attribute name or CSS), so the output's limit did not bound that
//     work: a loop printing one long string as an attribute name ran a
//     minute.
//
// Steps are paid in advance, by nodes that instrument inserts: a list of
// nodes pays for the pipelines it holds when it starts, and a range pays
// for all its iterations when it starts (a {{break}} does not refund
// them), so a loop costs one payment, not one per node it runs. Only what
// a built-in reads of a string is paid as it runs: comparing two of the
// event's strings of 400 KB, 93 times in a loop of 1,000, took a second.
//
// A mail with a table of 500 rows of 11 cells takes about 24,000 steps
// (TestOrdinaryTemplateWithinBudget), one of the longest list, 1,000 rows,
// about 50,000. No step does more work than reading stepBytes of a
// string, so no rendering runs for long, whatever the template and the
// event.
const (
	maxSteps  = 100_000
	stepBytes = 256
)

// errTooManySteps fails a rendering that used up its budget.
var errTooManySteps = fmt.Errorf("the template took more than %d steps", maxSteps)

// The names the instrumented tree calls the budget by; checkTree refuses
// them in templates.
const (
	stepFunc    = "_sandboxStep"
	rangeFunc   = "_sandboxRange"
	readFunc    = "_sandboxRead"
	printFunc   = "_sandboxPrint"
	truthFunc   = "_sandboxTruth"
	captureFunc = "_sandboxCapture"
)

// budget is the step budget of one rendering (or of one resolved value,
// whose strings share it). It is not safe for concurrent use; a rendering
// runs on one goroutine.
type budget struct {
	left int
	// captured is the value of the expression that a resolved string is
	// (see resolver.resolve), which captureFunc keeps instead of printing.
	captured any
}

func newBudget() *budget { return &budget{left: maxSteps} }

// spend takes n steps from the budget, failing once it is exhausted.
func (b *budget) spend(n int) error {
	b.left -= max(n, 0)
	if b.left < 0 {
		return errTooManySteps
	}
	return nil
}

// spendBytes takes the steps that building n bytes of text costs.
func (b *budget) spendBytes(n int) error {
	return b.spend((n + stepBytes - 1) / stepBytes)
}

// bytesLeft is how many bytes of text the budget can still pay for.
func (b *budget) bytesLeft() int { return max(b.left, 0) * stepBytes }

// step is stepFunc: a list pays n steps for its nodes. It reports false,
// so the {{if}} it is called from writes nothing.
func (b *budget) step(n int) (bool, error) { return false, b.spend(n) }

// rangeStep is rangeFunc: a range over v pays perIteration steps for each
// of its iterations, and a step for each key it sorts.
func (b *budget) rangeStep(perIteration int, v any) (bool, error) {
	perIteration = max(perIteration, 1)
	switch v := v.(type) {
	case map[string]any:
		return false, b.spend(len(v) * (perIteration + 1))
	case []any:
		return false, b.spend(len(v) * perIteration)
	}
	// text/template's own error would quote the value, the event's
	// content (see kind).
	return false, fmt.Errorf("range can't iterate over %s", kind(v))
}

// read is readFunc: it pays for the bytes of v, if v is a string, and
// returns v as it is; it refuses what index found absent, which an
// escaper would print (html/template runs its own html, js and urlquery
// escapers in place of those funcs gives, so only here can they refuse
// it).
func (b *budget) read(v any) (any, error) {
	switch s := v.(type) {
	case *absent:
		return nil, errAbsent
	case string:
		return v, b.spendBytes(len(s))
	case number:
		return v, b.spendBytes(len(s))
	}
	return v, nil
}

// print is printFunc: it pays for what printing v writes (see
// printedSize) past the first stepBytes, which the action's own step
// covers, before the escaper reads it, and returns v as it is, but an
// object or a list as JSON, where fmt would write Go's map[k:v]. It
// refuses to print what index found absent.
func (b *budget) print(v any) (any, error) {
	if err := present(v); err != nil {
		return nil, err
	}
	if err := b.spend(printedSize(v, b.bytesLeft()+stepBytes) / stepBytes); err != nil {
		return nil, err
	}
	switch v.(type) {
	case map[string]any, []any:
		return jsonText(v)
	}
	return v, nil
}

// jsonText is v, an object or a list of the event, as the JSON text that
// whatever prints one writes (print, printf, the other printing
// functions).
func jsonText(v any) (string, error) {
	var out bytes.Buffer
	err := writeJSON(&out, "", v)
	return out.String(), err
}

// capture is captureFunc: it pays as print does and keeps v as the
// value of the expression, printing nothing.
func (b *budget) capture(v any) (string, error) {
	if err := present(v); err != nil {
		return "", err
	}
	b.captured = v
	return "", b.spend(printedSize(v, b.bytesLeft()+stepBytes) / stepBytes)
}

// reading are the built-ins whose work grows with the strings they are
// given: a comparison reads both, index hashes a map's key; and the
// escapers, which must not print what index found absent.
var reading = map[string]bool{"eq": true, "ne": true, "lt": true, "le": true, "gt": true, "ge": true, "index": true,
	"html": true, "js": true, "urlquery": true}

// meter makes the reading built-ins of p, and of the pipelines in its
// arguments, pay for the strings they read: each argument that is not a
// literal becomes (_sandboxRead arg), and a value piped into one passes
// through | _sandboxRead first.
func meter(tree *parse.Tree, p *parse.PipeNode) { through(tree, p, reading, readFunc) }

// deciding are the built-ins that take their arguments for true or false.
var deciding = map[string]bool{"and": true, "or": true, "not": true}

// truthful makes an event's number that is zero false where the template
// decides on it, as the template's own 0 is (an event's number is kept as
// text, which is true unless empty): {{ if .event.content.unread }} or
// {{ or .event.content.count "none" }} with a count of 0. The arguments
// of and, or and not pass through _sandboxTruth as meter's pass through
// _sandboxRead, and the value of the pipeline of an if or a with (branch)
// passes through it last.
func truthful(tree *parse.Tree, p *parse.PipeNode, branch bool) {
	through(tree, p, deciding, truthFunc)
	if branch && p != nil {
		p.Cmds = append(p.Cmds, command(tree, truthFunc, p.Pos))
	}
}

// through makes the calls of p to the built-ins builtins, and those of
// the pipelines in their arguments, pass their arguments through fn: each
// argument that is not a literal becomes (fn arg), and a value piped into
// one passes through | fn first.
func through(tree *parse.Tree, p *parse.PipeNode, builtins map[string]bool, fn string) {
	if p == nil {
		return
	}
	cmds := make([]*parse.CommandNode, 0, len(p.Cmds))
	for i, cmd := range p.Cmds {
		for _, arg := range cmd.Args {
			switch a := arg.(type) {
			case *parse.PipeNode:
				through(tree, a, builtins, fn)
			case *parse.ChainNode:
				if sub, ok := a.Node.(*parse.PipeNode); ok {
					through(tree, sub, builtins, fn)
				}
			}
		}
		if id, ok := cmd.Args[0].(*parse.IdentifierNode); ok && builtins[id.Ident] {
			if i > 0 {
				cmds = append(cmds, command(tree, fn, cmd.Pos))
			}
			for j, arg := range cmd.Args[1:] {
				switch arg.(type) {
				case *parse.FieldNode, *parse.VariableNode, *parse.ChainNode, *parse.PipeNode, *parse.DotNode:
					call := command(tree, fn, arg.Position(), arg)
					cmd.Args[1+j] = &parse.PipeNode{NodeType: parse.NodePipe, Pos: arg.Position(), Cmds: []*parse.CommandNode{call}}
				}
			}
		}
		cmds = append(cmds, cmd)
	}
	p.Cmds = cmds
}

// command returns the command fn args... at pos.
func command(tree *parse.Tree, fn string, pos parse.Pos, args ...parse.Node) *parse.CommandNode {
	id := parse.NewIdentifier(fn).SetTree(tree).SetPos(pos)
	return &parse.CommandNode{NodeType: parse.NodeCommand, Pos: pos, Args: append([]parse.Node{id}, args...)}
}

// instrument makes tree pay for its work as it runs. At the start of
// every list of nodes (the template, the branches of if and with, the
// else of range) it inserts {{if _sandboxStep N}}{{end}}, N being the
// size of the pipelines the list holds, and before every range
// {{if _sandboxRange N .the.field}}{{end}}, N being the size of its body's
// pipelines plus one. An {{if}} that is never true writes nothing,
// declares no variable, and is left alone by html/template's escaper, so
// the output, the escaping and the variables stay exactly as written. The
// range's field path (checkTree made it one) is evaluated twice; that is
// cheap, and fails, if it does, with the error the range would give.
func instrument(tree *parse.Tree) {
	if tree == nil || tree.Root == nil {
		return
	}
	tree.Root = instrumentList(tree, tree.Root, true)
}

// instrumentList returns l with the steps of the lists below it, and with
// its own step when pays (a range body's iterations are paid by the
// range).
func instrumentList(tree *parse.Tree, l *parse.ListNode, pays bool) *parse.ListNode {
	if l == nil {
		return nil
	}
	out := &parse.ListNode{NodeType: parse.NodeList, Pos: l.Pos}
	if w := listSize(l); pays && w > 0 {
		out.Nodes = append(out.Nodes, stepNode(tree, l.Pos, stepFunc, w))
	}
	for _, n := range l.Nodes {
		switch n := n.(type) {
		case *parse.ActionNode:
			meter(tree, n.Pipe)
			truthful(tree, n.Pipe, false)
			printed(tree, n.Pipe)
		case *parse.IfNode:
			meter(tree, n.Pipe)
			truthful(tree, n.Pipe, true)
			n.List = instrumentList(tree, n.List, true)
			n.ElseList = instrumentList(tree, n.ElseList, true)
		case *parse.WithNode:
			meter(tree, n.Pipe)
			truthful(tree, n.Pipe, true)
			n.List = instrumentList(tree, n.List, true)
			n.ElseList = instrumentList(tree, n.ElseList, true)
		case *parse.RangeNode:
			out.Nodes = append(out.Nodes, stepNode(tree, n.Pos, rangeFunc, 1+listSize(n.List), n.Pipe.Cmds[0].Args[0]))
			n.List = instrumentList(tree, n.List, false)
			n.ElseList = instrumentList(tree, n.ElseList, true)
		}
		out.Nodes = append(out.Nodes, n)
	}
	return out
}

// printed makes an action that prints pay for what it prints: its value
// passes through | _sandboxPrint, before a closing html or urlquery,
// which html/template wants last. An action that declares a variable
// prints nothing.
func printed(tree *parse.Tree, p *parse.PipeNode) {
	if p == nil || len(p.Decl) > 0 || len(p.Cmds) == 0 {
		return
	}
	at := len(p.Cmds)
	if id, ok := p.Cmds[at-1].Args[0].(*parse.IdentifierNode); ok && (id.Ident == "html" || id.Ident == "urlquery") {
		if at == 1 {
			return // {{html .x}}: the function pays (funcs)
		}
		at--
	}
	print := &parse.CommandNode{NodeType: parse.NodeCommand, Pos: p.Pos,
		Args: []parse.Node{parse.NewIdentifier(printFunc).SetTree(tree).SetPos(p.Pos)}}
	p.Cmds = slices.Insert(p.Cmds, at, print)
}

// listSize is what running the pipelines of l's own nodes costs.
func listSize(l *parse.ListNode) int {
	if l == nil {
		return 0
	}
	n := 0
	for _, node := range l.Nodes {
		switch node := node.(type) {
		case *parse.ActionNode:
			n += 1 + pipeSize(node.Pipe)
		case *parse.IfNode:
			n += 1 + pipeSize(node.Pipe)
		case *parse.WithNode:
			n += 1 + pipeSize(node.Pipe)
		case *parse.RangeNode:
			n += 1 + pipeSize(node.Pipe)
		}
	}
	return n
}

// stepNode returns {{if fn n args...}}{{end}} at pos, so that running out
// of steps names the line of the list or range that pays.
func stepNode(tree *parse.Tree, pos parse.Pos, fn string, n int, args ...parse.Node) parse.Node {
	id := parse.NewIdentifier(fn).SetTree(tree).SetPos(pos)
	weight := &parse.NumberNode{NodeType: parse.NodeNumber, Pos: pos, IsInt: true, Int64: int64(n), Text: fmt.Sprint(n)}
	cmd := &parse.CommandNode{NodeType: parse.NodeCommand, Pos: pos, Args: append([]parse.Node{id, weight}, args...)}
	pipe := &parse.PipeNode{NodeType: parse.NodePipe, Pos: pos, Cmds: []*parse.CommandNode{cmd}}
	return &parse.IfNode{BranchNode: parse.BranchNode{NodeType: parse.NodeIf, Pos: pos, Pipe: pipe,
		List: &parse.ListNode{NodeType: parse.NodeList, Pos: pos}}}
}

// pipeSize counts the nodes of a pipeline: commands, arguments, and the
// names of field chains, which cost a lookup each.
func pipeSize(p *parse.PipeNode) int {
	if p == nil {
		return 0
	}
	n := len(p.Decl)
	for _, cmd := range p.Cmds {
		n++
		for _, arg := range cmd.Args {
			n += argSize(arg)
		}
	}
	return n
}

func argSize(arg parse.Node) int {
	switch a := arg.(type) {
	case *parse.FieldNode:
		return len(a.Ident)
	case *parse.VariableNode:
		return len(a.Ident)
	case *parse.ChainNode:
		return len(a.Field) + argSize(a.Node)
	case *parse.PipeNode:
		return pipeSize(a)
	}
	return 1
}

// stepsExceeded reports whether err is a rendering that ran out of steps.
func stepsExceeded(err error) bool { return errors.Is(err, errTooManySteps) }

// isStep reports whether n is a node that instrument inserted.
func isStep(n *parse.IfNode) bool {
	if n.Pipe == nil || len(n.Pipe.Cmds) != 1 || len(n.Pipe.Cmds[0].Args) == 0 {
		return false
	}
	id, ok := n.Pipe.Cmds[0].Args[0].(*parse.IdentifierNode)
	return ok && (id.Ident == stepFunc || id.Ident == rangeFunc)
}

// isPrint reports whether cmd is the | _sandboxPrint that printed added.
func isPrint(cmd *parse.CommandNode) bool {
	id, ok := cmd.Args[0].(*parse.IdentifierNode)
	return ok && len(cmd.Args) == 1 && id.Ident == printFunc
}
