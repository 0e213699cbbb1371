package models

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/wire"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// apiKeyRow is a row of the api_keys table. The table is not one of
// tenantTables: authentication looks a key up by its hash before there is
// a caller, across tenants, so the other methods scope to the caller's
// tenant themselves.
type apiKeyRow struct {
	ID                string `gorm:"primaryKey"`
	Tenant            string
	Name              string
	KeyHash           string
	Permissions       string  // JSON array
	EventTypes        *string // JSON array; NULL: any type
	ExpiresAt         *int64
	CreatedBy         string
	CreationTimestamp int64
	LastUsedAt        *int64
	RevokedAt         *int64
}

func (apiKeyRow) TableName() string { return "api_keys" }

func toDBAPIKey(k dispatcher.APIKey) (apiKeyRow, error) {
	perms, err := json.Marshal(k.Permissions)
	if err != nil {
		return apiKeyRow{}, err
	}
	row := apiKeyRow{ID: k.ID, Tenant: k.Tenant, Name: k.Name, KeyHash: k.Hash, Permissions: string(perms),
		ExpiresAt: optionalMillis(k.Expires), CreatedBy: truncate(k.CreatedBy, 256), CreationTimestamp: millis(k.Created),
		LastUsedAt: optionalMillis(k.LastUsed), RevokedAt: optionalMillis(k.Revoked)}
	if k.EventTypes != nil {
		if row.EventTypes, err = jsonText(k.EventTypes); err != nil {
			return apiKeyRow{}, err
		}
	}
	return row, nil
}

func toAPIKey(r apiKeyRow) (dispatcher.APIKey, error) {
	k := dispatcher.APIKey{ID: r.ID, Tenant: r.Tenant, Name: r.Name, Hash: r.KeyHash, CreatedBy: r.CreatedBy,
		Created: fromMillis(r.CreationTimestamp), Expires: fromOptionalMillis(r.ExpiresAt),
		LastUsed: fromOptionalMillis(r.LastUsedAt), Revoked: fromOptionalMillis(r.RevokedAt)}
	if err := json.Unmarshal([]byte(r.Permissions), &k.Permissions); err != nil {
		return k, fmt.Errorf("API key %s: permissions: %w", r.ID, err)
	}
	if r.EventTypes != nil {
		if err := json.Unmarshal([]byte(*r.EventTypes), &k.EventTypes); err != nil {
			return k, fmt.Errorf("API key %s: event types: %w", r.ID, err)
		}
		if k.EventTypes == nil {
			k.EventTypes = []string{} // "[]" stays "no type", not "any"
		}
	}
	return k, nil
}

// CreateAPIKey stores k, which carries the hash of its key, in the
// caller's tenant and as created by the caller (dispatcher.CallerOf),
// giving it an id. It returns a validation error, or ECONFLICT in the
// astronomically unlikely case of a hash already stored.
//
// API keys are not configuration: creating or revoking one leaves the
// configuration version, and so the workers' caches, alone.
func (s *Store) CreateAPIKey(ctx context.Context, k *dispatcher.APIKey) error {
	now := s.now()
	caller := dispatcher.CallerOf(ctx)
	k.ID, k.Created, k.Tenant, k.CreatedBy = dispatcher.NewID(now), now, caller.Tenant, caller.Subject
	k.LastUsed, k.Revoked = time.Time{}, time.Time{}
	if err := k.Validate(now); err != nil {
		return err
	}
	row, err := toDBAPIKey(*k)
	if err != nil {
		return err
	}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := madeByLiveKey(tx, caller); err != nil {
			return err
		}
		if tx.Dialector.Name() == "postgres" {
			// The creations of a tenant's keys take turns, so that the
			// count holds until the key is made (SQLite's writes do).
			if err := tx.Exec("SELECT pg_advisory_xact_lock(hashtext(?))", "api_keys:"+caller.Tenant).Error; err != nil {
				return err
			}
		}
		// Expired keys count, as a list shows them, until revoked.
		var kept int64
		if err := tx.Model(&apiKeyRow{}).Where("tenant = ? AND revoked_at IS NULL", caller.Tenant).Count(&kept).Error; err != nil {
			return err
		}
		if kept >= int64(countLimits.apiKeys) {
			return dispatcher.Errorf(dispatcher.ESTATE, "this tenant already has %d API keys that are not revoked (expired ones count), the most it may have: revoke one before creating another", countLimits.apiKeys)
		}
		if err := tx.Create(&row).Error; err != nil {
			return translate(err, "key: generate another key")
		}
		// The audit trail never holds the key, nor its hash.
		return s.audit(ctx, tx, dispatcher.AuditAPIKeyCreate, k.ID, nil, wire.FromAPIKey(*k, ""))
	})
	return translate(err, "")
}

