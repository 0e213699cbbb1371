package dispatcher

import (
	"encoding/json"
	"time"
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
}

// Envelope names, as recorded in metrics and the execution history.
const (
	EnvelopeExtraHorizon = "extrahorizon"
	EnvelopeLK           = "lk"
	EnvelopeCloudEvents  = "cloudevents"
)

// Validate checks what Temporal and the store will need of an event: a
// type of 1 to 256 characters, an id of at most 200, no NUL characters.
func (e *Event) Validate() error {
	if err := checkText("id", e.ID, "type", e.Type, "source", e.Source); err != nil {
		return err
	}
	switch {
	case e.Type == "":
		return Errorf(EREQUIRED, "type: is required")
	case utf8.RuneCountInString(e.Type) > 256:
		return Errorf(EINVALID, "type: must be at most 256 characters")
	case utf8.RuneCountInString(e.ID) > 200:
		return Errorf(EINVALID, "id: must be at most 200 characters")
	case len(e.Source) > 1024:
		return Errorf(EINVALID, "source: must be at most 1024 bytes")
	}
	return nil
}
