package dispatcher

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dispatcherhq/dispatcher/sandbox"
)

// Action types.
const (
	ActionMail = "mail"
	ActionTask = "task"
)

// Action is one thing a dispatcher does for an event: send a mail (Type
// ActionMail) or run a task function (Type ActionTask). Only the fields of
// its type are set.
type Action struct {
	ID          string
	Type        string
	Name        string // optional, unique within its dispatcher when set
	Description string

	// Mail.
	Recipients Recipients
	TemplateID string

	// Task.
	FunctionName   string
	Data           json.RawMessage // a JSON object, kept byte for byte
	Tags           []string
	StartTimestamp *time.Time

	RetryPolicy *RetryPolicy // optional, overrides the default

	Created time.Time
	Updated time.Time
}

// Recipients of a mail action.
type Recipients struct {
	To  []string
	CC  []string
	BCC []string
}

// RetryPolicy overrides the default retry policy of one action.
type RetryPolicy struct {
	MaximumAttempts    int
	InitialInterval    time.Duration
	BackoffCoefficient float64
	MaximumInterval    time.Duration
}

// ActionUpdate holds the fields an action update may change; nil means
// "leave as it is". Type, when set, must equal the action's type.
type ActionUpdate struct {
	Type           *string
	Name           *string
	Description    *string
	Recipients     *Recipients
	TemplateID     *string
	FunctionName   *string
	Data           *json.RawMessage
	Tags           *[]string
	StartTimestamp **time.Time
	RetryPolicy    **RetryPolicy
}

// Apply changes a as u says and validates the result.
func (u ActionUpdate) Apply(a *Action) error {
	if u.Type != nil && *u.Type != a.Type {
		return Errorf(EINVALID, "type: cannot change from %q to %q; delete the action and create a new one", a.Type, *u.Type)
	}
	set(&a.Name, u.Name)
	set(&a.Description, u.Description)
	set(&a.Recipients, u.Recipients)
	set(&a.TemplateID, u.TemplateID)
	set(&a.FunctionName, u.FunctionName)
	set(&a.Data, u.Data)
	set(&a.Tags, u.Tags)
	set(&a.StartTimestamp, u.StartTimestamp)
	set(&a.RetryPolicy, u.RetryPolicy)
	return a.validate(given{name: u.Name != nil, tags: u.Tags != nil, data: u.Data != nil})
}

func set[T any](dst *T, src *T) {
	if src != nil {
		*dst = *src
	}
}

// Validate checks an action's fields for its type, and its sizes and
// retry policy against the limits (limits.go). A field of the other type
// is refused when it holds something (a mail action's startTimestamp was
// once dropped, and the mail sent at once); an empty one (null, [], {}),
// as a client sending every field gives it, is left out.
func (a *Action) Validate() error { return a.validate(given{name: true, tags: true, data: true}) }

// given says which fields of an action a request sets: all of them for a
// create.
type given struct{ name, tags, data bool }

// validate is Validate, checking the name, the tags and what data may not
// hold only when the request sets them: an action stored before their
// rules tightened still takes an update of its other fields.
func (a *Action) validate(fresh given) error {
	if field := a.otherType(); field != "" {
		return Errorf(EINVALID, "%s: a %s action has none; it belongs to the other type of action", field, a.Type)
	}
	switch a.Type {
	case ActionMail:
		a.FunctionName, a.Data, a.Tags, a.StartTimestamp = "", nil, nil, nil
	case ActionTask:
		a.Recipients, a.TemplateID = Recipients{}, ""
	}
	pairs := []string{"name", a.Name, "description", a.Description, "templateId", a.TemplateID, "functionName", a.FunctionName}
	for _, r := range a.Recipients.To {
		pairs = append(pairs, "recipients.to", r)
	}
	for _, r := range a.Recipients.CC {
		pairs = append(pairs, "recipients.cc", r)
	}
	for _, r := range a.Recipients.BCC {
		pairs = append(pairs, "recipients.bcc", r)
	}
	if err := checkText(pairs...); err != nil {
		return err
	}
	if fresh.name {
		if err := validateName(a.Name); err != nil {
			return err
		}
	}
	switch a.Type {
	case "":
		return Errorf(EREQUIRED, "type: is required (mail or task)")
	case ActionMail:
		if err := a.validateMail(); err != nil {
			return err
		}
	case ActionTask:
		if err := a.validateTask(fresh); err != nil {
			return err
		}
	default:
		return Errorf(EINVALID, "type: must be mail or task, not %q", a.Type)
	}
	if err := a.validateSizes(); err != nil {
		return err
	}
	return validateRetryPolicy(a.RetryPolicy)
}

// otherType returns the first field of the other type of action that a
// holds something in, or "".
func (a *Action) otherType() string {
	switch a.Type {
	case ActionMail:
		data := string(bytes.Join(bytes.Fields(a.Data), nil))
		for _, f := range []struct {
			field string
			set   bool
		}{
			{"functionName", a.FunctionName != ""},
			{"data", !slices.Contains([]string{"", "null", "{}", "[]"}, data)},
			{"tags", len(a.Tags) > 0},
			{"startTimestamp", a.StartTimestamp != nil},
		} {
			if f.set {
				return f.field
			}
		}
	case ActionTask:
		switch r := a.Recipients; {
		case a.TemplateID != "":
			return "templateId"
		case len(r.To)+len(r.CC)+len(r.BCC) > 0:
			return "recipients"
		}
	}
	return ""
}

