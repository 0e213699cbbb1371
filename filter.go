package dispatcher

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/cost"
	celenv "cel.dev/cel-go/common/env"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/overloads"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
)

// A dispatcher's Filter is a CEL expression (https://cel.dev) over the
// event, true for the events the dispatcher acts on:
//
//	event.type == "order_paid" && event.content.amount > 100
//
// It sees event.type, event.id and event.source (strings), event.content
// (the event's JSON content: objects, lists, strings, numbers, booleans,
// null) and event.time (a timestamp). It is compiled and type-checked when
// the dispatcher is saved, and evaluated once per event where the
// configuration of a dispatch is resolved (the intake, or the LoadConfig
// activity), never in workflow code: the dispatch's history records the
// outcome, so a filter changed later never changes a running dispatch.
const (
	// MaxFilterLength bounds a filter, in bytes.
	MaxFilterLength = 4096
	// MaxFilterCost bounds the work one evaluation may do, in CEL's cost
	// units (about one per operation, more for strings and lists in
	// proportion to their size): a filter that iterates over a large list
	// in the event stops with an error rather than holding the intake.
	MaxFilterCost = 100_000
	// MaxEventFilterCost bounds the work of all the filters of an event
	// type together for one event: past it, each filter not evaluated yet
	// may do smallFilterCost, which a plain comparison needs a few units
	// of (the sender of an event must not be able to switch off a
	// dispatcher by making the ones before it costly), and one that needs
	// more is skipped (filter-error). An event type may have hundreds.
	MaxEventFilterCost = 2 * MaxFilterCost
	smallFilterCost    = 1_000
	// MaxFilterTime bounds a filter's evaluation in time, a backstop for
	// what the cost model misses; a filter takes microseconds. It is long
	// enough that a busy machine's stalls never reach it: CEL checks it
	// only in loops, and a filter it stops skips its dispatcher.
	MaxFilterTime = time.Second
)

// A regular expression runs in time proportional to the string's length
// times the size of its compiled program, which CEL's own cost model does
// not see (it charges the pattern's length: a 12-byte pattern can compile
// to a thousand instructions), and a call cannot be interrupted. So a
// filter's matches is its own: charged that product, matchWorkPerCost to
// a cost unit, and refused before it runs when it would do more than
// maxMatchWork (10 to 50 ms in the worst case on a busy core). Its pattern
// must be written in the filter, and compile to at most maxRegexpInst
// instructions (literalPatterns): one from the event would be compiled for
// every event, and a pattern of a few kilobytes can compile to megabytes.
const (
	matchWorkPerCost = 20
	maxMatchWork     = 1_000_000
	maxRegexpInst    = 2_000
	// The overloads' ids: the standard library's are still bound.
	matchesGlobal, matchesMember = "filter_matches", "filter_matches_string"
)

// Filter is a compiled filter, safe for concurrent use.
type Filter struct {
	expr  string
	prg   cel.Program
	small cel.Program // at smallFilterCost
}

// filterEnv is the CEL environment of every filter: the event's fields as
// variables, numbers of different types comparable with each other (JSON
// has one kind of number: 3 and 3.0 are the same).
var filterEnv = sync.OnceValues(func() (*cel.Env, error) { return newFilterEnv(maxMatchWork) })

// smallFilterEnv is filterEnv with matches bounded to smallFilterCost.
var smallFilterEnv = sync.OnceValues(func() (*cel.Env, error) { return newFilterEnv(smallFilterCost * matchWorkPerCost) })

