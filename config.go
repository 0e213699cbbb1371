package dispatcher

import (
	"context"
	"errors"
	"fmt"
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
	// Skipped lists the dispatchers of the event's type that the dispatch
	// does not run: paused, or whose filter is false or failed for the
	// event (ForEvent). Their actions end skipped, with the reason.
	Skipped []SkippedDispatcher
}

// Reasons a dispatcher is skipped for an event.
const (
	SkipPaused      = "paused"       // the dispatcher is paused (enabled: false)
	SkipFilter      = "filter"       // its filter is false for the event
	SkipFilterError = "filter-error" // its filter failed for the event
	// SkipRemoved: a replay with the original configuration does not run
	// a dispatcher deleted, or moved to another event type, since the run
	// it replays: for good, as a new event would not.
	SkipRemoved = "removed"
)

// SkipReasons returns the skip reasons, the most actionable first: a
// paused dispatcher's events wait to be replayed, a filter that failed
// needs fixing, a dispatcher removed says why a replay ran less than its
// run, a filter that is false did its job. A dispatch records the
// first of them that applies (SkipReason).
func SkipReasons() []string { return []string{SkipPaused, SkipFilterError, SkipRemoved, SkipFilter} }

// SkippedDispatcher is a dispatcher that a dispatch did not run, and why.
type SkippedDispatcher struct {
	DispatcherID string
	Name         string
	Reason       string // a Skip* reason
	// Detail says more: the filter's error for SkipFilterError.
	Detail string
	// Actions are its actions, each of which the dispatch records as
	// skipped.
	Actions []SkippedAction
}

// SkippedAction is what a dispatch records of an action it skipped.
type SkippedAction struct {
	ID   string
	Name string
	Type string
}

// ForEvent returns the configuration that a dispatch of ev runs with: the
// dispatchers that are not paused and whose filter, if any, is true for
// ev; the others are listed in Skipped. It is called where a dispatch's
// configuration is resolved, never in workflow code, and what it returns
// is recorded in the dispatch's history. Only, a replay's actions when it
// names some, limits this to them: the other actions stay as they are, so
// that a later replay of one (one the replay carries) finds it.
func (c *Config) ForEvent(ev Event, only ...string) Config {
	out := *c
	out.Dispatchers, out.Skipped = nil, slices.Clone(c.Skipped)
	var vars map[string]any
	var varsErr error
	var spent uint64 // by the filters (MaxEventFilterCost)
	for _, d := range c.Dispatchers {
		runs, rest := d.Actions, []Action(nil)
		if len(only) > 0 {
			runs, rest = nil, nil
			for _, a := range d.Actions {
				if slices.Contains(only, a.ID) {
					runs = append(runs, a)
				} else {
					rest = append(rest, a)
				}
			}
		}
		if len(only) > 0 && len(runs) == 0 {
			out.Dispatchers = append(out.Dispatchers, d) // none runs: as it is
			continue
		}
		reason, detail := "", ""
		switch {
		case d.Paused:
			reason, detail = SkipPaused, "the dispatcher is paused"
		case d.Filter != "":
			if vars == nil && varsErr == nil {
				vars, varsErr = filterVars(ev)
			}
			small := spent >= MaxEventFilterCost
			ok, cost, err := matchFilter(d.Filter, vars, varsErr, small)
			spent += cost
			switch {
			case err != nil && small:
				reason, detail = SkipFilterError, fmt.Sprintf("filter: %v (the filters before it did the %d cost units of work the filters of event type %q may do for an event; each after them may do %d)",
					err, MaxEventFilterCost, ev.Type, smallFilterCost)
			case err != nil:
				reason, detail = SkipFilterError, "filter: "+err.Error()
			case !ok:
				reason, detail = SkipFilter, "the filter is false for the event"
			}
		}
		if reason == "" {
			out.Dispatchers = append(out.Dispatchers, d)
			continue
		}
		skipped := d
		skipped.Actions = runs
		out.Skipped = append(out.Skipped, skip(skipped, reason, detail))
		if len(rest) > 0 {
			d.Actions = rest
			out.Dispatchers = append(out.Dispatchers, d)
		}
	}
	return out
}

// SkipSince returns c with the dispatchers for which since gives a
// reason moved to Skipped, as ForEvent moves those paused, and the actions
// of the others that kept does not keep moved there too (SkipRemoved): a
// replay runs the configuration of the run it replays, but not a
// dispatcher paused (SkipPaused) or removed (SkipRemoved) since, nor an
// action deleted since. Only, when not empty, limits this to the actions
// it names, those a replay runs: the others of a dispatcher that is still
// there stay as they were, so that a later replay of one finds it.
func (c *Config) SkipSince(only []string, since func(Dispatcher) string, kept func(Dispatcher, Action) bool) Config {
	out := *c
	out.Dispatchers, out.Skipped = nil, slices.Clone(c.Skipped)
	for _, d := range c.Dispatchers {
		reason, detail := since(d), ""
		switch reason {
		case SkipPaused:
			detail = "the dispatcher was paused when this replay started"
		case SkipRemoved:
			detail = "the dispatcher was deleted, or moved to another event type, before this replay started"
		}
		if reason != "" && len(d.Actions) == 0 {
			out.Skipped = append(out.Skipped, skip(d, reason, detail))
			continue
		}
		var still, gone []Action
		for _, a := range d.Actions {
			switch {
			case len(only) > 0 && !slices.Contains(only, a.ID) && reason != SkipRemoved:
				still = append(still, a)
			case reason != "" || !kept(d, a):
				gone = append(gone, a)
			default:
				still = append(still, a)
			}
		}
		if reason == "" {
			reason, detail = SkipRemoved, "the action was deleted before this replay started"
		}
		if len(gone) > 0 {
			out.Skipped = append(out.Skipped, skip(Dispatcher{ID: d.ID, Name: d.Name, Actions: gone}, reason, detail))
		}
		if len(still) > 0 || len(gone) == 0 {
			d.Actions = still
			out.Dispatchers = append(out.Dispatchers, d)
		}
	}
	return out
}

