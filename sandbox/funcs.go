package sandbox

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
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
		truthFunc:   b.truth,
		captureFunc: b.capture,
		// formatTime formats a time with a Go layout: an RFC 3339 time,
		// such as .event.time, or milliseconds since 1970, such as
		// .event.creationTimestamp: {{ formatTime .event.time "2006-01-02" }}.
		"formatTime": func(ts any, layout string) (string, error) {
			// Parsing reads every digit of a fraction of a second; Format
			// writes at most a few bytes per byte of layout ("1" → "12"),
			// 9 is generous.
			s, _ := ts.(string)
			if err := b.spendBytes(max(len(s), len(time.RFC3339Nano)) + 9*len(layout)); err != nil {
				return "", err
			}
			t, err := instant(ts)
			if err != nil {
				return "", err
			}
			return t.Format(layout), nil
		},
		"printf":   b.printf,
		"index":    index,
		"len":      length,
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

// instant is formatTime's time: an RFC 3339 string, kept in its offset,
// or a whole number of milliseconds since 1970, in UTC.
func instant(ts any) (time.Time, error) {
	if s, ok := ts.(string); ok {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t, nil
		}
	} else if x, ok := numeric(reflect.ValueOf(ts)); ok && x.whole {
		return time.UnixMilli(x.i).UTC(), nil
	}
	// Not quoted: it is the event's content (see kind).
	return time.Time{}, errors.New("formatTime: the value is neither an RFC 3339 time such as 2006-01-02T15:04:05Z nor a whole number of milliseconds since 1970")
}

// length is the built-in len, but an event's number has no length, where
// the built-in counted the digits it was written with.
func length(v reflect.Value) (int, error) {
	switch v = indirect(v); {
	case v.IsValid() && v.Type() == absentType:
		return 0, errAbsent
	case v.Kind() == reflect.Map, v.Kind() == reflect.Slice, v.Kind() == reflect.String && v.Type() != reflect.TypeFor[number]():
		return v.Len(), nil
	}
	return 0, fmt.Errorf("len: %s has no length", kindOf(v))
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
	case v.Type() == reflect.TypeFor[null]():
		return "nothing (null)"
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
		for i, a := range args {
			switch a.(type) {
			case map[string]any, []any: // as JSON, as everywhere else
				var err error
				if args[i], err = jsonText(a); err != nil {
					return "", err
				}
			}
		}
		return fn(args...), nil
	}
}

// printf is the built-in printf, but a verb that does not fit its
// argument, a verb without an argument and an argument without a verb are
// errors, where fmt writes %!f(string=…), %!s(MISSING) or %!(EXTRA …)
// into the mail. Objects and lists print as JSON, as they do outside
// printf.
func (b *budget) printf(format string, args ...any) (string, error) {
	if err := present(args...); err != nil {
		return "", err
	}
	f, err := parseFormat(format)
	if err != nil {
		return "", err
	}
	if err := b.spendBytes(b.formatSize(f, len(format), args)); err != nil {
		return "", err
	}
	var o operands
	wrapped := make([]any, len(args))
	for i, a := range args {
		wrapped[i] = operand{a, &o}
	}
	s := fmt.Sprintf(format, wrapped...)
	switch {
	case o.err != nil:
		return "", o.err
	case len(args) < f.args, !f.indexed && len(args) > f.args:
		return "", f.wrongCount(len(args))
	case o.used < f.verbs:
		return "", errors.New("printf: an argument index of the format is not a number from 1 to the count of arguments")
	}
	return s, nil
}

// operand is an argument of printf. It prints itself for a verb that fits
// its kind; for another it prints nothing and keeps the error.
type operand struct {
	v   any
	all *operands
}

// operands is what the operands of one printf found: how many verbs they
// printed for, and the first that did not fit.
type operands struct {
	used int
	err  error
}