func newFilterEnv(maxWork int) (*cel.Env, error) {
	m := cel.BinaryBinding(boundedMatches(maxWork))
	return cel.NewCustomEnv(
		cel.StdLib(cel.StdLibSubset(&celenv.LibrarySubset{ExcludeFunctions: []*celenv.Function{celenv.NewFunction(overloads.Matches)}})),
		cel.Function(overloads.Matches,
			cel.Overload(matchesGlobal, []*cel.Type{cel.StringType, cel.StringType}, cel.BoolType, m),
			cel.MemberOverload(matchesMember, []*cel.Type{cel.StringType, cel.StringType}, cel.BoolType, m)),
		cel.Variable("event.type", cel.StringType),
		cel.Variable("event.id", cel.StringType),
		cel.Variable("event.source", cel.StringType),
		cel.Variable("event.content", cel.DynType),
		cel.Variable("event.time", cel.TimestampType),
		cel.CrossTypeNumericComparisons(true),
		// A literal that could never be read fails every event: refuse
		// it when the dispatcher is saved. Patterns by literalPatterns,
		// which says why (cel's own said "invalid matches argument" only,
		// for a repeat count over 1,000 too).
		cel.ASTValidators(cel.ValidateTimestampLiterals(), cel.ValidateDurationLiterals(), literalPatterns{}),
	)
}

// memo keeps the results of a pure function of a string, safe to share:
// at most maxMemo of them, emptied when full. Its keys are filters and
// their patterns, each at most MaxFilterLength.
type memo[T any] struct {
	mu sync.Mutex
	m  map[string]T
}

const maxMemo = 1024

// of returns f(key), computed once while it is kept.
func (c *memo[T]) of(key string, f func(string) (T, error)) (T, error) {
	c.mu.Lock()
	v, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return v, nil
	}
	v, err := f(key)
	if err != nil {
		return v, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxMemo {
		c.m = map[string]T{}
	}
	c.m[key] = v
	c.mu.Unlock()
	return v, nil
}

// compiledFilters memoises CompileFilter: a filter is compiled when its
// dispatcher is saved and whenever a configuration is resolved for an
// event, which must stay cheap.
var compiledFilters memo[*Filter]

// CompileFilter compiles and type-checks expr. Its errors are EINVALID,
// naming the field "filter" and the line and column of the first problem:
// "filter: line 1, column 15: undeclared reference to 'amount'".
func CompileFilter(expr string) (*Filter, error) {
	return compiledFilters.of(expr, compileFilter)
}

func compileFilter(expr string) (*Filter, error) {
	switch {
	case len(expr) > MaxFilterLength:
		return nil, Errorf(EINVALID, "filter: must be at most %d bytes, not %d", MaxFilterLength, len(expr))
	case !utf8.ValidString(expr) || strings.ContainsRune(expr, 0):
		return nil, Errorf(EINVALID, "filter: must not contain NUL characters or invalid UTF-8")
	}
	env, err := filterEnv()
	if err != nil {
		return nil, fmt.Errorf("the filter environment: %w", err)
	}
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		e := iss.Errors()[0]
		msg := e.Message
		if strings.HasPrefix(msg, "undeclared reference to 'event'") {
			// event.amount: the checker knows no "event" of its own.
			msg += ": an event has event.type, event.id, event.source, event.content and event.time"
		}
		if e.Location.Line() < 1 {
			return nil, Errorf(EINVALID, "filter: %s", msg) // the whole expression: nested too deeply
		}
		return nil, Errorf(EINVALID, "filter: line %d, column %d: %s", e.Location.Line(), e.Location.Column()+1, msg)
	}
	if t := ast.OutputType(); !t.IsExactType(cel.BoolType) && !t.IsExactType(cel.DynType) {
		return nil, Errorf(EINVALID, "filter: line 1, column 1: must be a condition (bool), not %s", t)
	}
	f := &Filter{expr: expr}
	small, err := smallFilterEnv()
	if err == nil {
		f.prg, err = program(env, ast, MaxFilterCost)
	}
	if err == nil {
		f.small, err = program(small, ast, smallFilterCost)
	}
	if err != nil {
		return nil, Errorf(EINVALID, "filter: %v", err)
	}
	return f, nil
}

// program plans ast in env, to stop at limit.
func program(env *cel.Env, ast *cel.Ast, limit uint64) (cel.Program, error) {
	return env.Program(ast, cel.CostLimit(limit), cel.InterruptCheckFrequency(64), cel.CostTracking(dynSizeCost{}),
		cel.CostTrackerOptions(cost.OverloadTracker(matchesGlobal, matchCost), cost.OverloadTracker(matchesMember, matchCost)))
}

