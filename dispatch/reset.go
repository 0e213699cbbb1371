package dispatch

import (
	"context"
	"time"

	"github.com/dispatcherhq/dispatcher/workflows"
)

// LaterReplay returns the id of the latest replay of dispatch workflowID
// that started after the first of its runs to carry the input of run (a
// replay id, "" for the dispatch's first run), "" when none did: a run
// reset from the Temporal Web UI or CLI carries the input of the run it
// was reset from, and its actions would be made again under that run's
// keys, which such a replay's may have made already
// (activities.Options.LaterReplay). Resets of a run carry its replay id
// in their memo too, so the first run with it is where its keys began.
func (e *Executions) LaterReplay(ctx context.Context, workflowID, run string) (string, error) {
	infos, _, err := e.listAll(ctx, "WorkflowType = "+quote(workflows.WorkflowDispatch)+" AND WorkflowId = "+quote(workflowID), 1000)
	if err != nil {
		return "", err
	}
	type replay struct {
		id    string
		start time.Time
	}
	runs := make([]replay, len(infos))
	var since *time.Time
	for i, info := range infos {
		runs[i] = replay{e.memoString(info.GetMemo().GetFields()[workflows.MemoReplayID]), info.GetStartTime().AsTime()}
		if runs[i].id == run && (since == nil || runs[i].start.Before(*since)) {
			since = &runs[i].start
		}
	}
	var latest replay
	for _, r := range runs {
		if since != nil && r.id != "" && r.id != run && r.start.After(*since) && r.start.After(latest.start) {
			latest = r
		}
	}
	return latest.id, nil
}
