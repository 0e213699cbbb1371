package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	goccy "github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"go.yaml.in/yaml/v3"

	"github.com/dispatcherhq/dispatcher/wire"
)

// The dispatchers file of `dispatcher sync` and `dispatcher export` is the
// Extra Horizon CLI's (`exh dispatchers sync --file`): a bare array of
// dispatchers or {"dispatchers": [...]}, each matched by name, JSON or
// YAML. This project adds "templates" and "functions" sections and the
// dispatcher and action fields of its API that Extra Horizon lacks;
// docs/schemas/dispatchers-file.json is the whole format, and the binary
// checks every file against the same schema before it plans anything.

// managedTag marks the dispatchers that sync created or adopted: the only
// ones it updates, and the only ones --clean deletes. The Extra Horizon
// CLI uses the same tag.
const managedTag = "EXH_CLI_MANAGED"

// syncFile is a dispatchers file as read: its items as generic JSON values
// (numbers as json.Number), so that fields sync does not know pass through.
type syncFile struct {
	Path        string
	Dispatchers []map[string]any
	// HasDispatchers says that the file lists its dispatchers, maybe
	// none: an array, or an object with "dispatchers".
	HasDispatchers bool
	Templates      []map[string]any
	Functions      []map[string]any
}

// maxSyncFile bounds the dispatchers file sync reads: far more than the
// configuration of a tenant at its limits takes.
const maxSyncFile = 64 << 20

// readSyncFile parses a file's bytes: YAML when its name ends in .yaml or
// .yml (or, for standard input, "-", when it does not start like JSON),
// JSON otherwise. It checks the file against the schema and for what a
// schema cannot say (no secrets in the file, one name per item).
func readSyncFile(path string, r io.Reader) (*syncFile, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxSyncFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(b) > maxSyncFile {
		// Read whole before, /dev/zero or a log named by mistake took
		// gigabytes, and the process with them.
		return nil, fmt.Errorf("%s: larger than %d MiB, more than a dispatchers file holds: is it the right file?", path, maxSyncFile>>20)
	}
	doc, err := decodeFile(path, b)
	if err != nil {
		return nil, problems{{File: path, Message: err.Error()}}
	}
	dropNulls(doc)
	// The secrets', the schema's and the names' problems together: one run
	// lists them all. The schema sees the file without the secrets, of
	// which it would only say that they are no field.
	ps := secretsInFile(path, doc)
	checked := withoutSecrets(doc)
	ps = append(ps, checkSchema(path, checked)...)
	ps = append(ps, duplicateNames(path, checked)...)
	ps = append(ps, misspeltFields(path, checked)...)
	if len(ps) > 0 {
		return nil, ps
	}
	f := &syncFile{Path: path}
	if arr, ok := doc.([]any); ok {
		f.Dispatchers, f.HasDispatchers = objects(arr), true
	} else {
		m := doc.(map[string]any)
		_, f.HasDispatchers = m["dispatchers"]
		f.Dispatchers = objects(asSlice(m["dispatchers"]))
		f.Templates = objects(asSlice(m["templates"]))
		f.Functions = objects(asSlice(m["functions"]))
	}
	return f, nil
}

// dropNulls removes the fields set to null from the file's items, their
// actions and the actions' recipients and retry policy, as the API takes
// null for absent: before, a file an SDK wrote ("description": null) was
// refused. Not within data or a filter, whose nulls are values.
func dropNulls(doc any) {
	drop := func(m map[string]any) {
		maps.DeleteFunc(m, func(_ string, v any) bool { return v == nil })
	}
	items := asSlice(doc)
	if m, ok := doc.(map[string]any); ok {
		drop(m)
		items = slices.Concat(asSlice(m["dispatchers"]), asSlice(m["templates"]), asSlice(m["functions"]))
	}
	for _, item := range objects(items) {
		drop(item)
		for _, a := range objects(asSlice(item["actions"])) {
			drop(a)
			for _, k := range []string{"recipients", "retryPolicy"} {
				if o, ok := a[k].(map[string]any); ok {
					drop(o)
				}
			}
		}
	}
}

