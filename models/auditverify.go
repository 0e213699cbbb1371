package models

import (
	"context"
	"fmt"

	"github.com/dispatcherhq/dispatcher"
	"gorm.io/gorm"
)

// verifyBatch is how many records VerifyAudit reads at a time.
const verifyBatch = 1000

// VerifyOptions say which chains VerifyAudit walks.
type VerifyOptions struct {
	Tenant *string // nil: every tenant's
	// Progress, when set, is called after every batch with the records
	// checked so far and how many there are.
	Progress func(done, total int64)
}

// VerifyAudit walks the audit chains, each in order, recomputing every
// record's hash, and reports the first break: a record edited (its hash
// no longer matches its fields), deleted (a seq missing, or the chain's
// head past its last record), inserted or moved (a prev_hash that is not
// the hash of the record before). Errors are the database's: a break is
// a result, in AuditVerification.Break.
//
// Appends may go on meanwhile: a chain is walked up to the head it had
// when its walk began, which its records below were committed with.
func (s *Store) VerifyAudit(ctx context.Context, o VerifyOptions) (dispatcher.AuditVerification, error) {
	v := dispatcher.AuditVerification{Heads: map[string]dispatcher.AuditHead{}}
	db := s.db.WithContext(ctx)
	var tenants []string
	count := db.Model(&auditLogRow{})
	if o.Tenant != nil {
		tenants = []string{*o.Tenant}
		count = count.Where("tenant = ?", *o.Tenant)
	} else if err := db.Raw("SELECT tenant FROM audit_chain UNION SELECT tenant FROM audit_log ORDER BY 1").Scan(&tenants).Error; err != nil {
		return v, translate(err, "")
	}
	var total int64
	if err := count.Count(&total).Error; err != nil {
		return v, translate(err, "")
	}
	w := chainWalk{db: db, total: total, progress: o.Progress}
	for _, t := range tenants {
		head, brk, err := w.chain(t)
		if err != nil {
			return v, translate(err, "")
		}
		v.Chains++
		if head.Seq > 0 {
			v.Heads[t] = dispatcher.AuditHead{Seq: head.Seq, Hash: head.Hash}
		}
		if brk != nil {
			v.Records = w.done
			v.Break = brk
			return v, nil
		}
	}
	v.Records = w.done
	return v, nil
}

// chainWalk walks chains, counting the records it checked.
type chainWalk struct {
	db       *gorm.DB
	done     int64
	total    int64
	progress func(done, total int64)
}

// chain walks the chain of tenant and returns its head and its first
// break, if any.
func (w *chainWalk) chain(tenant string) (chainHead, *dispatcher.AuditBreak, error) {
	broken := func(seq int64, format string, args ...any) *dispatcher.AuditBreak {
		return &dispatcher.AuditBreak{Tenant: tenant, Seq: seq, Reason: fmt.Sprintf(format, args...)}
	}
	head, ok, err := w.head(tenant)
	if err != nil || !ok {
		var first []auditLogRow
		if err == nil {
			err = w.db.Where("tenant = ?", tenant).Order("seq").Limit(1).Find(&first).Error
		}
		if err != nil || len(first) == 0 {
			return chainHead{}, nil, err // no chain at all
		}
		return chainHead{}, broken(first[0].Seq, "the chain has records but no head in audit_chain: the head was deleted"), nil
	}
	prev, next := dispatcher.GenesisHash, int64(1)
	for {
		var rows []auditLogRow
		err := w.db.Where("tenant = ? AND seq >= ? AND seq <= ?", tenant, next, head.Seq).Order("seq").Limit(verifyBatch).Find(&rows).Error
		if err != nil {
			return head, nil, err
		}
		for _, r := range rows {
			switch {
			case r.Seq == next+1:
				return head, broken(next, "record %d is missing (the next one is %d): it was deleted", next, r.Seq), nil
			case r.Seq != next:
				return head, broken(next, "records %d to %d are missing (the next one is %d): they were deleted", next, r.Seq-1, r.Seq), nil
			case r.PrevHash != prev && next == 1:
				return head, broken(r.Seq, "its prev_hash %s is not the genesis hash: records before it were deleted, or it was moved", short(r.PrevHash)), nil
			case r.PrevHash != prev:
				return head, broken(r.Seq, "its prev_hash %s is not the hash %s of record %d: record %d was rewritten with a new hash, or records were moved or inserted",
					short(r.PrevHash), short(prev), next-1, next-1), nil
			}
			if d := r.digest(); d != r.Hash {
				return head, broken(r.Seq, "its fields do not hash to its hash %s (they hash to %s): record %s (%s of %s by %s) was edited, or moved (its seq and tenant are hashed too)",
					short(r.Hash), short(d), r.ID, r.Action, r.Target, r.Actor), nil
			}
			prev, next = r.Hash, next+1
			w.done++
		}
		if w.progress != nil && len(rows) > 0 {
			w.progress(w.done, w.total)
		}
		if len(rows) < verifyBatch {
			break
		}
	}
	last := next - 1
	switch {
	case last < head.Seq:
		return head, broken(last+1, "the chain's head is at record %d but its records end at %d: the last ones were deleted", head.Seq, last), nil
	case prev != head.Hash:
		return head, broken(last, "the chain's head hash %s is not the hash %s of its last record: the last record was rewritten", short(head.Hash), short(prev)), nil
	}
	// Rows above the head the walk began with were appended since, or
	// written behind the dispatcher's back; only the latter are above the
	// head now.
	now, _, err := w.head(tenant)
	if err != nil {
		return head, nil, err
	}
	var beyond []auditLogRow
	if err := w.db.Where("tenant = ? AND seq > ?", tenant, now.Seq).Order("seq").Limit(1).Find(&beyond).Error; err != nil {
		return head, nil, err
	}
	if len(beyond) > 0 {
		return head, broken(beyond[0].Seq, "record %d lies beyond the chain's head (%d): it was not appended by the dispatcher", beyond[0].Seq, now.Seq), nil
	}
	return head, nil, nil
}

// head reads the head of tenant's chain, and whether it has one.
func (w *chainWalk) head(tenant string) (chainHead, bool, error) {
	var heads []chainHead
	if err := w.db.Raw("SELECT tenant, seq, hash FROM audit_chain WHERE tenant = ?", tenant).Scan(&heads).Error; err != nil {
		return chainHead{}, false, err
	}
	if len(heads) == 0 {
		return chainHead{}, false, nil
	}
	return heads[0], true, nil
}

// short abbreviates a hash for messages.
func short(hash string) string {
	if len(hash) > 12 {
		return hash[:12] + "…"
	}
	return hash
}
