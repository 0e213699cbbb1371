// Package wire holds the JSON shapes of the HTTP API: the Extra Horizon
// compatible dispatcher, action, template and function documents, events
// as producers send them, and the executions API's answers. The API
// (package api) decodes requests and encodes answers with them, and the
// command-line client decodes the same answers, so the two never drift
// apart. Named converters turn requests into domain values and domain
// values into answers; nothing here imports gin.
package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// TypeError words a JSON value of the wrong type for a field as the
// client spells it, "retryPolicy.maximumAttempts: must be a number, not
// string", prefix ("retryPolicy.") first. Go's path also names the structs
// a field is promoted from ("DispatcherRequest.name"): API fields begin in
// lower case, so a part that does not is left out.
func TypeError(prefix string, typ *json.UnmarshalTypeError) string {
	return typeMessage(prefix+fieldPath(typ), typ)
}

// typeMessage says what the field at path must be. A number that an
// integer field cannot hold (2.5, 2.0, 1e2: Go's "number 2.5") needs a
// whole number, written in digits.
func typeMessage(path string, typ *json.UnmarshalTypeError) string {
	if n, ok := strings.CutPrefix(typ.Value, "number "); ok {
		switch typ.Type.Kind() {
		case reflect.Float32, reflect.Float64:
			return fmt.Sprintf("%s: %s is out of range", path, n)
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			if !strings.ContainsAny(n, ".eE") {
				return fmt.Sprintf("%s: %s is out of range", path, n)
			}
		}
		return fmt.Sprintf("%s: must be a whole number written in digits, not %s", path, n)
	}
	return fmt.Sprintf("%s: must be %s, not %s", path, jsonKind(typ.Type.Kind().String()), typ.Value)
}

// fieldPath is the path of typ's field as the client spells it, without
// the indices of arrays.
func fieldPath(typ *json.UnmarshalTypeError) string {
	parts := strings.Split(typ.Field, ".")
	parts = slices.DeleteFunc(parts, func(p string) bool { return p == "" || unicode.IsUpper(rune(p[0])) })
	return strings.Join(parts, ".")
}

// TypeErrorIn is TypeError of a whole body: its path names the elements
// of arrays and the keys of maps too ("actions[0].tags[1]",
// "headers.X-A"), which Go's leaves out. The value is found by typ's
// offset, which a field that decodes itself (Optional) reports within its
// own value: a path that is not Go's but for the indices and the keys
// after it is not used.
func TypeErrorIn(body []byte, typ *json.UnmarshalTypeError) string {
	p := pathAt(body, typ.Offset, typ.Value)
	if short, goes := arrayIndex.ReplaceAllString(p, ""), fieldPath(typ); p != "" && (short == goes || goes != "" && strings.HasPrefix(short, goes+".")) {
		return typeMessage(p, typ)
	}
	return TypeError("", typ)
}

// tokenKind names the kind of a value's token as UnmarshalTypeError does.
func tokenKind(tok json.Token) string {
	switch tok := tok.(type) {
	case json.Delim:
		if tok == '[' {
			return "array"
		}
		return "object"
	case json.Number:
		return "number"
	case string:
		return "string"
	case bool:
		return "bool"
	}
	return "null"
}

var arrayIndex = regexp.MustCompile(`\[\d+\]`)

