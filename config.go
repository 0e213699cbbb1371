package dispatcher

import (
	"slices"
	"time"
)

// Config is the configuration a dispatch runs with: the dispatchers that
// match its event type and the task functions their actions name. The
// workflow records it in its history, which makes it the record of exactly
// what ran.
type Config struct {
	Version     int64 // the store's configuration version it was read at
	Dispatchers []Dispatcher
	// Functions holds one entry per function name that the task actions
	// use and that exists; a name missing here fails its actions with
	// FailureNotFound.
	Functions []FunctionRef
}

// FunctionRef is what a workflow needs to know about a task function to
// run it: HTTP call or child workflow, and how long a call may take. It is
// recorded in the workflow's history, shown in the Temporal Web UI, so it
// holds neither the secret nor the URL (which may carry a token); the
// activity looks those up when it calls.
type FunctionRef struct {
	Name      string
	Kind      string        // FunctionHTTP or FunctionTemporal
	Timeout   time.Duration // per HTTP call; 0 means DefaultFunctionTimeout
	TaskQueue string        // temporal functions
}

// Function returns the reference for name, if the config has one.
func (c *Config) Function(name string) (FunctionRef, bool) {
	for _, f := range c.Functions {
		if f.Name == name {
			return f, true
		}
	}
	return FunctionRef{}, false
}

// HasAction reports whether one of the config's dispatchers has the action
// with id.
func (c *Config) HasAction(id string) bool {
	for _, d := range c.Dispatchers {
		for _, a := range d.Actions {
			if a.ID == id {
				return true
			}
		}
	}
	return false
}

// DispatcherIDs returns the ids of the dispatchers that have actions to
// run, each once, in order; only, when not empty, limits the actions to
// those ids (a replay).
func (c *Config) DispatcherIDs(only []string) []string {
	ids := []string{}
	for _, d := range c.Dispatchers {
		for _, a := range d.Actions {
			if len(only) == 0 || slices.Contains(only, a.ID) {
				ids = append(ids, d.ID)
				break
			}
		}
	}
	return ids
}
