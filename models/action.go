package models

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/wire"
	"gorm.io/gorm"
)

// actionRow is a row of the actions table. JSON-valued columns are text.
type actionRow struct {
	ID                string `gorm:"primaryKey"`
	DispatcherID      string
	Position          int
	Type              string
	Name              *string
	Description       string
	Recipients        *string
	TemplateID        *string
	FunctionName      *string
	Data              *string
	Tags              *string
	StartTimestamp    *int64
	RetryPolicy       *string
	CreationTimestamp int64
	UpdateTimestamp   int64
}

func (actionRow) TableName() string { return "actions" }

// The JSON-valued columns hold the API's own JSON forms of recipients and
// retry policies (package wire), so a row reads like the API's answer.

func toDBAction(dispatcherID string, position int, a dispatcher.Action, now time.Time) (actionRow, error) {
	row := actionRow{
		ID:                a.ID,
		DispatcherID:      dispatcherID,
		Position:          position,
		Type:              a.Type,
		Name:              nullable(a.Name),
		Description:       a.Description,
		CreationTimestamp: millis(now),
		UpdateTimestamp:   millis(now),
	}
	switch a.Type {
	case dispatcher.ActionMail:
		r, err := jsonText(wire.FromRecipients(a.Recipients))
		if err != nil {
			return row, err
		}
		row.Recipients = r
		row.TemplateID = nullable(a.TemplateID)
	case dispatcher.ActionTask:
		row.FunctionName = nullable(a.FunctionName)
		if len(a.Data) > 0 {
			data := string(a.Data)
			row.Data = &data
		}
		if a.Tags != nil {
			tags, err := jsonText(a.Tags)
			if err != nil {
				return row, err
			}
			row.Tags = tags
		}
		if a.StartTimestamp != nil {
			ms := millis(*a.StartTimestamp)
			row.StartTimestamp = &ms
		}
	}
	if p := a.RetryPolicy; p != nil {
		rp, err := jsonText(wire.FromRetryPolicy(*p))
		if err != nil {
			return row, err
		}
		row.RetryPolicy = rp
	}
	return row, nil
}

func toDBActions(dispatcherID string, first int, actions []dispatcher.Action, now time.Time) ([]actionRow, error) {
	rows := make([]actionRow, len(actions))
	for i, a := range actions {
		row, err := toDBAction(dispatcherID, first+i, a, now)
		if err != nil {
			return nil, err
		}
		rows[i] = row
	}
	return rows, nil
}

func toAction(row actionRow) (dispatcher.Action, error) {
	a := dispatcher.Action{
		ID:           row.ID,
		Type:         row.Type,
		Name:         deref(row.Name),
		Description:  row.Description,
		TemplateID:   deref(row.TemplateID),
		FunctionName: deref(row.FunctionName),
		Created:      fromMillis(row.CreationTimestamp),
		Updated:      fromMillis(row.UpdateTimestamp),
	}
	if row.Recipients != nil {
		var r wire.Recipients
		if err := json.Unmarshal([]byte(*row.Recipients), &r); err != nil {
			return a, fmt.Errorf("action %s: recipients: %w", row.ID, err)
		}
		a.Recipients = r.ToDomain()
	}
	if row.Data != nil {
		a.Data = json.RawMessage(*row.Data)
	}
	if row.Tags != nil {
		if err := json.Unmarshal([]byte(*row.Tags), &a.Tags); err != nil {
			return a, fmt.Errorf("action %s: tags: %w", row.ID, err)
		}
	}
	if row.StartTimestamp != nil {
		t := fromMillis(*row.StartTimestamp)
		a.StartTimestamp = &t
	}
	if row.RetryPolicy != nil {
		var p wire.RetryPolicy
		if err := json.Unmarshal([]byte(*row.RetryPolicy), &p); err != nil {
			return a, fmt.Errorf("action %s: retryPolicy: %w", row.ID, err)
		}
		rp := p.ToDomain()
		a.RetryPolicy = &rp
	}
	return a, nil
}

func jsonText(v any) (*string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	s := string(b)
	return &s, nil
}

func actionConflict(name string) string {
	return fmt.Sprintf("name: an action named %q already exists in this dispatcher", name)
}

// CreateAction appends a to the dispatcher with dispatcherID, giving it an
// id. It returns ENOTFOUND, ECONFLICT or a validation error, also when the
// dispatcher holds dispatcher.MaxActions already or the configuration of
// its event type would grow beyond dispatcher.MaxEventTypeConfig.
func (s *Store) CreateAction(ctx context.Context, dispatcherID string, a *dispatcher.Action, ifUpdated time.Time) (time.Time, error) {
	if err := s.newAction(a); err != nil {
		return time.Time{}, err
	}
	return s.changeDispatcher(ctx, dispatcherID, ifUpdated, func(tx *gorm.DB) error {
		return s.createAction(ctx, tx, dispatcherID, a)
	})
}

// newAction gives a, to be created, its id and times, and validates it.
func (s *Store) newAction(a *dispatcher.Action) error {
	now := s.now()
	a.ID = dispatcher.NewID(now)
	a.Created, a.Updated = now, now
	return a.Validate()
}

