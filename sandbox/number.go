package sandbox

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"strconv"
	"strings"
)

// number is a JSON number as the event wrote it, so that ids and amounts
// print exactly ({{ .event.content.total }} of 12.50 is "12.50"). Unlike
// json.Number it has no method a template could call to get an integer to
// range over; printf's numeric verbs and the comparisons below take it by
// value.
type number string

// null is a JSON null of the event. It prints as nothing and is false,
// as the empty string it was kept as before, but is written as null where
// an object or a list holding it is printed as JSON (there it was "").
type null string

// MarshalJSON writes null.
func (null) MarshalJSON() ([]byte, error) { return []byte("null"), nil }

// MarshalJSON writes the number as it was written.
func (n number) MarshalJSON() ([]byte, error) { return []byte(n), nil }

// Format prints the number for fmt: as written for %v, %s and %q, by value
// for the integer verbs (a whole number) and the floating-point ones, so
// that {{ printf "%.2f" .event.content.total }} writes 12.50 and
// {{ printf "%05d" .event.content.id }} 00042. Another verb, or an integer
// verb for a fraction, prints as fmt does for a wrong verb:
// %!d(number=12.5).
func (n number) Format(f fmt.State, verb rune) {
	if !n.format(f, verb) {
		fmt.Fprintf(f, "%%!%c(number=%s)", verb, string(n))
	}
}

// format prints the number for verb, or nothing if the verb does not fit
// it, and reports which.
func (n number) format(f fmt.State, verb rune) bool {
	format := fmt.FormatString(f, verb)
	switch verb {
	case 'v', 's', 'q':
		fmt.Fprintf(f, format, string(n))
		return true
	case 'd', 'b', 'o', 'O', 'x', 'X', 'c', 'U':
		if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
			fmt.Fprintf(f, format, i)
			return true
		}
		// A whole number beyond 64 bits, of a length that converts fast.
		if len(n) <= 100 && verb != 'c' && verb != 'U' {
			if i, ok := new(big.Int).SetString(string(n), 10); ok {
				fmt.Fprintf(f, format, i)
				return true
			}
		}
	case 'e', 'E', 'f', 'F', 'g', 'G':
		if x, err := strconv.ParseFloat(string(n), 64); err == nil || errors.Is(err, strconv.ErrRange) {
			fmt.Fprintf(f, format, x)
			return true
		}
	}
	return false
}

// width bounds from above the bytes fmt writes for the number with any
// verb but padding: %f writes every digit of the whole part, so 1e300 is
// 301 bytes and more (±Inf beyond 1e308).
func (n number) width() int {
	w := len(n)
	if i := strings.IndexAny(string(n), "eE"); i >= 0 {
		if e, err := strconv.Atoi(string(n[i+1:])); err == nil && e > 0 {
			w += min(e, 310)
		} else if err != nil {
			w += 310
		}
	}
	return w
}

// The comparisons eq, ne, lt, le, gt and ge replace the built-ins, which
// take an event's number for the text it is kept as: {{ if gt
// .event.content.count 5 }} failed with "incompatible types for
// comparison". Here two numbers, each an event's or a literal, compare by
// value (12.5 > 12, 1e3 = 1000); a number and a string compare as text, as
// they did; strings, and booleans for equality, as the built-ins do; other
// pairs are an error naming the two kinds.

func eq(a reflect.Value, bs ...reflect.Value) (bool, error) {
	if len(bs) == 0 {
		return false, errors.New("missing argument for comparison")
	}
	for _, b := range bs {
		c, err := compare(a, b, false)
		if err != nil || c == 0 {
			return err == nil, err
		}
	}
	return false, nil
}

func ne(a, b reflect.Value) (bool, error) {
	equal, err := eq(a, b)
	return !equal, err
}

func lt(a, b reflect.Value) (bool, error) {
	c, err := compare(a, b, true)
	return err == nil && c < 0, err
}
func le(a, b reflect.Value) (bool, error) {
	c, err := compare(a, b, true)
	return err == nil && c <= 0, err
}
func gt(a, b reflect.Value) (bool, error) {
	c, err := compare(a, b, true)
	return err == nil && c > 0, err
}
func ge(a, b reflect.Value) (bool, error) {
	c, err := compare(a, b, true)
	return err == nil && c >= 0, err
}

// compare returns -1, 0 or +1 as a is less than, equal to or greater than
// b; ordered asks for an order, not only equality (then booleans and null
// do not compare). Unequal values that have no order give 1.
func compare(a, b reflect.Value, ordered bool) (int, error) {
	a, b = indirect(a), indirect(b)
	if x, ok := numeric(a); ok {
		if y, ok := numeric(b); ok {
			return x.compare(y), nil
		}
	}
	switch {
	case isText(a) && isText(b):
		return strings.Compare(a.String(), b.String()), nil
	case ordered:
	case !a.IsValid() || !b.IsValid():
		if a.IsValid() == b.IsValid() {
			return 0, nil
		}
		return 1, nil
	case a.Kind() == reflect.Bool && b.Kind() == reflect.Bool:
		if a.Bool() == b.Bool() {
			return 0, nil
		}
		return 1, nil
	}
	return 0, fmt.Errorf("cannot compare %s with %s", kindOf(a), kindOf(b))
}

// truth is truthFunc (see truthful): v, but false for a number that is
// zero. It reads the number's digits, not its value: parsing a number of
// a megabyte's digits on every if took seconds; a long one pays its
// length.
func (b *budget) truth(v any) (any, error) {
	n, ok := v.(number)
	if !ok {
		return v, nil
	}
	if len(n) > 64 {
		if err := b.spendBytes(len(n)); err != nil {
			return nil, err
		}
	}
	mantissa, _, _ := strings.Cut(strings.ToLower(string(n)), "e")
	if strings.Trim(mantissa, "-+0.") == "" {
		return false, nil // 0, -0, 0.00, 0e5
	}
	return v, nil
}

func isText(v reflect.Value) bool { return v.IsValid() && v.Kind() == reflect.String }

// num is a number compared by value: a whole one of 64 bits as an
// integer, any other as a float.
type num struct {
	i     int64
	f     float64
	whole bool
}

// numeric is v as a num: an event's number, or a number of the template.
func numeric(v reflect.Value) (num, bool) {
	switch {
	case !v.IsValid():
		return num{}, false
	case v.Type() == reflect.TypeFor[number]():
		if i, err := strconv.ParseInt(v.String(), 10, 64); err == nil {
			return num{i: i, whole: true}, true
		}
		f, err := strconv.ParseFloat(v.String(), 64)
		return num{f: f}, err == nil || errors.Is(err, strconv.ErrRange)
	case v.CanInt():
		return num{i: v.Int(), whole: true}, true
	case v.CanUint() && v.Uint() <= math.MaxInt64:
		return num{i: int64(v.Uint()), whole: true}, true
	case v.CanUint():
		return num{f: float64(v.Uint())}, true
	case v.CanFloat():
		return num{f: v.Float()}, true
	}
	return num{}, false
}

func (x num) compare(y num) int {
	if x.whole && y.whole {
		return cmp.Compare(x.i, y.i)
	}
	return cmp.Compare(x.float(), y.float())
}

// number is x as an event's number.
func (x num) number() number {
	if x.whole {
		return number(strconv.FormatInt(x.i, 10))
	}
	return number(strconv.FormatFloat(x.f, 'g', -1, 64))
}

func (x num) float() float64 {
	if x.whole {
		return float64(x.i)
	}
	return x.f
}
