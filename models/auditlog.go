package models

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/wire"
	"gorm.io/gorm"
)

// auditLogRow is a row of the audit_log table: one entry of the audit
// trail, which is only ever inserted.
type auditLogRow struct {
	Tenant     string `gorm:"primaryKey"`
	Seq        int64  `gorm:"primaryKey;autoIncrement:false"`
	ID         string
	At         int64
	Actor      string
	Action     string
	Target     string
	BeforeJSON string `gorm:"column:before_json"`
	AfterJSON  string `gorm:"column:after_json"`
	ClientAddr string
	RequestID  string
	PrevHash   string
	Hash       string
}

func (auditLogRow) TableName() string { return "audit_log" }

// digest is the row's hash: sha256 of the previous row's hash and the
// row's fields, each written as its length, a colon, itself and a comma,
// so no two different rows encode alike. seq and tenant are among them:
// a row moved elsewhere in its chain, or to another chain, does not
// verify.
func (r auditLogRow) digest() string {
	h := sha256.New()
	h.Write([]byte(r.PrevHash))
	for _, f := range []string{r.Tenant, strconv.FormatInt(r.Seq, 10), r.ID, strconv.FormatInt(r.At, 10), r.Actor, r.Action,
		r.Target, r.BeforeJSON, r.AfterJSON, r.ClientAddr, r.RequestID} {
		fmt.Fprintf(h, "%d:%s,", len(f), f)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func toAuditRecord(r auditLogRow) dispatcher.AuditRecord {
	return dispatcher.AuditRecord{Seq: r.Seq, ID: r.ID, At: fromMillis(r.At), Tenant: r.Tenant, Actor: r.Actor,
		Action: r.Action, Target: r.Target, Before: rawJSON(r.BeforeJSON), After: rawJSON(r.AfterJSON),
		ClientAddr: r.ClientAddr, RequestID: r.RequestID, PrevHash: r.PrevHash, Hash: r.Hash}
}

func rawJSON(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	return json.RawMessage(s)
}

// auditText is the JSON of a document of the audit trail, "" for none.
func auditText(doc any) (string, error) {
	if doc == nil {
		return "", nil
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return "", fmt.Errorf("audit document: %w", err)
	}
	return string(b), nil
}

// audit records a change in the audit trail within tx, the transaction
// that makes it, so the change and its record commit or roll back
// together: action on target by ctx's caller, before and after being the
// target's documents (nil for none). Its error fails the change.
func (s *Store) audit(ctx context.Context, tx *gorm.DB, action, target string, before, after any) error {
	b, err := auditText(before)
	if err != nil {
		return err
	}
	a, err := auditText(after)
	if err != nil {
		return err
	}
	return s.appendAudit(ctx, tx, auditLogRow{Action: action, Target: target, BeforeJSON: b, AfterJSON: a})
}

// appendAudit appends r to the chain of ctx's caller's tenant in tx. The
// caller's subject is the actor, but for the dispatcher's own work on
// someone's behalf (a bulk replay's replays), whose actor r.Actor names;
// dispatcher.CallerService is the last resort.
//
// Moving the chain's head first makes appends to a chain take turns: on
// PostgreSQL the update locks the head's row until tx ends, and a second
// appender waits and then reads the seq and hash the first committed; on
// SQLite it takes the database's write lock. The chain therefore never
// forks, whatever runs concurrently.
func (s *Store) appendAudit(ctx context.Context, tx *gorm.DB, r auditLogRow) error {
	c := dispatcher.CallerOf(ctx)
	r.Tenant = c.Tenant
	actor := c.Subject
	if actor == "" || actor == dispatcher.CallerService {
		actor = cmp.Or(r.Actor, dispatcher.CallerService)
	}
	r.Actor = truncate(actor, 256)
	r.Target = truncate(r.Target, 256)
	r.ClientAddr = truncate(c.ClientAddr, 64)
	r.RequestID = truncate(c.RequestID, 64)
	head, err := advanceChain(tx, r.Tenant)
	if err != nil {
		return fmt.Errorf("audit trail: %w", err)
	}
	now := s.now()
	r.Seq, r.PrevHash, r.ID, r.At = head.Seq, head.Hash, dispatcher.NewID(now), millis(now)
	r.Hash = r.digest()
	if err := tx.Create(&r).Error; err != nil {
		return fmt.Errorf("audit trail: %w", err)
	}
	if err := tx.Exec("UPDATE audit_chain SET hash = ? WHERE tenant = ?", r.Hash, r.Tenant).Error; err != nil {
		return fmt.Errorf("audit trail: %w", err)
	}
	return nil
}

// chainHead is a row of the audit_chain table.
type chainHead struct {
	Tenant string
	Seq    int64
	Hash   string
}

// advanceChain moves the head of tenant's chain to the next seq and
// returns that seq with the hash of the record before it. The head of a
// tenant's first record is created on the way.
func advanceChain(tx *gorm.DB, tenant string) (chainHead, error) {
	for range 2 {
		var heads []chainHead
		err := tx.Raw("UPDATE audit_chain SET seq = seq + 1 WHERE tenant = ? RETURNING seq, hash", tenant).Scan(&heads).Error
		if err != nil {
			return chainHead{}, err
		}
		if len(heads) == 1 {
			return heads[0], nil
		}
		// Two first appends may race: the second one's insert waits for
		// the first's transaction, then does nothing.
		err = tx.Exec("INSERT INTO audit_chain (tenant, seq, hash) VALUES (?, 0, ?) ON CONFLICT (tenant) DO NOTHING",
			tenant, dispatcher.GenesisHash).Error
		if err != nil {
			return chainHead{}, err
		}
	}
	return chainHead{}, fmt.Errorf("the chain head of tenant %q cannot be created", tenant)
}

// RecordBulkReplay records in the audit trail that ctx's caller asks for
// the bulk replay id of r. It is written before the bulk replay starts,
// so no bulk replay runs unrecorded.
func (s *Store) RecordBulkReplay(ctx context.Context, id string, r dispatcher.BulkReplayRequest) error {
	doc, err := auditText(wire.AuditBulkReplayOf(r))
	if err != nil {
		return err
	}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		return s.appendAudit(ctx, tx, auditLogRow{Action: dispatcher.AuditBulkReplayStart, Target: id, Actor: r.Actor, AfterJSON: doc})
	})
	return translate(err, "")
}

