package wire

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/dispatcherhq/dispatcher"
)

// CheckKeys refuses body, a JSON object that decoded into v, with an
// EINVALID error naming the first key that Misspelt or Twice finds.
func CheckKeys(body []byte, v any) error {
	if path, name := Misspelt(body, v); path != "" {
		return dispatcher.Errorf(dispatcher.EINVALID, "%s: unknown field; did you mean %q?", path, name)
	}
	if path, name := Twice(body, v); path != "" {
		return dispatcher.Errorf(dispatcher.EINVALID, "%s: sets %q again; give each field once", path, name)
	}
	return nil
}

// Misspelt returns the first key of body, a JSON object that decoded into
// v, that v's type has no field for but nearly spells one of those it has
// ("enabeld" for "enabled"), with its path ("actions[0].dat") and that
// field's name. Request bodies are read loosely, as Extra Horizon clients
// send keys of their own (templateName, creationTimestamp, the actions of
// a dispatcher they update); a misspelt key would be dropped as quietly,
// and a dispatcher meant to be paused would run.
func Misspelt(body []byte, v any) (path, field string) {
	EachMisspelt(body, v, func(p, f string) bool {
		path, field = p, f
		return false
	})
	return path, field
}

// EachMisspelt calls found with each key of body that Misspelt would
// name, in order, until found returns false: a file lists them all in one
// run.
func EachMisspelt(body []byte, v any, found func(path, field string) bool) {
	var doc any
	if json.Unmarshal(body, &doc) == nil {
		misspeltIn(doc, reflect.TypeOf(v), "", found)
	}
}

// Twice returns the first key of body, a JSON object that decoded into v,
// that names a field an earlier key of the same object named too: the
// same key again, or in another case ("type" and "TYPE"), of which
// encoding/json keeps the last. With its path and the field's name.
func Twice(body []byte, v any) (path, field string) {
	t := reflect.TypeOf(v)
	if !maybeTwice(body, t) {
		return "", "" // no key is there twice, in any case: no walk
	}
	return twiceIn(body, t)
}

// maybeTwice reports whether body holds a key of t's fields, or of the
// structs within, twice in any case: a look at the bytes that spares the
// intake's every event the walk of its tokens.
func maybeTwice(body []byte, t reflect.Type) bool {
	// An escape ("\u0074ype") or a rune that folds to ASCII (K, ſ) names
	// a key as well, where the bytes do not show it: walk.
	if bytes.ContainsAny(body, "\\\u212a\u017f") {
		return true
	}
	lower := bytes.ToLower(body)
	for _, key := range quotedKeys(t) {
		if bytes.Count(lower, key) > 1 {
			return true
		}
	}
	return false
}

var keysOf sync.Map // reflect.Type → [][]byte

// quotedKeys returns the JSON names of t's fields and of the structs
// within, lower case and quoted.
func quotedKeys(t reflect.Type) [][]byte {
	if k, ok := keysOf.Load(t); ok {
		return k.([][]byte)
	}
	var keys [][]byte
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		t = valueType(t)
		for t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			t = valueType(t.Elem())
		}
		if t.Kind() != reflect.Struct || seen[t] {
			return
		}
		seen[t] = true
		for _, f := range jsonFields(t) {
			keys = append(keys, []byte(`"`+strings.ToLower(f.Name)+`"`))
			walk(f.Type)
		}
	}
	walk(t)
	keysOf.Store(t, keys)
	return keys
}

func twiceIn(raw []byte, t reflect.Type) (string, string) {
	t = valueType(t)
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) > 0 && raw[0] == '{' && t.Kind() == reflect.Struct:
		dec := json.NewDecoder(bytes.NewReader(raw))
		if _, err := dec.Token(); err != nil {
			return "", ""
		}
		fields, seen := jsonFields(t), map[string]bool{}
		for dec.More() {
			tok, err := dec.Token()
			var value json.RawMessage
			if err != nil || dec.Decode(&value) != nil {
				return "", ""
			}
			key, _ := tok.(string)
			f, ok := fieldFor(fields, key)
			switch {
			case !ok:
			case seen[f.Name]:
				return key, f.Name
			default:
				seen[f.Name] = true
				if p, name := twiceIn(value, f.Type); p != "" {
					return under(key, p), name
				}
			}
		}
	case len(raw) > 0 && raw[0] == '[' && t.Kind() == reflect.Slice && t.Elem().Kind() != reflect.Uint8:
		var elems []json.RawMessage
		if json.Unmarshal(raw, &elems) != nil {
			return "", ""
		}
		for i, e := range elems {
			if p, name := twiceIn(e, t.Elem()); p != "" {
				return under(fmt.Sprintf("[%d]", i), p), name
			}
		}
	}
	return "", ""
}

