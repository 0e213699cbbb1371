package sandbox

import (
	"errors"
	"fmt"
	"reflect"
	"text/template"
	"time"
	"unicode/utf8"
)

// maxWidth bounds the width and precision of printf verbs: each is a
// buffer of that many bytes, and fmt accepts up to 10,000,000.
const maxWidth = 1000

// funcs returns the functions templates may call besides the built-in
// ones, bound to the budget of one rendering. Those that build text from
// their arguments replace the built-ins of the same name (text/template
// looks up user functions first) with the same results, but spend the
// budget before building, so that a loop cannot make them format the
// whole event over and over without writing a byte; printf also refuses
// huge widths.
func (b *budget) funcs() template.FuncMap {
	return template.FuncMap{
		stepFunc:    b.step,
		rangeFunc:   b.rangeStep,
		readFunc:    b.read,
		printFunc:   b.print,
		truthFunc:   truth,
		captureFunc: b.capture,
		// formatTime formats an RFC 3339 time, such as .event.time, with a
		// Go layout: {{ formatTime .event.time "2006-01-02" }}.
		"formatTime": func(ts, layout string) (string, error) {
			t, err := time.Parse(time.RFC3339Nano, ts)
			if err != nil {
				// Not quoted: it is the event's content (see kind).
				return "", errors.New("formatTime: the value is not an RFC 3339 time such as 2006-01-02T15:04:05Z")
			}
			// Format writes at most a few bytes per byte of layout ("1" →
			// "12"); 9 is generous.
			if err := b.spendBytes(len(ts) + 9*len(layout)); err != nil {
				return "", err
			}
			return t.Format(layout), nil
		},
		"printf": func(format string, args ...any) (string, error) {
			if err := present(args...); err != nil {
				return "", err
			}
			n, err := b.formatSize(format, args)
			if err != nil {
				return "", err
			}
			if err := b.spendBytes(n); err != nil {
				return "", err
			}
			return fmt.Sprintf(format, args...), nil
		},
		"index":    index,
		"eq":       eq,
		"ne":       ne,
		"lt":       lt,
		"le":       le,
		"gt":       gt,
		"ge":       ge,
		"print":    b.builder(1, fmt.Sprint),
		"println":  b.builder(1, fmt.Sprintln),
		"html":     b.builder(escapeGrowth, template.HTMLEscaper),
		"js":       b.builder(escapeGrowth, template.JSEscaper),
		"urlquery": b.builder(escapeGrowth, template.URLQueryEscaper),
	}
}

// index is the built-in index, but a key its map lacks gives absent,
// where the built-in gives the zero value, printed "<no value>": {{ index
// .event.content.m "nokey" }} mailed "<no value>". What it indexes comes
// from an event's JSON: maps with string keys, lists, strings.
func index(item reflect.Value, keys ...reflect.Value) (reflect.Value, error) {
	for _, key := range keys {
		item, key = indirect(item), indirect(key)
		if item.IsValid() && item.Type() == absentType {
			return item, nil // of a key that is not there, none is either
		}
		if item.IsValid() && item.Type() == reflect.TypeFor[number]() {
			return reflect.Value{}, errors.New("index: cannot index a number")
		}
		switch item.Kind() {
		case reflect.Map:
			if !key.IsValid() || !key.Type().AssignableTo(item.Type().Key()) {
				return reflect.Value{}, fmt.Errorf("index: an object's key must be a string, not %s", kindOf(key))
			}
			v := item.MapIndex(key)
			if !v.IsValid() {
				return reflect.Zero(absentType), nil
			}
			item = v
		case reflect.Slice, reflect.Array, reflect.String:
			i, ok := integer(key)
			if !ok {
				return reflect.Value{}, fmt.Errorf("index: a list's index must be a whole number (of 64 bits at most), not %s", kindOf(key))
			}
			if i < 0 || i >= int64(item.Len()) {
				// Neither the index nor the length: the event's.
				return reflect.Value{}, errors.New("index: out of range")
			}
			item = item.Index(int(i))
		default:
			return reflect.Value{}, fmt.Errorf("index: cannot index %s", kindOf(item))
		}
	}
	return item, nil
}

// absent is what index gives for a key its map lacks: a nil, which if
// and with take for false, so that {{ with index .event.content "opt" }}
// still tests for an optional key, but which nothing prints: printing it
// is an error (errAbsent), as printing a missing field is.
type absent struct{}

var absentType = reflect.TypeFor[*absent]()

var errAbsent = errors.New("index: the map has no entry for the key; test for an optional key with {{ with index … }}")

// present returns errAbsent when one of args is absent.
func present(args ...any) error {
	for _, a := range args {
		if _, ok := a.(*absent); ok {
			return errAbsent
		}
	}
	return nil
}

// integer is key as an index: an integer of the template, or an event's
// number that is one.
func integer(key reflect.Value) (int64, bool) {
	x, ok := numeric(key)
	return x.i, ok && x.whole
}

