package main

import (
	"slices"
	"testing"
)

func TestStoreEvictsOldestAndNeverReusesIDs(t *testing.T) {
	s := NewStore(3)
	for range 5 {
		s.Add(&Message{})
	}
	if got := ids(s.List()); !slices.Equal(got, []int{5, 4, 3}) {
		t.Fatalf("List ids %v, want [5 4 3]", got)
	}
	if s.Get(2) != nil || s.Get(3) == nil || s.Get(99) != nil {
		t.Errorf("Get: evicted or unknown ids found, or a kept one missing")
	}
	s.Clear()
	if got := s.List(); len(got) != 0 {
		t.Fatalf("after Clear: %d messages", len(got))
	}
	s.Add(&Message{})
	if got := ids(s.List()); !slices.Equal(got, []int{6}) {
		t.Errorf("after Clear and Add: ids %v, want [6]", got)
	}
}

func ids(list []*Message) []int {
	out := make([]int, len(list))
	for i, m := range list {
		out[i] = m.ID
	}
	return out
}
