// Package sandbox renders the Go templates that admins write (mail
// templates, templated action data and recipients) against events that
// producers send, under limits that keep every rendering bounded (see
// limits.go). It is a leaf: it knows nothing of dispatchers, only of
// template sources and an event's fields, and its one error type, *Error,
// names the part that failed; the domain wraps it into its own.
//
// Templates see the event as .event ({id, type, content, time, source})
// and its content again as .content. Content is decoded as JSON with
// numbers kept as written, so ids and amounts print exactly rather than as
// 1e+06. Every lookup runs with missingkey=error, and what index finds
// absent cannot be printed either (with and if test for it): a variable
// the event does not have is an error, never an empty string; a JSON null
// that is present
// renders as "". Everything here is pure and deterministic.
package sandbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Error is a template that does not parse, is refused by the limits, or
// fails against an event. Path names the part: a template part
// ("subject"), a value's path ("data.user.id") or a recipient
// ("recipients.to[0]"); Msg says why, with the line where there is one.
type Error struct {
	Path string
	Msg  string
}

func (e *Error) Error() string { return e.Path + ": " + e.Msg }

func errorf(path, format string, args ...any) *Error {
	return &Error{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// Event is what templates may see of an event.
type Event struct {
	ID      string
	Type    string
	Content json.RawMessage // a JSON value; empty is null
	Time    time.Time
	Source  string
}

// Data is an event prepared for templates, decoded once for any number of
// renderings.
type Data struct {
	// raw keeps JSON nulls and numbers as decoded, for field paths that
	// keep their JSON type; printable is what templates execute with.
	raw       map[string]any
	printable map[string]any
}

// NewData decodes ev for templates. It fails when the content is not JSON.
func NewData(ev Event) (*Data, error) {
	var content any
	if len(bytes.TrimSpace(ev.Content)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(ev.Content))
		dec.UseNumber()
		if err := dec.Decode(&content); err != nil {
			return nil, errorf("event content", "is not JSON: %v", err)
		}
	}
	raw := map[string]any{
		"event": map[string]any{
			"id":      ev.ID,
			"type":    ev.Type,
			"content": content,
			// As an Extra Horizon event has it: milliseconds.
			"creationTimestamp": ev.Time.UnixMilli(),
			"time":              ev.Time,
			"source":            ev.Source,
		},
		"content": content,
	}
	return &Data{raw: raw, printable: printable(raw).(map[string]any)}, nil
}

// IsTemplate reports whether s uses template syntax ("{{ .event.content.email }}")
// and so must be rendered against each event.
func IsTemplate(s string) bool { return strings.Contains(s, "{{") }
