package models

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
)

// keyCheckAAD binds a key's check value to its use.
var keyCheckAAD = []byte("dispatcher key check v1")

// CheckKeys fails when a key of the store's ring is not the key the other
// processes have under its id: it does not open the check value the first
// process with that id sealed, which this one stores when it is that
// first. Such a process would write payloads and secrets no other reads,
// and read none of theirs (a dispatch it took failed, "does not decrypt").
// Without a ring, it fails when other processes encrypt the store (they
// stored check values): such a process, a Secret not mounted, would store
// the secrets it is given in clear text, and read none of theirs.
func (s *Store) CheckKeys(ctx context.Context) error {
	if s.keys == nil {
		var ids []string
		if err := s.db.WithContext(ctx).Raw("SELECT id FROM encryption_key_checks ORDER BY id").Scan(&ids).Error; err != nil {
			return translate(err, "")
		}
		if len(ids) > 0 {
			return fmt.Errorf("DISPATCHER_ENCRYPTION_KEY is not set, but other processes encrypt this store, with the keys %s: give every process the same value (a Secret not mounted?)", strings.Join(ids, ", "))
		}
		return nil
	}
	for _, id := range s.keys.IDs() {
		sealed, err := s.keys.SealWith(id, []byte(id), keyCheckAAD)
		if err != nil {
			return err
		}
		if err := s.db.WithContext(ctx).Exec("INSERT INTO encryption_key_checks (id, sealed) VALUES (?, ?) ON CONFLICT (id) DO NOTHING",
			id, base64.StdEncoding.EncodeToString(sealed)).Error; err != nil {
			return translate(err, "")
		}
		if _, err := s.openCheck(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// VerifyKeys is CheckKeys for a process that writes under the store's
// current key what the others must read (encryption rotate), writing
// nothing: it fails also when no process stored a check value for the
// current key, that is, none has it. Before, rotate re-encrypted every
// secret with a key the running processes did not have (a new one, or
// other material under an id they had), and every read of a function
// failed until it was rotated back.
func (s *Store) VerifyKeys(ctx context.Context) error {
	for _, id := range s.keys.IDs() {
		found, err := s.openCheck(ctx, id)
		if err != nil {
			return err
		}
		if !found && id == s.keys.Current() {
			return fmt.Errorf("DISPATCHER_ENCRYPTION_KEY: no process has the key %q yet (none stored its check value), so none could read what it encrypts: roll it out first, appended, then first (docs/operations.md, \"Rotating the key\")", id)
		}
	}
	return nil
}

// openCheck opens the check value stored for key id, and reports whether
// there is one.
func (s *Store) openCheck(ctx context.Context, id string) (bool, error) {
	var stored []string
	if err := s.db.WithContext(ctx).Raw("SELECT sealed FROM encryption_key_checks WHERE id = ?", id).Scan(&stored).Error; err != nil {
		return false, translate(err, "")
	}
	if len(stored) == 0 {
		return false, nil
	}
	raw, err := base64.StdEncoding.DecodeString(stored[0])
	if err == nil {
		_, err = s.keys.Open(id, raw, keyCheckAAD)
	}
	if err != nil {
		return true, fmt.Errorf("DISPATCHER_ENCRYPTION_KEY: key %q is not the key %q the other processes have (it does not open the check value the first of them stored); give every process the same keys, and each key an id of its own", id, id)
	}
	return true, nil
}
