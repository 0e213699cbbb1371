package models

import (
	"slices"
	"strconv"
	"strings"

	"gorm.io/gorm"

	"github.com/dispatcherhq/dispatcher"
)

// columns maps the scalar query fields to columns of the dispatchers table.
var columns = map[string]string{
	"id":                "id",
	"name":              "name",
	"description":       "description",
	"eventType":         "event_type",
	"creationTimestamp": "creation_timestamp",
	"updateTimestamp":   "update_timestamp",
	"enabled":           "enabled",
}

// actionColumns maps the actions.* query fields to columns of the actions
// table; a condition on them matches a dispatcher when any action matches.
var actionColumns = map[string]string{
	"actions.id":           "id",
	"actions.type":         "type",
	"actions.name":         "name",
	"actions.functionName": "function_name",
	"actions.templateId":   "template_id",
}

// buildFilter turns a filter into a SQL condition on the dispatchers table
// that runs on PostgreSQL and SQLite alike; collate is textCollation.
func buildFilter(c *dispatcher.Cond, collate string) (string, []any, error) {
	if c == nil {
		return "1 = 1", nil, nil
	}
	b := filterBuilder{collate: collate}
	if err := b.cond(*c); err != nil {
		return "", nil, err
	}
	return b.sql.String(), b.args, nil
}

type filterBuilder struct {
	sql     strings.Builder
	args    []any
	collate string
}

// textCollation is what text is compared and sorted by: byte order, as
// SQLite's BINARY and Go do. PostgreSQL's depends on how its database was
// made (en_US.UTF-8 or ICU put "_under" after "9" and "äpfel" before
// "apple"), so a sort or a gt would page the same query differently on
// another server.
func textCollation(db *gorm.DB) string {
	if db.Dialector.Name() == "postgres" {
		return ` COLLATE "C"`
	}
	return ""
}

// tree writes c's and() and or() and hands each condition in them to
// leaf.
func (b *filterBuilder) tree(c dispatcher.Cond, leaf func(dispatcher.Cond) error) error {
	if c.Op != dispatcher.OpAnd && c.Op != dispatcher.OpOr {
		return leaf(c)
	}
	if len(c.Args) == 0 {
		return dispatcher.Errorf(dispatcher.EQUERY, "rql: %s() needs at least one condition", c.Op)
	}
	b.sql.WriteString("(")
	for i, arg := range c.Args {
		if i > 0 {
			b.sql.WriteString(" " + strings.ToUpper(c.Op) + " ")
		}
		if err := b.tree(arg, leaf); err != nil {
			return err
		}
	}
	b.sql.WriteString(")")
	return nil
}

func (b *filterBuilder) cond(c dispatcher.Cond) error {
	return b.tree(c, b.leaf)
}

// leaf writes a condition on one field of a dispatcher.
func (b *filterBuilder) leaf(c dispatcher.Cond) error {
	if isPresence(c) {
		return b.presence(c)
	}
	kind, ok := dispatcher.QueryFields[c.Field]
	if !ok {
		return dispatcher.Errorf(dispatcher.EQUERY, "rql: unknown field %q", c.Field)
	}
	if len(c.Values) == 0 {
		return dispatcher.Errorf(dispatcher.EQUERY, "rql: %s(%s) needs a value", c.Op, c.Field)
	}
	values, err := typed(c.Field, kind, c.Values)
	if err != nil {
		return err
	}
	if kind == dispatcher.KindBool && !slices.Contains([]string{dispatcher.OpEq, dispatcher.OpNe, dispatcher.OpIn, dispatcher.OpOut}, c.Op) {
		return dispatcher.Errorf(dispatcher.EQUERY, "rql: %s is not supported on %s (use eq, ne, in or out)", c.Op, c.Field)
	}
	if kind == dispatcher.KindStrings {
		return b.member(c, "SELECT 1 FROM dispatcher_tags t WHERE t.dispatcher_id = dispatchers.id AND ", "t.tag", values)
	}
	if col, ok := actionColumns[c.Field]; ok {
		return b.member(c, "SELECT 1 FROM actions a WHERE a.dispatcher_id = dispatchers.id AND ", "a."+col, values)
	}
	return b.scalar(c, "dispatchers."+columns[c.Field], kind, values)
}

