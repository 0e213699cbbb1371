package api

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/dispatcherhq/dispatcher"
)

// rqlSDKExamples are queries the Extra Horizon SDK and CLI really send.
var rqlSDKExamples = []string{
	"eq(id,5f2b7c0e1c9d440000a1b2c3)",
	"eq(tags,EXH_CLI_MANAGED)&limit(50)",
	"limit(50,50)",
	"select(id,name)&sort(-creationTimestamp)&limit(10,20)",
	"or(eq(eventType,a),eq(eventType,b))",
	"and(eq(name,x),ne(description,y))",
}

// rqlCmp builds a comparison condition.
func rqlCmp(op, field string, values ...string) dispatcher.Cond {
	return dispatcher.Cond{Op: op, Field: field, Values: values}
}

// rqlLogic builds an and/or condition.
func rqlLogic(op string, args ...dispatcher.Cond) dispatcher.Cond {
	return dispatcher.Cond{Op: op, Args: args}
}

// rqlFilter returns a default page filtered by c.
func rqlFilter(c dispatcher.Cond) dispatcher.Query {
	return dispatcher.Query{Filter: &c, Limit: dispatcher.DefaultLimit}
}

func TestParseRQL(t *testing.T) {
	const def = dispatcher.DefaultLimit
	tests := []struct {
		name, raw string
		want      dispatcher.Query
	}{
		{"empty", "", dispatcher.Query{Limit: def}},
		{"empty terms", "&&&", dispatcher.Query{Limit: def}},

		// What the SDK sends.
		{"sdk eq id", rqlSDKExamples[0], rqlFilter(rqlCmp("eq", "id", "5f2b7c0e1c9d440000a1b2c3"))},
		{"sdk tags and limit", rqlSDKExamples[1], dispatcher.Query{
			Filter: &dispatcher.Cond{Op: "eq", Field: "tags", Values: []string{"EXH_CLI_MANAGED"}}, Limit: 50}},
		{"sdk page two", rqlSDKExamples[2], dispatcher.Query{Limit: 50, Offset: 50}},
		{"sdk select sort limit", rqlSDKExamples[3], dispatcher.Query{
			Select: []string{"id", "name"},
			Sort:   []dispatcher.Sort{{Field: "creationTimestamp", Desc: true}},
			Limit:  10, Offset: 20}},
		{"sdk or", rqlSDKExamples[4], rqlFilter(rqlLogic("or", rqlCmp("eq", "eventType", "a"), rqlCmp("eq", "eventType", "b")))},
		{"sdk and", rqlSDKExamples[5], rqlFilter(rqlLogic("and", rqlCmp("eq", "name", "x"), rqlCmp("ne", "description", "y")))},

		// Every comparison operator.
		{"ne", "ne(name,x)", rqlFilter(rqlCmp("ne", "name", "x"))},
		{"gt", "gt(creationTimestamp,1)", rqlFilter(rqlCmp("gt", "creationTimestamp", "1"))},
		{"ge", "ge(updateTimestamp,2)", rqlFilter(rqlCmp("ge", "updateTimestamp", "2"))},
		{"lt", "lt(creationTimestamp,-3)", rqlFilter(rqlCmp("lt", "creationTimestamp", "-3"))},
		{"le", "le(name,m)", rqlFilter(rqlCmp("le", "name", "m"))},
		{"like keeps the wildcard", "like(name,*mail*)", rqlFilter(rqlCmp("like", "name", "*mail*"))},
		// The SDK's builder adds skipCount(); before, it was an unknown operator.
		{"skipCount is ignored", "eq(name,d1)&skipCount()", rqlFilter(rqlCmp("eq", "name", "d1"))},
		// Extra Horizon's presence and array forms, as the SDK's builder
		// writes them. Before, each was a 400.
		{"contains a field", "contains(description)", rqlFilter(rqlCmp("contains", "description"))},
		{"excludes a field", "excludes(tags)", rqlFilter(rqlCmp("excludes", "tags"))},
		{"contains an action that", "contains(actions,and(eq(type,task),eq(functionName,f)))", rqlFilter(dispatcher.Cond{Op: "contains", Field: "actions",
			Args: []dispatcher.Cond{rqlLogic("and", rqlCmp("eq", "type", "task"), rqlCmp("eq", "functionName", "f"))}})},
		{"excludes an action that", "excludes(actions,eq(type,mail),like(name,a*))", rqlFilter(dispatcher.Cond{Op: "excludes", Field: "actions",
			Args: []dispatcher.Cond{rqlCmp("eq", "type", "mail"), rqlCmp("like", "name", "a*")}})},
		// RQL's null, as Extra Horizon reads it: the field is missing, or
		// there. Before, compared with the text "null", it matched nothing.
		{"eq null lacks the field", "eq(description,null)", rqlFilter(rqlCmp("excludes", "description"))},
		{"ne null has the field", "ne(tags,null)", rqlFilter(rqlCmp("contains", "tags"))},
		{"string null is the text", "eq(name,string:null)", rqlFilter(rqlCmp("eq", "name", "null"))},
		// Of an array's elements, as MongoDB reads it (a review): an action
		// lacks it, or none does.
		{"eq null has an action without it", "eq(actions.functionName,null)", rqlFilter(dispatcher.Cond{Op: "contains", Field: "actions",
			Args: []dispatcher.Cond{rqlCmp("excludes", "functionName")}})},
		{"ne null has no action without it", "ne(actions.name,null)", rqlFilter(dispatcher.Cond{Op: "excludes", Field: "actions",
			Args: []dispatcher.Cond{rqlCmp("excludes", "name")}})},
		{"null is only null in eq and ne", "like(name,null)", rqlFilter(rqlCmp("like", "name", "null"))},
		{"contains", "contains(tags,a)", rqlFilter(rqlCmp("contains", "tags", "a"))},
		{"excludes", "excludes(description,b)", rqlFilter(rqlCmp("excludes", "description", "b"))},
		{"nested field", "eq(actions.functionName,fn)", rqlFilter(rqlCmp("eq", "actions.functionName", "fn"))},
		{"empty value", "eq(description,)", rqlFilter(rqlCmp("eq", "description", ""))},
		{"number made canonical", "eq(creationTimestamp,+0042)", rqlFilter(rqlCmp("eq", "creationTimestamp", "42"))},

		// in and out, with and without the inner list.
		{"in list", "in(eventType,(a,b,c))", rqlFilter(rqlCmp("in", "eventType", "a", "b", "c"))},
		{"in flat", "in(eventType,a,b,c)", rqlFilter(rqlCmp("in", "eventType", "a", "b", "c"))},
		{"in one", "in(id,a)", rqlFilter(rqlCmp("in", "id", "a"))},
		{"out list", "out(tags,(x,y))", rqlFilter(rqlCmp("out", "tags", "x", "y"))},
		{"out flat", "out(tags,x,y)", rqlFilter(rqlCmp("out", "tags", "x", "y"))},
		{"in numbers", "in(creationTimestamp,(1,02))", rqlFilter(rqlCmp("in", "creationTimestamp", "1", "2"))},

		// Nesting and top-level AND.
		{"two top-level filters", "eq(name,a)&ne(id,b)",
			rqlFilter(rqlLogic("and", rqlCmp("eq", "name", "a"), rqlCmp("ne", "id", "b")))},
		{"deep nesting", "and(or(eq(name,a),and(eq(tags,t),out(id,(x,y)))),gt(creationTimestamp,5))",
			rqlFilter(rqlLogic("and",
				rqlLogic("or", rqlCmp("eq", "name", "a"), rqlLogic("and", rqlCmp("eq", "tags", "t"), rqlCmp("out", "id", "x", "y"))),
				rqlCmp("gt", "creationTimestamp", "5")))},
		{"and of one", "and(eq(name,a))", rqlFilter(rqlLogic("and", rqlCmp("eq", "name", "a")))},
		{"filters around options", "eq(name,a)&limit(5)&or(eq(id,1),eq(id,2))", dispatcher.Query{
			Filter: &dispatcher.Cond{Op: "and", Args: []dispatcher.Cond{
				rqlCmp("eq", "name", "a"),
				rqlLogic("or", rqlCmp("eq", "id", "1"), rqlCmp("eq", "id", "2")),
			}},
			Limit: 5}},

		// Decoding.
		{"single encoded", "eq(name,my%20name)", rqlFilter(rqlCmp("eq", "name", "my name"))},
		{"double encoded", "eq(name,my%2520name)", rqlFilter(rqlCmp("eq", "name", "my name"))},
		{"double encoded comma does not split", "eq(name,a%252Cb)", rqlFilter(rqlCmp("eq", "name", "a,b"))},
		{"single encoded comma does not split", "eq(name,a%2Cb)", rqlFilter(rqlCmp("eq", "name", "a,b"))},
		{"encoded parens in value", "eq(name,f%2528x%2529)", rqlFilter(rqlCmp("eq", "name", "f(x)"))},
		{"plus is literal in values", "eq(name,a+b)", rqlFilter(rqlCmp("eq", "name", "a+b"))},
		{"encoded plus", "eq(name,a%252Bb)", rqlFilter(rqlCmp("eq", "name", "a+b"))},
		{"literal percent", "eq(name,100%25)", rqlFilter(rqlCmp("eq", "name", "100%"))},
		{"double encoded percent", "eq(name,100%2525)", rqlFilter(rqlCmp("eq", "name", "100%"))},
		// A value meant as "50%41" is indistinguishable from a double-encoded "50A".
		{"escape left after one decoding is decoded", "eq(name,50%2541)", rqlFilter(rqlCmp("eq", "name", "50A"))},
		{"unicode", "eq(name,caf%25C3%25A9)", rqlFilter(rqlCmp("eq", "name", "café"))},
		{"encoded field name", "eq(event%54ype,a)", rqlFilter(rqlCmp("eq", "eventType", "a"))},
		{"structure encoded once", "eq%28id%2C5f2b7c0e1c9d440000a1b2c3%29",
			rqlFilter(rqlCmp("eq", "id", "5f2b7c0e1c9d440000a1b2c3"))},
		{"structure encoded once, value twice", "eq%28name%2Cmy%2520name%29%26limit%285%29", dispatcher.Query{
			Filter: &dispatcher.Cond{Op: "eq", Field: "name", Values: []string{"my name"}}, Limit: 5}},

		// Typed values.
		{"string prefix", "eq(name,string:123)", rqlFilter(rqlCmp("eq", "name", "123"))},
		{"number prefix", "eq(creationTimestamp,number:5)", rqlFilter(rqlCmp("eq", "creationTimestamp", "5"))},
		{"only one prefix is stripped", "eq(name,string:number:5)", rqlFilter(rqlCmp("eq", "name", "number:5"))},
		{"encoded colon is data", "eq(name,string%3A123)", rqlFilter(rqlCmp("eq", "name", "string:123"))},

		// limit.
		{"limit only", "limit(10)", dispatcher.Query{Limit: 10}},
		{"limit clamped", "limit(51)", dispatcher.Query{Limit: dispatcher.MaxLimit}},
		{"limit clamped with offset", "limit(1000,7)", dispatcher.Query{Limit: dispatcher.MaxLimit, Offset: 7}},
		{"limit zero counts only", "limit(0)", dispatcher.Query{Limit: 0}},
		{"offset zero", "limit(5,0)", dispatcher.Query{Limit: 5}},

		// sort and its three spellings of "+".
		{"sort no sign", "sort(name)", dispatcher.Query{Sort: []dispatcher.Sort{{Field: "name"}}, Limit: def}},
		{"sort plus", "sort(+name)", dispatcher.Query{Sort: []dispatcher.Sort{{Field: "name"}}, Limit: def}},
		{"sort encoded plus", "sort(%2Bname)", dispatcher.Query{Sort: []dispatcher.Sort{{Field: "name"}}, Limit: def}},
		{"sort space", "sort(%20name)", dispatcher.Query{Sort: []dispatcher.Sort{{Field: "name"}}, Limit: def}},
		{"sort several", "sort(-creationTimestamp,+name,id)", dispatcher.Query{Sort: []dispatcher.Sort{
			{Field: "creationTimestamp", Desc: true}, {Field: "name"}, {Field: "id"}}, Limit: def}},

		// select.
		{"select top-level keys", "select(actions,tags,updateTimestamp)",
			dispatcher.Query{Select: []string{"actions", "tags", "updateTimestamp"}, Limit: def}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseRQL(tt.raw)
			if err != nil {
				t.Fatalf("parseRQL(%q): %v", tt.raw, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseRQL(%q)\n got %s\nwant %s", tt.raw, rqlShow(got), rqlShow(tt.want))
			}
		})
	}
}

