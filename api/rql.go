package api

import (
	"maps"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/dispatcherhq/dispatcher"
)

// rqlMaxDepth bounds nesting so that a hostile query cannot make the parser
// (or the SQL built from its result) recurse without end.
const rqlMaxDepth = 32

// rqlSelectFields are the top-level keys of a dispatcher on the wire: select
// projects whole keys, so it accepts "actions" but not "actions.id".
var rqlSelectFields = []string{"actions", "creationTimestamp", "description",
	"enabled", "eventType", "filter", "id", "name", "tags", "updateTimestamp"}

// rqlSchema is what a list's queries may name: the fields to filter and
// sort on, and the top-level keys select may keep.
type rqlSchema struct {
	fields     map[string]dispatcher.FieldKind
	selectable []string
}

// dispatcherRQL is the schema of the dispatcher lists.
var dispatcherRQL = rqlSchema{fields: dispatcher.QueryFields, selectable: rqlSelectFields}

// memoryRQL is the schema of a list filtered in memory (templates,
// functions, API keys): the string fields fieldsOf gives, and the keys of
// its items' wire form w to select.
func memoryRQL[T any](fieldsOf func(T) map[string]string, w any) rqlSchema {
	sc := rqlSchema{fields: map[string]dispatcher.FieldKind{}, selectable: jsonKeys(reflect.TypeOf(w))}
	for k := range fieldsOf(*new(T)) {
		sc.fields[k] = dispatcher.KindString
	}
	return sc
}

// jsonKeys lists the keys encoding/json gives a struct of type t.
func jsonKeys(t reflect.Type) []string {
	var keys []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-" || !f.IsExported():
		case name == "" && f.Anonymous && f.Type.Kind() == reflect.Struct:
			keys = append(keys, jsonKeys(f.Type)...)
		case name == "":
			keys = append(keys, f.Name)
		default:
			keys = append(keys, name)
		}
	}
	return keys
}

// rqlNode is a parsed term before it is given a meaning: a call
// name(args...), a parenthesised group (args...) as in in(f,(a,b)), or a
// plain value, whose text is still encoded.
type rqlNode struct {
	kind int // rqlValue, rqlCall or rqlGroup
	text string
	args []rqlNode
	pos  int
}

// Kinds of rqlNode.
const (
	rqlValue = iota
	rqlCall
	rqlGroup
)

// maxRQLValues bounds the values of one query; maxRQLCalls its calls
// (conditions, and() and or() included, and select, sort, limit): each
// condition is a clause, and 999 of them went past SQLite's expression
// depth (a 500) and kept PostgreSQL busy for the request's 30 s (a 503,
// which clients retry).
const maxRQLValues, maxRQLCalls = 1000, 100

// maxRQLValueLen bounds one value: some lists are filtered in memory, and a
// like pattern is matched against every item.
const maxRQLValueLen = 1024

// parseRQL parses the raw query string of a list request (as received, not
// decoded) into a Query. Every error is a *dispatcher.Error with code
// EQUERY whose message names the offending token.
func parseRQL(rawQuery string) (dispatcher.Query, error) {
	return dispatcherRQL.parse(rawQuery)
}