// presence writes Extra Horizon's contains(field) (the dispatcher has the
// field: text not empty, an action, a tag) and excludes(field), and
// contains(actions,condition) (an action meets all of the condition,
// on its fields named without "actions.") and excludes(actions,condition).
func (b *filterBuilder) presence(c dispatcher.Cond) error {
	if c.Op == dispatcher.OpExcludes {
		b.sql.WriteString("NOT ")
	}
	const anAction = "EXISTS (SELECT 1 FROM actions a WHERE a.dispatcher_id = dispatchers.id"
	kind, known := dispatcher.QueryFields[c.Field]
	switch col := actionColumns[c.Field]; {
	case c.Field == "actions":
		b.sql.WriteString(anAction)
		for _, sub := range c.Args {
			b.sql.WriteString(" AND ")
			if err := b.tree(sub, b.actionLeaf); err != nil {
				return err
			}
		}
		b.sql.WriteString(")")
	case !known:
		return dispatcher.Errorf(dispatcher.EQUERY, "rql: unknown field %q", c.Field)
	case col != "":
		b.sql.WriteString(anAction + " AND " + present("a."+col, kind) + ")")
	case kind == dispatcher.KindStrings:
		b.sql.WriteString("EXISTS (SELECT 1 FROM dispatcher_tags t WHERE t.dispatcher_id = dispatchers.id)")
	default:
		b.sql.WriteString(present("dispatchers."+columns[c.Field], kind))
	}
	return nil
}

// isPresence reports whether c is Extra Horizon's contains(field) or
// excludes(field): the field is there, or not.
func isPresence(c dispatcher.Cond) bool {
	return (c.Op == dispatcher.OpContains || c.Op == dispatcher.OpExcludes) && len(c.Values) == 0
}

// has writes contains(field) or excludes(field) on col.
func (b *filterBuilder) has(op, col string, kind dispatcher.FieldKind) {
	if op == dispatcher.OpExcludes {
		b.sql.WriteString("NOT ")
	}
	b.sql.WriteString(present(col, kind))
}

// present is the condition that col holds a value: text not empty.
func present(col string, kind dispatcher.FieldKind) string {
	if kind == dispatcher.KindString {
		return "(" + col + " IS NOT NULL AND " + col + " <> '')"
	}
	return col + " IS NOT NULL"
}

// actionLeaf writes a condition of contains(actions,condition) on one
// field of an action (a).
func (b *filterBuilder) actionLeaf(c dispatcher.Cond) error {
	col, ok := actionColumns["actions."+c.Field]
	switch {
	case !ok:
		return dispatcher.Errorf(dispatcher.EQUERY, "rql: an action has no field %q", c.Field)
	case isPresence(c):
		b.has(c.Op, "a."+col, dispatcher.KindString)
		return nil
	case len(c.Values) == 0:
		return dispatcher.Errorf(dispatcher.EQUERY, "rql: %s(%s) needs a value", c.Op, c.Field)
	}
	values, err := typed(c.Field, dispatcher.KindString, c.Values)
	if err != nil {
		return err
	}
	return b.scalar(c, "a."+col, dispatcher.KindString, values)
}

// scalar writes a comparison on one column of the dispatchers table.
// Text is ordered by textCollation (like folds case as the database's own
// collation does: byte order would fold ASCII only).
func (b *filterBuilder) scalar(c dispatcher.Cond, col string, kind dispatcher.FieldKind, values []any) error {
	ordered := col
	if kind == dispatcher.KindString {
		ordered += b.collate
	}
	switch c.Op {
	case dispatcher.OpEq:
		b.write(col+" = ?", values[0])
	case dispatcher.OpNe:
		b.write("("+col+" IS NULL OR "+col+" <> ?)", values[0])
	case dispatcher.OpIn:
		b.write(col+" IN ?", values)
	case dispatcher.OpOut:
		b.write("("+col+" IS NULL OR "+col+" NOT IN ?)", values)
	case dispatcher.OpGt:
		b.write(ordered+" > ?", values[0])
	case dispatcher.OpGe:
		b.write(ordered+" >= ?", values[0])
	case dispatcher.OpLt:
		b.write(ordered+" < ?", values[0])
	case dispatcher.OpLe:
		b.write(ordered+" <= ?", values[0])
	case dispatcher.OpLike:
		b.write("LOWER("+col+") LIKE LOWER(?) ESCAPE '\\'", likePattern(c.Values[0], true))
	case dispatcher.OpContains:
		b.write("LOWER("+col+") LIKE LOWER(?) ESCAPE '\\'", likePattern(c.Values[0], false))
	case dispatcher.OpExcludes:
		b.write("("+col+" IS NULL OR LOWER("+col+") NOT LIKE LOWER(?) ESCAPE '\\')", likePattern(c.Values[0], false))
	default:
		return dispatcher.Errorf(dispatcher.EQUERY, "rql: unknown operator %q", c.Op)
	}
	return nil
}

