package models

import (
	"context"
	"database/sql"
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

// A mail claim is an attempt sending the mail, until ClaimedUntil; a row
// keyed "call:…" is a gated call's first attempt making its call
// (activities.claimCall). Claims
// have a table of their own: a worker of an older version, during a
// rolling upgrade, reads any sent_mails row as a mail sent.
type mailClaimRow struct {
	MessageID    string `gorm:"primaryKey"`
	ClaimOwner   string
	ClaimedUntil int64
}

func (mailClaimRow) TableName() string { return "mail_claims" }

type acceptedEventRow struct {
	DedupKey   string `gorm:"primaryKey"`
	WorkflowID string
	RunID      string
	EventType  string
	AcceptedAt int64
}

func (acceptedEventRow) TableName() string { return "accepted_events" }

// ClaimMail claims the delivery of the mail with messageID for owner
// until until, unless the mail was sent or another claim lasts past now.
// The claim and the check that the mail was not sent are one statement,
// one round trip on the happy path. What makes it safe is the claim's
// lease: a sender records its mail before its claim expires (its attempt
// ends first, and until outlasts it by claimGrace), so before any later
// claim's statement begins, and the check (on PostgreSQL, in the
// statement's snapshot) sees it.
func (s *Store) ClaimMail(ctx context.Context, messageID, owner string, now, until time.Time) (dispatcher.MailClaim, error) {
	res := s.prepared.WithContext(ctx).Exec(`INSERT INTO mail_claims (message_id, claim_owner, claimed_until)
		SELECT ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM sent_mails WHERE message_id = ?)
		ON CONFLICT (message_id) DO UPDATE SET claim_owner = excluded.claim_owner, claimed_until = excluded.claimed_until
		WHERE mail_claims.claimed_until < ?`, messageID, owner, millis(until), messageID, millis(now))
	switch {
	case res.Error != nil:
		return dispatcher.MailClaim{}, translate(res.Error, "")
	case res.RowsAffected == 1:
		return dispatcher.MailClaim{}, nil
	}
	var sent int64
	if err := s.db.WithContext(ctx).Model(&sentMailRow{}).Where("message_id = ?", messageID).Count(&sent).Error; err != nil {
		return dispatcher.MailClaim{}, translate(err, "")
	}
	if sent > 0 {
		return dispatcher.MailClaim{Sent: true}, nil
	}
	var rows []mailClaimRow
	if err := s.db.WithContext(ctx).Where("message_id = ?", messageID).Limit(1).Find(&rows).Error; err != nil {
		return dispatcher.MailClaim{}, translate(err, "")
	}
	if len(rows) == 0 { // released since: ask again
		return dispatcher.MailClaim{HeldUntil: now}, nil
	}
	return dispatcher.MailClaim{HeldUntil: time.UnixMilli(rows[0].ClaimedUntil)}, nil
}

// ReleaseMail ends owner's claim of the mail with messageID.
func (s *Store) ReleaseMail(ctx context.Context, messageID, owner string) error {
	return translate(s.db.WithContext(ctx).Where("message_id = ? AND claim_owner = ?", messageID, owner).
		Delete(&mailClaimRow{}).Error, "")
}

// RecordMailSent records that the SMTP server accepted the mail with
// messageID at at; recording it twice keeps the first. Its claim lasts
// until it expires, or is pruned.
func (s *Store) RecordMailSent(ctx context.Context, messageID string, at time.Time) error {
	return translate(s.prepared.WithContext(ctx).Exec(`INSERT INTO sent_mails (message_id, sent_at) VALUES (?, ?)
		ON CONFLICT (message_id) DO NOTHING`, messageID, millis(at)).Error, "")
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
	return dispatcher.StartResult{WorkflowID: rows[0].WorkflowID, RunID: rows[0].RunID, EventType: rows[0].EventType, Duplicate: true}, true, nil
}

// RecordAcceptedEvent records that the event with key was dispatched as
// res at at; recording a key twice keeps the first.
func (s *Store) RecordAcceptedEvent(ctx context.Context, key string, res dispatcher.StartResult, at time.Time) error {
	row := acceptedEventRow{DedupKey: key, WorkflowID: res.WorkflowID, RunID: res.RunID, EventType: res.EventType, AcceptedAt: millis(at)}
	return translate(s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&row).Error, "")
}

// PruneDeliveryRecords deletes the records older than before, and the
// claims that expired before claimsBefore, and returns how many it
// deleted. An expired claim holds nothing: any attempt takes it over. It
// is kept a while, for the clocks of other processes; not for the dedup
// window: every gated call writes one (activities.claimCall).
func (s *Store) PruneDeliveryRecords(ctx context.Context, before, claimsBefore time.Time) (int64, error) {
	var n int64
	for _, m := range []struct {
		model  any
		where  string
		before time.Time
	}{
		{&sentMailRow{}, "sent_at < @before", before},
		{&mailClaimRow{}, "claimed_until < @before", claimsBefore},
		{&acceptedEventRow{}, "accepted_at < @before", before},
	} {
		res := s.db.WithContext(ctx).Where(m.where, sql.Named("before", millis(m.before))).Delete(m.model)
		if res.Error != nil {
			return n, translate(res.Error, "")
		}
		n += res.RowsAffected
	}
	return n, nil
}
