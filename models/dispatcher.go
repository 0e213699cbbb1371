package models

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/wire"
	"gorm.io/gorm"
)

// dispatcherRow is a row of the dispatchers table.
type dispatcherRow struct {
	ID                string `gorm:"primaryKey"`
	Tenant            string // set and scoped by tenancy
	Name              *string
	Description       string
	EventType         string
	Ordering          *string // JSON of dispatcher.Ordering; NULL: none
	Filter            *string // NULL: none
	Enabled           bool    // false: paused
	CreationTimestamp int64
	UpdateTimestamp   int64
}

func (dispatcherRow) TableName() string { return "dispatchers" }

// tagRow is a row of the dispatcher_tags table.
type tagRow struct {
	DispatcherID string `gorm:"primaryKey"`
	Position     int    `gorm:"primaryKey"`
	Tag          string
}

func (tagRow) TableName() string { return "dispatcher_tags" }

func toDBDispatcher(d dispatcher.Dispatcher) (dispatcherRow, []tagRow) {
	row := dispatcherRow{
		ID:                d.ID,
		Name:              nullable(d.Name),
		Description:       d.Description,
		EventType:         d.EventType,
		Ordering:          orderingText(d.Ordering),
		Filter:            nullable(d.Filter),
		Enabled:           !d.Paused,
		CreationTimestamp: millis(d.Created),
		UpdateTimestamp:   millis(d.Updated),
	}
	return row, toDBTags(d.ID, d.Tags)
}

func toDBTags(id string, tags []string) []tagRow {
	rows := make([]tagRow, len(tags))
	for i, t := range tags {
		rows[i] = tagRow{DispatcherID: id, Position: i, Tag: t}
	}
	return rows
}

func toDispatcher(row dispatcherRow, tags []tagRow, actions []actionRow) (dispatcher.Dispatcher, error) {
	d := dispatcher.Dispatcher{
		ID:          row.ID,
		Name:        deref(row.Name),
		Description: row.Description,
		EventType:   row.EventType,
		Ordering:    ordering(row.Ordering),
		Filter:      deref(row.Filter),
		Paused:      !row.Enabled,
		Created:     fromMillis(row.CreationTimestamp),
		Updated:     fromMillis(row.UpdateTimestamp),
		Tags:        []string{},
		Actions:     []dispatcher.Action{},
	}
	for _, t := range tags {
		d.Tags = append(d.Tags, t.Tag)
	}
	for _, r := range actions {
		a, err := toAction(r)
		if err != nil {
			return d, fmt.Errorf("dispatcher %s: %w", row.ID, err)
		}
		d.Actions = append(d.Actions, a)
	}
	return d, nil
}

func dispatcherConflict(name string) string {
	return fmt.Sprintf("name: a dispatcher named %q already exists", name)
}

// CreateDispatcher stores d and its actions, giving them ids and timestamps.
// It returns ECONFLICT when the name (or an action name) is taken, or a
// validation error, also when the configuration of its event type would
// grow beyond dispatcher.MaxEventTypeConfig.
func (s *Store) CreateDispatcher(ctx context.Context, d *dispatcher.Dispatcher) error {
	now := s.now()
	d.ID = dispatcher.NewID(now)
	d.Created, d.Updated = now, now
	for i := range d.Actions {
		d.Actions[i].ID = dispatcher.NewID(now)
		d.Actions[i].Created, d.Actions[i].Updated = now, now
	}
	if err := d.Validate(); err != nil {
		return err
	}
	row, tags := toDBDispatcher(*d)
	actions, err := toDBActions(d.ID, 0, d.Actions, now)
	if err != nil {
		return err
	}
	err = s.tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Create(&row).Error; err != nil {
			return translate(err, dispatcherConflict(d.Name))
		}
		if len(tags) > 0 {
			if err := tx.Create(&tags).Error; err != nil {
				return err
			}
		}
		if err := checkReferences(tx, d.Actions, func(i int) string { return fmt.Sprintf("actions[%d].", i) }); err != nil {
			return err
		}
		if len(actions) > 0 {
			if err := tx.Create(&actions).Error; err != nil {
				return translate(err, "actions: two actions share a name")
			}
		}
		field := "actions"
		if len(d.Actions) == 0 {
			field = "description" // the only field without a limit of its own
		}
		if err := s.checkConfigSize(tx, field, d.EventType, true); err != nil {
			return err
		}
		if err := checkCount(tx, &dispatcherRow{}, countLimits.dispatchers, "dispatchers"); err != nil {
			return err
		}
		if err := checkOrdering(tx, d.EventType, d.ID); err != nil {
			return err
		}
		return s.audit(ctx, tx, dispatcher.AuditDispatcherCreate, d.ID, nil, wire.AuditDispatcherOf(*d, true))
	})
	return translate(err, "")
}

