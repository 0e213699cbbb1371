package api

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/intake"
	"github.com/dispatcherhq/dispatcher/wire"
)

// renderTemplate renders a stored template against a sample event: a dry
// run that sends nothing. The sample is an event as POST /events/v1 takes
// it in a body: Extra Horizon's, lk's, or a structured CloudEvent (with
// specversion).
func (s *Server) renderTemplate(c *gin.Context) {
	var req wire.RenderRequest
	if !bindJSONOf(c, &req, true) { // the event as the intake reads it
		return
	}
	t, err := s.store.FindTemplate(c.Request.Context(), c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	ev, err := sampleEvent(req.Event, s.now())
	if err != nil {
		failIntake(c, err)
		return
	}
	out, err := dispatcher.RenderMail(t, ev)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, wire.FromRendered(out))
}

// sampleEvent reads the sample event of a dry run as intake reads a body,
// a CloudEvent when it has specversion (as its content type would say).
// Its errors name its fields under event.
func sampleEvent(raw json.RawMessage, now time.Time) (dispatcher.Event, error) {
	var keys map[string]json.RawMessage
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return dispatcher.Event{}, dispatcher.Errorf(dispatcher.EREQUIRED, `event: is required, a JSON object: the body is {"event": {"type": ..., "content": {...}}}`)
	case json.Unmarshal(raw, &keys) != nil:
		return dispatcher.Event{}, dispatcher.Errorf(dispatcher.EINVALID, `event: must be a JSON object, the event: the body is {"event": {"type": ..., "content": {...}}}`)
	}
	h := http.Header{}
	switch {
	case keys["specversion"] != nil:
		h.Set("Content-Type", "application/cloudevents+json")
	case keys["time"] != nil:
		// What a template reads as .event.time, an Extra Horizon or lk
		// event does not carry under that name: it was ignored.
		return dispatcher.Event{}, dispatcher.Errorf(dispatcher.EINVALID,
			"event.time: an Extra Horizon event gives its time as creationTimestamp (milliseconds since 1970), an lk event as timestamp (ISO 8601); a CloudEvent, with specversion, as time")
	}
	p, err := intake.Parse(intake.Message{Header: h, Body: raw, BodyName: "sample event"}, now)
	if err != nil {
		return dispatcher.Event{}, dispatcher.Prefixed(err, "event.")
	}
	return p.Events[0], nil // an object: one event
}
