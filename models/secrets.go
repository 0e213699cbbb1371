package models

import (
	"context"
	"errors"
	"fmt"

	"github.com/dispatcherhq/dispatcher"
)

// A function's secret and headers are stored as envelopes of the
// encryption package ("enc:v1:<key id>:<data>") bound to the row and
// column they belong to, so an envelope copied into another row does not
// decrypt there. Values stored before a key was configured stay in clear
// text, and read as they are, until RotateSecrets encrypts them.

func secretContext(functionID string) string  { return "functions/" + functionID + "/secret" }
func headersContext(functionID string) string { return "functions/" + functionID + "/headers" }

// rotateBatch is how many functions RotateSecrets reads at a time.
const rotateBatch = 100

// RotateOptions say how RotateSecrets runs.
type RotateOptions struct {
	// DryRun reads and decrypts every function, counting what would be
	// encrypted again, and writes nothing.
	DryRun bool
	// Progress, when set, is called after every batch with the counts so
	// far.
	Progress func(RotationReport)
}

// RotationReport counts what RotateSecrets did.
type RotationReport struct {
	Functions int // read
	Rotated   int // encrypted again with the current key (with DryRun: would be)
	Current   int // already under the current key, or with nothing secret
	// Changed were updated by someone else between the read and the
	// write, and left as that update wrote them (under the current key
	// unless it came from a process without it); run again to be sure.
	Changed int
}

// RotateSecrets encrypts with the current key every function secret and
// header set, of every tenant, that is stored in clear text or under an
// older key, one row at a time; processes may keep running meanwhile. It
// fails, naming the function, on a value none of the ring's keys
// decrypts, and without a key ring. Configuration caches need no refresh:
// what the values decrypt to does not change.
func (s *Store) RotateSecrets(ctx context.Context, o RotateOptions) (RotationReport, error) {
	var rep RotationReport
	if s.keys == nil {
		return rep, errors.New("DISPATCHER_ENCRYPTION_KEY is not set: there is no key to encrypt with")
	}
	// Raw SQL: every statement through the models is scoped to one tenant.
	var tenants []string
	if err := s.db.WithContext(ctx).Raw("SELECT DISTINCT tenant FROM functions ORDER BY tenant").Scan(&tenants).Error; err != nil {
		return rep, translate(err, "")
	}
	for _, tenant := range tenants {
		if err := s.rotateTenant(dispatcher.WithCaller(ctx, dispatcher.Caller{Subject: dispatcher.CallerService, Tenant: tenant}), o, &rep); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// rotateTenant rotates the functions of ctx's tenant, counting in rep.
func (s *Store) rotateTenant(ctx context.Context, o RotateOptions, rep *RotationReport) error {
	last := ""
	for {
		var rows []functionRow
		err := s.db.WithContext(ctx).Where("id > ?", last).Order("id").Limit(rotateBatch).Find(&rows).Error
		if err != nil {
			return translate(err, "")
		}
		for _, r := range rows {
			rep.Functions++
			changed, err := s.rotateFunction(ctx, r, o.DryRun)
			switch {
			case err != nil:
				return err
			case changed == rotateNone:
				rep.Current++
			case changed == rotateDone:
				rep.Rotated++
			case changed == rotateLost:
				rep.Changed++
			}
		}
		if o.Progress != nil && len(rows) > 0 {
			o.Progress(*rep)
		}
		if len(rows) < rotateBatch {
			return nil
		}
		last = rows[len(rows)-1].ID
	}
}

type rotateOutcome int

const (
	rotateNone rotateOutcome = iota // nothing to do
	rotateDone                      // encrypted again
	rotateLost                      // the row changed meanwhile
)

// rotateFunction encrypts r's secret and headers again when either needs
// it. The update only applies while both columns still hold what was
// read: a concurrent edit is never overwritten with older values.
func (s *Store) rotateFunction(ctx context.Context, r functionRow, dryRun bool) (rotateOutcome, error) {
	headers := ""
	if r.Headers != nil {
		headers = *r.Headers
	}
	// Decrypted first, also those under the current key: the ring must
	// open every value (a dry run says it does).
	f, err := toFunction(r, s.keys)
	if err != nil {
		return rotateNone, err
	}
	if !s.keys.NeedsRotation(r.Secret) && !s.keys.NeedsRotation(headers) {
		return rotateNone, nil
	}
	if dryRun {
		return rotateDone, nil
	}
	updated, err := toDBFunction(f, s.keys)
	if err != nil {
		return rotateNone, fmt.Errorf("function %s: %w", r.ID, err)
	}
	q := s.db.WithContext(ctx).Model(&functionRow{}).Where("id = ? AND secret = ?", r.ID, r.Secret)
	if r.Headers == nil {
		q = q.Where("headers IS NULL")
	} else {
		q = q.Where("headers = ?", *r.Headers)
	}
	res := q.Updates(map[string]any{"secret": updated.Secret, "headers": updated.Headers})
	if res.Error != nil {
		return rotateNone, translate(res.Error, "")
	}
	if res.RowsAffected == 0 {
		return rotateLost, nil
	}
	return rotateDone, nil
}