// FindDispatcher returns the dispatcher with id, or ENOTFOUND.
func (s *Store) FindDispatcher(ctx context.Context, id string) (d dispatcher.Dispatcher, err error) {
	err = s.read(ctx, func(tx *gorm.DB) (err error) {
		d, err = findDispatcher(tx, id)
		return err
	})
	return d, err
}

func findDispatcher(tx *gorm.DB, id string) (dispatcher.Dispatcher, error) {
	ds, err := load(tx, tx.Where("id = ?", id))
	if err != nil {
		return dispatcher.Dispatcher{}, err
	}
	if len(ds) == 0 {
		return dispatcher.Dispatcher{}, dispatcher.Errorf(dispatcher.ENOTFOUND, "Requested resource is unknown: no dispatcher with id %s", id)
	}
	return ds[0], nil
}

// FindDispatchers returns the page of dispatchers that q selects and the
// number of dispatchers its filter matches. It returns EQUERY for a query
// that cannot apply (e.g. gt on tags).
func (s *Store) FindDispatchers(ctx context.Context, q dispatcher.Query) ([]dispatcher.Dispatcher, int, error) {
	where, args, err := buildFilter(q.Filter, textCollation(s.db))
	if err != nil {
		return nil, 0, err
	}
	order, err := buildOrder(q.Sort, textCollation(s.db))
	if err != nil {
		return nil, 0, err
	}
	var total int64
	ds := []dispatcher.Dispatcher{}
	err = s.read(ctx, func(tx *gorm.DB) (err error) {
		if err := tx.Model(&dispatcherRow{}).Where(where, args...).Count(&total).Error; err != nil {
			return translate(err, "")
		}
		if q.Limit > 0 && int64(q.Offset) < total {
			ds, err = load(tx, tx.Where(where, args...).Order(order).Limit(q.Limit).Offset(q.Offset))
		}
		return err
	})
	return ds, int(total), err
}

// DispatchersByEventType returns every dispatcher for eventType, oldest
// first, with its actions in order.
func (s *Store) DispatchersByEventType(ctx context.Context, eventType string) (ds []dispatcher.Dispatcher, err error) {
	err = s.read(ctx, func(tx *gorm.DB) (err error) {
		ds, err = ofEventType(tx, eventType)
		return err
	})
	return ds, err
}

func ofEventType(tx *gorm.DB, eventType string) ([]dispatcher.Dispatcher, error) {
	return load(tx, tx.Where("event_type = ?", eventType).Order("creation_timestamp, id"))
}

// load runs the dispatcher query sel and loads the tags and actions of its
// rows with one query each, all in db, a transaction: read or written, so
// that a dispatcher comes with its tags and actions as one change left
// them (Store.read). Before, each query read the store as it was then,
// and a change committed between them (a batch) was seen in part.
func load(db, sel *gorm.DB) ([]dispatcher.Dispatcher, error) {
	var rows []dispatcherRow
	if err := sel.Find(&rows).Error; err != nil {
		return nil, translate(err, "")
	}
	if len(rows) == 0 {
		return []dispatcher.Dispatcher{}, nil
	}
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	var tags []tagRow
	if err := db.Where("dispatcher_id IN ?", ids).Order("dispatcher_id, position").Find(&tags).Error; err != nil {
		return nil, translate(err, "")
	}
	var actions []actionRow
	if err := db.Where("dispatcher_id IN ?", ids).Order("dispatcher_id, position").Find(&actions).Error; err != nil {
		return nil, translate(err, "")
	}
	tagsOf := map[string][]tagRow{}
	for _, t := range tags {
		tagsOf[t.DispatcherID] = append(tagsOf[t.DispatcherID], t)
	}
	actionsOf := map[string][]actionRow{}
	for _, a := range actions {
		actionsOf[a.DispatcherID] = append(actionsOf[a.DispatcherID], a)
	}
	out := make([]dispatcher.Dispatcher, len(rows))
	for i, r := range rows {
		d, err := toDispatcher(r, tagsOf[r.ID], actionsOf[r.ID])
		if err != nil {
			return nil, err
		}
		out[i] = d
	}
	return out, nil
}