// parse is parseRQL for the fields of schema sc.
func (sc rqlSchema) parse(rawQuery string) (dispatcher.Query, error) {
	// Some clients encode the whole query once, structure included; error
	// positions then count bytes of the decoded query.
	if !strings.Contains(rawQuery, "(") && strings.Contains(rawQuery, "%28") {
		s, err := url.PathUnescape(rawQuery)
		if err != nil {
			return dispatcher.Query{}, rqlErrorf("%v", err)
		}
		rawQuery = s
	}
	// Each value becomes a bind parameter, and databases cap those.
	if n := strings.Count(rawQuery, ","); n > maxRQLValues {
		return dispatcher.Query{}, rqlErrorf("too many values (%d); a query takes at most %d", n, maxRQLValues)
	}
	if n := strings.Count(rawQuery, "("); n > maxRQLCalls {
		return dispatcher.Query{}, rqlErrorf("too many conditions (%d); a query takes at most %d", n, maxRQLCalls)
	}
	p := rqlParser{s: rawQuery}
	terms, err := p.terms()
	if err != nil {
		return dispatcher.Query{}, err
	}

	q := dispatcher.Query{Limit: dispatcher.DefaultLimit}
	var filters []dispatcher.Cond
	seen := map[string]bool{}
	for _, t := range terms {
		if t.text == "skipCount" && t.kind == rqlCall && len(t.args) == 0 {
			// The Extra Horizon SDK's builder adds it to spare the
			// service a count; page.total is always counted here.
			continue
		}
		if t.text != "sort" && t.text != "select" && t.text != "limit" {
			c, err := sc.cond(t)
			if err != nil {
				return dispatcher.Query{}, err
			}
			filters = append(filters, c)
			continue
		}
		// Two limits or sorts contradict each other; say so rather than pick one.
		if seen[t.text] {
			return dispatcher.Query{}, rqlErrorf("%s(...) given twice (at position %d)", t.text, t.pos)
		}
		seen[t.text] = true
		args, err := rqlArgs(t)
		switch {
		case err != nil:
		case len(args) == 0:
			err = rqlErrorf("%s() needs an argument (at position %d)", t.text, t.pos)
		case t.text == "sort":
			q.Sort, err = sc.sort(args)
		case t.text == "select":
			q.Select, err = sc.projection(args)
		default:
			q.Limit, q.Offset, err = rqlLimit(args, t.pos)
		}
		if err != nil {
			return dispatcher.Query{}, err
		}
	}
	switch len(filters) {
	case 0:
	case 1:
		q.Filter = &filters[0]
	default:
		q.Filter = &dispatcher.Cond{Op: dispatcher.OpAnd, Args: filters}
	}
	return q, nil
}

// cond turns a call into a filter condition.
func (sc rqlSchema) cond(n rqlNode) (dispatcher.Cond, error) {
	c := dispatcher.Cond{Op: n.text}
	switch n.text {
	case dispatcher.OpAnd, dispatcher.OpOr:
		if len(n.args) == 0 {
			return c, rqlErrorf("%s() needs at least one condition (at position %d)", n.text, n.pos)
		}
		for _, a := range n.args {
			switch {
			case a.kind != rqlCall:
				return c, rqlErrorf("%s takes conditions, not %q (at position %d)", n.text, a.text, a.pos)
			case a.text == "sort" || a.text == "select" || a.text == "limit":
				return c, rqlErrorf("%s(...) cannot be nested in %s(...) (at position %d)", a.text, n.text, a.pos)
			}
			sub, err := sc.cond(a)
			if err != nil {
				return c, err
			}
			c.Args = append(c.Args, sub)
		}
		return c, nil
	case dispatcher.OpContains, dispatcher.OpExcludes:
		// Extra Horizon's forms: contains(field) has the field, excludes(field)
		// lacks it; contains(array,condition,...) has an element (an
		// action) that meets every condition, excludes(...) has none.
		if len(n.args) == 1 || len(n.args) >= 2 && n.args[1].kind == rqlCall {
			return sc.presence(c, n)
		}
		if len(n.args) != 2 {
			return c, rqlErrorf("%s takes (field), (field,value) or (array,condition,...), got %d arguments (at position %d)", n.text, len(n.args), n.pos)
		}
	case dispatcher.OpEq, dispatcher.OpNe, dispatcher.OpGt, dispatcher.OpGe, dispatcher.OpLt,
		dispatcher.OpLe, dispatcher.OpLike:
		if len(n.args) != 2 {
			return c, rqlErrorf("%s takes (field,value), got %d arguments (at position %d)", n.text, len(n.args), n.pos)
		}
		if (c.Op == dispatcher.OpEq || c.Op == dispatcher.OpNe) && n.args[1].kind == rqlValue && n.args[1].text == "null" {
			return sc.null(c, n)
		}
	case dispatcher.OpIn, dispatcher.OpOut:
		if len(n.args) == 2 && n.args[1].kind == rqlGroup {
			n.args = append(n.args[:1:1], n.args[1].args...)
		}
		if len(n.args) < 2 {
			return c, rqlErrorf("%s takes (field,(value,...)) or (field,value,...), got no values (at position %d)", n.text, n.pos)
		}
	default:
		return c, rqlErrorf("unknown operator %q (at position %d)", n.text, n.pos)
	}
	args, err := rqlArgs(n)
	if err != nil {
		return c, err
	}
	kind, ok := sc.fields[args[0]]
	if !ok {
		return c, rqlErrorf("unknown field %q (fields: %s)", args[0], sc.fieldNames())
	}
	c.Field, c.Values = args[0], args[1:]
	if kind == dispatcher.KindNumber || kind == dispatcher.KindBool {
		switch c.Op {
		case dispatcher.OpLike, dispatcher.OpContains, dispatcher.OpExcludes:
			return c, rqlErrorf("%s is not supported on %s, which is not text", c.Op, c.Field)
		}
	}
	for i, v := range c.Values {
		if len(v) > maxRQLValueLen {
			return c, rqlErrorf("%s: a value is %d bytes, at most %d are allowed", c.Field, len(v), maxRQLValueLen)
		}
		if kind == dispatcher.KindNumber {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return c, rqlErrorf("%s: %q is not a number%s", c.Field, v, dispatcher.NumberUnit(c.Field))
			}
			c.Values[i] = strconv.FormatInt(n, 10) // canonical, so "+01" and "1" query alike
		}
		if kind == dispatcher.KindBool {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return c, rqlErrorf("%s: %q is not true or false", c.Field, v)
			}
			c.Values[i] = strconv.FormatBool(b)
		}
	}
	return c, nil
}