// skip is what a dispatch records of d, skipped for reason.
func skip(d Dispatcher, reason, detail string) SkippedDispatcher {
	s := SkippedDispatcher{DispatcherID: d.ID, Name: d.Name, Reason: reason, Detail: detail, Actions: make([]SkippedAction, len(d.Actions))}
	for i, a := range d.Actions {
		s.Actions[i] = SkippedAction{ID: a.ID, Name: a.Name, Type: a.Type}
	}
	return s
}

// matchFilter evaluates the filter expr with vars (with smallFilterCost
// when small), or fails with varsErr, and says what it cost.
func matchFilter(expr string, vars map[string]any, varsErr error, small bool) (bool, uint64, error) {
	if varsErr != nil {
		return false, 0, varsErr
	}
	f, err := CompileFilter(expr)
	if err != nil {
		return false, 0, errors.New(ErrorMessage(err)) // saved before a change of the language; say why
	}
	return f.match(vars, small)
}

// SkipReason returns the most actionable reason (SkipReasons) for which
// the dispatch skips actions, limited to the actions only names when it
// names any; empty when it skips none.
func (c *Config) SkipReason(only []string) string {
	var reasons []string
	for _, s := range c.Skipped {
		for _, a := range s.Actions {
			if len(only) == 0 || slices.Contains(only, a.ID) {
				reasons = append(reasons, s.Reason)
				break
			}
		}
	}
	return TopSkipReason(reasons)
}

// TopSkipReason returns the most actionable of reasons (SkipReasons), or
// empty when there are none.
func TopSkipReason(reasons []string) string {
	for _, r := range SkipReasons() {
		if slices.Contains(reasons, r) {
			return r
		}
	}
	return ""
}

// SkippedAction returns the skipped dispatcher that action id belongs to,
// if the configuration skipped it.
func (c *Config) SkippedAction(id string) (SkippedDispatcher, bool) {
	for _, s := range c.Skipped {
		for _, a := range s.Actions {
			if a.ID == id {
				return s, true
			}
		}
	}
	return SkippedDispatcher{}, false
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
	// Gated is true when the function had flow control when the
	// configuration was read (Flow.Gated): its calls then wait for a
	// permit of the function's gate (from Dispatch version 4).
	Gated bool
}

// Ref returns what a workflow needs to know about f.
func (f *Function) Ref() FunctionRef {
	return FunctionRef{Name: f.Name, Kind: f.Kind, Timeout: f.Timeout, TaskQueue: f.TaskQueue, Gated: f.Flow.Gated()}
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

// ResolveFunctions sets the config's Functions to how each function that
// its dispatchers' task actions name is called, as find knows it now; one
// that find does not know is left out: its actions fail on their own.
func (c *Config) ResolveFunctions(ctx context.Context, find func(ctx context.Context, name string) (Function, error)) error {
	c.Functions = nil
	seen := map[string]bool{}
	for _, d := range c.Dispatchers {
		for _, a := range d.Actions {
			if a.Type != ActionTask || seen[a.FunctionName] {
				continue
			}
			seen[a.FunctionName] = true
			f, err := find(ctx, a.FunctionName)
			if ErrorCode(err) == ENOTFOUND {
				continue
			}
			if err != nil {
				return err
			}
			c.Functions = append(c.Functions, f.Ref())
		}
	}
	return nil
}

// HasDispatcher reports whether the config runs the dispatcher id.
func (c *Config) HasDispatcher(id string) bool {
	return slices.ContainsFunc(c.Dispatchers, func(d Dispatcher) bool { return d.ID == id })
}

// HasAction reports whether one of the config's dispatchers has the action
// with id.
func (c *Config) HasAction(id string) bool {
	_, ok := c.Action(id)
	return ok
}

// Action returns the action with id, if one of the config's dispatchers
// has it.
func (c *Config) Action(id string) (Action, bool) {
	for _, d := range c.Dispatchers {
		for _, a := range d.Actions {
			if a.ID == id {
				return a, true
			}
		}
	}
	return Action{}, false
}

// DispatcherIDs returns the ids of the dispatchers that have actions to
// run or to skip, each once, in order (those run first); only, when not
// empty, limits the actions to those ids (a replay).
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
	for _, s := range c.Skipped {
		for _, a := range s.Actions {
			if len(only) == 0 || slices.Contains(only, a.ID) {
				ids = append(ids, s.DispatcherID)
				break
			}
		}
	}
	return ids
}