// indirect is what an interface holds.
func indirect(v reflect.Value) reflect.Value {
	for v.IsValid() && v.Kind() == reflect.Interface {
		v = v.Elem()
	}
	return v
}

// kindOf names the kind of v for an error, never its value (an event's
// content) nor its Go type.
func kindOf(v reflect.Value) string {
	if !v.IsValid() {
		return "nothing (null)"
	}
	switch {
	case v.Type() == reflect.TypeFor[number](), v.CanInt(), v.CanUint(), v.CanFloat():
		return "a number"
	case v.Kind() == reflect.String:
		return "a string"
	case v.Kind() == reflect.Map:
		return "an object"
	case v.Kind() == reflect.Slice, v.Kind() == reflect.Array:
		return "a list"
	case v.Kind() == reflect.Bool:
		return "true or false"
	}
	return "a " + v.Kind().String()
}

// escapeGrowth is the most an escaper grows its input: JSEscaper writes
// \u003C for <.
const escapeGrowth = 6

// builder wraps a built-in that builds text from its arguments, whose
// result is at most growth times their printed size.
func (b *budget) builder(growth int, fn func(args ...any) string) func(args ...any) (string, error) {
	return func(args ...any) (string, error) {
		if err := present(args...); err != nil {
			return "", err
		}
		n := b.argsSize(args)
		if err := b.spendBytes(growth * n); err != nil {
			return "", err
		}
		return fn(args...), nil
	}
}

// formatSize checks printf's format and returns a bound of the size of
// its result: the format, each verb's width and precision, and each
// argument as many times as verbs may print it, escaped (%q).
func (b *budget) formatSize(format string, args []any) (int, error) {
	verbs, padding, indexed, err := parseFormat(format)
	if err != nil {
		return 0, err
	}
	printed := b.argsSize(args) // each argument once, in order
	if indexed {
		largest := 0
		for _, a := range args {
			largest = max(largest, printedSize(a, b.bytesLeft()))
		}
		printed = verbs * largest // [n] may print one argument again and again
	}
	return len(format) + padding + verbs*32 + escapeGrowth*printed, nil
}

// parseFormat finds the verbs of a printf format, refusing * and widths or
// precisions beyond maxWidth. padding is the sum of widths and precisions;
// indexed reports explicit argument indexes ("%[2]d").
func parseFormat(format string) (verbs, padding int, indexed bool, err error) {
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		i++
		for i < len(format) && isFlag(format[i]) {
			i++
		}
		for ; i < len(format); i++ {
			c := format[i]
			switch {
			case c == '*':
				return 0, 0, false, fmt.Errorf("printf: * widths and precisions are not supported; write the number in the format")
			case c == '[':
				indexed = true
				for i < len(format) && format[i] != ']' {
					i++
				}
				continue
			case c == '.':
				continue
			case c >= '0' && c <= '9':
				start := i
				n := 0
				for ; i < len(format) && format[i] >= '0' && format[i] <= '9'; i++ {
					if n = n*10 + int(format[i]-'0'); n > maxWidth {
						for i < len(format) && format[i] >= '0' && format[i] <= '9' {
							i++
						}
						return 0, 0, false, fmt.Errorf("printf: width or precision %s is more than %d", format[start:i], maxWidth)
					}
				}
				padding += n
				i--
				continue
			}
			// The verb; %% prints a percent sign and takes no argument.
			// %p prints where the worker keeps a value in its memory.
			if c == 'p' {
				return 0, 0, false, fmt.Errorf("printf: %%p is not supported: it prints a memory address")
			}
			if c != '%' {
				verbs++
			}
			_, size := utf8.DecodeRuneInString(format[i:])
			i += size - 1
			break
		}
	}
	return verbs, padding, indexed, nil
}

func isFlag(c byte) bool { return c == '+' || c == '-' || c == '#' || c == ' ' || c == '0' }

// argsSize is the printed size of args and a separator each, measured no
// further than the budget reaches.
func (b *budget) argsSize(args []any) int {
	n := len(args)
	for _, a := range args {
		if n > b.bytesLeft() {
			break
		}
		n += printedSize(a, b.bytesLeft()-n)
	}
	return n
}

// printedSize estimates from above the bytes fmt's %v writes for v (in
// the template data: strings, numbers, booleans, nil, maps and lists of
// them), stopping once it passes limit. Each element of a map or list
// counts a step's worth of bytes more: fmt spends about as long on
// reaching an element (by reflection, sorting a map's keys every time) as
// a range spends on an iteration.
func printedSize(v any, limit int) int {
	switch v := v.(type) {
	case string:
		return len(v)
	case number:
		return v.width()
	case map[string]any:
		n := len("map[]")
		for k, e := range v {
			if n > limit {
				break
			}
			n += stepBytes + len(k) + printedSize(e, limit-n)
		}
		return n
	case []any:
		n := len("[]")
		for _, e := range v {
			if n > limit {
				break
			}
			n += stepBytes + printedSize(e, limit-n)
		}
		return n
	}
	return 32 // booleans, nil, numbers of literals and of len
}
