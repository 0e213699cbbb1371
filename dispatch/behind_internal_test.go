package dispatch

import (
	"fmt"
	"slices"
	"testing"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/workflows"
)

// The events a key holds behind a run are counted for the run that runs
// as the key's dispatch (its Sequence's head, or the run an earlier run
// of the Sequence handed over) or that blocks it, and for no other.
func TestBehind(t *testing.T) {
	queue := func(ids ...string) []workflows.SequencedDispatch {
		q := make([]workflows.SequencedDispatch, len(ids))
		for i, id := range ids {
			q[i].WorkflowID = id
		}
		return q
	}
	running := dispatcher.Execution{WorkflowID: "a", RunID: "r1", Status: dispatcher.ExecutionRunning}
	failed := dispatcher.Execution{WorkflowID: "a", RunID: "r1", Status: dispatcher.ExecutionFailed}
	for _, c := range []struct {
		name     string
		st       workflows.SequenceState
		x        dispatcher.Execution
		blocking bool
		waiting  int
		ids      []string
	}{
		{"head of the queue", workflows.SequenceState{Queue: queue("a", "b", "c")}, running, false, 2, []string{"b", "c"}},
		{"head alone", workflows.SequenceState{Queue: queue("a")}, running, false, 0, nil},
		{"handed over", workflows.SequenceState{Running: &workflows.RunningDispatch{WorkflowID: "a", RunID: "r1"}, Queue: queue("b")},
			running, false, 1, []string{"b"}},
		{"handed over, failed: blocks before the Sequence looks", workflows.SequenceState{Running: &workflows.RunningDispatch{WorkflowID: "a", RunID: "r1", Block: true},
			Queue: queue("b")}, failed, true, 1, []string{"b"}},
		{"handed over, failed, released", workflows.SequenceState{Running: &workflows.RunningDispatch{WorkflowID: "a", RunID: "r1", Block: true, Released: true},
			Queue: queue("b")}, failed, false, 1, []string{"b"}},
		{"another run handed over", workflows.SequenceState{Running: &workflows.RunningDispatch{WorkflowID: "a", RunID: "r0"}, Queue: queue("b")},
			running, false, 0, nil},
		{"queued behind another", workflows.SequenceState{Queue: queue("z", "a", "b")}, running, false, 0, nil},
		{"blocking", workflows.SequenceState{Blocked: "a", Queue: queue("b", "c")}, failed, true, 2, []string{"b", "c"}},
		{"failed, not blocking", workflows.SequenceState{Queue: queue("b")}, failed, false, 0, nil},
		// Reset from the failed run, it completed; the Sequence, which saw
		// the failure, still holds the key for it. Before, not shown.
		{"completed, still blocking", workflows.SequenceState{Blocked: "a", Queue: queue("b")},
			dispatcher.Execution{WorkflowID: "a", RunID: "r2", Status: dispatcher.ExecutionCompleted}, true, 1, []string{"b"}},
		{"completed", workflows.SequenceState{Queue: queue("b")}, dispatcher.Execution{WorkflowID: "a", RunID: "r2", Status: dispatcher.ExecutionCompleted}, false, 0, nil},
		{"failed while another blocks", workflows.SequenceState{Blocked: "z", Queue: queue("a", "b")}, failed, false, 0, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			blocking, waiting, ids := behind(c.st, c.x)
			if blocking != c.blocking || waiting != c.waiting || !slices.Equal(ids, c.ids) {
				t.Errorf("behind = %v, %d, %v; want %v, %d, %v", blocking, waiting, ids, c.blocking, c.waiting, c.ids)
			}
		})
	}
	t.Run("many waiting", func(t *testing.T) {
		ids := make([]string, dispatcher.MaxWaitingIDs+5)
		for i := range ids {
			ids[i] = fmt.Sprint("e", i)
		}
		_, waiting, shown := behind(workflows.SequenceState{Blocked: "a", Queue: queue(ids...)}, failed)
		if waiting != len(ids) || !slices.Equal(shown, ids[:dispatcher.MaxWaitingIDs]) {
			t.Errorf("behind counts %d and names %d, want %d and the first %d", waiting, len(shown), len(ids), dispatcher.MaxWaitingIDs)
		}
	})
}
