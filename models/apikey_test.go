package models_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/models"
)

// caller returns a context acting for subject in tenant.
func caller(tenant, subject string) context.Context {
	return dispatcher.WithCaller(context.Background(), dispatcher.Caller{Tenant: tenant, Subject: subject})
}

func newKey(t *testing.T, name string, perms ...string) (dispatcher.APIKey, string) {
	t.Helper()
	secret, hash := dispatcher.NewAPIKey()
	return dispatcher.APIKey{Name: name, Permissions: perms, Hash: hash}, secret
}

func TestAPIKeys(t *testing.T) {
	stores(t, func(t *testing.T, s *models.Store) {
		acme, globex := caller("acme", "ann"), caller("globex", "gus")
		k, secret := newKey(t, "billing producer", "CREATE_EVENTS", "VIEW_EXECUTIONS", "CREATE_EVENTS")
		k.EventTypes = []string{"invoice_paid", "invoice_due", "invoice_paid"}
		k.Expires = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		if err := s.CreateAPIKey(acme, &k); err != nil {
			t.Fatal(err)
		}
		if !dispatcher.ValidID(k.ID) || k.Tenant != "acme" || k.CreatedBy != "ann" || k.Created.IsZero() {
			t.Fatalf("created %+v: want an id, tenant acme, created by ann, a creation time", k)
		}

		got, err := s.FindAPIKeyByHash(context.Background(), dispatcher.APIKeyHash(secret))
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != k.ID || got.Tenant != "acme" || got.Name != "billing producer" || got.CreatedBy != "ann" ||
			!slices.Equal(got.Permissions, []string{"CREATE_EVENTS", "VIEW_EXECUTIONS"}) ||
			!slices.Equal(got.EventTypes, []string{"invoice_due", "invoice_paid"}) ||
			!got.Expires.Equal(k.Expires) || !got.Created.Equal(k.Created) || !got.LastUsed.IsZero() || !got.Revoked.IsZero() {
			t.Fatalf("by hash = %+v, want %+v with sorted, deduplicated permissions and event types", got, k)
		}
		if _, err := s.FindAPIKeyByHash(context.Background(), dispatcher.APIKeyHash(secret+"x")); dispatcher.ErrorCode(err) != dispatcher.ENOTFOUND {
			t.Fatalf("unknown hash: %v, want ENOTFOUND", err)
		}

		open, _ := newKey(t, "automation", "VIEW_DISPATCHERS")
		if err := s.CreateAPIKey(acme, &open); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.FindAPIKeyByHash(context.Background(), open.Hash); got.EventTypes != nil || !got.Expires.IsZero() {
			t.Fatalf("a key without event types or expiry came back as %+v", got)
		}

		ids := func(ctx context.Context) []string {
			t.Helper()
			keys, err := s.FindAPIKeys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, k := range keys {
				out = append(out, k.ID)
			}
			return out
		}
		if got := ids(acme); !slices.Equal(got, []string{k.ID, open.ID}) {
			t.Fatalf("acme lists %v, want %v", got, []string{k.ID, open.ID})
		}
		if got := ids(globex); len(got) != 0 {
			t.Fatalf("globex lists acme's keys %v", got)
		}

		if err := s.RevokeAPIKey(globex, k.ID); dispatcher.ErrorCode(err) != dispatcher.ENOTFOUND {
			t.Fatalf("globex revoking acme's key: %v, want ENOTFOUND", err)
		}
		if err := s.RevokeAPIKey(acme, k.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeAPIKey(acme, k.ID); dispatcher.ErrorCode(err) != dispatcher.ENOTFOUND || dispatcher.ErrorMessage(err) != "API key "+k.ID+" was revoked already" {
			t.Fatalf("revoking twice: %v, want ENOTFOUND saying it was revoked already", err)
		}
		if got := ids(acme); !slices.Equal(got, []string{open.ID}) {
			t.Fatalf("after revoking, acme lists %v, want %v", got, []string{open.ID})
		}
		if got, err := s.FindAPIKeyByHash(context.Background(), k.Hash); err != nil || got.Revoked.IsZero() {
			t.Fatalf("a revoked key by hash = %+v, %v; want it, revoked", got, err)
		}
	})
}

// Revoking a key revokes the keys it made, and theirs: a leaked key must
// not leave keys of its own behind. Before, they kept working.
func TestAPIKeyRevokedWithWhatItMade(t *testing.T) {
	stores(t, func(t *testing.T, s *models.Store) {
		ann := caller("acme", "ann")
		parent, _ := newKey(t, "automation", "CREATE_APIKEYS")
		if err := s.CreateAPIKey(ann, &parent); err != nil {
			t.Fatal(err)
		}
		child, _ := newKey(t, "made by automation", "CREATE_APIKEYS")
		if err := s.CreateAPIKey(caller("acme", dispatcher.APIKeySubject(parent.ID)), &child); err != nil {
			t.Fatal(err)
		}
		grandchild, _ := newKey(t, "made by that", "VIEW_DISPATCHERS")
		if err := s.CreateAPIKey(caller("acme", dispatcher.APIKeySubject(child.ID)), &grandchild); err != nil {
			t.Fatal(err)
		}
		other, _ := newKey(t, "ann's own", "VIEW_DISPATCHERS")
		if err := s.CreateAPIKey(ann, &other); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeAPIKey(ann, parent.ID); err != nil {
			t.Fatal(err)
		}
		for _, k := range []dispatcher.APIKey{parent, child, grandchild, other} {
			got, err := s.FindAPIKeyByHash(context.Background(), k.Hash)
			if err != nil {
				t.Fatal(err)
			}
			if revoked, want := !got.Revoked.IsZero(), k.ID != other.ID; revoked != want {
				t.Errorf("%s: revoked = %v, want %v", k.Name, revoked, want)
			}
		}
	})
}

// A key is made by a key only while that key lives. The request checks
// the key when it begins: before, a revocation in between made the key
// all the same, and a key made while the revocation looked for the
// revoked key's keys outlived it (4 in 455 made by 4 callers at once).
func TestAPIKeyNotMadeByRevokedKey(t *testing.T) {
	stores(t, func(t *testing.T, s *models.Store) {
		ann := caller("acme", "ann")
		parent, _ := newKey(t, "leaked", "CREATE_APIKEYS")
		if err := s.CreateAPIKey(ann, &parent); err != nil {
			t.Fatal(err)
		}
		byParent := caller("acme", dispatcher.APIKeySubject(parent.ID))
		makers := []context.Context{byParent, byParent}
		for range 2 {
			child, _ := newKey(t, "made by leaked", "CREATE_APIKEYS")
			if err := s.CreateAPIKey(byParent, &child); err != nil {
				t.Fatal(err)
			}
			makers = append(makers, caller("acme", dispatcher.APIKeySubject(child.ID)))
		}

		// Four callers make keys with it and the keys it made while it is
		// revoked. Before the revocation took every row first, it held
		// the audit chain while it waited for a child's row, and a child
		// making a key held its row while it waited for the chain:
		// PostgreSQL found a deadlock and the revocation failed.
		var (
			made     sync.Map // id → hash
			started  sync.WaitGroup
			revoking atomic.Bool
			done     atomic.Bool
			errs     = make(chan error, 4)
		)
		started.Add(len(makers))
		for _, maker := range makers {
			go func() {
				defer started.Done()
				for first := true; first || !done.Load(); first = false {
					k, _ := newKey(t, "made meanwhile", "VIEW_DISPATCHERS")
					err := s.CreateAPIKey(maker, &k)
					switch {
					case err == nil:
						made.Store(k.ID, k.Hash)
					case dispatcher.ErrorCode(err) != dispatcher.ESTATE || !revoking.Load():
						errs <- err
						return
					}
					if first {
						errs <- nil // started
					}
				}
			}()
		}
		for range 4 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		revoking.Store(true)
		if err := s.RevokeAPIKey(ann, parent.ID); err != nil {
			t.Fatal(err)
		}
		done.Store(true)
		started.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("making a key with the key being revoked: %v, want it made or refused as revoked", err)
		}
		n := 0
		made.Range(func(id, hash any) bool {
			n++
			if got, err := s.FindAPIKeyByHash(context.Background(), hash.(string)); err != nil || got.Revoked.IsZero() {
				t.Errorf("key %s, made by the revoked key, outlives it (%v)", id, err)
			}
			return true
		})
		if n == 0 {
			t.Fatal("no key was made before the revocation")
		}
		k, _ := newKey(t, "made after", "VIEW_DISPATCHERS")
		if err := s.CreateAPIKey(byParent, &k); dispatcher.ErrorCode(err) != dispatcher.ESTATE || !strings.Contains(err.Error(), "revoked") {
			t.Fatalf("a key made by a revoked key: %v, want ESTATE saying it was revoked", err)
		}
	})
}