// auditColumns maps the audit query fields to columns of the audit_log table.
var auditColumns = map[string]string{
	"id":         "id",
	"seq":        "seq",
	"timestamp":  "at",
	"actor":      "actor",
	"action":     "action",
	"target":     "target",
	"clientAddr": "client_addr",
	"requestId":  "request_id",
}

// FindAuditRecords returns the page of the audit records of ctx's
// caller's tenant that q selects, newest first unless q sorts otherwise,
// and how many its filter matches. It returns EQUERY for a field that is
// not in dispatcher.AuditQueryFields.
func (s *Store) FindAuditRecords(ctx context.Context, q dispatcher.Query) ([]dispatcher.AuditRecord, int, error) {
	b := filterBuilder{collate: textCollation(s.db)}
	b.sql.WriteString("tenant = ?")
	b.args = append(b.args, dispatcher.CallerOf(ctx).Tenant)
	if q.Filter != nil {
		b.sql.WriteString(" AND ")
		if err := b.auditCond(*q.Filter); err != nil {
			return nil, 0, err
		}
	}
	order := ""
	for _, o := range q.Sort {
		col, ok := auditColumns[o.Field]
		if !ok {
			return nil, 0, dispatcher.Errorf(dispatcher.EQUERY, "rql: cannot sort audit records on %q", o.Field)
		}
		order += col
		if dispatcher.AuditQueryFields[o.Field] == dispatcher.KindString {
			order += b.collate
		}
		if o.Desc {
			order += " DESC"
		}
		order += ", "
	}
	order += "seq DESC"
	db := s.db.WithContext(ctx)
	var total int64
	if err := db.Model(&auditLogRow{}).Where(b.sql.String(), b.args...).Count(&total).Error; err != nil {
		return nil, 0, translate(err, "")
	}
	if q.Limit == 0 || int64(q.Offset) >= total {
		return []dispatcher.AuditRecord{}, int(total), nil
	}
	var rows []auditLogRow
	err := db.Where(b.sql.String(), b.args...).Order(order).Limit(q.Limit).Offset(q.Offset).Find(&rows).Error
	if err != nil {
		return nil, 0, translate(err, "")
	}
	out := make([]dispatcher.AuditRecord, len(rows))
	for i, r := range rows {
		out[i] = toAuditRecord(r)
	}
	return out, int(total), nil
}

// auditCond writes a filter on audit records, which has no sets: every
// field is a column.
func (b *filterBuilder) auditCond(c dispatcher.Cond) error {
	return b.tree(c, b.auditLeaf)
}

func (b *filterBuilder) auditLeaf(c dispatcher.Cond) error {
	kind, ok := dispatcher.AuditQueryFields[c.Field]
	if !ok {
		return dispatcher.Errorf(dispatcher.EQUERY, "rql: unknown field %q", c.Field)
	}
	switch {
	case isPresence(c):
		b.has(c.Op, "audit_log."+auditColumns[c.Field], kind)
		return nil
	case len(c.Values) == 0:
		return dispatcher.Errorf(dispatcher.EQUERY, "rql: %s(%s) needs a value", c.Op, c.Field)
	}
	values, err := typed(c.Field, kind, c.Values)
	if err != nil {
		return err
	}
	return b.scalar(c, "audit_log."+auditColumns[c.Field], kind, values)
}

// auditFunctionRow is the audit document of a function about to be
// deleted. A function whose secret or headers no key at hand decrypts
// can still be deleted: its document then says there is a secret, and
// not which headers.
func (s *Store) auditFunctionRow(r functionRow) wire.AuditFunction {
	f, err := toFunction(r, s.keys)
	if err == nil {
		return wire.AuditFunctionOf(f, nil)
	}
	f = dispatcher.Function{ID: r.ID, Name: r.Name, Kind: r.Kind, URL: r.URL, Timeout: time.Duration(r.TimeoutMs) * time.Millisecond,
		TaskQueue: r.TaskQueue, Flow: flow(r.Flow), Created: fromMillis(r.CreationTimestamp), Updated: fromMillis(r.UpdateTimestamp)}
	doc := wire.AuditFunctionOf(f, nil)
	if r.Secret != "" {
		doc.HasSecret, doc.Secret = true, dispatcher.Redacted
	}
	return doc
}