// UpdateDispatcher applies u to the dispatcher with id. It returns
// ENOTFOUND, ECONFLICT for a taken name, or a validation error, also when
// the configuration of its event type would grow beyond
// dispatcher.MaxEventTypeConfig. It returns the dispatcher's new
// updateTimestamp. A non-zero ifUpdated applies u only to the dispatcher
// as it was last updated then (its actions included), else ECHANGED.
func (s *Store) UpdateDispatcher(ctx context.Context, id string, u dispatcher.DispatcherUpdate, ifUpdated time.Time) (time.Time, error) {
	var at time.Time
	err := s.tx(ctx, func(tx *gorm.DB) (err error) {
		at, err = s.updateDispatcher(ctx, tx, id, u, ifUpdated)
		return err
	})
	return at, err
}

// updateDispatcher is UpdateDispatcher's in tx.
func (s *Store) updateDispatcher(ctx context.Context, tx *gorm.DB, id string, u dispatcher.DispatcherUpdate, ifUpdated time.Time) (at time.Time, err error) {
	var row dispatcherRow
	if err := tx.Where("id = ?", id).Take(&row).Error; err != nil {
		return at, unknown(err, "dispatcher with id %s", id)
	}
	if err := unchanged("dispatcher", id, fromMillis(row.UpdateTimestamp), ifUpdated); err != nil {
		return at, err
	}
	var oldTags []tagRow
	if err := tx.Where("dispatcher_id = ?", id).Order("position").Find(&oldTags).Error; err != nil {
		return at, err
	}
	old, err := toDispatcher(row, oldTags, nil)
	if err != nil {
		return at, err
	}
	// Validation sees the tags only when they change, as it always did.
	d, err := toDispatcher(row, nil, nil)
	if err != nil {
		return at, err
	}
	if err := u.Apply(&d); err != nil {
		return at, err
	}
	if u.Tags == nil {
		d.Tags = old.Tags
	}
	// Moving to another event type adds the whole dispatcher to it.
	field, grew := "eventType", d.EventType != old.EventType
	if !grew {
		field = grownField(u)
		if grew, err = grows(old, d); err != nil {
			return at, err
		}
	}
	d.Updated = s.later(old.Updated)
	at = d.Updated
	updated, _ := toDBDispatcher(d)
	err = tx.Model(&dispatcherRow{}).Where("id = ?", id).Updates(map[string]any{
		"name":             updated.Name,
		"description":      updated.Description,
		"event_type":       updated.EventType,
		"ordering":         updated.Ordering,
		"filter":           updated.Filter,
		"enabled":          updated.Enabled,
		"update_timestamp": updated.UpdateTimestamp,
	}).Error
	if err != nil {
		return at, translate(err, dispatcherConflict(d.Name))
	}
	if u.Tags != nil {
		if err := tx.Where("dispatcher_id = ?", id).Delete(&tagRow{}).Error; err != nil {
			return at, err
		}
		if tags := toDBTags(id, d.Tags); len(tags) > 0 {
			if err := tx.Create(&tags).Error; err != nil {
				return at, err
			}
		}
	}
	if err := s.checkConfigSize(tx, field, d.EventType, grew); err != nil {
		return at, err
	}
	if err := checkOrdering(tx, d.EventType, d.ID); err != nil {
		return at, err
	}
	return at, s.audit(ctx, tx, dispatcher.AuditDispatcherUpdate, id, wire.AuditDispatcherOf(old, false), wire.AuditDispatcherOf(d, false))
}

// DeleteDispatcher deletes the dispatcher with id and its actions, or
// returns ENOTFOUND, or ECHANGED when ifUpdated is set and the dispatcher
// is no longer at it.
func (s *Store) DeleteDispatcher(ctx context.Context, id string, ifUpdated time.Time) error {
	return s.tx(ctx, func(tx *gorm.DB) error {
		// Whose it is first (the tenant), then the children: SQLite only
		// cascades when foreign keys are on, and this keeps the store
		// correct either way.
		if _, err := s.touch(tx, id, ifUpdated); err != nil {
			return err
		}
		before, err := load(tx, tx.Where("id = ?", id)) // for the audit trail
		if err != nil {
			return err
		}
		if err := tx.Where("dispatcher_id = ?", id).Delete(&actionRow{}).Error; err != nil {
			return err
		}
		if err := tx.Where("dispatcher_id = ?", id).Delete(&tagRow{}).Error; err != nil {
			return err
		}
		res := tx.Where("id = ?", id).Delete(&dispatcherRow{})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 || len(before) == 0 {
			return dispatcher.Errorf(dispatcher.ENOTFOUND, "Requested resource is unknown: no dispatcher with id %s", id)
		}
		return s.audit(ctx, tx, dispatcher.AuditDispatcherDelete, id, wire.AuditDispatcherOf(before[0], true), nil)
	})
}

