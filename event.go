package dispatcher

import (
	"encoding/json"
	"time"
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