// createAction is CreateAction's in tx, the dispatcher touched, a new.
func (s *Store) createAction(ctx context.Context, tx *gorm.DB, dispatcherID string, a *dispatcher.Action) (err error) {
	if err := checkActionCount(tx, dispatcherID); err != nil {
		return err
	}
	if err := checkReferences(tx, []dispatcher.Action{*a}, noPrefix); err != nil {
		return err
	}
	var next int
	err = tx.Model(&actionRow{}).Where("dispatcher_id = ?", dispatcherID).
		Select("COALESCE(MAX(position) + 1, 0)").Scan(&next).Error
	if err != nil {
		return err
	}
	row, err := toDBAction(dispatcherID, next, *a, a.Created)
	if err != nil {
		return err
	}
	if err := tx.Create(&row).Error; err != nil {
		return translate(err, actionConflict(a.Name))
	}
	eventType, err := eventTypeOf(tx, dispatcherID)
	if err != nil {
		return err
	}
	if err := s.checkConfigSize(tx, "actions", eventType, true); err != nil {
		return err
	}
	return s.audit(ctx, tx, dispatcher.AuditActionCreate, a.ID, nil, wire.AuditActionOf(dispatcherID, *a))
}

// UpdateAction applies u to an action of a dispatcher. It returns
// ENOTFOUND, ECONFLICT, or EINVALID for a type change or a bad field, also
// when the configuration of the dispatcher's event type would grow beyond
// dispatcher.MaxEventTypeConfig. It returns the dispatcher's new
// updateTimestamp; a non-zero ifUpdated applies u only to the dispatcher
// as it was last updated then, else ECHANGED.
func (s *Store) UpdateAction(ctx context.Context, dispatcherID, actionID string, u dispatcher.ActionUpdate, ifUpdated time.Time) (time.Time, error) {
	return s.changeDispatcher(ctx, dispatcherID, ifUpdated, func(tx *gorm.DB) error {
		return s.updateAction(ctx, tx, dispatcherID, actionID, u)
	})
}

// updateAction is UpdateAction's in tx, the dispatcher touched.
func (s *Store) updateAction(ctx context.Context, tx *gorm.DB, dispatcherID, actionID string, u dispatcher.ActionUpdate) (err error) {
	var row actionRow
	err = tx.Where("id = ? AND dispatcher_id = ?", actionID, dispatcherID).Take(&row).Error
	if err != nil {
		return unknown(err, "action with id %s in dispatcher %s", actionID, dispatcherID)
	}
	old, err := toAction(row)
	if err != nil {
		return err
	}
	a := old
	if err := u.Apply(&a); err != nil {
		return err
	}
	if err := checkReferences(tx, []dispatcher.Action{a}, noPrefix); err != nil {
		return err
	}
	grew, err := grows(old, a)
	if err != nil {
		return err
	}
	updated, err := toDBAction(dispatcherID, row.Position, a, s.later(old.Updated))
	if err != nil {
		return err
	}
	updated.CreationTimestamp = row.CreationTimestamp
	// Select("*") writes every column, so cleared fields become NULL.
	err = tx.Model(&actionRow{}).Where("id = ?", actionID).Select("*").Updates(&updated).Error
	if err != nil {
		return translate(err, actionConflict(a.Name))
	}
	eventType, err := eventTypeOf(tx, dispatcherID)
	if err != nil {
		return err
	}
	if err := s.checkConfigSize(tx, "actions", eventType, grew); err != nil {
		return err
	}
	after, err := toAction(updated)
	if err != nil {
		return err
	}
	return s.audit(ctx, tx, dispatcher.AuditActionUpdate, actionID, wire.AuditActionOf(dispatcherID, old), wire.AuditActionOf(dispatcherID, after))
}

// DeleteAction deletes an action of a dispatcher and returns the
// dispatcher's new updateTimestamp, or ENOTFOUND, or ECHANGED when
// ifUpdated is set and the dispatcher is no longer at it.
func (s *Store) DeleteAction(ctx context.Context, dispatcherID, actionID string, ifUpdated time.Time) (time.Time, error) {
	return s.changeDispatcher(ctx, dispatcherID, ifUpdated, func(tx *gorm.DB) error {
		return s.deleteAction(ctx, tx, dispatcherID, actionID)
	})
}

// deleteAction is DeleteAction's in tx, the dispatcher touched.
func (s *Store) deleteAction(ctx context.Context, tx *gorm.DB, dispatcherID, actionID string) error {
	var rows []actionRow // for the audit trail
	if err := tx.Where("id = ? AND dispatcher_id = ?", actionID, dispatcherID).Find(&rows).Error; err != nil {
		return err
	}
	res := tx.Where("id = ? AND dispatcher_id = ?", actionID, dispatcherID).Delete(&actionRow{})
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 || len(rows) == 0 {
		return dispatcher.Errorf(dispatcher.ENOTFOUND, "Requested resource is unknown: no action with id %s in dispatcher %s", actionID, dispatcherID)
	}
	before, err := toAction(rows[0])
	if err != nil {
		return err
	}
	return s.audit(ctx, tx, dispatcher.AuditActionDelete, actionID, wire.AuditActionOf(dispatcherID, before), nil)
}

func noPrefix(int) string { return "" }
