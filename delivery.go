package dispatcher

import (
	"bytes"
	"encoding/json"
	"time"
)

// A delivery is one action of one dispatch carried out: a mail sent or a
// task function called. The types below are what the Dispatch workflow
// hands its activities and what they report back; they are recorded in
// every history, so their fields are part of the wire format of running
// dispatches: add fields, never rename or remove one.

// LoadConfigInput asks for the configuration of an event type, resolved
// for Event (Config.ForEvent) when it is set.
type LoadConfigInput struct {
	EventType string
	// Event is the event dispatched: the dispatchers that are paused or
	// whose filter is false for it are skipped. Empty in the inputs of
	// dispatches recorded before filters existed, which never reach the
	// activity again (their marker holds its result).
	Event Event
	// Only are the actions a replay runs when it names some: the others
	// stay as they are (Config.ForEvent).
	Only []string `json:",omitempty"`
}

// ResolveFunctionInput asks how the task function Name is called now, as
// of ConfigVersion at least (the version of the dispatch's
// configuration).
type ResolveFunctionInput struct {
	Name          string
	ConfigVersion int64
}

// MailInput is one mail action of one dispatch.
type MailInput struct {
	Event        Event
	DispatcherID string
	ActionID     string
	TemplateID   string
	Recipients   Recipients
	// MessageID is the same for every attempt of this action of this
	// dispatch (without angle brackets), so that receivers can drop a
	// mail that a retry sent twice.
	MessageID string
	// Run marks a replay of the dispatch; empty for the first one.
	Run string
	// Reset marks an action of a run reset from the Temporal Web UI or
	// CLI (activities.Options.LaterReplay). Left out when false, so that
	// the encoding of every other input is what it was (a dispatch paces
	// its commands by their size).
	Reset bool `json:",omitempty"`
	// ConfigVersion is the configuration version the dispatch's
	// configuration was read at: a cache at least that new serves the
	// template without asking the store. 0 means unknown.
	ConfigVersion int64
}

// MailClaim is what claiming the delivery of a mail found: it was sent
// already, another attempt holds it until HeldUntil, or, neither, the
// claim is the caller's.
type MailClaim struct {
	Sent      bool
	HeldUntil time.Time
}

// MailResult is what sending a mail reports.
type MailResult struct {
	MessageID string
	Attempt   int // the activity attempt that sent it
}

// TaskInput is one task action of one dispatch.
type TaskInput struct {
	Event          Event
	DispatcherID   string
	ActionID       string
	FunctionName   string
	Data           json.RawMessage
	Tags           []string
	StartTimestamp *time.Time
	// IdempotencyKey is the same for every attempt of this action of this
	// dispatch; it is sent as the Idempotency-Key header and as taskId.
	IdempotencyKey string
	// LocalAttempts counts the attempts already made as local activities,
	// so the attempt number the function sees keeps counting up.
	LocalAttempts int
	// Run marks a replay of the dispatch; empty for the first one.
	Run string
	// Reset is as in MailInput.
	Reset bool `json:",omitempty"`
	// ConfigVersion is as in MailInput, for the function.
	ConfigVersion int64
	// TaskQueue is where a temporal-kind function's child workflow will
	// run, as the dispatch's configuration says: PrepareTask checks it
	// against the outbound policy.
	TaskQueue string
	// NotBefore, when set, is the moment a gated function's rate limit
	// gave the call (its permit's slot, dispatcher.Flow): the call waits
	// for it. Temporal's timers fire on whole seconds, so a gate grants a
	// second's worth of permits at once, each with its slot.
	NotBefore time.Time
	// PermitExpires, when set, is when a gated call's permit expires: its
	// gate then takes the lease back, whether or not the call has ended.
	// A call that could not end before it is not made.
	PermitExpires time.Time
	// TaskStarted, when set, is when the workflow task that makes a first
	// attempt started (the server's clock): a first attempt whose worker
	// scheduled it long after (a process paused and resumed) belongs to a
	// task that has timed out, and is not made.
	TaskStarted time.Time `json:",omitzero"`
	// ShareBound: the dispatch makes a first attempt refused for its
	// tenant's share of the worker's slots (FailureSlotMissed, Busy) as a
	// regular attempt, at no attempt's cost: ungated calls from dispatch
	// version 12, gated ones from 21. A first attempt without it is not
	// refused so: an older run would count the refusal as a failed attempt.
	ShareBound bool `json:",omitzero"`
}

// TaskResult is what calling a task function reports.
type TaskResult struct {
	StatusCode int
	Attempt    int // the activity attempt that succeeded
}

// FailureDetails ride along with every failure of a delivery: Temporal
// does not report how many attempts a failed activity took, and a
// dispatch's outcomes show it, with the HTTP status of a task call.
type FailureDetails struct {
	Attempt    int
	StatusCode int // HTTP task functions that answered
	// Unanswered: the attempt handed its mail over and got no answer, so
	// the receiver may have it (ActionOutcome.Unanswered).
	Unanswered bool `json:",omitzero"`
	// Held: another attempt holds the mail (its claim), maybe sending it,
	// or made the gated call (its claim: activities.claimCall); this one
	// made nothing. The mail's next attempt comes once the claim expires;
	// the call's under a permit of its own.
	Held bool `json:",omitzero"`
	// Busy: the worker had no room for this first attempt (its tenant's
	// share of the slots): not made; a regular attempt makes it.
	Busy bool `json:",omitzero"`
}

// TaskPayload is what a task function receives, as JSON: over HTTP as the
// request body, or as the input of a child workflow.
// MaxTaskPayloadBytes bounds a child workflow's payload as Temporal
// encodes it (HTML characters escaped, six bytes each): under Temporal's
// 2 MiB limit on a payload, and what a dispatch paces the local activity
// that renders it by (PrepareTask refuses a larger one).
const MaxTaskPayloadBytes = 3 << 19

type TaskPayload struct {
	TaskID         string          `json:"taskId"`
	FunctionName   string          `json:"functionName"`
	Data           json.RawMessage `json:"data"` // the action's data, resolved, plus "event"
	Tags           []string        `json:"tags"`
	StartTimestamp *time.Time      `json:"startTimestamp"`
	// Attempt is 1 in a child workflow's input, and absent from an HTTP
	// call's body, whose attempt goes as HeaderAttempt.
	Attempt int `json:"attempt,omitempty"`
	// Tenant is the tenant of the dispatch (README, "Tenants"); absent
	// for the implicit tenant. A worker of a task queue that several
	// tenants' functions may run on tells them apart by it.
	Tenant string `json:"tenant,omitempty"`
}

// EventPayload is the event as task functions see it in data.event: an
// Extra Horizon event ({id, type, content, creationTimestamp}), with its
// time also as RFC 3339, and its source.
type EventPayload struct {
	ID                string          `json:"id"`
	Type              string          `json:"type"`
	Content           json.RawMessage `json:"content"`
	CreationTimestamp int64           `json:"creationTimestamp"` // milliseconds
	Time              time.Time       `json:"time"`
	Source            string          `json:"source,omitempty"`
}

// NewTaskPayload builds the payload of in's task: the action's data
// resolved against the event, with the event under "event" (replacing any
// "event" the admin set), and attempt (1 for a child workflow, 0 for an
// HTTP call: the same body for every attempt). Errors are EINVALID *Error values
// naming the data path.
func NewTaskPayload(in TaskInput, attempt int) (TaskPayload, error) {
	data, err := ResolveValue(in.Data, in.Event)
	if err != nil {
		return TaskPayload{}, err
	}
	content := in.Event.Content
	if len(bytes.TrimSpace(content)) == 0 {
		content = json.RawMessage("null")
	}
	event, err := json.Marshal(EventPayload{
		ID: in.Event.ID, Type: in.Event.Type, Content: content, CreationTimestamp: in.Event.Time.UnixMilli(), Time: in.Event.Time, Source: in.Event.Source,
	})
	if err != nil {
		return TaskPayload{}, Errorf(EINVALID, "event: %v", err)
	}
	if data, err = withEvent(data, event); err != nil {
		return TaskPayload{}, err
	}
	tags := in.Tags
	if tags == nil {
		tags = []string{} // functions see [] rather than null
	}
	return TaskPayload{
		TaskID:         in.IdempotencyKey,
		FunctionName:   in.FunctionName,
		Data:           data,
		Tags:           tags,
		StartTimestamp: in.StartTimestamp,
		Attempt:        attempt,
		Tenant:         TenantOf(in.IdempotencyKey),
	}, nil
}

// withEvent returns the object data with "event" set to event, keeping
// the order of the other keys.
func withEvent(data, event json.RawMessage) (json.RawMessage, error) {
	var out bytes.Buffer
	out.WriteByte('{')
	n := 0
	if len(bytes.TrimSpace(data)) > 0 && !bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
		dec := json.NewDecoder(bytes.NewReader(data))
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			return nil, Errorf(EINVALID, "data: must be a JSON object")
		}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return nil, Errorf(EINVALID, "data: %v", err)
			}
			key, _ := tok.(string)
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				return nil, Errorf(EINVALID, "data.%s: %v", key, err)
			}
			if key == "event" {
				continue
			}
			if n > 0 {
				out.WriteByte(',')
			}
			k, _ := json.Marshal(key)
			out.Write(k)
			out.WriteByte(':')
			out.Write(v)
			n++
		}
	}
	if n > 0 {
		out.WriteByte(',')
	}
	out.WriteString(`"event":`)
	out.Write(event)
	out.WriteByte('}')
	return out.Bytes(), nil
}