func (a *Action) validateMail() error {
	if len(a.Recipients.To) == 0 {
		return Errorf(EREQUIRED, "recipients.to: is required and must not be empty")
	}
	if strings.TrimSpace(a.TemplateID) == "" {
		return Errorf(EREQUIRED, "templateId: is required (or templateName, the template's name)")
	}
	lists := []struct {
		field string
		addrs []string
	}{{"to", a.Recipients.To}, {"cc", a.Recipients.CC}, {"bcc", a.Recipients.BCC}}
	for _, l := range lists {
		for i, r := range l.addrs {
			if sandbox.IsTemplate(r) {
				// Resolved against the event when the action runs;
				// its syntax is checked now.
				if err := sandbox.Check(fmt.Sprintf("recipients.%s[%d]", l.field, i), r, false); err != nil {
					return domainError(err)
				}
				continue
			}
			if _, err := mail.ParseAddress(r); err != nil {
				return Errorf(EINVALID, "recipients.%s[%d]: %q is not an email address", l.field, i, r)
			}
		}
	}
	return nil
}

func (a *Action) validateTask(fresh given) error {
	if strings.TrimSpace(a.FunctionName) == "" {
		return Errorf(EREQUIRED, "functionName: is required")
	}
	if !utf8.Valid(a.Data) {
		return Errorf(EINVALID, "data: must be valid UTF-8")
	}
	if len(a.Data) > 0 {
		// Before, data nested 9,996 levels deep was saved, and every
		// dispatch of its event type then failed: the dispatch's input,
		// which carries it a few levels down, passed the JSON decoder's
		// limit of 10,000.
		if d := jsonDepth(a.Data); d > MaxDataDepth {
			return Errorf(EINVALID, "data: nests %d levels deep; at most %d are allowed", d, MaxDataDepth)
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(a.Data, &obj); err != nil || obj == nil {
			return Errorf(EINVALID, "data: must be a JSON object")
		}
		if fresh.data {
			if err := readable(a.Data, "data"); err != nil {
				return err
			}
		}
		if err := sandbox.CheckJSON(a.Data, "data"); err != nil {
			return domainError(err)
		}
	}
	if !fresh.tags {
		return nil
	}
	return validateTags(a.Tags)
}

// MaxDataDepth is how deep a task's data may nest objects and arrays.
const MaxDataDepth = 100

// readable refuses, in the JSON text raw (well formed, nesting at most
// MaxDataDepth), what JSON allows but its readers do not agree on: a
// number beyond a float64, which JavaScript reads as Infinity and writes
// back as null, and Go refuses; and a key given twice in one object, of
// which some readers keep the first, most the last. Before, data holding
// either was saved, sent as it was, and changed by a client's round trip.
func readable(raw []byte, path string) error {
	type level struct {
		keys  map[string]bool // nil in an array
		key   string          // of the object's value being read
		index int             // of the array's element being read
		value bool            // the object's key was read, its value comes
	}
	var stack []*level
	where := func() string {
		var b strings.Builder
		b.WriteString(path)
		for _, l := range stack {
			if l.keys == nil {
				fmt.Fprintf(&b, "[%d]", l.index)
			} else if l.value {
				b.WriteString("." + l.key)
			}
		}
		return b.String()
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil // the end, or malformed: the callers' own checks say which
		}
		if n := len(stack); n > 0 && stack[n-1].keys != nil && !stack[n-1].value {
			if k, ok := tok.(string); ok { // a key
				top := stack[n-1]
				if top.keys[k] {
					return Errorf(EINVALID, "%s: sets %q twice; a key may be given once", where(), k)
				}
				top.keys[k], top.key, top.value = true, k, true
				continue
			}
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				stack = append(stack, &level{keys: map[string]bool{}})
				continue
			case '[':
				stack = append(stack, &level{})
				continue
			}
			stack = stack[:len(stack)-1]
		case json.Number:
			if _, err := strconv.ParseFloat(string(t), 64); err != nil {
				return Errorf(EINVALID, "%s: %s is out of range: JSON's readers hold numbers up to about 1.8e308 (JavaScript reads it as Infinity)", where(), t)
			}
		}
		if n := len(stack); n > 0 { // a value was read
			if top := stack[n-1]; top.keys == nil {
				top.index++
			} else {
				top.value = false
			}
		}
	}
}

// jsonDepth returns how deep the JSON text raw nests objects and arrays.
func jsonDepth(raw []byte) int {
	depth, deepest, inString, escaped := 0, 0, false, false
	for _, c := range raw {
		switch {
		case escaped:
			escaped = false
		case inString:
			escaped = c == '\\'
			inString = c != '"'
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}
