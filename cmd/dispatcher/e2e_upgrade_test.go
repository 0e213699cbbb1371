package main

import (
	"fmt"
	"testing"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/converter"

	"github.com/dispatcherhq/dispatcher/workflows"
)

// TestEndToEndDispatchVersionPinned: during a rolling upgrade that adds
// Dispatch versions, two here, DISPATCHER_DISPATCH_VERSION makes the new
// processes start dispatches of the old workers' newest version, which
// they run too. Before, a new process's dispatch that reached an old
// worker failed its workflow task and waited minutes for a new worker.
func TestEndToEndDispatchVersionPinned(t *testing.T) {
	pinned := workflows.NewestDispatchVersion - 2
	s := startSystem(t, withEnv(fmt.Sprint("DISPATCHER_DISPATCH_VERSION=", pinned)))
	f := newIdempotentFunction(func(string) {})
	wid := s.dispatchOne(f, "pinned", "pinned_event", "pinned-1")
	if _, failed := s.result(wid, ""); failed {
		t.Fatal("the dispatch failed")
	}
	it := s.temporal.GetWorkflowHistory(t.Context(), wid, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	first, err := it.Next()
	if err != nil {
		t.Fatal(err)
	}
	var in workflows.DispatchInput
	if err := converter.GetDefaultDataConverter().FromPayloads(first.GetWorkflowExecutionStartedEventAttributes().GetInput(), &in); err != nil {
		t.Fatal(err)
	}
	if in.Version != pinned {
		t.Fatalf("the dispatch runs version %d, want %d", in.Version, pinned)
	}
}
