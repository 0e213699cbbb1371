package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/gin-gonic/gin"
)

// actionRequest is an action in a request body. Fields that may be cleared
// with null are optional values.
type actionRequest struct {
	Type           *string                   `json:"type"`
	Name           *string                   `json:"name"`
	Description    *string                   `json:"description"`
	Recipients     *recipientsJSON           `json:"recipients"`
	TemplateID     *string                   `json:"templateId"`
	TemplateName   *string                   `json:"templateName"` // the Extra Horizon CLI's alternative to templateId
	FunctionName   *string                   `json:"functionName"`
	Data           optional[json.RawMessage] `json:"data"`
	Tags           *[]string                 `json:"tags"`
	StartTimestamp optional[json.RawMessage] `json:"startTimestamp"`
	RetryPolicy    optional[json.RawMessage] `json:"retryPolicy"`
}

// actionResponse is an action on the wire; only its type's fields appear.
type actionResponse struct {
	ID                string           `json:"id"`
	Type              string           `json:"type"`
	Name              string           `json:"name,omitempty"`
	Description       string           `json:"description,omitempty"`
	Recipients        *recipientsJSON  `json:"recipients,omitempty"`
	TemplateID        string           `json:"templateId,omitempty"`
	FunctionName      string           `json:"functionName,omitempty"`
	Data              json.RawMessage  `json:"data,omitempty"`
	Tags              []string         `json:"tags,omitempty"`
	StartTimestamp    string           `json:"startTimestamp,omitempty"`
	RetryPolicy       *retryPolicyJSON `json:"retryPolicy,omitempty"`
	CreationTimestamp int64            `json:"creationTimestamp,omitempty"`
	UpdateTimestamp   int64            `json:"updateTimestamp,omitempty"`
}

type recipientsJSON struct {
	To  []string `json:"to"`
	CC  []string `json:"cc,omitempty"`
	BCC []string `json:"bcc,omitempty"`
}

type retryPolicyJSON struct {
	MaximumAttempts    int     `json:"maximumAttempts,omitempty"`
	InitialIntervalMs  int64   `json:"initialIntervalMs,omitempty"`
	BackoffCoefficient float64 `json:"backoffCoefficient,omitempty"`
	MaximumIntervalMs  int64   `json:"maximumIntervalMs,omitempty"`
}

// optional is a field that may be absent (Set false), null (Set, Null) or
// a value. encoding/json calls UnmarshalJSON for null too, which a pointer
// field cannot tell from absence.
type optional[T any] struct {
	Set   bool
	Null  bool
	Value T
}

func (o *optional[T]) UnmarshalJSON(b []byte) error {
	o.Set = true
	if bytes.Equal(b, []byte("null")) {
		o.Null = true
		return nil
	}
	return json.Unmarshal(b, &o.Value)
}

// isoMillis is how timestamps that the reference calls ISO-8601 are written.
const isoMillis = "2006-01-02T15:04:05.000Z07:00"

func toDomainAction(r actionRequest, prefix string) (dispatcher.Action, error) {
	u, err := toActionUpdate(r, prefix)
	if err != nil {
		return dispatcher.Action{}, err
	}
	a := dispatcher.Action{Type: deref(r.Type)}
	if err := u.Apply(&a); err != nil {
		return a, prefixed(err, prefix)
	}
	return a, nil
}

func toActionUpdate(r actionRequest, prefix string) (dispatcher.ActionUpdate, error) {
	u := dispatcher.ActionUpdate{
		Type:         r.Type,
		Name:         r.Name,
		Description:  r.Description,
		TemplateID:   r.TemplateID,
		FunctionName: r.FunctionName,
		Tags:         r.Tags,
	}
	if r.Recipients != nil {
		u.Recipients = &dispatcher.Recipients{To: r.Recipients.To, CC: r.Recipients.CC, BCC: r.Recipients.BCC}
	}
	if r.Data.Set {
		data := r.Data.Value
		if r.Data.Null {
			data = nil
		}
		u.Data = &data
	}
	if r.StartTimestamp.Set {
		var start *time.Time
		if !r.StartTimestamp.Null {
			t, err := parseTimestamp(r.StartTimestamp.Value)
			if err != nil {
				return u, dispatcher.Errorf(dispatcher.EINVALID, "%sstartTimestamp: %v", prefix, err)
			}
			start = &t
		}
		u.StartTimestamp = &start
	}
	if r.RetryPolicy.Set {
		var p *dispatcher.RetryPolicy
		if !r.RetryPolicy.Null {
			var err error
			if p, err = parseRetryPolicy(r.RetryPolicy.Value); err != nil {
				return u, dispatcher.Errorf(dispatcher.EINVALID, "%sretryPolicy: %v", prefix, err)
			}
		}
		u.RetryPolicy = &p
	}
	return u, nil
}

// parseTimestamp accepts an ISO-8601 date-time string or epoch milliseconds.
func parseTimestamp(raw json.RawMessage) (time.Time, error) {
	var ms int64
	if err := json.Unmarshal(raw, &ms); err == nil {
		return inRange(time.UnixMilli(ms).UTC())
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return time.Time{}, fmt.Errorf("must be an ISO-8601 date-time string or epoch milliseconds, not %s", raw)
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not an ISO-8601 date-time such as 2030-01-31T09:00:00.000Z", s)
	}
	return inRange(t.UTC())
}