func TestParseRQLErrors(t *testing.T) {
	tests := []struct {
		name, raw string
		want      string // a part of the message, naming the offending token
	}{
		{"unknown operator", "foo(name,a)", `rql: unknown operator "foo"`},
		{"unknown nested operator", "or(eq(name,a),regex(name,b))", `unknown operator "regex"`},
		{"unknown field", "eq(colour,red)", `rql: unknown field "colour" (fields: actions.functionName,`},
		{"unknown field in in", "in(colour,(a,b))", `unknown field "colour"`},
		{"missing paren", "eq(name,x", `rql: missing ")" at position 9`},
		{"missing paren before &", "and(eq(name,a)&limit(1)", `missing ")" at position 14`},
		{"missing inner paren", "eq(name,(a,b)", `missing ")" at position 13`},
		{"extra paren", "eq(name,x))", `unexpected ")" at position 10`},
		{"leading paren", ")", `unexpected ")" at position 0`},
		{"leading comma", ",eq(name,a)", `unexpected "," at position 0`},
		{"trailing garbage", "eq(name,b)x", `unexpected "x" at position 10`},
		{"garbage after nested call", "and(eq(name,b)x)", `unexpected "x" at position 14`},
		{"comma at top level", "eq(name,a),eq(name,b)", `unexpected "," at position 10`},
		{"group without operator", "(eq(name,a))", `expected an operator before "(" at position 0`},
		{"key=value term", "_=123", `"_=123" is not an operator call`},
		{"key=value after a filter", "eq(name,a)&_=123", `"_=123" is not an operator call`},
		{"bare word", "limit", `"limit" is not an operator call`},
		{"not a number", "gt(creationTimestamp,abc)", `rql: creationTimestamp: "abc" is not a number (epoch milliseconds)`},
		{"float is not epoch ms", "lt(updateTimestamp,1.5)", `updateTimestamp: "1.5" is not a number`},
		{"number overflow", "eq(creationTimestamp,99999999999999999999)", `"99999999999999999999" is not a number`},
		{"string prefix on a number", "eq(creationTimestamp,string:x)", `creationTimestamp: "x" is not a number`},
		{"not a number in in", "in(creationTimestamp,1,x)", `creationTimestamp: "x" is not a number`},
		// On PostgreSQL these became LOWER(bigint): a 500.
		{"like on a number", "like(creationTimestamp,1)", `rql: like is not supported on creationTimestamp, which is not text`},
		{"contains on a number", "contains(updateTimestamp,1)", `contains is not supported on updateTimestamp`},
		{"excludes on a number", "excludes(creationTimestamp,1)", `excludes is not supported on creationTimestamp`},
		// Some lists match a like pattern against every item in memory.
		{"value too long", "like(name," + strings.Repeat("*a", 600) + ")", `rql: name: a value is 1200 bytes, at most 1024 are allowed`},
		{"contains an unknown field", "contains(colour)", `unknown field "colour"`},
		{"null on an unknown field", "eq(colour,null)", `unknown field "colour"`},
		{"a condition on a field not an array", "contains(name,eq(type,mail))", `contains(name,condition): name is not an array of objects`},
		{"a condition on an action's unknown field", "contains(actions,eq(colour,red))", `unknown field "colour"`},
		{"a value after a condition", "excludes(actions,eq(type,mail),x)", `excludes(actions,...) takes conditions, not "x"`},
		{"eq one argument", "eq(name)", `eq takes (field,value), got 1 arguments`},
		{"eq three arguments", "eq(name,a,b)", `eq takes (field,value), got 3 arguments`},
		{"like no arguments", "like()", `like takes (field,value), got 0 arguments`},
		{"in no values", "in(name)", `in takes (field,(value,...)) or (field,value,...), got no values`},
		{"in empty list", "out(name,())", `out takes (field,(value,...))`},
		{"list inside in list", "in(name,((a),b))", `expected a plain value, got a (...) list`},
		{"list next to values", "in(name,a,(b))", `expected a plain value, got a (...) list`},
		{"call as value", "eq(name,eq(id,a))", `expected a plain value, got eq(...)`},
		{"call as field", "eq(eq(id,a),b)", `expected a plain value, got eq(...)`},
		{"value in and", "and(x)", `and takes conditions, not "x"`},
		{"empty and", "and()", `and() needs at least one condition`},
		{"empty or", "or()", `or() needs at least one condition`},
		{"limit in or", "or(limit(5))", `limit(...) cannot be nested in or(...)`},
		{"sort in and", "and(eq(name,a),sort(name))", `sort(...) cannot be nested in and(...)`},
		{"limit not a number", "limit(x)", `rql: limit: "x" is not a non-negative integer`},
		{"limit negative", "limit(-1)", `limit: "-1" is not a non-negative integer`},
		{"limit empty", "limit(,5)", `limit: "" is not a non-negative integer`},
		{"offset negative", "limit(10,-5)", `limit: offset "-5" is not a non-negative integer`},
		{"offset not a number", "limit(10,ten)", `limit: offset "ten" is not a non-negative integer`},
		{"limit no arguments", "limit()", `limit() needs an argument`},
		{"limit three arguments", "limit(1,2,3)", `limit takes (limit) or (limit,offset), got 3 arguments`},
		{"limit twice", "limit(1)&limit(2)", `limit(...) given twice (at position 9)`},
		{"sort twice", "sort(name)&sort(id)", `sort(...) given twice`},
		{"sort unknown field", "sort(-colour)", `rql: sort: unknown field "colour" (fields:`},
		{"sort double sign", "sort(--name)", `sort: unknown field "-name"`},
		{"sort no fields", "sort()", `sort() needs an argument`},
		{"sort call", "sort(eq(a,b))", `expected a plain value, got eq(...)`},
		{"select unknown field", "select(colour)", `rql: select: unknown field "colour" (fields: actions,`},
		{"select nested field", "select(actions.id)", `select: unknown field "actions.id"`},
		{"select no fields", "select()", `select() needs an argument`},
		{"select twice", "select(id)&select(name)", `select(...) given twice`},
		{"invalid escape in value", "eq(name,%zz)", `rql: invalid percent-encoding in "%zz" (at position 8)`},
		{"truncated escape in value", "eq(name,abc%2)", `invalid percent-encoding in "abc%2"`},
		{"invalid escape in field", "eq(na%me,a)", `invalid percent-encoding in "na%me"`},
		{"invalid escape in encoded query", "eq%28name%2C%zz%29", `rql: invalid URL escape "%zz"`},
		{"invalid UTF-8", "eq(name,%FF)", `"%FF" is not valid UTF-8 text`},
		{"NUL", "eq(name,a%2500)", `"a%2500" is not valid UTF-8 text`},
		{"too deep", strings.Repeat("and(", 40) + "eq(name,a)" + strings.Repeat(")", 40), `nesting deeper than 32 levels`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := parseRQL(tt.raw)
			if err == nil {
				t.Fatalf("parseRQL(%q) = %s, want an error containing %q", tt.raw, rqlShow(q), tt.want)
			}
			checkRQLError(t, err, tt.want)
		})
	}
}