// dynSizeCost charges the calls that CEL dispatches when the filter runs
// (no overload chosen when it was checked: event.content's values, whose
// types it does not know) by the size of what they touch. CEL charges
// them a constant: a + of two strings of the event in a loop, or a list
// doubled in nested ones, ran for seconds and took gigabytes.
type dynSizeCost struct{}

func (dynSizeCost) CallCost(function, overloadID string, args []ref.Val, result ref.Val) *uint64 {
	if overloadID != "" {
		return nil
	}
	var n uint64
	switch function {
	case operators.Add, overloads.TypeConvertString, overloads.TypeConvertBytes:
		n = valSize(result)
	case operators.In, operators.Equals, operators.NotEquals, operators.Less, operators.LessEquals, operators.Greater, operators.GreaterEquals:
		for _, a := range args {
			n += valSize(a)
		}
	default:
		return nil
	}
	c := 1 + n/10
	return &c
}

// valSize is the size of a string, bytes, list or map, else 0.
func valSize(v ref.Val) uint64 {
	switch v := v.(type) {
	case types.String:
		return uint64(len(v))
	case types.Bytes:
		return uint64(len(v))
	case traits.Sizer:
		if n, ok := v.Size().(types.Int); ok && n > 0 {
			return uint64(n)
		}
	}
	return 0
}

// String returns the filter's expression.
func (f *Filter) String() string { return f.expr }

// Match evaluates the filter for ev. An error means it could not say: a
// field the event lacks (event.content.amount of an event without one;
// has(event.content.amount) tests for it), a value of the wrong type, a
// result that is not a bool, or more work than MaxFilterCost.
func (f *Filter) Match(ev Event) (bool, error) {
	vars, err := filterVars(ev)
	if err != nil {
		return false, err
	}
	ok, _, err := f.match(vars, false)
	return ok, err
}

// match evaluates the filter with vars, within MaxFilterTime and
// MaxFilterCost (smallFilterCost when small), and says what it cost.
func (f *Filter) match(vars map[string]any, small bool) (bool, uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), MaxFilterTime)
	defer cancel()
	prg := f.prg
	if small {
		prg = f.small
	}
	out, det, err := prg.ContextEval(ctx, vars)
	spent := uint64(MaxFilterCost)
	if c := det.ActualCost(); c != nil {
		spent = *c
	}
	switch {
	case err != nil && ctx.Err() != nil:
		err = fmt.Errorf("stopped: it took longer than it may for this event (%v)", MaxFilterTime)
	case err != nil && strings.HasPrefix(err.Error(), "no such overload"):
		// CEL's words alone named neither the operator nor the types.
		err = fmt.Errorf("%w: an operator or function was given a value of a type it does not take, "+
			"such as a string compared with a number; test the type first, e.g. type(event.content.amount) == int && …", err)
	}
	if err != nil {
		return false, spent, err
	}
	b, ok := out.(types.Bool)
	if !ok {
		// Its type, not its value: the value is the event's content.
		return false, spent, fmt.Errorf("the filter gave a value of type %s, not true or false", out.Type().TypeName())
	}
	return bool(b), spent, nil
}

// boundedRegexp is a compiled regular expression and the size of its
// program.
type boundedRegexp struct {
	re   *regexp.Regexp
	size int
}

// regexps memoises compileRegexp.
var regexps memo[*boundedRegexp]

func compileRegexp(pattern string) (*boundedRegexp, error) {
	return regexps.of(pattern, func(pattern string) (*boundedRegexp, error) {
		parsed, err := syntax.Parse(pattern, syntax.Perl)
		if err != nil {
			return nil, err
		}
		prog, err := syntax.Compile(parsed.Simplify())
		if err != nil {
			return nil, err
		}
		if n := len(prog.Inst); n > maxRegexpInst {
			return nil, fmt.Errorf("the regular expression compiles to %d instructions, more than the %d a filter's may (a{1000} is 1,000)", n, maxRegexpInst)
		}
		re, err := regexp.Compile(pattern)
		if err != nil {
			return nil, err
		}
		return &boundedRegexp{re: re, size: len(prog.Inst)}, nil
	})
}

