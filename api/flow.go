package api

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/wire"
)

// FunctionFlows is what the API needs to show where a function's flow
// control stands. The executions service (dispatch.Executions) provides
// it: when Deps.Executions does, GET /functions/v1/{id} shows a gated
// function's flow; otherwise the flow its settings imply.
type FunctionFlows interface {
	// FunctionFlow returns the state of the gate of the caller's
	// tenant's function name, and false when no gate runs for it (no
	// call of it waits, runs, nor meets an open circuit). Errors:
	// EUNAVAILABLE.
	FunctionFlow(ctx context.Context, name string) (dispatcher.FlowState, bool, error)
}

// getFunction answers GET /functions/v1/{id}: the function and, when it
// has flow control, where that stands: the gate's state, its waiting and
// in-flight calls, its open circuit's next probe.
func (s *Server) getFunction(c *gin.Context) {
	ctx := c.Request.Context()
	f, err := s.store.FindFunction(ctx, c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	out := wire.FunctionDetail{Function: wire.FromFunction(f)}
	if f.Flow.Gated() {
		st := dispatcher.FlowState{Function: f.Name, State: dispatcher.FlowClosed}
		if now := s.now(); f.Flow.Paused(now) {
			st.State, st.PausedUntil = dispatcher.FlowPaused, *f.Flow.PausedUntil
		}
		unknown := false
		if flows, ok := s.executions.(FunctionFlows); ok {
			live, running, err := flows.FunctionFlow(ctx, f.Name)
			switch {
			case err != nil:
				// The function is still worth showing: without its live
				// state, which the log explains. Before, as a closed gate
				// with no call waiting.
				logger(ctx).WarnContext(ctx, "reading the function's gate failed", "function", f.Name, "err", err)
				unknown = true
			case running:
				// An idle gate reads its function's settings when a call
				// comes: a pause set since is shown as the settings say,
				// and one taken off that holds no call. Before, the gate's
				// copy, for as long as the idle gate lived (up to a day
				// after a failure of a long circuit window).
				switch {
				case st.State == dispatcher.FlowPaused && live.State == dispatcher.FlowClosed:
					live.State, live.PausedUntil = st.State, st.PausedUntil
				case st.State == dispatcher.FlowClosed && live.State == dispatcher.FlowPaused && live.Waiting == 0:
					live.State, live.PausedUntil = st.State, time.Time{}
				}
				st = live
			}
		}
		out.Flow = wire.FromFlowState(st)
		out.Flow.Unknown = unknown
	}
	setETag(c, f.Updated)
	c.JSON(http.StatusOK, out)
}