// inRange refuses times outside the years 1970 to 9999: before is a
// mistake, after cannot be written as RFC 3339 (nor recorded by Temporal).
func inRange(t time.Time) (time.Time, error) {
	if t.Year() < 1970 || t.Year() > 9999 {
		return time.Time{}, fmt.Errorf("must be between the years 1970 and 9999, not %d", t.Year())
	}
	return t, nil
}

func parseRetryPolicy(raw json.RawMessage) (*dispatcher.RetryPolicy, error) {
	var p retryPolicyJSON
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("want {maximumAttempts, initialIntervalMs, backoffCoefficient, maximumIntervalMs}: %v", err)
	}
	const month = 30 * 24 * 3600 * 1000
	if p.InitialIntervalMs < 0 || p.InitialIntervalMs > month || p.MaximumIntervalMs < 0 || p.MaximumIntervalMs > month {
		return nil, fmt.Errorf("intervals must be between 0 and %d ms (30 days)", month)
	}
	return &dispatcher.RetryPolicy{
		MaximumAttempts:    p.MaximumAttempts,
		InitialInterval:    time.Duration(p.InitialIntervalMs) * time.Millisecond,
		BackoffCoefficient: p.BackoffCoefficient,
		MaximumInterval:    time.Duration(p.MaximumIntervalMs) * time.Millisecond,
	}, nil
}

func toActionResponse(a dispatcher.Action) actionResponse {
	out := actionResponse{
		ID:                a.ID,
		Type:              a.Type,
		Name:              a.Name,
		Description:       a.Description,
		TemplateID:        a.TemplateID,
		FunctionName:      a.FunctionName,
		Data:              a.Data,
		Tags:              a.Tags,
		CreationTimestamp: a.Created.UnixMilli(),
		UpdateTimestamp:   a.Updated.UnixMilli(),
	}
	if a.Created.IsZero() {
		out.CreationTimestamp, out.UpdateTimestamp = 0, 0
	}
	if a.Type == dispatcher.ActionMail {
		out.Recipients = &recipientsJSON{To: a.Recipients.To, CC: a.Recipients.CC, BCC: a.Recipients.BCC}
	}
	if a.StartTimestamp != nil {
		out.StartTimestamp = a.StartTimestamp.UTC().Format(isoMillis)
	}
	if p := a.RetryPolicy; p != nil {
		out.RetryPolicy = &retryPolicyJSON{
			MaximumAttempts:    p.MaximumAttempts,
			InitialIntervalMs:  p.InitialInterval.Milliseconds(),
			BackoffCoefficient: p.BackoffCoefficient,
			MaximumIntervalMs:  p.MaximumInterval.Milliseconds(),
		}
	}
	return out
}

// createAction answers POST /dispatchers/v1/{id}/actions.
func (s *Server) createAction(c *gin.Context) {
	req, ok := s.bindAction(c)
	if !ok {
		return
	}
	a, err := toDomainAction(req, "")
	if err != nil {
		fail(c, err)
		return
	}
	if err := s.store.CreateAction(c.Request.Context(), c.Param("dispatcherId"), &a); err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, toActionResponse(a))
}

// updateAction answers PUT /dispatchers/v1/{id}/actions/{actionId}.
func (s *Server) updateAction(c *gin.Context) {
	req, ok := s.bindAction(c)
	if !ok {
		return
	}
	u, err := toActionUpdate(req, "")
	if err != nil {
		fail(c, err)
		return
	}
	if u == (dispatcher.ActionUpdate{}) {
		abort(c, errEmptyBody, "the body changes nothing: give at least one field of the action")
		return
	}
	if err := s.store.UpdateAction(c.Request.Context(), c.Param("dispatcherId"), c.Param("actionId"), u); err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, affected{1})
}

// deleteAction answers DELETE /dispatchers/v1/{id}/actions/{actionId}.
func (s *Server) deleteAction(c *gin.Context) {
	if err := s.store.DeleteAction(c.Request.Context(), c.Param("dispatcherId"), c.Param("actionId")); err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, affected{1})
}

// bindAction reads an action body and resolves its templateName; on
// failure it has answered.
func (s *Server) bindAction(c *gin.Context) (actionRequest, bool) {
	var req actionRequest
	if !bindJSON(c, &req) {
		return req, false
	}
	if err := s.resolveTemplateName(c.Request.Context(), &req, ""); err != nil {
		fail(c, err)
		return req, false
	}
	return req, true
}

// resolveTemplateName fills in templateId from templateName, which the
// Extra Horizon CLI may send instead.
func (s *Server) resolveTemplateName(ctx context.Context, r *actionRequest, prefix string) error {
	if r.TemplateName == nil || deref(r.TemplateID) != "" {
		return nil
	}
	id, err := s.store.TemplateIDByName(ctx, *r.TemplateName)
	if dispatcher.ErrorCode(err) == dispatcher.ENOTFOUND {
		return dispatcher.Errorf(dispatcher.EINVALID, "%stemplateName: no template named %q", prefix, *r.TemplateName)
	}
	if err != nil {
		return err
	}
	r.TemplateID = &id
	return nil
}

// prefixed puts prefix (the path of a nested object) before the field
// named in a domain error's message.
func prefixed(err error, prefix string) error {
	e, ok := err.(*dispatcher.Error)
	if !ok || prefix == "" {
		return err
	}
	return &dispatcher.Error{Code: e.Code, Message: prefix + e.Message}
}
