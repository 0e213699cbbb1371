package main

import "sync"

// Store keeps the newest messages in memory. It is safe for concurrent use;
// the messages it hands out must not be changed.
type Store struct {
	mu   sync.Mutex
	max  int
	last int        // the last ID given out; IDs are never reused, even after Clear
	msgs []*Message // oldest first
}

// NewStore returns an empty Store that keeps at most max messages.
func NewStore(max int) *Store {
	return &Store{max: max}
}

// Add numbers m, stores it and drops the oldest messages beyond the limit.
func (s *Store) Add(m *Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last++
	m.ID = s.last
	if drop := len(s.msgs) + 1 - s.max; drop > 0 {
		n := copy(s.msgs, s.msgs[drop:])
		clear(s.msgs[n:]) // let the dropped messages be collected
		s.msgs = s.msgs[:n]
	}
	s.msgs = append(s.msgs, m)
}

// List returns the stored messages, newest first.
func (s *Store) List() []*Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Message, len(s.msgs))
	for i, m := range s.msgs {
		out[len(s.msgs)-1-i] = m
	}
	return out
}

// Get returns the message with the given ID, or nil when there is none
// (never received, evicted or cleared).
func (s *Store) Get(id int) *Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.msgs {
		if m.ID == id {
			return m
		}
	}
	return nil
}

// Clear forgets every message.
func (s *Store) Clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = nil
}