func TestAPIKeyTouchedOncePerMinute(t *testing.T) {
	stores(t, func(t *testing.T, s *models.Store) {
		k, _ := newKey(t, "producer", "CREATE_EVENTS")
		if err := s.CreateAPIKey(caller("", "admin"), &k); err != nil {
			t.Fatal(err)
		}
		t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		for _, step := range []struct {
			at, want time.Time
		}{
			{t0, t0},                       // never used: written
			{t0.Add(59 * time.Second), t0}, // within the minute: not written
			{t0.Add(time.Minute), t0.Add(time.Minute)},                     // a minute on: written
			{t0.Add(30 * time.Second), t0.Add(time.Minute)},                // an older use never goes back
			{t0.Add(3 * time.Minute), t0.Add(3 * time.Minute)},             // written
			{t0.Add(3*time.Minute + time.Second), t0.Add(3 * time.Minute)}, // not
		} {
			if err := s.TouchAPIKey(context.Background(), k.ID, step.at); err != nil {
				t.Fatal(err)
			}
			got, err := s.FindAPIKeyByHash(context.Background(), k.Hash)
			if err != nil {
				t.Fatal(err)
			}
			if !got.LastUsed.Equal(step.want) {
				t.Fatalf("touched at %s: last used %s, want %s", step.at, got.LastUsed, step.want)
			}
		}
	})
}

