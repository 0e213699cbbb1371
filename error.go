package dispatcher

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"unicode/utf8"
)

// Error codes of the domain. The HTTP layer alone maps them to statuses and
// wire bodies; stores translate driver errors into them.
const (
	ECONFLICT    = "conflict"    // a unique name is taken
	EINTERNAL    = "internal"    // a bug or an unexpected failure
	EINVALID     = "invalid"     // a field has the wrong format or value
	EREQUIRED    = "required"    // a required field is missing
	ENOTFOUND    = "not_found"   // the resource does not exist
	EQUERY       = "query"       // a list query (RQL) is malformed
	EUNAVAILABLE = "unavailable" // a dependency (Temporal, the database) does not answer
	EINUSE       = "in_use"      // the resource is still referenced
	ESTATE       = "state"       // the resource's state forbids the operation (e.g. replaying a running dispatch)
	ECHANGED     = "changed"     // the resource changed since the version a change was made against (If-Match)
)

// Error is the one error type the domain speaks. Message is safe to show to
// the client and, for field errors, names the field and the reason.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Caused is an *Error with what caused it: a driver's error, which may
// name hosts and users. Its text is the Error's alone, which clients,
// failure messages and histories may show; the cause reaches the logs
// only, where slog asks it for LogValue.
type Caused struct {
	Err   *Error
	Cause error
}

func (c *Caused) Error() string   { return c.Err.Error() }
func (c *Caused) Unwrap() []error { return []error{c.Err, c.Cause} }

// LogValue is the error with its cause, for the logs.
func (c *Caused) LogValue() slog.Value {
	return slog.StringValue(c.Err.Error() + " (" + c.Cause.Error() + ")")
}

// ErrorCode returns the code of err if it is (or wraps) an *Error, EINTERNAL otherwise.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if err == nil {
		return ""
	}
	return EINTERNAL
}

// ErrorMessage returns the client-safe message of err: its own for an
// *Error, a generic one otherwise, so driver text never reaches a client.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// Prefixed puts prefix, the path of a nested object such as "actions[2].",
// before the field that an *Error's message names; other errors are
// returned as they are.
func Prefixed(err error, prefix string) error {
	var e *Error
	if !errors.As(err, &e) || prefix == "" {
		return err
	}
	return &Error{Code: e.Code, Message: prefix + e.Message}
}

// checkText refuses strings a database cannot store: NUL characters and
// invalid UTF-8. pairs alternate field names and values.
func checkText(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if v := pairs[i+1]; strings.ContainsRune(v, 0) || !utf8.ValidString(v) {
			return Errorf(EINVALID, "%s: must not contain NUL characters or invalid UTF-8", pairs[i])
		}
	}
	return nil
}
