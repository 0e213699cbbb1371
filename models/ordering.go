package models

import (
	"encoding/json"

	"gorm.io/gorm"

	"github.com/dispatcherhq/dispatcher"
)

func orderingText(o *dispatcher.Ordering) *string {
	if o == nil {
		return nil
	}
	b, _ := json.Marshal(o) // two strings: cannot fail
	s := string(b)
	return &s
}

// ordering reads a stored ordering; one that does not parse (written by
// hand) reads as none rather than failing every read of the dispatcher.
func ordering(s *string) *dispatcher.Ordering {
	if s == nil {
		return nil
	}
	var o dispatcher.Ordering
	if err := json.Unmarshal([]byte(*s), &o); err != nil || o.Key == "" {
		return nil
	}
	return &o
}

// checkOrdering refuses an ordering key of the dispatcher written, id,
// other than that of the event type's other ordered dispatchers: an event
// is ordered by one key (dispatcher.Config.SequenceOf). It runs in the
// transaction of the write, after it, and names the key of the others.
func checkOrdering(tx *gorm.DB, eventType, id string) error {
	var rows []dispatcherRow
	err := tx.Select("id", "ordering").Where("event_type = ? AND ordering IS NOT NULL", eventType).
		Order("creation_timestamp, id").Find(&rows).Error
	if err != nil {
		return err
	}
	written, others := "", ""
	for _, r := range rows {
		o := ordering(r.Ordering)
		switch {
		case o == nil:
		case r.ID == id:
			written = o.Key
		case others == "":
			others = o.Key
		}
	}
	if written != "" && others != "" && written != others {
		return dispatcher.Errorf(dispatcher.EINVALID,
			"ordering.key: the dispatchers of event type %q are ordered by %q; an event is ordered by one key", eventType, others)
	}
	return nil
}