// null reads RQL's null, as Extra Horizon (MongoDB) reads it:
// eq(field,null) lacks the field, ne(field,null) has it; on a field of
// an array's elements, eq(actions.name,null) has an action without a
// name, ne(actions.name,null) none. string:null is the text. Before,
// compared with the text "null", it matched nothing.
func (sc rqlSchema) null(c dispatcher.Cond, n rqlNode) (dispatcher.Cond, error) {
	c.Op = map[string]string{dispatcher.OpEq: dispatcher.OpExcludes, dispatcher.OpNe: dispatcher.OpContains}[c.Op]
	c, err := sc.presence(c, rqlNode{kind: rqlCall, text: c.Op, args: n.args[:1], pos: n.pos})
	if array, field, ok := strings.Cut(c.Field, "."); err == nil && ok && sc.isArray(array) {
		lacks := dispatcher.Cond{Op: dispatcher.OpExcludes, Field: field}
		return dispatcher.Cond{Op: map[string]string{dispatcher.OpExcludes: dispatcher.OpContains, dispatcher.OpContains: dispatcher.OpExcludes}[c.Op],
			Field: array, Args: []dispatcher.Cond{lacks}}, nil
	}
	return c, err
}

// presence reads contains(field) and excludes(field), and
// contains(array,condition,...) and excludes(array,condition,...) on an
// array of objects whose fields are array.<field> (the actions): the
// conditions name them without the prefix, and one element must meet
// them all.
func (sc rqlSchema) presence(c dispatcher.Cond, n rqlNode) (dispatcher.Cond, error) {
	field, err := rqlDecode(n.args[0])
	if err != nil {
		return c, err
	}
	c.Field = field
	if len(n.args) == 1 {
		if _, ok := sc.fields[field]; !ok && !sc.isArray(field) {
			return c, rqlErrorf("unknown field %q (fields: %s)", field, sc.fieldNames())
		}
		return c, nil
	}
	if !sc.isArray(field) {
		return c, rqlErrorf("%s(%s,condition): %s is not an array of objects (at position %d)", n.text, field, field, n.pos)
	}
	elem := rqlSchema{fields: map[string]dispatcher.FieldKind{}}
	for f, kind := range sc.fields {
		if sub, ok := strings.CutPrefix(f, field+"."); ok {
			elem.fields[sub] = kind
		}
	}
	for _, a := range n.args[1:] {
		if a.kind != rqlCall {
			return c, rqlErrorf("%s(%s,...) takes conditions, not %q (at position %d)", n.text, field, a.text, a.pos)
		}
		sub, err := elem.cond(a)
		if err != nil {
			return c, err
		}
		c.Args = append(c.Args, sub)
	}
	return c, nil
}

