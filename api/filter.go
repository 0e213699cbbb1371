package api

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/wire"
)

// pageOf applies an RQL query to a small collection held in memory (API
// keys): filters and sorts on the string fields that fieldsOf gives, then
// pages. Lists of dispatchers are queried in SQL.
func pageOf[T any](items []T, q dispatcher.Query, fieldsOf func(T) map[string]string, toWire func(T) any) (wire.Page, error) {
	chosen, total, err := choose(items, q, fieldsOf)
	if err != nil {
		return wire.Page{}, err
	}
	return page(chosen, total, q, toWire), nil
}

// choose filters and sorts items as q says, on the string fields that
// fieldsOf gives, and returns those of q's page and how many matched.
func choose[T any](items []T, q dispatcher.Query, fieldsOf func(T) map[string]string) ([]T, int, error) {
	var kept []T
	for _, it := range items {
		ok, err := matchCond(q.Filter, fieldsOf(it))
		if err != nil {
			return nil, 0, err
		}
		if ok {
			kept = append(kept, it)
		}
	}
	for _, s := range slices.Backward(q.Sort) {
		if _, known := fieldsOf(*new(T))[s.Field]; !known {
			return nil, 0, dispatcher.Errorf(dispatcher.EQUERY, "rql: cannot sort on %q here", s.Field)
		}
		slices.SortStableFunc(kept, func(a, b T) int {
			c := strings.Compare(fieldsOf(a)[s.Field], fieldsOf(b)[s.Field])
			if s.Desc {
				return -c
			}
			return c
		})
	}
	lo := min(q.Offset, len(kept))
	return kept[lo:min(lo+q.Limit, len(kept))], len(kept), nil
}

// maxPageBytes bounds the JSON of a list page. Items of up to a MiB
// (templates; audit records, which hold a template before and after)
// made a page of 50 weigh 50 MB and its answer take 280 MB: a few at once
// took a process of 512 MiB down, for every tenant. A page holds the
// items its limit asks for that fit, at least one, and then says in
// page.limit how many it holds; the Extra Horizon SDK takes the next page
// at offset + limit, the console and the CLI after the items they got.
var maxPageBytes = 4 << 20

// loadChunk is how many items of a page of large ones are loaded from the
// store at once, so that a page cut short loads few more than it holds.
const loadChunk = 10

// fillPage is the wire page of q of total items: those load returns,
// chunk after chunk (load is asked for as many as the page still wants
// and says when there are no more), each as q selects, while they fit in
// maxPageBytes.
func fillPage(total int, q dispatcher.Query, load func(want int) (items []any, done bool, err error)) (wire.Page, error) {
	var p wire.Page
	p.Page.Total, p.Page.Offset, p.Page.Limit = total, q.Offset, q.Limit
	p.Data = []any{}
	size := 0
	for done := false; !done && len(p.Data) < q.Limit; {
		var items []any
		var err error
		if items, done, err = load(q.Limit - len(p.Data)); err != nil {
			return p, err
		}
		for _, it := range items {
			raw, err := json.Marshal(project(it, q.Select))
			if err != nil {
				return p, err
			}
			if size += len(raw); size > maxPageBytes && len(p.Data) > 0 {
				p.Page.Limit = len(p.Data)
				return p, nil
			}
			p.Data = append(p.Data, json.RawMessage(raw))
		}
	}
	return p, nil
}

// page is the wire page of the items chosen of total.
func page[T any](chosen []T, total int, q dispatcher.Query, toWire func(T) any) wire.Page {
	p, _ := fillPage(total, q, chunks(chosen, len(chosen), func(c []T) ([]any, error) { return wireOf(c, toWire), nil }))
	return p
}

// chunks is a fillPage loader of the items (or ids) of a page, at most n
// at a time, each chunk turned into wire items by load.
func chunks[T any](all []T, n int, load func([]T) ([]any, error)) func(int) ([]any, bool, error) {
	next := 0
	return func(want int) ([]any, bool, error) {
		c := all[next:min(next+min(want, n), len(all))]
		next += len(c)
		items, err := load(c)
		return items, next >= len(all), err
	}
}

// wireOf is the wire form of items.
func wireOf[T any](items []T, toWire func(T) any) []any {
	out := make([]any, len(items))
	for i, it := range items {
		out[i] = toWire(it)
	}
	return out
}

// matchCond evaluates a filter against fields; a field it lacks is an
// EQUERY error naming the fields it has.
func matchCond(c *dispatcher.Cond, fields map[string]string) (bool, error) {
	if c == nil {
		return true, nil
	}
	switch c.Op {
	case dispatcher.OpAnd, dispatcher.OpOr:
		for i := range c.Args {
			ok, err := matchCond(&c.Args[i], fields)
			if err != nil {
				return false, err
			}
			if ok == (c.Op == dispatcher.OpOr) {
				return ok, nil
			}
		}
		return c.Op == dispatcher.OpAnd, nil
	}
	v, known := fields[c.Field]
	if !known {
		names := make([]string, 0, len(fields))
		for name := range fields {
			names = append(names, name)
		}
		slices.Sort(names)
		return false, dispatcher.Errorf(dispatcher.EQUERY, "rql: cannot filter on %q here (fields: %s)", c.Field, strings.Join(names, ", "))
	}
	if len(c.Values) == 0 { // contains(field), excludes(field): has it, lacks it
		return (v != "") == (c.Op == dispatcher.OpContains), nil
	}
	switch c.Op {
	case dispatcher.OpEq:
		return v == c.Values[0], nil
	case dispatcher.OpNe:
		return v != c.Values[0], nil
	case dispatcher.OpIn:
		return slices.Contains(c.Values, v), nil
	case dispatcher.OpOut:
		return !slices.Contains(c.Values, v), nil
	case dispatcher.OpGt:
		return v > c.Values[0], nil
	case dispatcher.OpGe:
		return v >= c.Values[0], nil
	case dispatcher.OpLt:
		return v < c.Values[0], nil
	case dispatcher.OpLe:
		return v <= c.Values[0], nil
	case dispatcher.OpLike:
		return likes(strings.ToLower(v), strings.ToLower(c.Values[0])), nil
	case dispatcher.OpContains:
		return strings.Contains(strings.ToLower(v), strings.ToLower(c.Values[0])), nil
	case dispatcher.OpExcludes:
		return !strings.Contains(strings.ToLower(v), strings.ToLower(c.Values[0])), nil
	}
	return false, dispatcher.Errorf(dispatcher.EQUERY, "rql: unknown operator %q", c.Op)
}

// likes reports whether pattern is found in v, '*' matching any run of
// characters, as the store's like (models.likePattern): anywhere, and
// across '/', which path.Match's '*' did not match.
func likes(v, pattern string) bool {
	for part := range strings.SplitSeq(pattern, "*") {
		i := strings.Index(v, part)
		if i < 0 {
			return false
		}
		v = v[i+len(part):]
	}
	return true
}