// checkRQLError fails unless err is an EQUERY *dispatcher.Error whose
// message contains want.
func checkRQLError(t *testing.T, err error, want string) {
	t.Helper()
	var e *dispatcher.Error
	if !errors.As(err, &e) || e.Code != dispatcher.EQUERY {
		t.Fatalf("error %v (%T) is not an EQUERY *dispatcher.Error", err, err)
	}
	if !strings.Contains(e.Message, want) {
		t.Errorf("message %q does not contain %q", e.Message, want)
	}
}

// rqlShow formats q with its filter dereferenced, for failure messages.
func rqlShow(q dispatcher.Query) string {
	var f any
	if q.Filter != nil {
		f = *q.Filter
	}
	return fmt.Sprintf("{Filter:%+v Sort:%+v Select:%q Limit:%d Offset:%d}", f, q.Sort, q.Select, q.Limit, q.Offset)
}

// FuzzParseRQL checks that no input panics, that every error is an EQUERY
// error, and that every accepted query respects the page and field bounds.
func FuzzParseRQL(f *testing.F) {
	for _, s := range rqlSDKExamples {
		f.Add(s)
	}
	for _, s := range []string{"", "in(eventType,(a,b))", "eq(name,my%2520name)", "eq%28id%2C5%29",
		"sort(+name,%2Bid, updateTimestamp)", "limit(999,3)", "eq(name,string:1)", "_=1", "eq(a,b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := parseRQL(raw)
		if err != nil {
			var e *dispatcher.Error
			if !errors.As(err, &e) || e.Code != dispatcher.EQUERY || !strings.HasPrefix(e.Message, "rql: ") {
				t.Fatalf("parseRQL(%q): %v is not an EQUERY rql error", raw, err)
			}
			return
		}
		if q.Limit < 0 || q.Limit > dispatcher.MaxLimit || q.Offset < 0 {
			t.Fatalf("parseRQL(%q): page out of bounds: %s", raw, rqlShow(q))
		}
		for _, s := range q.Sort {
			if _, ok := dispatcher.QueryFields[s.Field]; !ok {
				t.Fatalf("parseRQL(%q): sort on unknown field %q", raw, s.Field)
			}
		}
		if q.Filter != nil {
			checkRQLCond(t, raw, *q.Filter)
		}
	})
}

