package models

import (
	"context"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/dispatcherhq/dispatcher"
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
	CreatedAt    int64 `gorm:"autoCreateTime:false"`
}

func (auditRow) TableName() string { return "execution_audit" }

func toDBAudit(e dispatcher.AuditEntry) (auditRow, error) {
	row := auditRow{ID: e.ID, WorkflowID: e.WorkflowID, Operation: e.Operation, Ref: e.Ref, RunID: e.RunID,
		NewRunID: e.NewRunID, Actor: truncate(e.Actor, 256), Config: e.Config, BulkReplayID: e.BulkReplayID, CreatedAt: millis(e.At)}
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
		NewRunID: r.NewRunID, Actor: r.Actor, Config: r.Config, BulkReplayID: r.BulkReplayID, At: fromMillis(r.CreatedAt)}
	if r.Actions != nil {
		if err := json.Unmarshal([]byte(*r.Actions), &e.Actions); err != nil {
			return e, fmt.Errorf("audit entry %s: actions: %w", r.ID, err)
		}
	}
	return e, nil
}

// RecordAudit stores an audit entry, giving it an id and time when it has
// none. An entry with the workflow ID, operation and ref of a stored one
// is ignored, so retried callers record once. It does not touch the
// configuration version: audit entries are not configuration.
func (s *Store) RecordAudit(ctx context.Context, e dispatcher.AuditEntry) error {
	if e.WorkflowID == "" || e.Operation == "" || e.Ref == "" {
		return dispatcher.Errorf(dispatcher.EINTERNAL, "an audit entry needs a workflow ID, an operation and a ref")
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
		return err
	}
	err = s.db.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "workflow_id"}, {Name: "operation"}, {Name: "ref"}},
		DoNothing: true,
	}).Create(&row).Error
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

// truncate cuts s to n characters. The audit row is written after the
// replay or cancel it records has happened, so it must not fail on a token
// subject longer than its column.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}
