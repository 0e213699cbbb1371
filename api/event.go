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
	"github.com/dispatcherhq/dispatcher/workflows"
	"github.com/gin-gonic/gin"
)

// Starter starts the dispatch of an event; it returns once Temporal has
// durably accepted it, or an EUNAVAILABLE error.
type Starter interface {
	Start(ctx context.Context, ev dispatcher.Event) (workflows.StartResult, error)
}

// eventJSON is an event as Extra Horizon ({id, type, content,
// creationTimestamp}) or lk-dispatch ({id, type, timestamp, data,
// source:{userId, producerId, kinesisPartitionKey}}) sends it. Which one it
// is shows in which keys are present.
type eventJSON struct {
	ID                *string          `json:"id"`
	Type              *string          `json:"type"`
	Content           json.RawMessage  `json:"content"`
	CreationTimestamp *json.RawMessage `json:"creationTimestamp"`
	Timestamp         *string          `json:"timestamp"`
	Data              json.RawMessage  `json:"data"`
	Source            *lkSource        `json:"source"`
}

type lkSource struct {
	UserID              string `json:"userId"`
	ProducerID          string `json:"producerId"`
	KinesisPartitionKey string `json:"kinesisPartitionKey"`
}

// acceptedEvent is the answer for one event.
type acceptedEvent struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	WorkflowID string `json:"workflowId"`
	RunID      string `json:"runId"`
	Duplicate  bool   `json:"duplicate"`
}

// envelope names the form of e.
func (e eventJSON) envelope() string {
	if e.Data != nil || e.Timestamp != nil || e.Source != nil {
		return dispatcher.EnvelopeLK
	}
	return dispatcher.EnvelopeExtraHorizon
}

// toEvent normalises e, generating an id when it has none.
func (e eventJSON) toEvent() (dispatcher.Event, error) {
	ev := dispatcher.Event{ID: deref(e.ID), Type: deref(e.Type), Time: time.Now().UTC()}
	if ev.Type == "" {
		return ev, dispatcher.Errorf(dispatcher.EREQUIRED, "type: is required")
	}
	if e.envelope() == dispatcher.EnvelopeLK {
		if e.Data != nil && !isObject(e.Data) {
			return ev, dispatcher.Errorf(dispatcher.EINVALID, "data: must be a JSON object")
		}
		ev.Content = e.Data
		if e.Timestamp != nil {
			t, err := time.Parse(time.RFC3339Nano, *e.Timestamp)
			if err != nil {
				return ev, dispatcher.Errorf(dispatcher.EINVALID, "timestamp: %q is not an ISO-8601 date-time", *e.Timestamp)
			}
			if ev.Time, err = inRange(t.UTC()); err != nil {
				return ev, dispatcher.Errorf(dispatcher.EINVALID, "timestamp: %v", err)
			}
		}
		if e.Source != nil {
			ev.Source = e.Source.ProducerID
		}
	} else {
		ev.Content = e.Content
		if e.CreationTimestamp != nil {
			t, err := parseTimestamp(*e.CreationTimestamp)
			if err != nil {
				return ev, dispatcher.Errorf(dispatcher.EINVALID, "creationTimestamp: %v", err)
			}
			ev.Time = t
		}
	}
	if len(ev.Content) == 0 || string(ev.Content) == "null" {
		ev.Content = json.RawMessage("{}")
	}
	return withID(ev)
}

// withID gives ev an id when it has none, and validates it.
func withID(ev dispatcher.Event) (dispatcher.Event, error) {
	if ev.ID == "" {
		ev.ID = dispatcher.NewID(time.Now())
	}
	return ev, ev.Validate()
}

func isObject(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '{'
}

// receiveEvents answers POST /events/v1: it normalises the envelope, starts
// one dispatch per event and answers 202 once Temporal has them. A batch
// of CloudEvents answers with a list.
func (s *Server) receiveEvents(c *gin.Context) {
	events, envelope, batch, ok := s.readEvents(c)
	if !ok {
		return
	}
	out := make([]acceptedEvent, 0, len(events))
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
		out = append(out, acceptedEvent{ID: ev.ID, Type: ev.Type, WorkflowID: res.WorkflowID, RunID: res.RunID, Duplicate: res.Duplicate})
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
		events, batch, ok := readCloudEvents(c, mediaType)
		return events, dispatcher.EnvelopeCloudEvents, batch, ok
	}
	var e eventJSON
	if !bindJSON(c, &e) {
		return nil, "", false, false
	}
	ev, err := e.toEvent()
	if err != nil {
		fail(c, err)
		return nil, "", false, false
	}
	return []dispatcher.Event{ev}, e.envelope(), false, true
}

// readCloudEvents reads CloudEvents 1.0 in binary, structured or batch
// mode with the CloudEvents SDK.
func readCloudEvents(c *gin.Context, mediaType string) ([]dispatcher.Event, bool, bool) {
	body, ok := readBody(c)
	if !ok {
		return nil, false, false
	}
	if len(bytes.TrimSpace(body)) == 0 && c.GetHeader("ce-specversion") == "" {
		abort(c, errEmptyBody, "the request body is empty; a CloudEvent is expected")
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
	out := make([]dispatcher.Event, len(ces))
	for i, ce := range ces {
		ev, err := fromCloudEvent(ce)
		if err != nil {
			if len(ces) > 1 {
				err = prefixed(err, fmt.Sprintf("[%d].", i))
			}
			fail(c, err)
			return nil, false, false
		}
		out[i] = ev
	}
	return out, batch, true
}

func fromCloudEvent(ce cloudevents.Event) (dispatcher.Event, error) {
	if err := ce.Validate(); err != nil {
		return dispatcher.Event{}, dispatcher.Errorf(dispatcher.EINVALID, "cloudevent: %v", err)
	}
	ev := dispatcher.Event{ID: ce.ID(), Type: ce.Type(), Source: ce.Source(), Time: ce.Time().UTC()}
	if ce.Time().IsZero() {
		ev.Time = time.Now().UTC()
	}
	if _, err := inRange(ev.Time); err != nil {
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
	return withID(ev)
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }
