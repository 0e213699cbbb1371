package api

import (
	"path"
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

// page is the wire page of the items chosen of total.
func page[T any](chosen []T, total int, q dispatcher.Query, toWire func(T) any) wire.Page {
	var p wire.Page
	p.Page.Total, p.Page.Offset, p.Page.Limit = total, q.Offset, q.Limit
	p.Data = []any{}
	for _, it := range chosen {
		p.Data = append(p.Data, project(toWire(it), q.Select))
	}
	return p
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
		ok, err := path.Match(strings.ToLower(strings.ReplaceAll(c.Values[0], "?", `\?`)), strings.ToLower(v))
		if err != nil {
			return false, dispatcher.Errorf(dispatcher.EQUERY, "rql: like(%s,%s): %v", c.Field, c.Values[0], err)
		}
		return ok, nil
	case dispatcher.OpContains:
		return strings.Contains(strings.ToLower(v), strings.ToLower(c.Values[0])), nil
	case dispatcher.OpExcludes:
		return !strings.Contains(strings.ToLower(v), strings.ToLower(c.Values[0])), nil
	}
	return false, dispatcher.Errorf(dispatcher.EQUERY, "rql: unknown operator %q", c.Op)
}
