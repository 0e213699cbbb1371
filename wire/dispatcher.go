package wire

import (
	"encoding/json"
	"strconv"

	"github.com/dispatcherhq/dispatcher"
)

// DispatcherRequest is the body of POST /dispatchers/v1, and but for its
// actions of PUT (DispatcherUpdate). Pointers tell an absent field from an
// empty one.
type DispatcherRequest struct {
	Name *string `json:"name"`
	// Description: in an update, null removes it, as "" does.
	Description Optional[string] `json:"description"`
	EventType   *string          `json:"eventType"`
	Tags        *[]string        `json:"tags"`
	Actions     *[]ActionRequest `json:"actions"`
	// Ordering runs the dispatcher's events one after another per key; in
	// an update, null or an empty object removes it.
	Ordering Optional[Ordering] `json:"ordering"`
	// Filter is a CEL expression over the event (dispatcher.Filter); in
	// an update, null or "" removes it, as null removes an ordering.
	Filter Optional[string] `json:"filter"`
	// Enabled false pauses the dispatcher; absent keeps it as it is (a
	// new one is enabled).
	Enabled *bool `json:"enabled,omitempty"`
}

// DispatcherUpdate is the body of PUT /dispatchers/v1/{id}: its actions,
// which Extra Horizon clients send with the whole object, are ignored,
// whatever their shape.
type DispatcherUpdate struct {
	DispatcherRequest
	Actions json.RawMessage `json:"actions"`
}

// Ordering is a dispatcher's ordering (dispatcher.Ordering).
type Ordering struct {
	// Key is a pointer so that an empty key is refused, not taken for
	// {}, which removes the ordering.
	Key       *string `json:"key"`
	OnFailure string  `json:"onFailure,omitempty"`
}

func orderingOf(o Optional[Ordering]) *dispatcher.Ordering {
	if o.Null || o.Value == (Ordering{}) {
		return nil
	}
	out := &dispatcher.Ordering{OnFailure: o.Value.OnFailure}
	if o.Value.Key != nil {
		out.Key = *o.Value.Key
	}
	return out
}

func fromOrdering(o *dispatcher.Ordering) *Ordering {
	if o == nil {
		return nil
	}
	return &Ordering{Key: &o.Key, OnFailure: o.OnFailure}
}

// Dispatcher is a dispatcher in an answer.
type Dispatcher struct {
	ID                string    `json:"id"`
	Name              string    `json:"name,omitempty"`
	Description       string    `json:"description,omitempty"`
	EventType         string    `json:"eventType"`
	Actions           []Action  `json:"actions"`
	Tags              []string  `json:"tags"`
	Ordering          *Ordering `json:"ordering,omitempty"`
	Filter            string    `json:"filter,omitempty"`
	Enabled           bool      `json:"enabled"`
	CreationTimestamp int64     `json:"creationTimestamp"`
	UpdateTimestamp   int64     `json:"updateTimestamp"`
}

// ToDomain converts a create request, its actions included; errors name
// the field, e.g. "actions[1].functionName".
func (r DispatcherRequest) ToDomain() (dispatcher.Dispatcher, error) {
	d := dispatcher.Dispatcher{
		Name:        value(r.Name),
		Description: r.Description.Value,
		EventType:   value(r.EventType),
		Ordering:    orderingOf(r.Ordering),
		Filter:      r.Filter.Value,
		Paused:      r.Enabled != nil && !*r.Enabled,
	}
	if r.Tags != nil {
		d.Tags = *distinct(r.Tags)
	}
	if r.Actions != nil {
		for i, ar := range *r.Actions {
			a, err := ar.ToDomain("actions[" + strconv.Itoa(i) + "].")
			if err != nil {
				return d, err
			}
			d.Actions = append(d.Actions, a)
		}
	}
	return d, nil
}

// Update converts an update request; its actions are ignored (they have
// their own endpoints).
func (r DispatcherRequest) Update() dispatcher.DispatcherUpdate {
	u := dispatcher.DispatcherUpdate{Name: r.Name, Description: r.Description.Ptr(), EventType: r.EventType, Tags: distinct(r.Tags)}
	if r.Filter.Set {
		u.Filter = &r.Filter.Value // "" when null: removed
	}
	if r.Enabled != nil {
		paused := !*r.Enabled
		u.Paused = &paused
	}
	if r.Ordering.Set {
		o := orderingOf(r.Ordering)
		u.Ordering = &o
	}
	return u
}