// yamlSyntax says where the YAML syntax error err of b is: yaml.v3 names
// the line where the block that holds it begins (line 1 for a key out of
// line on line 9), goccy/go-yaml's parser the token itself, when it finds
// one at or after that line (it refuses some YAML that yaml.v3 reads).
func yamlSyntax(b []byte, err error) error {
	if strings.Contains(err.Error(), "exceeded max depth") || flowDepth(b) > maxLocatedDepth {
		return fmt.Errorf("not valid YAML: %v", err)
	}
	// yaml.v3 names no line for an alias of an anchor never set; said as
	// any alias is (before: "yaml: unknown anchor 't' referenced").
	// goccy/go-yaml's parser finds the alias (not a *name in a comment or
	// a quoted string).
	if m := unknownAnchor.FindStringSubmatch(err.Error()); m != nil {
		if f, perr := parser.ParseBytes(b, 0); perr == nil {
			var line int
			for _, d := range f.Docs {
				ast.Walk(aliasFinder{m[1], &line}, d)
			}
			if line > 0 {
				return fmt.Errorf("line %d: *%s: an alias of no anchor; a dispatchers file has no aliases: write the value out", line, m[1])
			}
		}
	}
	var se *goccy.SyntaxError
	var from int
	fmt.Sscanf(err.Error(), "yaml: line %d:", &from)
	if _, perr := parser.ParseBytes(b, 0); errors.As(perr, &se) && se.Token != nil && se.Token.Position.Line >= from {
		return fmt.Errorf("not valid YAML: line %d, column %d: %s", se.Token.Position.Line, se.Token.Position.Column, se.Message)
	}
	return fmt.Errorf("not valid YAML: %v", err)
}

// maxLocatedDepth is how deeply a YAML file's brackets may nest for
// yamlSyntax to look for its error with goccy/go-yaml, whose parser takes
// time and memory that grow with the square of the depth: before, a
// 200 KB file of nested brackets took a minute and 15 GB to be refused
// (yaml.v3 stops at 10,000 levels in milliseconds, and says so: that
// error is never located either, so that brackets in quotes, which
// flowDepth takes for brackets, cannot hide a file nested deeper).
const maxLocatedDepth = 1000

// flowDepth is how deeply the brackets of b ([ and {) nest at most,
// quotes and comments not told apart.
func flowDepth(b []byte) int {
	depth, most := 0, 0
	for _, c := range b {
		switch c {
		case '[', '{':
			depth++
			most = max(most, depth)
		case ']', '}':
			depth = max(depth-1, 0)
		}
	}
	return most
}

// secondDocument is the line of the --- that ends the document whose
// content begins on line first.
func secondDocument(b []byte, first int) int {
	for i, l := range strings.Split(string(b), "\n") {
		if i+1 > first && (l == "---" || strings.HasPrefix(l, "--- ") || strings.HasPrefix(l, "---\t") || strings.HasPrefix(l, "---\r")) {
			return i + 1
		}
	}
	return 0
}

var unknownAnchor = regexp.MustCompile(`^yaml: unknown anchor '(.+)' referenced$`)

// aliasFinder sets line to that of the first alias of name it visits.
type aliasFinder struct {
	name string
	line *int
}

func (v aliasFinder) Visit(n ast.Node) ast.Visitor {
	if a, ok := n.(*ast.AliasNode); ok && *v.line == 0 && a.Value != nil && a.Value.String() == v.name {
		*v.line = a.GetToken().Position.Line
	}
	return v
}

