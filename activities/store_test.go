package activities_test

import (
	"context"
	"sync"
	"time"

	"github.com/dispatcherhq/dispatcher"
)

// fakeStore is an in-memory Store that counts its queries, so tests can
// see what the cache saves.
type fakeStore struct {
	mu          sync.Mutex
	version     int64
	dispatchers []dispatcher.Dispatcher
	templates   map[string]dispatcher.Template
	functions   map[string]dispatcher.Function
	sent        map[string]time.Time // mails recorded as sent, by Message-ID
	claims      map[string]time.Time // mails being sent until, by Message-ID
	queries     int                  // every configuration query other than ConfigVersion
	slow        func()               // when set, called before FindFunctionByName and ClaimMail answer
	down        int                  // how many more reads of templates and functions, and claims, fail as unavailable
	claimHang   chan struct{}        // when set, ClaimMail answers once it is closed, or its context ends
}

// outage fails a call while the store is down (s.down), counting it.
func (s *fakeStore) outage() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down == 0 {
		return nil
	}
	s.down--
	return dispatcher.Errorf(dispatcher.EUNAVAILABLE, "the database is unavailable or busy: try again")
}

func newFakeStore() *fakeStore {
	return &fakeStore{version: 1, templates: map[string]dispatcher.Template{}, functions: map[string]dispatcher.Function{},
		sent: map[string]time.Time{}, claims: map[string]time.Time{}}
}

// change runs f on the store and bumps the version, as the real store
// does in the same transaction as a change.
func (s *fakeStore) change(f func(s *fakeStore)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
	s.version++
}

func (s *fakeStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries
}

func (s *fakeStore) ConfigVersion(context.Context) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version, nil
}

func (s *fakeStore) DispatchersByEventType(_ context.Context, eventType string) ([]dispatcher.Dispatcher, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queries++
	var out []dispatcher.Dispatcher
	for _, d := range s.dispatchers {
		if d.EventType == eventType {
			out = append(out, d)
		}
	}
	return out, nil
}

func (s *fakeStore) FindTemplate(_ context.Context, id string) (dispatcher.Template, error) {
	if err := s.outage(); err != nil {
		return dispatcher.Template{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queries++
	t, ok := s.templates[id]
	if !ok {
		return dispatcher.Template{}, dispatcher.Errorf(dispatcher.ENOTFOUND, "template %q not found", id)
	}
	return t, nil
}

func (s *fakeStore) FindFunctionByName(_ context.Context, name string) (dispatcher.Function, error) {
	if err := s.outage(); err != nil {
		return dispatcher.Function{}, err
	}
	if s.slow != nil {
		s.slow()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queries++
	f, ok := s.functions[name]
	if !ok {
		return dispatcher.Function{}, dispatcher.Errorf(dispatcher.ENOTFOUND, "function %q not found", name)
	}
	return f, nil
}

func (s *fakeStore) ClaimMail(ctx context.Context, messageID, _ string, now, until time.Time) (dispatcher.MailClaim, error) {
	if err := s.outage(); err != nil {
		return dispatcher.MailClaim{}, err
	}
	if s.claimHang != nil {
		select {
		case <-s.claimHang:
		case <-ctx.Done():
			return dispatcher.MailClaim{}, dispatcher.Errorf(dispatcher.EUNAVAILABLE, "the database did not answer in time")
		}
	}
	if s.slow != nil {
		s.slow()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sent[messageID]; ok {
		return dispatcher.MailClaim{Sent: true}, nil
	}
	if held, ok := s.claims[messageID]; ok && !held.Before(now) {
		return dispatcher.MailClaim{HeldUntil: held}, nil
	}
	s.claims[messageID] = until
	return dispatcher.MailClaim{}, nil
}

func (s *fakeStore) ReleaseMail(_ context.Context, messageID, _ string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.claims, messageID)
	return nil
}

func (s *fakeStore) RecordMailSent(_ context.Context, messageID string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sent[messageID]; !ok {
		s.sent[messageID] = at
	}
	return nil
}