// FromDispatcher converts a dispatcher for an answer.
func FromDispatcher(d dispatcher.Dispatcher) Dispatcher {
	out := Dispatcher{
		ID:                d.ID,
		Name:              d.Name,
		Description:       d.Description,
		EventType:         d.EventType,
		Actions:           make([]Action, len(d.Actions)),
		Tags:              NonNil(d.Tags),
		CreationTimestamp: d.Created.UnixMilli(),
		UpdateTimestamp:   d.Updated.UnixMilli(),
		Ordering:          fromOrdering(d.Ordering),
		Filter:            d.Filter,
		Enabled:           !d.Paused,
	}
	if d.Created.IsZero() {
		// A configuration a dispatch recorded keeps what runs, not when it
		// was edited: 0, as its actions, rather than the year 1.
		out.CreationTimestamp, out.UpdateTimestamp = 0, 0
	}
	for i, a := range d.Actions {
		out.Actions[i] = FromAction(a)
	}
	return out
}

// DispatcherBatch is the body of POST /dispatchers/v1/{id}/batch: changes
// of a dispatcher and its actions that apply together or not at all
// (dispatcher.Batch).
type DispatcherBatch struct {
	Dispatcher    *DispatcherRequest `json:"dispatcher"`    // its fields as PUT /dispatchers/v1/{id} takes them
	DeleteActions []string           `json:"deleteActions"` // ids
	UpdateActions []ActionChange     `json:"updateActions"`
	CreateActions []ActionRequest    `json:"createActions"`
}

// ActionChange is the update of the action with ID, its fields as PUT
// /dispatchers/v1/{id}/actions/{actionId} takes them.
type ActionChange struct {
	ID string `json:"id"`
	ActionRequest
}

// ToDomain converts a batch; errors name the field, e.g.
// "createActions[1].functionName".
func (r DispatcherBatch) ToDomain() (dispatcher.Batch, error) {
	var b dispatcher.Batch
	if r.Dispatcher != nil {
		if r.Dispatcher.Actions != nil {
			return b, dispatcher.Errorf(dispatcher.EINVALID, "dispatcher.actions: a batch changes actions in deleteActions, updateActions and createActions")
		}
		b.Dispatcher = r.Dispatcher.Update()
	}
	for _, l := range []struct {
		field string
		n     int
	}{{"deleteActions", len(r.DeleteActions)}, {"updateActions", len(r.UpdateActions)}, {"createActions", len(r.CreateActions)}} {
		if l.n > dispatcher.MaxActions {
			return b, dispatcher.Errorf(dispatcher.EINVALID, "%s: a dispatcher holds at most %d actions, not %d", l.field, dispatcher.MaxActions, l.n)
		}
	}
	changed := map[string]string{} // action id → where the batch changes it
	once := func(id, at string) error {
		if !dispatcher.ValidID(id) {
			return dispatcher.Errorf(dispatcher.EINVALID, "%s: %q is not a valid id (24 lowercase hexadecimal characters)", at, id)
		}
		if first, ok := changed[id]; ok {
			return dispatcher.Errorf(dispatcher.EINVALID, "%s: action %s is changed at %s already; change each action once in a batch", at, id, first)
		}
		changed[id] = at
		return nil
	}
	for i, id := range r.DeleteActions {
		if err := once(id, "deleteActions["+strconv.Itoa(i)+"]"); err != nil {
			return b, err
		}
	}
	b.DeleteActions = r.DeleteActions
	for i, c := range r.UpdateActions {
		at := "updateActions[" + strconv.Itoa(i) + "]"
		if err := once(c.ID, at+".id"); err != nil {
			return b, err
		}
		u, err := c.Update(at + ".")
		if err != nil {
			return b, err
		}
		if u == (dispatcher.ActionUpdate{}) {
			return b, dispatcher.Errorf(dispatcher.EINVALID, "%s: changes nothing: give at least one field of the action beside its id", at)
		}
		b.UpdateActions = append(b.UpdateActions, dispatcher.ActionChange{ID: c.ID, Update: u})
	}
	for i, ar := range r.CreateActions {
		a, err := ar.ToDomain("createActions[" + strconv.Itoa(i) + "].")
		if err != nil {
			return b, err
		}
		b.CreateActions = append(b.CreateActions, a)
	}
	return b, nil
}
