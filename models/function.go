package models

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/encryption"
	"github.com/dispatcherhq/dispatcher/wire"
	"gorm.io/gorm"
)

// functionRow is a row of the functions table.
type functionRow struct {
	ID                string `gorm:"primaryKey"`
	Tenant            string // set and scoped by tenancy
	Name              string
	Kind              string
	URL               string
	TimeoutMs         int64
	Secret            string
	Headers           *string
	TaskQueue         string
	Flow              *string // JSON (flowDoc); NULL: no flow control
	CreationTimestamp int64
	UpdateTimestamp   int64
}

func (functionRow) TableName() string { return "functions" }

// toDBFunction converts f to its row, its secret and headers encrypted
// with keys (see secrets.go; nil keys: in clear text).
func toDBFunction(f dispatcher.Function, keys *encryption.KeyRing) (functionRow, error) {
	row := functionRow{ID: f.ID, Name: f.Name, Kind: f.Kind, URL: f.URL, TimeoutMs: f.Timeout.Milliseconds(),
		TaskQueue: f.TaskQueue, Flow: flowText(f.Flow), CreationTimestamp: millis(f.Created), UpdateTimestamp: millis(f.Updated)}
	if encryption.IsEnvelope(f.Secret) {
		// Stored in clear text (no key) it would be read as encrypted,
		// and every read of the tenant's functions would fail.
		return row, dispatcher.Errorf(dispatcher.EINVALID, "secret: must not begin with %q, which marks a secret the dispatcher encrypted", "enc:v1:")
	}
	var err error
	if row.Secret, err = keys.EncryptString(f.Secret, secretContext(f.ID)); err != nil {
		return row, err
	}
	if len(f.Headers) > 0 {
		h, err := jsonText(f.Headers)
		if err != nil {
			return row, err
		}
		if *h, err = keys.EncryptString(*h, headersContext(f.ID)); err != nil {
			return row, err
		}
		row.Headers = h
	}
	return row, nil
}

// undecryptable is the error of a function's field that this process's
// keys do not open: unavailable (503), naming the key and what to do, as a
// dispatch's history is. Before, an internal error (500) for the function
// and for every list it was in. It wraps err (encryption.ErrUnknownKey…).
func undecryptable(id, field string, err error) error {
	return &dispatcher.Caused{Err: dispatcher.Errorf(dispatcher.EUNAVAILABLE,
		"function %s: %s: %v; give this process the keys the others have (DISPATCHER_ENCRYPTION_KEY)", id, field, err), Cause: err}
}

// toFunction converts a row to the function, decrypting its secret and
// headers with keys; stored in clear text, they read as they are.
func toFunction(r functionRow, keys *encryption.KeyRing) (dispatcher.Function, error) {
	f := dispatcher.Function{ID: r.ID, Name: r.Name, Kind: r.Kind, URL: r.URL, Timeout: time.Duration(r.TimeoutMs) * time.Millisecond,
		TaskQueue: r.TaskQueue, Flow: flow(r.Flow), Created: fromMillis(r.CreationTimestamp), Updated: fromMillis(r.UpdateTimestamp)}
	var err error
	if f.Secret, err = keys.DecryptString(r.Secret, secretContext(r.ID)); err != nil {
		return f, undecryptable(r.ID, "secret", err)
	}
	if r.Headers != nil {
		h, err := keys.DecryptString(*r.Headers, headersContext(r.ID))
		if err != nil {
			return f, undecryptable(r.ID, "headers", err)
		}
		if err := json.Unmarshal([]byte(h), &f.Headers); err != nil {
			return f, fmt.Errorf("function %s: headers: %w", r.ID, err)
		}
	}
	return f, nil
}

func functionConflict(name string) string {
	return fmt.Sprintf("name: a function named %q already exists", name)
}

// CreateFunction stores f, giving it an id. It returns ECONFLICT for a
// taken name or a validation error.
func (s *Store) CreateFunction(ctx context.Context, f *dispatcher.Function) error {
	now := s.now()
	f.ID, f.Created, f.Updated = dispatcher.NewID(now), now, now
	if err := f.Validate(); err != nil {
		return err
	}
	row, err := toDBFunction(*f, s.keys)
	if err != nil {
		return err
	}
	return s.tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Create(&row).Error; err != nil {
			return translate(err, functionConflict(f.Name))
		}
		if err := checkCount(tx, &functionRow{}, countLimits.functions, "functions"); err != nil {
			return err
		}
		return s.audit(ctx, tx, dispatcher.AuditFunctionCreate, f.ID, nil, wire.AuditFunctionOf(*f, nil))
	})
}