// isArray reports whether field is an array of objects: the fields of
// its elements are field.<name>.
func (sc rqlSchema) isArray(field string) bool {
	for f := range sc.fields {
		if strings.HasPrefix(f, field+".") {
			return true
		}
	}
	return false
}

// sort reads the fields of sort(+a,-b). A "+" may arrive literally, as
// %2B, or as a space (a form-encoded "+"); all mean ascending, as no sign does.
func (sc rqlSchema) sort(fields []string) ([]dispatcher.Sort, error) {
	var sorts []dispatcher.Sort
	for _, f := range fields {
		s := dispatcher.Sort{Field: f}
		switch {
		case strings.HasPrefix(f, "-"):
			s = dispatcher.Sort{Field: f[1:], Desc: true}
		case strings.HasPrefix(f, "+"), strings.HasPrefix(f, " "):
			s.Field = f[1:]
		}
		if _, ok := sc.fields[s.Field]; !ok {
			return nil, rqlErrorf("sort: unknown field %q (fields: %s)", s.Field, sc.fieldNames())
		}
		sorts = append(sorts, s)
	}
	return sorts, nil
}

// projection checks the fields of select(a,b).
func (sc rqlSchema) projection(fields []string) ([]string, error) {
	for _, f := range fields {
		if !slices.Contains(sc.selectable, f) {
			return nil, rqlErrorf("select: unknown field %q (fields: %s)", f, strings.Join(sc.selectable, ", "))
		}
	}
	return fields, nil
}

// rqlLimit reads limit(n) or limit(n,offset). A limit above MaxLimit is
// clamped rather than refused because the SDK asks for more and pages on
// page.total; limit(0) is kept: a page with only the total.
func rqlLimit(args []string, pos int) (limit, offset int, err error) {
	if len(args) > 2 {
		return 0, 0, rqlErrorf("limit takes (limit) or (limit,offset), got %d arguments (at position %d)", len(args), pos)
	}
	nums := [2]int{}
	for i, v := range args {
		nums[i], err = strconv.Atoi(v)
		if err != nil || nums[i] < 0 {
			return 0, 0, rqlErrorf("limit: %s%q is not a non-negative integer", []string{"", "offset "}[i], v)
		}
	}
	return min(nums[0], dispatcher.MaxLimit), nums[1], nil
}

// rqlArgs decodes the arguments of a call, which must all be plain values.
func rqlArgs(n rqlNode) ([]string, error) {
	vals := make([]string, len(n.args))
	for i, a := range n.args {
		var err error
		if vals[i], err = rqlDecode(a); err != nil {
			return nil, err
		}
	}
	return vals, nil
}

// fieldNames lists the fields a filter or sort may name, for errors.
func (sc rqlSchema) fieldNames() string {
	return strings.Join(slices.Sorted(maps.Keys(sc.fields)), ", ")
}