func (o operand) Format(f fmt.State, verb rune) {
	o.all.used++
	if o.all.err != nil {
		return
	}
	v := o.v
	if x, ok := numeric(reflect.ValueOf(v)); ok && reflect.TypeOf(v) != reflect.TypeFor[number]() {
		v = x.number() // the template's own numbers: literals, len
	}
	var fits bool
	switch v := v.(type) {
	case number:
		fits = v.format(f, verb)
	case string, null:
		if fits = strings.ContainsRune("vsqxX", verb); fits {
			fmt.Fprintf(f, fmt.FormatString(f, verb), v)
		}
	case bool:
		if fits = verb == 'v' || verb == 't'; fits {
			fmt.Fprintf(f, fmt.FormatString(f, verb), v)
		}
	case map[string]any, []any:
		if fits = verb == 'v' || verb == 's'; fits {
			var text string
			if text, o.all.err = jsonText(v); o.all.err == nil {
				io.WriteString(f, text)
			}
		}
	}
	if !fits {
		o.all.err = fmt.Errorf("printf: %%%c cannot print %s", verb, kindOf(reflect.ValueOf(o.v)))
		if _, ok := v.(number); ok && strings.ContainsRune("dboOxXcU", verb) {
			o.all.err = fmt.Errorf("printf: %%%c prints whole numbers only; use %%v or %%f for this one", verb)
		}
	}
}

// format is a printf format, parsed.
type format struct {
	verbs   int  // how many verbs take an argument
	args    int  // how many arguments they take: the highest index
	padding int  // the sum of widths and precisions
	indexed bool // has explicit argument indexes ("%[2]d")
}

// wrongCount is the error of a format given n arguments but not as many
// as its verbs take.
func (f format) wrongCount(n int) error {
	if f.args == 1 {
		return fmt.Errorf("printf: the format takes 1 argument, not %d", n)
	}
	return fmt.Errorf("printf: the format takes %d arguments, not %d", f.args, n)
}

// formatSize bounds the size of printf's result: the format, each verb's
// width and precision, and each argument as many times as verbs may print
// it, escaped (%q).
func (b *budget) formatSize(f format, length int, args []any) int {
	printed := b.argsSize(args) // each argument once, in order
	if f.indexed {
		largest := 0
		for _, a := range args {
			largest = max(largest, printedSize(a, b.bytesLeft()))
		}
		printed = f.verbs * largest // [n] may print one argument again and again
	}
	return length + f.padding + f.verbs*32 + escapeGrowth*printed
}

// parseFormat finds the verbs of a printf format, refusing * and widths or
// precisions beyond maxWidth.
func parseFormat(s string) (f format, err error) {
	arg := 0 // the argument the next verb prints, as fmt counts
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			continue
		}
		i++
		for i < len(s) && isFlag(s[i]) {
			i++
		}
		for ; i < len(s); i++ {
			c := s[i]
			switch {
			case c == '*':
				return f, fmt.Errorf("printf: * widths and precisions are not supported; write the number in the format")
			case c == '[':
				f.indexed = true
				start := i + 1
				for i < len(s) && s[i] != ']' {
					i++
				}
				if n, err := strconv.Atoi(s[start:min(i, len(s))]); err == nil && n > 0 {
					arg = n - 1
				}
				continue
			case c == '.':
				continue
			case c >= '0' && c <= '9':
				start := i
				n := 0
				for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
					if n = n*10 + int(s[i]-'0'); n > maxWidth {
						for i < len(s) && s[i] >= '0' && s[i] <= '9' {
							i++
						}
						return f, fmt.Errorf("printf: width or precision %s is more than %d", s[start:i], maxWidth)
					}
				}
				f.padding += n
				i--
				continue
			}
			// The verb; %% prints a percent sign and takes no argument.
			// %p prints where the worker keeps a value in its memory, %T
			// the worker's name for its type; %w is Errorf's.
			if c == 'p' || c == 'T' || c == 'w' {
				return f, fmt.Errorf("printf: %%%c is not supported", c)
			}
			if c != '%' {
				f.verbs++
				arg++
				f.args = max(f.args, arg)
			}
			_, size := utf8.DecodeRuneInString(s[i:])
			i += size - 1
			break
		}
		if i >= len(s) {
			return f, errors.New("printf: the format ends in a % without a verb; write %% for a percent sign")
		}
	}
	return f, nil
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
