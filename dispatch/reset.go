package dispatch

import (
	"context"

	"github.com/dispatcherhq/dispatcher"
)

// LaterReplay returns the id of the latest replay of dispatch workflowID
// claimed after the replay run (a replay id; "" for the dispatch's first
// run, which every replay comes after), "" when none was: a run reset
// from the Temporal Web UI or CLI carries the input of the run it was
// reset from, and its actions would be made again under that run's keys,
// which such a replay's may have made already
// (activities.Options.LaterReplay). It reads the audit trail, where every
// replay is claimed before it starts, in order: unlike visibility, it
// shows a replay claimed a moment ago, and resets, which start runs with
// an earlier run's replay id, are not in it. A claim whose replay never
// started counts too: whether it did is not known.
func (e *Executions) LaterReplay(ctx context.Context, workflowID, run string) (string, error) {
	trail, err := e.audit.AuditTrail(ctx, workflowID)
	if err != nil {
		return "", err
	}
	later, after := "", run == ""
	for _, a := range trail {
		switch {
		case a.Operation != dispatcher.AuditReplay:
		case a.Ref == run:
			after = true
		case after:
			later = a.Ref
		}
	}
	return later, nil
}