// FindFunction returns the function with id, or ENOTFOUND.
func (s *Store) FindFunction(ctx context.Context, id string) (dispatcher.Function, error) {
	return s.findFunction(ctx, "id = ?", id)
}

// FindFunctionByName returns the function named name, or ENOTFOUND.
func (s *Store) FindFunctionByName(ctx context.Context, name string) (dispatcher.Function, error) {
	return s.findFunction(ctx, "name = ?", name)
}

func (s *Store) findFunction(ctx context.Context, where, arg string) (dispatcher.Function, error) {
	var row functionRow
	if err := s.db.WithContext(ctx).Where(where, arg).Take(&row).Error; err != nil {
		return dispatcher.Function{}, unknown(err, "function with %s %s", strings.TrimSuffix(where, " = ?"), arg)
	}
	return toFunction(row, s.keys)
}

// FunctionNames returns the id and name of every function, by name, and
// nothing else (see TemplateNames).
func (s *Store) FunctionNames(ctx context.Context) ([]dispatcher.Function, error) {
	var rows []functionRow
	if err := s.db.WithContext(ctx).Select("id", "name").Order("name").Find(&rows).Error; err != nil {
		return nil, translate(err, "")
	}
	out := make([]dispatcher.Function, len(rows))
	for i, r := range rows {
		out[i] = dispatcher.Function{ID: r.ID, Name: r.Name}
	}
	return out, nil
}

// FindFunctions returns the functions with ids, in that order; an id with
// no function (deleted since) is left out.
func (s *Store) FindFunctions(ctx context.Context, ids []string) ([]dispatcher.Function, error) {
	var rows []functionRow
	if err := s.db.WithContext(ctx).Where("id IN ?", ids).Find(&rows).Error; err != nil {
		return nil, translate(err, "")
	}
	return inOrder(ids, rows, func(r functionRow) (string, dispatcher.Function, error) {
		f, err := toFunction(r, s.keys)
		return r.ID, f, err
	})
}

// UpdateFunction applies u to the function with id and returns its new
// updateTimestamp. A rename is refused with EINUSE while task actions use
// the old name. A non-zero ifUpdated applies u only to the function as it
// was last updated then, else ECHANGED.
func (s *Store) UpdateFunction(ctx context.Context, id string, u dispatcher.FunctionUpdate, ifUpdated time.Time) (time.Time, error) {
	var at time.Time
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var row functionRow
		if err := tx.Where("id = ?", id).Take(&row).Error; err != nil {
			return unknown(err, "function with id %s", id)
		}
		f, err := toFunction(row, s.keys)
		if err != nil {
			return err
		}
		if err := unchanged("function", id, f.Updated, ifUpdated); err != nil {
			return err
		}
		old := f
		if err := u.Apply(&f); err != nil {
			return err
		}
		if f.Name != row.Name {
			if err := inUse(tx, "function_name = ?", row.Name, "function"); err != nil {
				return err
			}
		}
		f.Updated = s.later(old.Updated)
		updated, err := toDBFunction(f, s.keys)
		if err != nil {
			return err
		}
		if err := tx.Model(&functionRow{}).Where("id = ?", id).Select("*").Updates(&updated).Error; err != nil {
			return translate(err, functionConflict(f.Name))
		}
		at = f.Updated
		return s.audit(ctx, tx, dispatcher.AuditFunctionUpdate, id, wire.AuditFunctionOf(old, nil), wire.AuditFunctionOf(f, &old))
	})
	return at, err
}

// DeleteFunction deletes the function with id. It returns EINUSE, naming
// the dispatchers, while a task action still uses it, and ECHANGED when
// ifUpdated is set and the function is no longer at it.
func (s *Store) DeleteFunction(ctx context.Context, id string, ifUpdated time.Time) error {
	return s.tx(ctx, func(tx *gorm.DB) error {
		var row functionRow
		if err := tx.Where("id = ?", id).Take(&row).Error; err != nil {
			return unknown(err, "function with id %s", id)
		}
		if err := unchanged("function", id, fromMillis(row.UpdateTimestamp), ifUpdated); err != nil {
			return err
		}
		if err := inUse(tx, "function_name = ?", row.Name, "function"); err != nil {
			return err
		}
		if err := deleted(tx.Where("id = ?", id).Delete(&functionRow{}), "function", id); err != nil {
			return err
		}
		return s.audit(ctx, tx, dispatcher.AuditFunctionDelete, id, s.auditFunctionRow(row), nil)
	})
}