var optionalPrefix = reflect.TypeFor[Optional[int]]().Name()[:len("Optional[")]

// valueType is the type t decodes its value into: the type it points to,
// an Optional's value's.
func valueType(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() == reflect.Struct && strings.HasPrefix(t.Name(), optionalPrefix) {
		if f, ok := t.FieldByName("Value"); ok {
			return valueType(f.Type)
		}
	}
	return t
}

// misspeltIn calls found with each misspelt key of doc, a value of type
// t, at path prefix, until found returns false; it reports whether it
// went through.
func misspeltIn(doc any, t reflect.Type, prefix string, found func(path, field string) bool) bool {
	t = valueType(t)
	switch doc := doc.(type) {
	case map[string]any:
		if t.Kind() != reflect.Struct {
			return true // a map's keys are the client's (headers)
		}
		fields := jsonFields(t)
		for _, k := range slices.Sorted(maps.Keys(doc)) {
			p := under(prefix, k)
			if f, ok := fieldFor(fields, k); ok {
				// In another case, encoding/json took it for the field, and
				// a second key of the field would override it.
				if k != f.Name && !found(p, f.Name) || k == f.Name && !misspeltIn(doc[k], f.Type, p, found) {
					return false
				}
				continue
			}
			if i := slices.IndexFunc(fields, func(f jsonField) bool { return Nearly(k, f.Name) }); i >= 0 && !found(p, fields[i].Name) {
				return false
			}
		}
	case []any:
		if t.Kind() == reflect.Slice && t.Elem().Kind() != reflect.Uint8 { // not json.RawMessage
			for i, e := range doc {
				if !misspeltIn(e, t.Elem(), under(prefix, fmt.Sprintf("[%d]", i)), found) {
					return false
				}
			}
		}
	}
	return true
}

// under is path p inside the value at prefix.
func under(prefix, p string) string {
	if prefix == "" || strings.HasPrefix(p, "[") {
		return prefix + p
	}
	return prefix + "." + p
}

// jsonField is a key a struct decodes, and the type of its value.
type jsonField struct {
	Name string
	Type reflect.Type
}

var fieldsOf sync.Map // reflect.Type → []jsonField

// jsonFields returns the keys t decodes: its fields' JSON names, and
// those of the structs it embeds that it does not shadow.
func jsonFields(t reflect.Type) []jsonField {
	if f, ok := fieldsOf.Load(t); ok {
		return f.([]jsonField)
	}
	f := structFields(t)
	fieldsOf.Store(t, f)
	return f
}

func structFields(t reflect.Type) []jsonField {
	var out []jsonField
	var embedded []reflect.Type
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-" || !f.IsExported() && !f.Anonymous:
		case f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct:
			embedded = append(embedded, f.Type)
		default:
			out = append(out, jsonField{cmp.Or(name, f.Name), f.Type})
		}
	}
	for _, e := range embedded {
		for _, f := range structFields(e) {
			if _, shadowed := fieldFor(out, f.Name); !shadowed {
				out = append(out, f)
			}
		}
	}
	return out
}

// fieldFor finds the field key decodes into: encoding/json matches keys
// regardless of case.
func fieldFor(fields []jsonField, key string) (jsonField, bool) {
	for _, f := range fields {
		if strings.EqualFold(f.Name, key) {
			return f, true
		}
	}
	return jsonField{}, false
}

// Nearly reports whether key is within one edit of name (a letter added,
// dropped, changed or two swapped), or two for names of 8 letters or
// more; a key of fewer than 3 letters only as name with a letter dropped
// ("bc" for "bcc", "t" for "to": a recipient list lost without a word),
// as one edit makes any such key nearly every short name.
func Nearly(key, name string) bool {
	k, n := utf8.RuneCountInString(key), utf8.RuneCountInString(name)
	if k < 3 {
		return k > 0 && k == n-1 && edits(strings.ToLower(key), strings.ToLower(name)) == 1
	}
	limit := 1
	if n >= 8 {
		limit = 2
	}
	// Lengths further apart than the limit are too many edits: a long key
	// costs nothing to compare.
	if k < 3 || k > n+limit || k < n-limit {
		return false
	}
	return edits(strings.ToLower(key), strings.ToLower(name)) <= limit
}

// edits is the optimal string alignment distance between a and b: the
// insertions, deletions, substitutions and swaps of neighbours that turn
// one into the other.
func edits(a, b string) int {
	x, y := []rune(a), []rune(b)
	d := make([][]int, len(x)+1)
	for i := range d {
		d[i] = make([]int, len(y)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(x); i++ {
		for j := 1; j <= len(y); j++ {
			cost := 1
			if x[i-1] == y[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && x[i-1] == y[j-2] && x[i-2] == y[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(x)][len(y)]
}