// decodeFile turns a file's bytes into generic JSON values.
func decodeFile(path string, b []byte) (any, error) {
	ext := strings.ToLower(filepath.Ext(path))
	trimmed := bytes.TrimSpace(b)
	if len(trimmed) == 0 {
		return nil, errors.New("the file is empty; want an array of dispatchers or {\"dispatchers\": [...]}")
	}
	asYAML := ext == ".yaml" || ext == ".yml" || (path == "-" && trimmed[0] != '{' && trimmed[0] != '[')
	if asYAML {
		dec := yaml.NewDecoder(bytes.NewReader(b))
		var n, next yaml.Node
		if err := dec.Decode(&n); err != nil {
			return nil, yamlSyntax(b, err)
		}
		// Before, the documents after the first were not read, and
		// --clean deleted the dispatchers they held.
		if err := dec.Decode(&next); err != io.EOF {
			line := next.Line
			if line == 0 { // one yaml.v3 could not read: at its ---
				line = secondDocument(b, n.Line)
			}
			return nil, fmt.Errorf("line %d: a second YAML document (after ---); a dispatchers file is one", line)
		}
		return fromYAML(&n)
	}
	b = wire.TrimBOM(b) // as the API takes JSON, and YAML is read
	if i := wire.NotText(b); i >= 0 {
		// encoding/json would make each bad byte, or escaped half of a
		// surrogate pair, U+FFFD, silently.
		line, col := position(b, int64(i))
		return nil, fmt.Errorf("not valid JSON: line %d, column %d: not valid UTF-8 text (or \\u of half a surrogate pair)", line, col)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		var syn *json.SyntaxError
		offset := int64(len(b)) // an end too soon: where it ended
		if errors.As(err, &syn) {
			offset = max(syn.Offset-1, 0)
		}
		line, col := position(b, offset)
		hint := ""
		if ext != ".json" && trimmed[0] != '{' && trimmed[0] != '[' {
			// YAML, most likely: before, the JSON error alone.
			hint = "; a file not named .yaml or .yml is read as JSON: name a YAML file so"
		}
		return nil, fmt.Errorf("not valid JSON: line %d, column %d: %v%s", line, col, err, hint)
	}
	// Nothing but space after the value: before, what followed a ] or a }
	// was not read (More says false before either), and --clean deleted
	// the dispatchers written after a stray bracket.
	if rest := dec.InputOffset(); len(bytes.TrimSpace(b[rest:])) > 0 {
		line, col := position(b, rest+int64(len(b[rest:])-len(bytes.TrimLeft(b[rest:], " \t\r\n"))))
		return nil, fmt.Errorf("not valid JSON: line %d, column %d: more after the file's value, which ends before it", line, col)
	}
	// Once the JSON is known valid: before, on a missing comma, the walk
	// looped for good, deaf to Ctrl-C.
	if path := twiceInJSON(b); path != "" {
		// encoding/json keeps the last silently.
		return nil, fmt.Errorf("%s: is given twice in its object; give each key once", path)
	}
	return doc, nil
}

// twiceInJSON returns the path of the first key that an object of b,
// valid JSON, holds twice ("dispatchers[0].name"), "" for none (or for b
// not valid JSON).
func twiceInJSON(b []byte) string {
	dec := json.NewDecoder(bytes.NewReader(b))
	var failed error // a token not read: the walk stops
	var walk func(path string) string
	walk = func(path string) string {
		tok, err := dec.Token()
		if err != nil {
			failed = err
		}
		if d, ok := tok.(json.Delim); err != nil || !ok {
			return ""
		} else if d == '[' {
			for i := 0; failed == nil && dec.More(); i++ {
				if p := walk(fmt.Sprintf("%s[%d]", path, i)); p != "" {
					return p
				}
			}
		} else {
			seen := map[string]bool{}
			for failed == nil && dec.More() {
				k, err := dec.Token()
				if err != nil {
					failed = err
					return ""
				}
				key, _ := k.(string)
				p := strings.TrimPrefix(path+"."+key, ".")
				if seen[key] {
					return p
				}
				seen[key] = true
				if p := walk(p); p != "" {
					return p
				}
			}
		}
		_, _ = dec.Token() // ] or }
		return ""
	}
	return walk("")
}

// position turns a byte offset into a line and column, counted from 1.
func position(b []byte, offset int64) (line, col int) {
	offset = min(offset, int64(len(b)))
	before := b[:offset]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(offset) - bytes.LastIndexByte(before, '\n')
	return line, col
}