func TestAPIKeyValidation(t *testing.T) {
	stores(t, func(t *testing.T, s *models.Store) {
		past := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
		for _, tc := range []struct {
			name   string
			change func(*dispatcher.APIKey)
			code   string
			field  string
		}{
			{"no name", func(k *dispatcher.APIKey) { k.Name = " " }, dispatcher.EREQUIRED, "name:"},
			{"no permissions", func(k *dispatcher.APIKey) { k.Permissions = nil }, dispatcher.EREQUIRED, "permissions:"},
			{"malformed permission", func(k *dispatcher.APIKey) { k.Permissions = []string{"view dispatchers"} }, dispatcher.EINVALID, "permissions[0]:"},
			{"empty event type list", func(k *dispatcher.APIKey) { k.EventTypes = []string{} }, dispatcher.EINVALID, "eventTypes:"},
			{"empty event type", func(k *dispatcher.APIKey) { k.EventTypes = []string{"a", ""} }, dispatcher.EINVALID, "eventTypes[1]:"},
			{"expired", func(k *dispatcher.APIKey) { k.Expires = past }, dispatcher.EINVALID, "expiresAt:"},
			{"too many event types", func(k *dispatcher.APIKey) {
				for i := range dispatcher.MaxAPIKeyEventTypes + 1 {
					k.EventTypes = append(k.EventTypes, fmt.Sprint("type_", i))
				}
			}, dispatcher.EINVALID, "eventTypes: at most 100 event types, not 101"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				k, _ := newKey(t, "producer", "CREATE_EVENTS")
				tc.change(&k)
				err := s.CreateAPIKey(caller("", "admin"), &k)
				if dispatcher.ErrorCode(err) != tc.code || !strings.HasPrefix(dispatcher.ErrorMessage(err), tc.field) {
					t.Fatalf("got %v, want %s naming %s", err, tc.code, tc.field)
				}
			})
		}

		k, _ := newKey(t, "first", "CREATE_EVENTS")
		if err := s.CreateAPIKey(caller("", "admin"), &k); err != nil {
			t.Fatal(err)
		}
		again := dispatcher.APIKey{Name: "second", Permissions: []string{"CREATE_EVENTS"}, Hash: k.Hash}
		if err := s.CreateAPIKey(caller("", "admin"), &again); dispatcher.ErrorCode(err) != dispatcher.ECONFLICT {
			t.Fatalf("a second key with the same hash: %v, want ECONFLICT", err)
		}
	})
}

// A tenant has at most MaxAPIKeys keys that are not revoked: one more is
// refused until one is revoked, and the other tenants are not counted. Before,
// one tenant's keys grew without bound in the database that all share,
// and every list of them was read whole.
func TestAPIKeysBounded(t *testing.T) {
	stores(t, func(t *testing.T, s *models.Store) {
		models.SetAPIKeyLimit(t, 2)
		acme := caller("acme", "ann")
		create := func(ctx context.Context, name string, expires time.Time) (dispatcher.APIKey, error) {
			k, _ := newKey(t, name, "CREATE_EVENTS")
			k.Expires = expires
			return k, s.CreateAPIKey(ctx, &k)
		}
		first, err := create(acme, "first", time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := create(acme, "second", time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		_, err = create(acme, "third", time.Time{})
		if dispatcher.ErrorCode(err) != dispatcher.ESTATE || !strings.Contains(dispatcher.ErrorMessage(err), "already has 2 API keys that are not revoked") {
			t.Fatalf("a third key: %v, want ESTATE saying the tenant has 2", err)
		}
		if _, err := create(caller("globex", "gus"), "other tenant's", time.Time{}); err != nil {
			t.Fatalf("another tenant's first key: %v", err)
		}
		if err := s.RevokeAPIKey(acme, first.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := create(acme, "third", time.Time{}); err != nil {
			t.Fatalf("a third key once the first is revoked: %v", err)
		}
	})
}

// Concurrent creations of one tenant's keys take turns: the limit holds.
// Before, each counted the others' uncommitted keys as absent (PostgreSQL
// made 16 of a limit of 5).
func TestAPIKeysBoundedConcurrently(t *testing.T) {
	stores(t, func(t *testing.T, s *models.Store) {
		models.SetAPIKeyLimit(t, 5)
		var wg sync.WaitGroup
		for i := range 30 {
			wg.Go(func() {
				k, _ := newKey(t, fmt.Sprint("k", i), "CREATE_EVENTS")
				_ = s.CreateAPIKey(caller("acme", fmt.Sprint("admin", i)), &k) // refused past the limit, or busy (SQLite)
			})
		}
		wg.Wait()
		keys, err := s.FindAPIKeys(caller("acme", "ann"))
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) == 0 || len(keys) > 5 {
			t.Errorf("%d keys made with a limit of 5", len(keys))
		}
	})
}
