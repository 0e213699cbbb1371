package testenv

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/models"
)

// MemStore is a fixed configuration in memory: what the activities read
// (activities.Store) and the executions service checks replays against,
// for tests that run the real workflows without a database.
type MemStore struct {
	Dispatchers []dispatcher.Dispatcher
	Templates   map[string]dispatcher.Template // by id
	Functions   map[string]dispatcher.Function // by name

	mu      sync.Mutex
	sent    map[string]bool // mails recorded as sent, by Message-ID
	changes int64           // by Update
}

// ConfigVersion implements activities.Store: the configuration changes
// only with Update.
func (s *MemStore) ConfigVersion(context.Context) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return 1 + s.changes, nil
}

// SetPaused pauses or resumes the dispatcher with id, as
// PUT /dispatchers/v1/{id} {"enabled": …} does.
func (s *MemStore) SetPaused(id string, paused bool) {
	s.Update(id, func(d *dispatcher.Dispatcher) { d.Paused = paused })
}

// Update changes the dispatcher with id by change, as a PUT does.
func (s *MemStore) Update(id string, change func(*dispatcher.Dispatcher)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.Dispatchers {
		if s.Dispatchers[i].ID == id {
			change(&s.Dispatchers[i])
			s.changes++
		}
	}
}

// DispatchersByEventType implements activities.Store.
func (s *MemStore) DispatchersByEventType(_ context.Context, eventType string) ([]dispatcher.Dispatcher, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []dispatcher.Dispatcher
	for _, d := range s.Dispatchers {
		if d.EventType == eventType {
			out = append(out, d)
		}
	}
	return out, nil
}

// FindTemplate implements activities.Store.
func (s *MemStore) FindTemplate(_ context.Context, id string) (dispatcher.Template, error) {
	if t, ok := s.Templates[id]; ok {
		return t, nil
	}
	return dispatcher.Template{}, dispatcher.Errorf(dispatcher.ENOTFOUND, "no template %q", id)
}

// UpdateFunction changes the function named name by change, as a PUT
// does.
func (s *MemStore) UpdateFunction(name string, change func(*dispatcher.Function)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.Functions[name]
	change(&f)
	s.Functions[name] = f
	s.changes++
}

// FindFunctionByName implements activities.Store.
func (s *MemStore) FindFunctionByName(_ context.Context, name string) (dispatcher.Function, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.Functions[name]; ok {
		return f, nil
	}
	return dispatcher.Function{}, dispatcher.Errorf(dispatcher.ENOTFOUND, "no function %q", name)
}

// ClaimMail implements activities.Store: a mail not sent is always
// claimed (the tests that use it run one attempt at a time).
func (s *MemStore) ClaimMail(_ context.Context, messageID, _ string, _, _ time.Time) (dispatcher.MailClaim, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return dispatcher.MailClaim{Sent: s.sent[messageID]}, nil
}

// ReleaseMail implements activities.Store.
func (s *MemStore) ReleaseMail(context.Context, string, string) error { return nil }

// RecordMailSent implements activities.Store.
func (s *MemStore) RecordMailSent(_ context.Context, messageID string, _ time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sent == nil {
		s.sent = map[string]bool{}
	}
	s.sent[messageID] = true
	return nil
}

// Store returns a real store on a fresh, migrated SQLite database in the
// test's temp dir, for tests that need the audit trail or the delivery
// records but not the configuration tables' PostgreSQL.
func Store(t testing.TB) *models.Store {
	t.Helper()
	db, err := models.Open(SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	})
	if _, err := models.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	return models.NewStore(db, time.Now)
}