// pathAt is the path of the value of body, a JSON document, that a
// decoder that has read offset bytes has just read (a scalar) or begun (an
// object or an array), when that value is of kind ("number", "object", as
// encoding/json names them): "" for the document itself, for a value of
// another kind, or when body ends or breaks before.
func pathAt(body []byte, offset int64, kind string) string {
	type level struct {
		array bool
		index int    // of the element being read, in an array
		key   string // of the value being read, in an object
		value bool   // in an object: its key was read, the value comes
	}
	var stack []level
	path := func() string {
		var b strings.Builder
		for _, l := range stack {
			if l.array {
				fmt.Fprintf(&b, "[%d]", l.index)
			} else {
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(l.key)
			}
		}
		return b.String()
	}
	done := func() { // a value was read whole: the next one's place
		if n := len(stack); n > 0 {
			stack[n-1].index++
			stack[n-1].value = false
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // 1e999 is a number too
	for {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		if n := len(stack); n > 0 && !stack[n-1].array && !stack[n-1].value {
			if key, ok := tok.(string); ok {
				stack[n-1].key, stack[n-1].value = key, true
				continue
			}
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			done()
			continue
		}
		if dec.InputOffset() >= offset {
			if tokenKind(tok) != kind {
				return ""
			}
			return path()
		}
		if d, ok := tok.(json.Delim); ok {
			stack = append(stack, level{array: d == '['})
			continue
		}
		done()
	}
}

// jsonKind names a Go kind the way a JSON client thinks of it.
func jsonKind(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	case "bool":
		return "a boolean"
	case "int", "int64", "float64", "int32", "uint", "uint64":
		return "a number"
	}
	return "a " + kind
}

// Error is the body of every error answer.
type Error struct {
	Code    int    `json:"code"`
	Name    string `json:"name"`
	Message string `json:"message"`
}

// NoRoute begins the Message of the 404 of a path and method the server
// has no route for: a client newer than the server tells it from a
// resource that does not exist.
const NoRoute = "no route for "

// Page is the shape of every RQL-paged list (dispatchers, templates,
// functions).
type Page struct {
	Page struct {
		Total  int `json:"total"`
		Offset int `json:"offset"`
		Limit  int `json:"limit"`
	} `json:"page"`
	Data []any `json:"data"`
}

// Affected is the answer to updates and deletes.
type Affected struct {
	AffectedRecords int `json:"affectedRecords"`
}

// Optional is a field that may be absent (Set false), null (Set, Null) or
// a value. encoding/json calls UnmarshalJSON for null too, which a pointer
// field cannot tell from absence.
type Optional[T any] struct {
	Set   bool
	Null  bool
	Value T
}

// UnmarshalJSON implements json.Unmarshaler.
func (o *Optional[T]) UnmarshalJSON(b []byte) error {
	o.Set = true
	if bytes.Equal(b, []byte("null")) {
		o.Null = true
		return nil
	}
	return json.Unmarshal(b, &o.Value)
}

// Ptr is the value to set in an update: nil when absent, the zero value
// when null.
func (o Optional[T]) Ptr() *T {
	if !o.Set {
		return nil
	}
	return &o.Value
}

// isoMillis is how timestamps that the reference calls ISO-8601 are written.
const isoMillis = "2006-01-02T15:04:05.000Z07:00"

// minMillis is the least epoch milliseconds a timestamp may hold
// (March 1973): fewer are taken for seconds or a date without its dashes,
// as the CLI's --from does.
const minMillis = 100_000_000_000

// ParseTimestamp accepts an ISO-8601 date-time string, an ISO-8601 date
// (its midnight UTC), or epoch milliseconds from minMillis, as a
// number or a string of digits. Before, the date and the string of
// digits were refused, which Extra Horizon's clients may send for a time.
func ParseTimestamp(raw json.RawMessage) (time.Time, error) {
	var ms int64
	if err := json.Unmarshal(raw, &ms); err == nil {
		return fromMillis(ms, string(raw))
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return time.Time{}, fmt.Errorf("must be an ISO-8601 date-time string or epoch milliseconds, not %s", raw)
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil && s[0] != '+' && s[0] != '-' {
		return fromMillis(ms, strconv.Quote(s))
	}
	// RFC 3339 allows a lower-case t and z, which Go's layout does not.
	t, err := time.Parse(time.RFC3339Nano, strings.ToUpper(s))
	if err != nil {
		var pe *time.ParseError
		if errors.As(err, &pe) && strings.HasSuffix(pe.Message, " out of range") { // the form is right, a field out of range
			return time.Time{}, fmt.Errorf("%q is not a date-time: %s", s, strings.TrimPrefix(pe.Message, ": "))
		}
		if t, err = time.Parse(time.DateOnly, s); err != nil {
			return time.Time{}, fmt.Errorf("%q is not an ISO-8601 date-time such as 2030-01-31T09:00:00.000Z, a date, nor epoch milliseconds", s)
		}
	}
	if _, off := t.Zone(); off >= 24*3600 || off <= -24*3600 { // Go takes +24:00 to +24:59
		return time.Time{}, fmt.Errorf("%q: a zone's offset is at most 23:59 from UTC", s)
	}
	return InRange(t.UTC())
}

// fromMillis is the time of epoch milliseconds ms, written as given. Fewer
// than minMillis are refused: 20300101 or 1893456000 read as
// milliseconds would be 1970, and a startTimestamp then runs at once.
// Before, only in a string: as a number, seconds were taken for 1970.
func fromMillis(ms int64, given string) (time.Time, error) {
	if ms >= 0 && ms < minMillis {
		return time.Time{}, fmt.Errorf("%s is too small for epoch milliseconds (before 1973): seconds? a date without its dashes? Send 1893456000000 or 2030-01-01", given)
	}
	return InRange(time.UnixMilli(ms).UTC())
}

// InRange refuses times outside the years 1970 to 9999: before is a
// mistake, after cannot be written as RFC 3339 (nor recorded by Temporal).
func InRange(t time.Time) (time.Time, error) {
	if t.Year() < 1970 || t.Year() > 9999 {
		return time.Time{}, fmt.Errorf("must be between the years 1970 and 9999, not %d", t.Year())
	}
	return t, nil
}

// optionalMillis writes a time as epoch milliseconds, or leaves it out
// when zero.
func optionalMillis(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	ms := t.UnixMilli()
	return &ms
}

// NonNil keeps empty lists as [] rather than null on the wire.
func NonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// value returns *p, or the zero value for nil.
func value[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// TrimBOM drops the byte order mark that starts the files some Windows
// tools write (PowerShell 5's Out-File, Notepad until 2019). RFC 8259 §8.1
// lets a parser ignore it; encoding/json does not, and the body was
// refused as no JSON object.
func TrimBOM(body []byte) []byte {
	return bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))
}

// NotUTF8 is the offset of the first byte of b that is not UTF-8, -1
// when every one is. JSON is UTF-8 (RFC 8259 §8.1); encoding/json makes
// each bad byte U+FFFD without a word, and a json.RawMessage keeps it.
func NotUTF8(b []byte) int {
	if utf8.Valid(b) {
		return -1
	}
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return -1
}

// distinct is Distinct of a request's tags, nil when it sets none.
func distinct(tags *[]string) *[]string {
	if tags == nil {
		return nil
	}
	out := Distinct(*tags)
	return &out
}

// Distinct is tags without a tag named again, in the order sent (never
// nil): a tag is there or not, and `eq(tags,x)` finds a record once either
// way. Tools that append their own tag to a list already holding it (a
// CLI's "managed" mark) must not be refused for it, and a sync compares
// a file's tags with the API's so.
func Distinct(tags []string) []string {
	out, seen := make([]string, 0, len(tags)), make(map[string]bool, len(tags))
	for _, t := range tags {
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out
}

// NotText returns the offset in body of the first byte that is not UTF-8,
// or of the first escaped surrogate (\ud800) that is not half of a pair;
// -1 if there is none. encoding/json decodes both to U+FFFD without a
// word, which would be stored in place of what the client sent.
func NotText(body []byte) int {
	for i := 0; i < len(body); {
		r, size := utf8.DecodeRune(body[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return i
		case r == '\\' && i+1 < len(body) && body[i+1] == 'u':
			size = 6
			if r := escaped(body, i); utf16.IsSurrogate(r) {
				if utf16.DecodeRune(r, escaped(body, i+6)) == utf8.RuneError {
					return i
				}
				size = 12
			}
		case r == '\\':
			size = 2 // \\, \" and the like: what follows is no escape
		}
		i += size
	}
	return -1
}

// escaped is the rune that the escape \uXXXX at body[i:] stands for, or
// -1 if there is none there.
func escaped(body []byte, i int) rune {
	if len(body) < i+6 || body[i] != '\\' || body[i+1] != 'u' {
		return -1
	}
	n, err := strconv.ParseUint(string(body[i+2:i+6]), 16, 16)
	if err != nil {
		return -1
	}
	return rune(n)
}
