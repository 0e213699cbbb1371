package wire

import (
	"maps"
	"slices"
	"time"

	"github.com/dispatcherhq/dispatcher"
)

// FunctionRequest is the body of POST and PUT /functions/v1.
type FunctionRequest struct {
	Name           *string            `json:"name"`
	Kind           *string            `json:"kind"`
	URL            *string            `json:"url"`
	TimeoutSeconds *int               `json:"timeoutSeconds"`
	Secret         *string            `json:"secret"`
	Headers        *map[string]string `json:"headers"`
	TaskQueue      *string            `json:"taskQueue"`
}

// Function is a function in an answer. It never carries the secret nor
// header values: both are write-only (headers are where API keys go), so
// only header names show.
type Function struct {
	ID                string   `json:"id"`
	Name              string   `json:"name"`
	Kind              string   `json:"kind"`
	URL               string   `json:"url,omitempty"`
	TimeoutSeconds    int      `json:"timeoutSeconds,omitempty"`
	HasSecret         bool     `json:"hasSecret"`
	HeaderNames       []string `json:"headerNames,omitempty"`
	TaskQueue         string   `json:"taskQueue,omitempty"`
	CreationTimestamp int64    `json:"creationTimestamp"`
	UpdateTimestamp   int64    `json:"updateTimestamp"`
}

// Update converts a create or update request.
func (r FunctionRequest) Update() dispatcher.FunctionUpdate {
	u := dispatcher.FunctionUpdate{Name: r.Name, Kind: r.Kind, URL: r.URL, Secret: r.Secret, Headers: r.Headers, TaskQueue: r.TaskQueue}
	if r.TimeoutSeconds != nil {
		// Out of range values must not wrap around into range.
		secs := min(max(*r.TimeoutSeconds, -1), int(dispatcher.MaxFunctionTimeout.Seconds())+1)
		d := time.Duration(secs) * time.Second
		u.Timeout = &d
	}
	return u
}

// FromFunction converts a function for an answer.
func FromFunction(f dispatcher.Function) Function {
	return Function{ID: f.ID, Name: f.Name, Kind: f.Kind, URL: f.URL, TimeoutSeconds: int(f.Timeout.Seconds()),
		HasSecret: f.Secret != "", HeaderNames: slices.Sorted(maps.Keys(f.Headers)), TaskQueue: f.TaskQueue,
		CreationTimestamp: f.Created.UnixMilli(), UpdateTimestamp: f.Updated.UnixMilli()}
}