// ApplyBatch applies b to the dispatcher with id in one transaction:
// all of it, or none of it, so that no event meets the dispatcher halfway
// changed. It gives the actions it creates their ids, and returns the
// dispatcher as b left it, or the first change's error, its place in b
// named ("createActions[1].name: ..."); a non-zero ifUpdated applies b
// only to the dispatcher as it was last updated then, else ECHANGED.
func (s *Store) ApplyBatch(ctx context.Context, id string, b *dispatcher.Batch, ifUpdated time.Time) (d dispatcher.Dispatcher, err error) {
	for i := range b.CreateActions {
		if err := s.newAction(&b.CreateActions[i]); err != nil {
			return d, inBatch(err, fmt.Sprintf("createActions[%d]", i))
		}
	}
	err = s.tx(ctx, func(tx *gorm.DB) (err error) {
		if b.Dispatcher.Empty() {
			_, err = s.touch(tx, id, ifUpdated)
		} else if _, err = s.updateDispatcher(ctx, tx, id, b.Dispatcher, ifUpdated); err != nil {
			err = inBatch(err, "dispatcher")
		}
		if err != nil {
			return err
		}
		for i, actionID := range b.DeleteActions {
			if err := s.deleteAction(ctx, tx, id, actionID); err != nil {
				return inBatch(err, fmt.Sprintf("deleteActions[%d]", i))
			}
		}
		for i, c := range b.UpdateActions {
			if err := s.updateAction(ctx, tx, id, c.ID, c.Update); err != nil {
				return inBatch(err, fmt.Sprintf("updateActions[%d]", i))
			}
		}
		for i := range b.CreateActions {
			if err := s.createAction(ctx, tx, id, &b.CreateActions[i]); err != nil {
				return inBatch(err, fmt.Sprintf("createActions[%d]", i))
			}
		}
		// As it left it, whatever commits next: before, read after the
		// commit, the answer could be another writer's.
		d, err = findDispatcher(tx, id)
		return err
	})
	return d, err
}

// inBatch names where in a batch the change that err refused is: before
// the field a field's error names (createActions[0].name: ...), or the
// action an unknown action's error is about (deleteActions[0]: ...). An
// unknown or changed dispatcher's error names it already.
func inBatch(err error, at string) error {
	switch dispatcher.ErrorCode(err) {
	case dispatcher.EINVALID, dispatcher.EREQUIRED, dispatcher.ECONFLICT, dispatcher.EINUSE:
		if msg, ok := strings.CutPrefix(dispatcher.ErrorMessage(err), "actions:"); ok && at != "dispatcher" {
			// The dispatcher's actions, which the action would grow
			// past a limit: not a field of the action.
			return &dispatcher.Error{Code: dispatcher.ErrorCode(err), Message: at + ":" + msg}
		}
		return dispatcher.Prefixed(err, at+".")
	case dispatcher.ENOTFOUND:
		if at != "dispatcher" {
			return dispatcher.Prefixed(err, at+": ")
		}
	}
	return err
}

// changeDispatcher runs fn, a change of the dispatcher's actions, in a
// transaction with the dispatcher touched, and returns its new
// updateTimestamp.
func (s *Store) changeDispatcher(ctx context.Context, id string, ifUpdated time.Time, fn func(tx *gorm.DB) error) (time.Time, error) {
	var at time.Time
	err := s.tx(ctx, func(tx *gorm.DB) (err error) {
		if at, err = s.touch(tx, id, ifUpdated); err != nil {
			return err
		}
		return fn(tx)
	})
	return at, err
}

// touch moves the dispatcher's updateTimestamp on, a change of its
// actions being one of the dispatcher, and returns the new one; or
// ENOTFOUND, or ECHANGED when ifUpdated is set and the dispatcher is no
// longer at it.
func (s *Store) touch(tx *gorm.DB, id string, ifUpdated time.Time) (time.Time, error) {
	var row dispatcherRow
	if err := tx.Select("id", "update_timestamp").Where("id = ?", id).Take(&row).Error; err != nil {
		return time.Time{}, unknown(err, "dispatcher with id %s", id)
	}
	prev := fromMillis(row.UpdateTimestamp)
	if err := unchanged("dispatcher", id, prev, ifUpdated); err != nil {
		return time.Time{}, err
	}
	at := s.later(prev)
	return at, tx.Model(&dispatcherRow{}).Where("id = ?", id).Update("update_timestamp", millis(at)).Error
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
