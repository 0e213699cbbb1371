package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/intake"
	"github.com/dispatcherhq/dispatcher/wire"
	"github.com/gin-gonic/gin"
)

// Starter starts the dispatch of an event; it returns once Temporal has
// durably accepted it, or an EUNAVAILABLE error.
type Starter interface {
	Start(ctx context.Context, ev dispatcher.Event) (dispatcher.StartResult, error)
}

// receiveEvents answers POST /events/v1: it normalises the envelope, starts
// one dispatch per event and answers 202 once Temporal has them. A batch
// of CloudEvents answers with a list.
func (s *Server) receiveEvents(c *gin.Context) {
	events, envelope, batch, ok := s.readEvents(c)
	if !ok || !maySend(c, events) {
		return
	}
	if r := s.intake.take(principalOf(c), len(events)); r != nil {
		refuse(c, r)
		return
	}
	out := make([]wire.AcceptedEvent, 0, len(events))
	for i, ev := range events {
		res, err := s.starter.Start(c.Request.Context(), ev)
		if err != nil {
			fail(c, batchError(err, batch, i))
			return
		}
		s.metrics.events.Received("http", ev.Type, envelope, res.Duplicate)
		logger(c.Request.Context()).DebugContext(c.Request.Context(), "event accepted",
			"event_id", ev.ID, "event_type", ev.Type, "envelope", envelope,
			"workflow_id", res.WorkflowID, "run_id", res.RunID, "duplicate", res.Duplicate)
		out = append(out, wire.FromStart(ev, res))
	}
	if batch {
		c.JSON(http.StatusAccepted, out)
		return
	}
	c.JSON(http.StatusAccepted, out[0])
}

// batchError names the event of a batch that Temporal or the starter
// refused, and says that those before it were accepted: the client must
// not take them for refused with it, and may send them again. The error
// keeps err's code, and err for the log.
func batchError(err error, batch bool, i int) error {
	if !batch {
		return err
	}
	msg := fmt.Sprintf("[%d]: %s", i, dispatcher.ErrorMessage(err))
	if field, _, ok := strings.Cut(dispatcher.ErrorMessage(err), ": "); ok && !strings.ContainsRune(field, ' ') {
		msg = fmt.Sprintf("[%d].%s", i, dispatcher.ErrorMessage(err)) // a field of the event: [1].id
	}
	if i > 0 {
		msg += fmt.Sprintf(" (the events before [%d] were accepted; sent again, they are answered as duplicates)", i)
	}
	return fmt.Errorf("%w: %w", &dispatcher.Error{Code: dispatcher.ErrorCode(err), Message: msg}, err)
}

// readEvents reads the events of the request in whichever envelope it
// uses (package intake, which brokers' messages go through too); on
// failure it has answered.
func (s *Server) readEvents(c *gin.Context) (events []dispatcher.Event, envelope string, batch, ok bool) {
	body, ok := readBody(c)
	if !ok {
		return nil, "", false, false
	}
	p, err := intake.Parse(intake.Message{Header: c.Request.Header, Body: body, HTTP: true}, s.now())
	if err != nil {
		failIntake(c, err)
		return nil, "", false, false
	}
	return p.Events, p.Envelope, p.Batch, true
}

// failIntake answers with the wire error of an event the intake refused:
// 13 for an empty body, 22 for one that is not its envelope, the domain's
// field errors as fail answers them.
func failIntake(c *gin.Context, err error) {
	var ie *intake.Error
	if !errors.As(err, &ie) {
		fail(c, err)
		return
	}
	if ie.Kind == intake.EmptyBody {
		abort(c, errEmptyBody, ie.Message)
		return
	}
	abort(c, errBodyFormat, ie.Message)
}
