package dispatcher

// Query is a parsed list query (RQL): a filter, a sort order, a projection
// and a page.
type Query struct {
	Filter *Cond // nil matches everything
	Sort   []Sort
	Select []string // empty selects every field
	Limit  int
	Offset int
}

// Page limits.
const (
	DefaultLimit = 20
	MaxLimit     = 50
)

// Cond is one node of a filter. Op is a logical operator (OpAnd, OpOr)
// with Args, or a comparison on Field with Values.
type Cond struct {
	Op     string
	Field  string
	Values []string
	Args   []Cond
}

// Filter operators, as RQL names them.
const (
	OpAnd      = "and"
	OpOr       = "or"
	OpEq       = "eq"
	OpNe       = "ne"
	OpIn       = "in"
	OpOut      = "out"
	OpGt       = "gt"
	OpGe       = "ge"
	OpLt       = "lt"
	OpLe       = "le"
	OpLike     = "like"     // '*' matches any run of characters
	OpContains = "contains" // array has the value; string has the substring
	OpExcludes = "excludes" // the negation of contains
)

// Sort orders a list by Field, descending when Desc.
type Sort struct {
	Field string
	Desc  bool
}

// Dispatcher fields a query may filter and sort on, as the wire names them.
var QueryFields = map[string]FieldKind{
	"id":                   KindString,
	"name":                 KindString,
	"description":          KindString,
	"eventType":            KindString,
	"tags":                 KindStrings,
	"creationTimestamp":    KindNumber,
	"updateTimestamp":      KindNumber,
	"actions.id":           KindString,
	"actions.type":         KindString,
	"actions.name":         KindString,
	"actions.functionName": KindString,
	"actions.templateId":   KindString,
	"enabled":              KindBool,
}

// FieldKind says how a query field's values compare.
type FieldKind int

// Field kinds.
const (
	KindString  FieldKind = iota
	KindNumber            // epoch milliseconds, but for seq (NumberUnit)
	KindStrings           // an array of strings: eq means "contains"
	KindBool              // true or false: eq, ne, in and out only
)

// NumberUnit says, for an error about a KindNumber field's value, what
// its numbers count: " (epoch milliseconds)" for the times, nothing for
// an audit entry's seq.
func NumberUnit(field string) string {
	if field == "seq" {
		return ""
	}
	return " (epoch milliseconds)"
}