// checkRQLCond fails unless c and its descendants are well formed.
func checkRQLCond(t *testing.T, raw string, c dispatcher.Cond) {
	t.Helper()
	if c.Op == dispatcher.OpAnd || c.Op == dispatcher.OpOr {
		if len(c.Args) == 0 || c.Field != "" || c.Values != nil {
			t.Fatalf("parseRQL(%q): malformed %s: %+v", raw, c.Op, c)
		}
		for _, a := range c.Args {
			checkRQLCond(t, raw, a)
		}
		return
	}
	_, known := dispatcher.QueryFields[c.Field]
	array := false // of objects, whose fields are c.Field.<name>
	for f := range dispatcher.QueryFields {
		array = array || strings.HasPrefix(f, c.Field+".")
	}
	if c.Op == dispatcher.OpContains || c.Op == dispatcher.OpExcludes {
		switch {
		case len(c.Args) > 0: // (array,condition,...): the conditions name the array's fields
			if len(c.Values) != 0 || !array {
				t.Fatalf("parseRQL(%q): malformed %s: %+v", raw, c.Op, c)
			}
			return
		case len(c.Values) == 0: // (field): presence, of a field or an array
			if !known && !array {
				t.Fatalf("parseRQL(%q): presence of unknown field: %+v", raw, c)
			}
			return
		}
	}
	if !known || len(c.Values) == 0 || c.Args != nil {
		t.Fatalf("parseRQL(%q): malformed %s: %+v", raw, c.Op, c)
	}
}
