// Package dispatcher holds the domain of the event dispatcher: dispatchers,
// their actions, the list query and the one error vocabulary. It imports no
// framework; api/, models/, workflows/ and activities/ build on it.
package dispatcher

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Dispatcher watches one event type and runs its actions for every event of
// that type.
type Dispatcher struct {
	ID          string
	Name        string // optional, unique across dispatchers when set
	Description string
	EventType   string
	Tags        []string
	// Ordering, when set, runs the dispatcher's events one after another
	// per key.
	Ordering *Ordering
	// Filter, when set, is a CEL expression over the event (filter.go):
	// the dispatcher acts only on the events it is true for.
	Filter string
	// Paused dispatchers act on no event: a dispatch records their actions
	// as skipped (SkipPaused), to be replayed once they are resumed. The
	// API calls it enabled: false.
	Paused  bool
	Actions []Action
	Created time.Time
	Updated time.Time
}

// DispatcherUpdate holds the fields a dispatcher update may change; nil
// means "leave as it is".
type DispatcherUpdate struct {
	Name        *string
	Description *string
	EventType   *string
	Tags        *[]string
	Ordering    **Ordering // a nil *Ordering removes it
	Filter      *string    // "" removes it
	Paused      *bool
}

// Batch holds changes of one dispatcher and its actions that apply
// together or not at all, in this order: the dispatcher's own fields,
// then the deletions, updates and creations of its actions. An event
// sees the dispatcher as it was before them, or after them all.
type Batch struct {
	Dispatcher    DispatcherUpdate
	DeleteActions []string // ids
	UpdateActions []ActionChange
	CreateActions []Action
}

// ActionChange is the update of the action with ID.
type ActionChange struct {
	ID     string
	Update ActionUpdate
}

// Empty reports whether the batch changes nothing.
func (b Batch) Empty() bool {
	return b.Dispatcher.Empty() && len(b.DeleteActions)+len(b.UpdateActions)+len(b.CreateActions) == 0
}

// Empty reports whether the update changes nothing.
func (u DispatcherUpdate) Empty() bool {
	return u.Name == nil && u.Description == nil && u.EventType == nil && u.Tags == nil && u.Ordering == nil &&
		u.Filter == nil && u.Paused == nil
}

// Apply changes d as u says and validates the result.
func (u DispatcherUpdate) Apply(d *Dispatcher) error {
	if u.Name != nil {
		d.Name = *u.Name
	}
	if u.Description != nil {
		d.Description = *u.Description
	}
	if u.EventType != nil {
		d.EventType = *u.EventType
	}
	if u.Tags != nil {
		d.Tags = *u.Tags
	}
	if u.Ordering != nil {
		d.Ordering = *u.Ordering
	}
	set(&d.Filter, u.Filter)
	set(&d.Paused, u.Paused)
	return d.validateFields(u.Name != nil, u.EventType != nil)
}

// Validate checks a dispatcher and its actions before it is stored.
func (d *Dispatcher) Validate() error {
	if err := d.validateFields(true, true); err != nil {
		return err
	}
	if len(d.Actions) > MaxActions {
		return Errorf(EINVALID, "actions: a dispatcher holds at most %d actions, not %d", MaxActions, len(d.Actions))
	}
	names := map[string]bool{}
	for i := range d.Actions {
		a := &d.Actions[i]
		if err := a.Validate(); err != nil {
			return Prefixed(err, fmt.Sprintf("actions[%d].", i))
		}
		if a.Name == "" {
			continue
		}
		if names[a.Name] {
			return Errorf(ECONFLICT, "actions[%d].name: an action named %q already exists in this dispatcher", i, a.Name)
		}
		names[a.Name] = true
	}
	return nil
}

// validateFields checks the dispatcher's own fields; its name only when
// named is set, and its event type's characters only when typed is (a
// create, or an update that sets it): one stored before their rules
// tightened still takes an update of its other fields, such as a pause.
func (d *Dispatcher) validateFields(named, typed bool) error {
	if strings.TrimSpace(d.EventType) == "" {
		return Errorf(EREQUIRED, "eventType: is required")
	}
	if utf8.RuneCountInString(d.EventType) > 256 {
		return Errorf(EINVALID, "eventType: must be at most 256 characters")
	}
	if typed && !searchable(d.EventType) {
		return Errorf(EINVALID, "eventType: %s", unsearchable)
	}
	if named {
		if err := validateName(d.Name); err != nil {
			return err
		}
	}
	if err := checkText("name", d.Name, "description", d.Description, "eventType", d.EventType); err != nil {
		return err
	}
	if err := validateTags(d.Tags); err != nil {
		return err
	}
	if d.Ordering != nil {
		if err := d.Ordering.Validate(); err != nil {
			return err
		}
	}
	if d.Filter != "" {
		if _, err := CompileFilter(d.Filter); err != nil {
			return err
		}
	}
	return nil
}

// validateName checks the name of a dispatcher, an action, a template or
// a function: "" is none, but a blank one would look like none and yet
// be unique; a control character (a newline, a tab) is a paste gone
// wrong, which lists, logs and the console would show mangled.
func validateName(name string) error {
	if name != "" && strings.TrimSpace(name) == "" {
		return Errorf(EINVALID, "name: must not be blank; leave it out for no name")
	}
	if i := strings.IndexFunc(name, unicode.IsControl); i >= 0 {
		r, _ := utf8.DecodeRuneInString(name[i:])
		return Errorf(EINVALID, "name: must not contain control characters (a newline, a tab, …); it has %q at byte %d", r, i)
	}
	if utf8.RuneCountInString(name) > 256 {
		return Errorf(EINVALID, "name: must be at most 256 characters")
	}
	return nil
}

// validateTags checks the tags of a dispatcher or of a task action: at
// most MaxTags, each of 1 to 256 characters that a database stores.
func validateTags(tags []string) error {
	if len(tags) > MaxTags {
		return Errorf(EINVALID, "tags: at most %d tags, not %d", MaxTags, len(tags))
	}
	for i, t := range tags {
		if err := checkText(fmt.Sprintf("tags[%d]", i), t); err != nil {
			return err
		}
		if t == "" || utf8.RuneCountInString(t) > 256 {
			return Errorf(EINVALID, "tags[%d]: must be 1 to 256 characters", i)
		}
	}
	return nil
}

var idPattern = regexp.MustCompile(`^[0-9a-f]{24}$`)

// ValidID reports whether id has the form of a dispatcher or action id:
// 24 lowercase hexadecimal characters.
func ValidID(id string) bool { return idPattern.MatchString(id) }

// NewID returns a fresh id: 4 bytes of seconds since the epoch, then 8
// random bytes, hex encoded (the shape of a MongoDB ObjectId, which
// existing clients expect), so ids sort roughly by creation time.
func NewID(now time.Time) string {
	var b [12]byte
	binary.BigEndian.PutUint32(b[:4], uint32(now.Unix()))
	_, _ = rand.Read(b[4:])
	return hex.EncodeToString(b[:])
}
