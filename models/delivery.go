package models

import (
	"context"
	"time"

	"gorm.io/gorm/clause"

	"github.com/dispatcherhq/dispatcher"
)

// The delivery records make effects that Temporal alone would repeat
// happen once: mails accepted by the SMTP server, and events accepted for
// dispatch. Neither touches the configuration version.

type sentMailRow struct {
	MessageID string `gorm:"primaryKey"`
	SentAt    int64
}

func (sentMailRow) TableName() string { return "sent_mails" }

type acceptedEventRow struct {
	DedupKey   string `gorm:"primaryKey"`
	WorkflowID string
	RunID      string
	AcceptedAt int64
}

func (acceptedEventRow) TableName() string { return "accepted_events" }

// MailSent reports whether RecordMailSent recorded messageID.
func (s *Store) MailSent(ctx context.Context, messageID string) (bool, error) {
	var n int64
	err := s.db.WithContext(ctx).Model(&sentMailRow{}).Where("message_id = ?", messageID).Count(&n).Error
	return n > 0, translate(err, "")
}

// RecordMailSent records that the SMTP server accepted the mail with
// messageID at at; recording it twice keeps the first.
func (s *Store) RecordMailSent(ctx context.Context, messageID string, at time.Time) error {
	row := sentMailRow{MessageID: messageID, SentAt: millis(at)}
	return translate(s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&row).Error, "")
}

// AcceptedEvent returns the dispatch that RecordAcceptedEvent recorded for
// key, and whether there is one.
func (s *Store) AcceptedEvent(ctx context.Context, key string) (dispatcher.StartResult, bool, error) {
	var rows []acceptedEventRow
	if err := s.db.WithContext(ctx).Where("dedup_key = ?", key).Limit(1).Find(&rows).Error; err != nil {
		return dispatcher.StartResult{}, false, translate(err, "")
	}
	if len(rows) == 0 {
		return dispatcher.StartResult{}, false, nil
	}
	return dispatcher.StartResult{WorkflowID: rows[0].WorkflowID, RunID: rows[0].RunID, Duplicate: true}, true, nil
}

// RecordAcceptedEvent records that the event with key was dispatched as
// res at at; recording a key twice keeps the first.
func (s *Store) RecordAcceptedEvent(ctx context.Context, key string, res dispatcher.StartResult, at time.Time) error {
	row := acceptedEventRow{DedupKey: key, WorkflowID: res.WorkflowID, RunID: res.RunID, AcceptedAt: millis(at)}
	return translate(s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&row).Error, "")
}

// PruneDeliveryRecords deletes the records older than before and returns
// how many it deleted.
func (s *Store) PruneDeliveryRecords(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	for _, m := range []struct {
		model  any
		column string
	}{{&sentMailRow{}, "sent_at"}, {&acceptedEventRow{}, "accepted_at"}} {
		res := s.db.WithContext(ctx).Where(m.column+" < ?", millis(before)).Delete(m.model)
		if res.Error != nil {
			return n, translate(res.Error, "")
		}
		n += res.RowsAffected
	}
	return n, nil
}