// literalPatterns refuses a matches whose pattern is not written in the
// filter, or compiles to more than maxRegexpInst instructions.
type literalPatterns struct{}

func (literalPatterns) Name() string { return "dispatcher.literal-patterns" }

func (literalPatterns) Validate(_ *cel.Env, _ cel.ValidatorConfig, a *celast.AST, iss *cel.Issues) {
	for _, call := range celast.MatchDescendants(celast.NavigateAST(a), celast.FunctionMatcher(overloads.Matches)) {
		c := call.AsCall()
		i := 1 // matches(s, pattern)
		if c.IsMemberFunction() {
			i = 0 // s.matches(pattern)
		}
		if len(c.Args()) <= i {
			continue
		}
		p := c.Args()[i]
		if p.Kind() != celast.LiteralKind {
			iss.ReportErrorAtID(p.ID(), "matches takes a pattern written in the filter, not one read from the event")
			continue
		}
		if pattern, ok := p.AsLiteral().Value().(string); ok {
			if _, err := compileRegexp(pattern); err != nil {
				iss.ReportErrorAtID(p.ID(), "invalid matches argument: %v", err)
			}
		}
	}
}

// boundedMatches is the filters' string.matches(pattern), refused before
// it runs past maxWork.
func boundedMatches(maxWork int) func(s, pattern ref.Val) ref.Val {
	return func(s, pattern ref.Val) ref.Val {
		str, ok1 := s.(types.String)
		pat, ok2 := pattern.(types.String)
		if !ok1 || !ok2 {
			return types.MaybeNoSuchOverloadErr(pattern)
		}
		r, err := compileRegexp(string(pat))
		if err != nil {
			return types.WrapErr(err)
		}
		if len(str)*r.size > maxWork {
			return types.NewErr("matches: a string of %d bytes is too long for this regular expression (%d instructions once compiled): at most %d bytes",
				len(str), r.size, maxWork/r.size)
		}
		return types.Bool(r.re.MatchString(string(str)))
	}
}

// matchCost is what a call of matches costs: its string's length times
// its program's size, in matchWorkPerCost units.
func matchCost(args []ref.Val, _ ref.Val) *uint64 {
	n := uint64(1)
	if len(args) == 2 {
		str, _ := args[0].(types.String)
		pat, _ := args[1].(types.String)
		if r, err := compileRegexp(string(pat)); err == nil {
			n += uint64(min(len(str)*r.size, maxMatchWork+1)) / matchWorkPerCost
		}
	}
	return &n
}

// filterVars are the variables of a filter for ev. An event without
// content has an empty object.
func filterVars(ev Event) (map[string]any, error) {
	var content any = map[string]any{}
	if len(bytes.TrimSpace(ev.Content)) > 0 {
		d := json.NewDecoder(bytes.NewReader(ev.Content))
		d.UseNumber()
		var v any
		if err := d.Decode(&v); err != nil {
			return nil, fmt.Errorf("the event's content is not JSON: %v", err)
		}
		content = celJSON(v)
	}
	t := ev.Time
	if t.IsZero() {
		t = time.Unix(0, 0)
	}
	return map[string]any{
		"event.type": ev.Type, "event.id": ev.ID, "event.source": ev.Source,
		"event.content": content, "event.time": t.UTC(),
	}, nil
}

// celJSON turns decoded JSON into CEL values: whole numbers become ints,
// so that event.content.count + 1 is an int as it reads, others doubles.
func celJSON(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = celJSON(e)
		}
		return v
	case []any:
		for i, e := range v {
			v[i] = celJSON(e)
		}
		return v
	case json.Number:
		if n, err := v.Int64(); err == nil {
			return n
		}
		f, _ := v.Float64() // beyond a double's range: ±Inf
		return f
	}
	return v
}
