package models

import (
	"encoding/json"

	"github.com/dispatcherhq/dispatcher"
	"gorm.io/gorm"
)

// checkConfigSize fails the write that tx (a Store.tx) holds when it takes
// the configuration of eventType beyond dispatcher.MaxEventTypeConfig. It
// runs after the write, in its transaction, which holds the configuration
// version's lock: two writes that each fit but not together are measured
// one after the other, the second seeing the first.
//
// grew is false for a write that did not make the configuration bigger,
// which passes even beyond the limit, so that a configuration saved before
// the limit existed can still be shrunk; field names what the write
// changed.
func (s *Store) checkConfigSize(tx *gorm.DB, field, eventType string, grew bool) error {
	if !grew {
		return nil
	}
	ds, err := ofEventType(tx, eventType)
	if err != nil {
		return err
	}
	size, err := dispatcher.ConfigSize(ds)
	if err != nil {
		return err
	}
	if size > dispatcher.MaxEventTypeConfig {
		return dispatcher.ConfigTooBig(field, eventType, size)
	}
	return nil
}

// grows reports whether after is bigger than before as a dispatch records
// them (as JSON).
func grows(before, after any) (bool, error) {
	b, err := json.Marshal(before)
	if err != nil {
		return false, err
	}
	a, err := json.Marshal(after)
	return len(a) > len(b), err
}

// eventTypeOf returns the event type of the dispatcher with id.
func eventTypeOf(tx *gorm.DB, id string) (string, error) {
	var row dispatcherRow
	if err := tx.Select("event_type").Where("id = ?", id).Take(&row).Error; err != nil {
		return "", translate(err, "")
	}
	return row.EventType, nil
}

// checkActionCount refuses a new action for a dispatcher that holds
// dispatcher.MaxActions already. Its caller has touched the dispatcher, a
// row lock that makes concurrent creates count in turn.
func checkActionCount(tx *gorm.DB, dispatcherID string) error {
	var n int64
	if err := tx.Model(&actionRow{}).Where("dispatcher_id = ?", dispatcherID).Count(&n).Error; err != nil {
		return err
	}
	if n >= dispatcher.MaxActions {
		return dispatcher.Errorf(dispatcher.EINVALID, "actions: a dispatcher holds at most %d actions; this one has %d", dispatcher.MaxActions, n)
	}
	return nil
}

// grownField names what an update of a dispatcher that stays in its event
// type made bigger, for the error.
func grownField(u dispatcher.DispatcherUpdate) string {
	switch {
	case u.Filter != nil:
		return "filter"
	case u.Description != nil:
		return "description"
	case u.Tags != nil:
		return "tags"
	}
	return "name"
}

// countLimits are dispatcher.MaxDispatchers, MaxTemplates, MaxFunctions
// and MaxAPIKeys, which tests lower.
var countLimits = struct{ dispatchers, templates, functions, apiKeys int }{
	dispatcher.MaxDispatchers, dispatcher.MaxTemplates, dispatcher.MaxFunctions, dispatcher.MaxAPIKeys}

// checkCount fails the creation that tx (a Store.tx) holds when it takes
// the caller's tenant past max rows of model's table (what names them, for
// the message). Like checkConfigSize it runs after the write, under the
// configuration version's lock, so that two creations are counted one
// after the other.
func checkCount(tx *gorm.DB, model any, max int, what string) error {
	var n int64
	if err := tx.Model(model).Count(&n).Error; err != nil {
		return translate(err, "")
	}
	if n > int64(max) {
		return dispatcher.Errorf(dispatcher.ESTATE, "this tenant already has %d %s, the most it may have: delete one before creating another", max, what)
	}
	return nil
}

// inOrder converts rows with conv and returns them in the order of ids,
// leaving out the ids no row has.
func inOrder[R, T any](ids []string, rows []R, conv func(R) (string, T, error)) ([]T, error) {
	byID := make(map[string]T, len(rows))
	for _, r := range rows {
		id, t, err := conv(r)
		if err != nil {
			return nil, err
		}
		byID[id] = t
	}
	out := make([]T, 0, len(ids))
	for _, id := range ids {
		if t, ok := byID[id]; ok {
			out = append(out, t)
		}
	}
	return out, nil
}
