package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/wire"
)

// renderTemplate renders a stored template against a sample event: a dry
// run that sends nothing.
func (s *Server) renderTemplate(c *gin.Context) {
	var req wire.RenderRequest
	if !bindJSON(c, &req) {
		return
	}
	t, err := s.store.FindTemplate(c.Request.Context(), c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	if req.Event == nil {
		fail(c, dispatcher.Errorf(dispatcher.EREQUIRED, `event: is required: the body is {"event": {"type": ..., "content": {...}}}`))
		return
	}
	ev, err := req.Event.ToDomain(s.now())
	if err != nil {
		fail(c, dispatcher.Prefixed(err, "event."))
		return
	}
	out, err := dispatcher.RenderMail(t, ev)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, wire.FromRendered(out))
}
