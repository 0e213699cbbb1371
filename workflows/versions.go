package workflows

import "go.temporal.io/sdk/workflow"

// Every change to what a workflow does — the commands it issues, in which
// order, with which inputs — is gated by workflow.GetVersion on the
// workflow's change ID, so that runs started by older code replay
// unchanged on newer workers. To change a workflow: add a version below
// and make it the latest, branch on it (older code moves to legacy.go),
// record new histories (see testdata/README.md), and keep the older
// branch until no run started before the change can still be open
// (docs/operations.md). One change ID per workflow costs one marker per
// run however many versions follow.
const (
	changeDispatch   = "dispatch"
	changeBulkReplay = "bulk-replay"
)

// Dispatch versions.
const (
	// dispatchV1: an action's attempts never overlap (the local first
	// attempt makes the whole call; a handoff waits as the policy or
	// Retry-After says); a cancel waits for attempts in flight; child
	// workflows' payloads are rendered in a local activity.
	dispatchV1 workflow.Version = 1
	// dispatchV2: a dispatch handed its configuration at intake was
	// started with all its search attributes, so it upserts none.
	dispatchV2 workflow.Version = 2

	dispatchLatest = dispatchV2
)

// BulkReplay versions.
const (
	// bulkReplayV1: replays are counted per state with one visibility
	// count each (by the DispatchBulkReplayID search attribute) instead of
	// describing every pending replay, and the bulk replay's activities
	// run on their own task queue.
	bulkReplayV1 workflow.Version = 1

	bulkReplayLatest = bulkReplayV1
)
