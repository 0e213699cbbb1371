package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/dispatcherhq/dispatcher"
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
	for _, ev := range events {
		res, err := s.starter.Start(c.Request.Context(), ev)
		if err != nil {
			fail(c, err)
			return
		}
		s.metrics.eventReceived(ev.Type, envelope, res.Duplicate)
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

// readEvents reads the events of the request in whichever envelope it
// uses; on failure it has answered.
func (s *Server) readEvents(c *gin.Context) (events []dispatcher.Event, envelope string, batch, ok bool) {
	mediaType, _, _ := mime.ParseMediaType(c.GetHeader("Content-Type"))
	if c.GetHeader("ce-specversion") != "" || strings.HasPrefix(mediaType, "application/cloudevents") {
		events, batch, ok := s.readCloudEvents(c, mediaType)
		return events, dispatcher.EnvelopeCloudEvents, batch, ok
	}
	var e wire.Event
	if !bindJSON(c, &e) {
		return nil, "", false, false
	}
	ev, err := e.ToDomain(s.now())
	if err != nil {
		fail(c, err)
		return nil, "", false, false
	}
	return []dispatcher.Event{ev}, e.Envelope(), false, true
}

// readCloudEvents reads CloudEvents 1.0 in binary, structured or batch
// mode with the CloudEvents SDK.
func (s *Server) readCloudEvents(c *gin.Context, mediaType string) ([]dispatcher.Event, bool, bool) {
	body, ok := readBody(c)
	if !ok {
		return nil, false, false
	}
	if len(bytes.TrimSpace(body)) == 0 && c.GetHeader("ce-specversion") == "" {
		abort(c, errEmptyBody, "the request body is empty; a CloudEvent is expected")
		return nil, false, false
	}
	// The SDK panics on a header named just "ce-" (it reads the letter
	// after the prefix); refuse it, as the name of no attribute.
	if _, ok := c.Request.Header["Ce-"]; ok {
		abort(c, errFieldFormat, `header "ce-": a CloudEvents attribute header needs the attribute's name after "ce-"`)
		return nil, false, false
	}
	c.Request.Body = http.NoBody
	if len(body) > 0 {
		c.Request.Body = readCloser{bytes.NewReader(body)}
	}
	batch := mediaType == "application/cloudevents-batch+json"
	var ces []cloudevents.Event
	var err error
	if batch {
		ces, err = cehttp.NewEventsFromHTTPRequest(c.Request)
	} else {
		var ce *cloudevents.Event
		if ce, err = binding.ToEvent(c.Request.Context(), cehttp.NewMessageFromHttpRequest(c.Request)); err == nil {
			ces = []cloudevents.Event{*ce}
		}
	}
	if err != nil {
		abort(c, errBodyFormat, "not a valid CloudEvent: "+err.Error())
		return nil, false, false
	}
	if len(ces) == 0 {
		abort(c, errEmptyBody, "the batch holds no CloudEvents")
		return nil, false, false
	}
	if len(ces) > dispatcher.MaxEventBatch {
		abort(c, errFieldFormat, fmt.Sprintf("batch: holds %d CloudEvents; a batch may hold at most %d, send the rest in another request",
			len(ces), dispatcher.MaxEventBatch))
		return nil, false, false
	}
	out := make([]dispatcher.Event, len(ces))
	for i, ce := range ces {
		ev, err := fromCloudEvent(ce, s.now())
		if err != nil {
			if len(ces) > 1 {
				err = dispatcher.Prefixed(err, fmt.Sprintf("[%d].", i))
			}
			fail(c, err)
			return nil, false, false
		}
		out[i] = ev
	}
	return out, batch, true
}

func fromCloudEvent(ce cloudevents.Event, now time.Time) (dispatcher.Event, error) {
	if err := ce.Validate(); err != nil {
		return dispatcher.Event{}, dispatcher.Errorf(dispatcher.EINVALID, "cloudevent: %v", err)
	}
	ev := dispatcher.Event{ID: ce.ID(), Type: ce.Type(), Source: ce.Source(), Key: dispatcher.CloudEventKey(ce.Source(), ce.ID()), Time: ce.Time().UTC()}
	if ce.Time().IsZero() {
		ev.Time = now.UTC()
	}
	if _, err := wire.InRange(ev.Time); err != nil {
		return ev, dispatcher.Errorf(dispatcher.EINVALID, "time: %v", err)
	}
	switch data := ce.Data(); {
	case len(data) == 0:
		ev.Content = json.RawMessage("{}")
	case json.Valid(data) && (ce.DataContentType() == "" || strings.Contains(ce.DataContentType(), "json")):
		ev.Content = json.RawMessage(data)
	default:
		// Non-JSON data reaches templates as a string.
		s, _ := json.Marshal(string(data))
		ev.Content = s
	}
	return wire.WithID(ev, now)
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }
