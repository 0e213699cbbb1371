package activities

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/dispatcherhq/dispatcher"
)

// TaskPayload is what a task function receives, as JSON: over HTTP as the
// request body, or as the input of a child workflow.
type TaskPayload struct {
	TaskID         string          `json:"taskId"`
	FunctionName   string          `json:"functionName"`
	Data           json.RawMessage `json:"data"` // the action's data, resolved, plus "event"
	Tags           []string        `json:"tags"`
	StartTimestamp *time.Time      `json:"startTimestamp"`
	Attempt        int             `json:"attempt"`
}

// EventPayload is the event as task functions see it in data.event.
type EventPayload struct {
	ID      string          `json:"id"`
	Type    string          `json:"type"`
	Content json.RawMessage `json:"content"`
	Time    time.Time       `json:"time"`
	Source  string          `json:"source,omitempty"`
}

// NewTaskPayload builds the payload of in's call number attempt: the
// action's data resolved against the event, with the event under "event"
// (replacing any "event" the admin set). It is pure, so workflows use it
// for child workflows too. Errors are *dispatcher.Error with code
// EINVALID naming the data path.
func NewTaskPayload(in TaskInput, attempt int) (TaskPayload, error) {
	data, err := dispatcher.ResolveValue(in.Data, in.Event)
	if err != nil {
		return TaskPayload{}, err
	}
	content := in.Event.Content
	if len(bytes.TrimSpace(content)) == 0 {
		content = json.RawMessage("null")
	}
	event, err := json.Marshal(EventPayload{
		ID: in.Event.ID, Type: in.Event.Type, Content: content, Time: in.Event.Time, Source: in.Event.Source,
	})
	if err != nil {
		return TaskPayload{}, dispatcher.Errorf(dispatcher.EINVALID, "event: %v", err)
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
			return nil, dispatcher.Errorf(dispatcher.EINVALID, "data: must be a JSON object")
		}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return nil, dispatcher.Errorf(dispatcher.EINVALID, "data: %v", err)
			}
			key, _ := tok.(string)
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				return nil, dispatcher.Errorf(dispatcher.EINVALID, "data.%s: %v", key, err)
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
