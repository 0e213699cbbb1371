package models

import (
	"context"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/wire"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// auditRow is a row of the execution_audit table.
type auditRow struct {
	ID           string `gorm:"primaryKey"`
	WorkflowID   string
	Operation    string
	Ref          string
	RunID        string
	NewRunID     string
	Actor        string
	Actions      *string
	Config       string
	BulkReplayID string
	// IdempotencyKey is the hash of the requester's Idempotency-Key.
	IdempotencyKey string
	CreatedAt      int64 `gorm:"autoCreateTime:false"`
}

func (auditRow) TableName() string { return "execution_audit" }

func toDBAudit(e dispatcher.AuditEntry) (auditRow, error) {
	row := auditRow{ID: e.ID, WorkflowID: e.WorkflowID, Operation: e.Operation, Ref: e.Ref, RunID: e.RunID,
		NewRunID: e.NewRunID, Actor: truncate(e.Actor, 256), Config: e.Config, BulkReplayID: e.BulkReplayID,
		IdempotencyKey: e.IdempotencyKey, CreatedAt: millis(e.At)}
	if len(e.Actions) > 0 {
		a, err := jsonText(e.Actions)
		if err != nil {
			return row, err
		}
		row.Actions = a
	}
	return row, nil
}

func toAudit(r auditRow) (dispatcher.AuditEntry, error) {
	e := dispatcher.AuditEntry{ID: r.ID, WorkflowID: r.WorkflowID, Operation: r.Operation, Ref: r.Ref, RunID: r.RunID,
		NewRunID: r.NewRunID, Actor: r.Actor, Config: r.Config, BulkReplayID: r.BulkReplayID,
		IdempotencyKey: r.IdempotencyKey, At: fromMillis(r.CreatedAt)}
	if r.Actions != nil {
		if err := json.Unmarshal([]byte(*r.Actions), &e.Actions); err != nil {
			return e, fmt.Errorf("audit entry %s: actions: %w", r.ID, err)
		}
	}
	return e, nil
}

// RecordAudit stores an audit entry, giving it an id and time when it has
// none, and reports whether it did: an entry with the workflow ID,
// operation and ref of a stored one is ignored, so retried callers record
// once and concurrent ones learn which came first. An entry it stores is
// appended to the audit trail in the same transaction (the caller's, or
// e.Actor for work without one). It does not touch the configuration
// version: audit entries are not configuration.
func (s *Store) RecordAudit(ctx context.Context, e dispatcher.AuditEntry) (bool, error) {
	if e.WorkflowID == "" || e.Operation == "" || e.Ref == "" {
		return false, dispatcher.Errorf(dispatcher.EINTERNAL, "an audit entry needs a workflow ID, an operation and a ref")
	}
	now := s.now()
	if e.ID == "" {
		e.ID = dispatcher.NewID(now)
	}
	if e.At.IsZero() {
		e.At = now
	}
	row, err := toDBAudit(e)
	if err != nil {
		return false, err
	}
	doc, err := auditText(wire.AuditExecutionOf(e))
	if err != nil {
		return false, err
	}
	created := false
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "workflow_id"}, {Name: "operation"}, {Name: "ref"}},
			DoNothing: true,
		}).Create(&row)
		if res.Error != nil || res.RowsAffected == 0 {
			return res.Error
		}
		created = true
		return s.appendAudit(ctx, tx, auditLogRow{Action: e.Action(), Target: e.WorkflowID, Actor: e.Actor, AfterJSON: doc})
	})
	if err != nil {
		return false, translate(err, "")
	}
	return created, nil
}

// FindAudit returns the entry of a workflow ID with operation and ref, and
// whether there is one.
func (s *Store) FindAudit(ctx context.Context, workflowID, operation, ref string) (dispatcher.AuditEntry, bool, error) {
	return s.findAudit(ctx, "workflow_id = ? AND operation = ? AND ref = ?", workflowID, operation, ref)
}

// AuditByKey returns the oldest entry of a workflow ID recorded with the
// idempotency key hash key, and whether there is one.
func (s *Store) AuditByKey(ctx context.Context, workflowID, key string) (dispatcher.AuditEntry, bool, error) {
	return s.findAudit(ctx, "workflow_id = ? AND idempotency_key = ?", workflowID, key)
}

func (s *Store) findAudit(ctx context.Context, where string, args ...any) (dispatcher.AuditEntry, bool, error) {
	var rows []auditRow
	if err := s.db.WithContext(ctx).Where(where, args...).Order("created_at, id").Limit(1).Find(&rows).Error; err != nil {
		return dispatcher.AuditEntry{}, false, translate(err, "")
	}
	if len(rows) == 0 {
		return dispatcher.AuditEntry{}, false, nil
	}
	e, err := toAudit(rows[0])
	return e, err == nil, err
}

// SetAuditRun records the run that the operation of an entry started,
// unless one is recorded already.
func (s *Store) SetAuditRun(ctx context.Context, workflowID, operation, ref, newRunID string) error {
	err := s.db.WithContext(ctx).Model(&auditRow{}).
		Where("workflow_id = ? AND operation = ? AND ref = ? AND new_run_id = ''", workflowID, operation, ref).
		Update("new_run_id", newRunID).Error
	return translate(err, "")
}

// AuditTrail returns the audit entries of a workflow ID, oldest first.
func (s *Store) AuditTrail(ctx context.Context, workflowID string) ([]dispatcher.AuditEntry, error) {
	var rows []auditRow
	err := s.db.WithContext(ctx).Where("workflow_id = ?", workflowID).Order("created_at, id").Find(&rows).Error
	if err != nil {
		return nil, translate(err, "")
	}
	out := make([]dispatcher.AuditEntry, len(rows))
	for i, r := range rows {
		if out[i], err = toAudit(r); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// truncate cuts s to n characters: an audit row must not fail, and fail
// the change it records, on a token subject longer than its column.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}