// member writes a condition on a set of values of a dispatcher (its tags,
// or a column of its actions) as an EXISTS over the subquery sub, whose
// WHERE clause ends with the condition on col. like ignores case, as it
// does on the dispatchers' own fields: SQLite's LIKE does, PostgreSQL's
// does not.
func (b *filterBuilder) member(c dispatcher.Cond, sub, col string, values []any) error {
	switch c.Op {
	case dispatcher.OpEq, dispatcher.OpContains:
		b.write("EXISTS ("+sub+col+" = ?)", values[0])
	case dispatcher.OpNe, dispatcher.OpExcludes:
		b.write("NOT EXISTS ("+sub+col+" = ?)", values[0])
	case dispatcher.OpIn:
		b.write("EXISTS ("+sub+col+" IN ?)", values)
	case dispatcher.OpOut:
		b.write("NOT EXISTS ("+sub+col+" IN ?)", values)
	case dispatcher.OpLike:
		b.write("EXISTS ("+sub+"LOWER("+col+") LIKE LOWER(?) ESCAPE '\\')", likePattern(c.Values[0], true))
	default:
		return dispatcher.Errorf(dispatcher.EQUERY, "rql: %s is not supported on %s (use eq, ne, in, out, like, contains or excludes)", c.Op, c.Field)
	}
	return nil
}

func (b *filterBuilder) write(sql string, arg any) {
	b.sql.WriteString(sql)
	b.args = append(b.args, arg)
}

// typed converts the values of a condition to the field's type.
func typed(field string, kind dispatcher.FieldKind, values []string) ([]any, error) {
	out := make([]any, len(values))
	for i, v := range values {
		if kind == dispatcher.KindBool {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, dispatcher.Errorf(dispatcher.EQUERY, "rql: %s: %q is not true or false", field, v)
			}
			out[i] = b
			continue
		}
		if kind != dispatcher.KindNumber {
			out[i] = v
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, dispatcher.Errorf(dispatcher.EQUERY, "rql: %s: %q is not a number%s", field, v, dispatcher.NumberUnit(field))
		}
		out[i] = n
	}
	return out, nil
}

// likePattern turns an RQL value into a SQL LIKE pattern that finds it
// anywhere in the text, as the Extra Horizon SDK documents like ("contains
// the substring"); with wildcards (like) '*' is any run of characters,
// else (contains, excludes) itself.
func likePattern(v string, wildcards bool) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	p := r.Replace(v)
	if wildcards {
		p = strings.ReplaceAll(p, "*", "%")
	}
	return "%" + p + "%"
}

// buildOrder turns a sort into an ORDER BY clause; creation order breaks
// ties so pages are stable. NULL (a dispatcher without a name) comes
// first ascending and last descending, as in SQLite and in MongoDB, which
// the Extra Horizon service runs on; PostgreSQL's default is the reverse,
// and would page the same query differently.
func buildOrder(sorts []dispatcher.Sort, collate string) (string, error) {
	var parts []string
	for _, s := range sorts {
		col, ok := columns[s.Field]
		if !ok {
			return "", dispatcher.Errorf(dispatcher.EQUERY, "rql: cannot sort on %q (sortable: id, name, description, eventType, enabled, creationTimestamp, updateTimestamp)", s.Field)
		}
		dir := " ASC NULLS FIRST"
		if s.Desc {
			dir = " DESC NULLS LAST"
		}
		if dispatcher.QueryFields[s.Field] == dispatcher.KindString {
			col += collate
		}
		parts = append(parts, "dispatchers."+col+dir)
	}
	parts = append(parts, "dispatchers.creation_timestamp ASC", "dispatchers.id ASC")
	return strings.Join(parts, ", "), nil
}