// rqlDecode returns the text of a plain value, decoded. The SDK encodes
// values twice, so a value is decoded a second time when it can be; one
// whose second decoding fails had a literal "%" and keeps its first. The typed prefixes string: and number: are stripped only
// when their colon is literal, so an encoded "string%3Ax" stays data.
func rqlDecode(n rqlNode) (string, error) {
	switch n.kind {
	case rqlCall:
		return "", rqlErrorf("expected a plain value, got %s(...) (at position %d)", n.text, n.pos)
	case rqlGroup:
		return "", rqlErrorf("expected a plain value, got a (...) list (at position %d)", n.pos)
	}
	raw, ok := strings.CutPrefix(n.text, "string:")
	if !ok {
		raw, _ = strings.CutPrefix(n.text, "number:")
	}
	v, err := url.PathUnescape(raw)
	if err != nil {
		return "", rqlErrorf("invalid percent-encoding in %q (at position %d)", n.text, n.pos)
	}
	if w, err := url.PathUnescape(v); err == nil {
		v = w
	}
	// The database refuses invalid UTF-8 and NUL; refuse them here as a 400.
	if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
		return "", rqlErrorf("%q is not valid UTF-8 text without NUL characters (at position %d)", n.text, n.pos)
	}
	return v, nil
}

// rqlParser is a recursive-descent parser reading s from pos. Its tokens are
// the structural characters ( ) , & and the runs of text between them, still
// percent-encoded so that an encoded comma never splits a value. Positions
// in errors are 0-based byte offsets, as in JSON.parse errors.
type rqlParser struct {
	s   string
	pos int
}

// peek returns the token at pos, "" at the end (text runs are never empty).
func (p *rqlParser) peek() string {
	rest := p.s[p.pos:]
	if i := strings.IndexAny(rest, "(),&"); i >= 0 {
		return rest[:max(i, 1)] // a structural character, or the text before it
	}
	return rest
}

// terms parses the top level: calls separated by "&", empty terms ignored.
func (p *rqlParser) terms() ([]rqlNode, error) {
	var terms []rqlNode
	for p.pos < len(p.s) {
		if p.peek() == "&" {
			p.pos++
			continue
		}
		n, err := p.node(0)
		switch {
		case err != nil:
			return nil, err
		case n.kind == rqlGroup:
			return nil, rqlErrorf("expected an operator before \"(\" at position %d", n.pos)
		case n.kind == rqlValue && n.text != "": // e.g. a cache-buster _=123
			return nil, rqlErrorf("%q is not an operator call like eq(field,value) (at position %d)", n.text, n.pos)
		}
		if t := p.peek(); t != "" && t != "&" {
			return nil, rqlErrorf("unexpected %q at position %d", t, p.pos)
		}
		terms = append(terms, n)
	}
	return terms, nil
}

// node parses a call, a group or a (possibly empty) value.
func (p *rqlParser) node(depth int) (rqlNode, error) {
	n := rqlNode{text: p.peek(), pos: p.pos}
	switch n.text {
	case ")", ",", "&", "":
		n.text = ""
		return n, nil
	case "(":
		n.kind, n.text = rqlGroup, ""
	default:
		p.pos += len(n.text)
		if p.peek() != "(" {
			return n, nil
		}
		n.kind = rqlCall
	}
	var err error
	n.args, err = p.args(depth)
	return n, err
}

// args parses "(" node ("," node)* ")"; "()" has no arguments.
func (p *rqlParser) args(depth int) ([]rqlNode, error) {
	open := p.pos
	if depth >= rqlMaxDepth {
		return nil, rqlErrorf("nesting deeper than %d levels at position %d", rqlMaxDepth, open)
	}
	p.pos++
	if p.peek() == ")" {
		p.pos++
		return nil, nil
	}
	var args []rqlNode
	for {
		n, err := p.node(depth + 1)
		if err != nil {
			return nil, err
		}
		args = append(args, n)
		t, at := p.peek(), p.pos
		p.pos += len(t)
		switch t {
		case ",":
		case ")":
			return args, nil
		case "", "&":
			return nil, rqlErrorf("missing \")\" at position %d (to close \"(\" at position %d)", at, open)
		default:
			return nil, rqlErrorf("unexpected %q at position %d", t, at)
		}
	}
}

// rqlErrorf returns an EQUERY error; the "rql: " prefix tells the client
// which part of the request is wrong.
func rqlErrorf(format string, args ...any) error {
	return dispatcher.Errorf(dispatcher.EQUERY, "rql: "+format, args...)
}
