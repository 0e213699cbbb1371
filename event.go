package dispatcher

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Event is one occurrence of something that dispatchers may act on. Every
// envelope the intake accepts (Extra Horizon, lk-style, CloudEvents) is
// normalised into it.
type Event struct {
	ID      string
	Type    string
	Content json.RawMessage // a JSON value, usually an object
	Time    time.Time
	Source  string
	// Key is what tells the event from others when its id alone does
	// not: a CloudEvent is identified by its source and id together
	// (CloudEventKey). Empty means the id.
	Key string
	// PartitionKey is the envelope's partition key (lk's
	// source.kinesisPartitionKey, CloudEvents' partitionkey extension),
	// which a dispatcher's Ordering may order by.
	PartitionKey string
}

// CloudEventKey is the Key of a CloudEvent: two producers may use the
// same id, not the same source. The NUL characters, which event ids and
// sources cannot hold, keep it apart from every plain id.
func CloudEventKey(source, id string) string { return "cloudevent\x00" + source + "\x00" + id }

// WorkflowID returns the workflow ID of the dispatch of e: the key that
// makes the same event dispatch once.
func (e Event) WorkflowID() string {
	if e.Key != "" {
		return WorkflowID(e.Key)
	}
	return WorkflowID(e.ID)
}

// Envelope names, as recorded in metrics and the execution history.
const (
	EnvelopeExtraHorizon = "extrahorizon"
	EnvelopeLK           = "lk"
	EnvelopeCloudEvents  = "cloudevents"
)

// Validate checks what Temporal and the store will need of an event: a
// type of 1 to 256 characters, an id of at most 200, a source and a
// partition key of at most 1024 bytes (past DISPATCHER_MAX_EVENT_BYTES,
// which counts the body, a CloudEvent's headers could carry a megabyte
// of them into its dispatch), no NUL characters, content nested at most
// MaxEventDepth levels.
func (e *Event) Validate() error {
	if err := checkText("id", e.ID, "type", e.Type, "source", e.Source, "partitionKey", e.PartitionKey); err != nil {
		return err
	}
	for _, f := range []struct{ name, v string }{{"id", e.ID}, {"type", e.Type}, {"source", e.Source}} {
		// JSON decoding turns a byte that is not UTF-8, and a lone
		// surrogate, into U+FFFD: two different ids would be one, and the
		// second event a duplicate, never dispatched.
		if strings.ContainsRune(f.v, utf8.RuneError) {
			return Errorf(EINVALID, "%s: must not contain U+FFFD, which invalid UTF-8 and lone surrogates (\\ud800) decode to", f.name)
		}
	}
	switch {
	case e.Type == "":
		return Errorf(EREQUIRED, "type: is required")
	case utf8.RuneCountInString(e.Type) > 256:
		return Errorf(EINVALID, "type: must be at most 256 characters")
	case !searchable(e.Type):
		return Errorf(EINVALID, "type: %s", unsearchable)
	case utf8.RuneCountInString(e.ID) > 200:
		return Errorf(EINVALID, "id: must be at most 200 characters")
	case !searchable(e.ID):
		// Before, taken: its dispatch was found by no search for its id,
		// nor replayed in bulk by one.
		return Errorf(EINVALID, "id: must not contain a double quote, a backslash or a control character: its dispatch could not be searched for by its id")
	case len(e.Source) > 1024:
		return Errorf(EINVALID, "source: must be at most 1024 bytes")
	case len(e.PartitionKey) > 1024:
		return Errorf(EINVALID, "partitionKey: must be at most 1024 bytes (lk's source.kinesisPartitionKey, CloudEvents' partitionkey)")
	}
	if d := jsonDepth(e.Content); d > MaxEventDepth {
		return Errorf(EINVALID, "content: nests %d levels deep; at most %d are allowed", d, MaxEventDepth)
	}
	return nil
}

// searchable reports whether an event type or id can be searched for in
// Temporal's visibility, where the dispatches of one with a double
// quote, a backslash or a control character are not found: no such
// type is taken, of an event or of a dispatcher, nor such an event id.
func searchable(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return r == '"' || r == '\\' || unicode.IsControl(r) })
}

// unsearchable says why an event type is refused.
const unsearchable = "must not contain a double quote, a backslash or a control character: the dispatches of such a type could not be searched for"

// MaxEventDepth is how deep an event's content may nest objects and
// arrays: its dispatch's input carries it a few levels down, and Temporal
// decodes that input with a JSON decoder that stops at 10,000 levels.
// Before, content 9,999 levels deep was accepted and its dispatch failed
// before any action ran.
const MaxEventDepth = 9000

// StartResult identifies the dispatch of an event.
type StartResult struct {
	WorkflowID string
	RunID      string
	// Duplicate is true when the event was dispatched before: RunID is
	// then the run that dispatched it.
	Duplicate bool
	// Sequenced is true when the event waits its turn behind the events
	// of its ordering key (dispatcher.Ordering): its run, and whether it
	// is a duplicate, are known when its turn comes.
	Sequenced bool
	// EventType is the type of the event dispatched, as a record of
	// accepted events keeps it ("" in records from before it did).
	EventType string
}

// safeEventID matches event ids that can be used in a workflow ID as they
// are: URL-unreserved characters only, so the ID needs no escaping in a
// path like /executions/v1/{workflowId}.
var safeEventID = regexp.MustCompile(`^[A-Za-z0-9._~-]{1,128}$`)

// WorkflowID returns the workflow ID of the dispatch of the event with
// eventID, the key that makes the same event dispatch once. Ids of at
// most 128 URL-unreserved characters give "dispatch-<eventID>"; any other
// id gives "dispatch.<first 32 hex digits of its SHA-256>", which is
// deterministic, path-safe and cannot collide with the first form.
func WorkflowID(eventID string) string {
	if safeEventID.MatchString(eventID) {
		return "dispatch-" + eventID
	}
	sum := sha256.Sum256([]byte(eventID))
	return "dispatch." + hex.EncodeToString(sum[:16])
}

// workflowIDPattern matches the workflow IDs WorkflowID gives.
var workflowIDPattern = regexp.MustCompile(`^dispatch(-[A-Za-z0-9._~-]{1,128}|\.[0-9a-f]{32})$`)

// ValidWorkflowID reports whether id has the form of a dispatch's
// workflow ID, of any tenant (TenantWorkflowID).
func ValidWorkflowID(id string) bool {
	return validTenanted(id) && workflowIDPattern.MatchString(untenanted(id))
}