// fromYAML converts a YAML document into the values a JSON decoder with
// UseNumber gives, so that YAML and JSON files are one thing from here on.
// A timestamp stays the text it was written as.
func fromYAML(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, errors.New("the file is empty")
		}
		return fromYAML(n.Content[0])
	case yaml.AliasNode:
		// Expanded here, past yaml.v3's own limit, a kilobyte of nested
		// aliases is millions of values (a "billion laughs"); the format
		// needs none, and export writes none.
		return nil, fmt.Errorf("line %d: *%s: a dispatchers file has no aliases; write the value out", n.Line, n.Value)
	case yaml.SequenceNode:
		out := make([]any, len(n.Content))
		for i, c := range n.Content {
			v, err := fromYAML(c)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Tag == "!!merge" {
				// Said as an alias is: before, "keys must be plain strings".
				return nil, fmt.Errorf("line %d: <<: a dispatchers file has no aliases, nor merge keys; write the values out", k.Line)
			}
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: keys must be plain strings", k.Line)
			}
			if _, dup := out[k.Value]; dup {
				return nil, fmt.Errorf("line %d: the key %q appears twice", k.Line, k.Value)
			}
			v, err := fromYAML(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			out[k.Value] = v
		}
		return out, nil
	}
	switch tag := n.ShortTag(); tag {
	case "!!null":
		return nil, nil
	case "!!bool":
		var b bool
		err := n.Decode(&b)
		return b, err
	case "!!int", "!!float":
		if jsonNumber.MatchString(n.Value) { // kept as written, as JSON keeps it
			return json.Number(n.Value), nil
		}
		if leadingZero.MatchString(n.Value) {
			return nil, fmt.Errorf("line %d: %s", n.Line, leadingZeroProblem(n.Value))
		}
		if tag == "!!float" {
			break
		}
		var i int64
		if err := n.Decode(&i); err != nil {
			return nil, fmt.Errorf("line %d: %v", n.Line, err)
		}
		return json.Number(strconv.FormatInt(i, 10)), nil
	}
	if n.ShortTag() == "!!float" {
		var f float64
		if err := n.Decode(&f); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, fmt.Errorf("line %d: %q is not a number JSON can hold", n.Line, n.Value)
		}
		return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), nil
	}
	return n.Value, nil
}

// leadingZero matches the integers written with a leading zero, which
// YAML 1.1 reads as octal (01234 is 668), or, with an 8 or a 9, as a
// decimal without it (08901 is 8901): what a zip code or an id written so
// never means. 0o17 says it is octal.
var leadingZero = regexp.MustCompile(`^[-+]?0[0-9_]+$`)

// leadingZeroProblem says what YAML makes of v, a leadingZero integer.
func leadingZeroProblem(v string) string {
	sign, digits := "", strings.ReplaceAll(v, "_", "")
	if digits[0] == '-' || digits[0] == '+' {
		sign, digits = digits[:1], digits[1:]
	}
	quote := fmt.Sprintf("quote it (\"%s\") for text", v)
	n, err := strconv.ParseInt(digits, 8, 64)
	if err != nil {
		return fmt.Sprintf("%s would be read as the number %s%s: %s", v, sign, strings.TrimLeft(digits, "0"), quote)
	}
	return fmt.Sprintf("%s would be read as the octal number %s%d: %s, or write %s0o%s for octal", v, sign, n, quote, sign, strings.TrimLeft(digits, "0"))
}

// jsonNumber is the grammar of a JSON number.
var jsonNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

func text(v any) string {
	s, _ := v.(string)
	return s
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

func objects(vs []any) []map[string]any {
	out := make([]map[string]any, 0, len(vs))
	for _, v := range vs {
		if m, ok := v.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// stringList returns a list of strings; nil and absent give an empty list.
func stringList(v any) []string {
	out := []string{}
	for _, e := range asSlice(v) {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	if ss, ok := v.([]string); ok {
		out = append(out, ss...)
	}
	return out
}