// madeByLiveKey checks, when caller is an API key, that it is still not
// revoked, and locks its row until tx ends (SQLite's write lock does as
// much). The request checked the key when it began; a revocation since
// would miss the key made meanwhile, which was not committed when it
// looked for the keys the revoked one made. Now a revocation waits for
// the key being made and finds it, or comes first and the key is not
// made. The lock is exclusive: shared, a leaked key making keys without
// pause would hold it without pause, and its revocation would wait.
func madeByLiveKey(tx *gorm.DB, caller dispatcher.Caller) error {
	id, ok := strings.CutPrefix(caller.Subject, dispatcher.APIKeySubject(""))
	if !ok {
		return nil
	}
	var live []string
	err := tx.Model(&apiKeyRow{}).Clauses(clause.Locking{Strength: "NO KEY UPDATE"}).
		Where("id = ? AND tenant = ? AND revoked_at IS NULL", id, caller.Tenant).Pluck("id", &live).Error
	if err != nil {
		return err
	}
	if len(live) == 0 {
		return dispatcher.Errorf(dispatcher.ESTATE, "the API key making it (%s) was revoked meanwhile", id)
	}
	return nil
}

// FindAPIKeys returns the caller's tenant's API keys that are not
// revoked, oldest first; expired ones included, so their owners see
// them.
func (s *Store) FindAPIKeys(ctx context.Context) ([]dispatcher.APIKey, error) {
	var rows []apiKeyRow
	err := s.db.WithContext(ctx).Where("tenant = ? AND revoked_at IS NULL", dispatcher.CallerOf(ctx).Tenant).
		Order("creation_timestamp, id").Find(&rows).Error
	if err != nil {
		return nil, translate(err, "")
	}
	out := make([]dispatcher.APIKey, len(rows))
	for i, r := range rows {
		if out[i], err = toAPIKey(r); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// FindAPIKeyByHash returns the key whose hash is hash, in whichever tenant,
// revoked and expired ones included (the caller tells them apart), or
// ENOTFOUND. It is what authentication asks on every request that
// presents an API key: an indexed lookup, and no cache, so that a
// revocation holds from the next request on, in every process.
func (s *Store) FindAPIKeyByHash(ctx context.Context, hash string) (dispatcher.APIKey, error) {
	var row apiKeyRow
	if err := s.db.WithContext(ctx).Where("key_hash = ?", hash).Take(&row).Error; err != nil {
		return dispatcher.APIKey{}, translate(err, "")
	}
	return toAPIKey(row)
}

// RevokeAPIKey revokes the caller's tenant's key with id at once. It
// returns ENOTFOUND for a key of another tenant, an unknown one, or one
// already revoked.
func (s *Store) RevokeAPIKey(ctx context.Context, id string) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		const live = "id = ? AND tenant = ? AND revoked_at IS NULL"
		tenant := dispatcher.CallerOf(ctx).Tenant
		// The keys it made go with it, and theirs: a leaked key must not
		// leave keys of its own behind. Every row first, the audit trail
		// after: a key being made locks its maker's row and then the
		// tenant's audit chain, so a revocation that held the chain while
		// it waited for a maker's row would deadlock with it.
		type revoked struct {
			id     string
			before any
		}
		var done []revoked
		for queue := []string{id}; len(queue) > 0; queue = queue[1:] {
			id := queue[0]
			var rows []apiKeyRow // for the audit trail
			if err := tx.Where(live, id, tenant).Find(&rows).Error; err != nil {
				return err
			}
			res := tx.Model(&apiKeyRow{}).Where(live, id, tenant).Update("revoked_at", millis(s.now()))
			if err := deleted(res, "API key", id); err != nil {
				if len(done) > 0 && res.Error == nil {
					continue // a key it made, revoked meanwhile on its own
				}
				var gone int64
				if res.Error == nil && tx.Model(&apiKeyRow{}).Where("id = ? AND tenant = ? AND revoked_at IS NOT NULL", id, tenant).Count(&gone).Error == nil && gone > 0 {
					// Before, "no API key with id …", of a key the audit
					// trail shows revoked.
					return dispatcher.Errorf(dispatcher.ENOTFOUND, "API key %s was revoked already", id)
				}
				return err
			}
			r := revoked{id: id}
			if len(rows) == 1 {
				k, err := toAPIKey(rows[0])
				if err != nil {
					return err
				}
				r.before = wire.FromAPIKey(k, "")
			}
			done = append(done, r)
			var made []string
			if err := tx.Model(&apiKeyRow{}).Where("tenant = ? AND created_by = ? AND revoked_at IS NULL", tenant, dispatcher.APIKeySubject(id)).
				Order("id").Pluck("id", &made).Error; err != nil {
				return err
			}
			queue = append(queue, made...)
		}
		for _, r := range done {
			if err := s.audit(ctx, tx, dispatcher.AuditAPIKeyDelete, r.id, r.before, nil); err != nil {
				return err
			}
		}
		return nil
	})
	return translate(err, "")
}

// TouchAPIKey records that the key with id was used at at, unless a use
// less than dispatcher.APIKeyUseResolution before at is recorded already:
// of the processes and requests that race to record the same minute, one
// writes.
func (s *Store) TouchAPIKey(ctx context.Context, id string, at time.Time) error {
	err := s.db.WithContext(ctx).Model(&apiKeyRow{}).
		Where("id = ? AND (last_used_at IS NULL OR last_used_at <= ?)", id, millis(at.Add(-dispatcher.APIKeyUseResolution))).
		Update("last_used_at", millis(at)).Error
	return translate(err, "")
}

func optionalMillis(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	ms := millis(t)
	return &ms
}

func fromOptionalMillis(ms *int64) time.Time {
	if ms == nil {
		return time.Time{}
	}
	return fromMillis(*ms)
}
