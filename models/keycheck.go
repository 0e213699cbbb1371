package models

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
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
//
// It fails too when the store knows keys and the ring has none of them
// (only new ids): such a process would write what no other reads, and
// none of what they wrote. A new key is rolled out beside one the others
// have, appended first (docs/operations.md, "Rotating the key"). Before,
// a process given another key (a wrong Secret) started, said it was
// ready, and its dispatches' histories were unreadable for good.
func (s *Store) CheckKeys(ctx context.Context) error {
	var known []string
	if err := s.db.WithContext(ctx).Raw("SELECT id FROM encryption_key_checks ORDER BY id").Scan(&known).Error; err != nil {
		return translate(err, "")
	}
	if s.keys == nil {
		if len(known) > 0 {
			return fmt.Errorf("DISPATCHER_ENCRYPTION_KEY is not set, but other processes encrypt this store, with the keys %s: give every process the same value (a Secret not mounted?)", strings.Join(known, ", "))
		}
		return nil
	}
	if len(known) > 0 && !slices.ContainsFunc(s.keys.IDs(), func(id string) bool { return slices.Contains(known, id) }) {
		return fmt.Errorf("DISPATCHER_ENCRYPTION_KEY holds none of the keys other processes encrypt this store with (%s), only %s: it could read nothing they wrote, nor they what it writes. "+
			"Give every process the same keys; a new key is added beside one they have, appended first (docs/operations.md, \"Rotating the key\"). "+
			"Only if those keys are lost for good (what they encrypted stays unreadable): DELETE FROM encryption_key_checks, then give the functions their secrets again",
			strings.Join(known, ", "), strings.Join(s.keys.IDs(), ", "))
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
		if !found && id == s.keys.Current() && !s.anyCheck(ctx) {
			return fmt.Errorf("DISPATCHER_ENCRYPTION_KEY: no process has run with a key yet (none stored a check value), so none could read what rotate encrypts: start them with the key first, then rotate")
		}
		if !found && id == s.keys.Current() {
			return fmt.Errorf("DISPATCHER_ENCRYPTION_KEY: no process has the key %q yet (none stored its check value), so none could read what it encrypts: roll it out first, appended, then first (docs/operations.md, \"Rotating the key\")", id)
		}
	}
	return nil
}

// anyCheck reports whether a process stored a check value (ran with a
// key); an error reads as yes.
func (s *Store) anyCheck(ctx context.Context) bool {
	var n int64
	err := s.db.WithContext(ctx).Raw("SELECT COUNT(*) FROM encryption_key_checks").Scan(&n).Error
	return err != nil || n > 0
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
