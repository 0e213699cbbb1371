package dispatcher

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
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
)

// Filter is a compiled filter, safe for concurrent use.
type Filter struct {
	expr string
	prg  cel.Program
}

// filterEnv is the CEL environment of every filter: the event's fields as
// variables, numbers of different types comparable with each other (JSON
// has one kind of number: 3 and 3.0 are the same).
var filterEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable("event.type", cel.StringType),
		cel.Variable("event.id", cel.StringType),
		cel.Variable("event.source", cel.StringType),
		cel.Variable("event.content", cel.DynType),
		cel.Variable("event.time", cel.TimestampType),
		cel.CrossTypeNumericComparisons(true),
		// A literal that could never be read fails every event: refuse
		// it when the dispatcher is saved.
		cel.ASTValidators(cel.ValidateRegexLiterals(), cel.ValidateTimestampLiterals(), cel.ValidateDurationLiterals()),
	)
})

// compiledFilters memoises CompileFilter by expression: a filter is
// compiled when its dispatcher is saved and whenever a configuration is
// resolved for an event, which must stay cheap. It holds pure functions of
// their expressions, so sharing it is safe; it is emptied when full.
var compiledFilters = struct {
	sync.Mutex
	m map[string]*Filter
}{m: map[string]*Filter{}}

const maxCompiledFilters = 1024

// CompileFilter compiles and type-checks expr. Its errors are EINVALID,
// naming the field "filter" and the line and column of the first problem:
// "filter: line 1, column 15: undeclared reference to 'amount'".
func CompileFilter(expr string) (*Filter, error) {
	compiledFilters.Lock()
	f, ok := compiledFilters.m[expr]
	compiledFilters.Unlock()
	if ok {
		return f, nil
	}
	f, err := compileFilter(expr)
	if err != nil {
		return nil, err
	}
	compiledFilters.Lock()
	if len(compiledFilters.m) >= maxCompiledFilters {
		clear(compiledFilters.m)
	}
	compiledFilters.m[expr] = f
	compiledFilters.Unlock()
	return f, nil
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
	prg, err := env.Program(ast, cel.CostLimit(MaxFilterCost))
	if err != nil {
		return nil, Errorf(EINVALID, "filter: %v", err)
	}
	return &Filter{expr: expr, prg: prg}, nil
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
	return f.match(vars)
}

func (f *Filter) match(vars map[string]any) (bool, error) {
	out, _, err := f.prg.Eval(vars)
	if err != nil {
		return false, err
	}
	b, ok := out.(types.Bool)
	if !ok {
		// Its type, not its value: the value is the event's content.
		return false, fmt.Errorf("the filter gave a value of type %s, not true or false", out.Type().TypeName())
	}
	return bool(b), nil
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
