package api

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/dispatcherhq/dispatcher"
	"github.com/gin-gonic/gin"
)

// dispatcherRequest is the body of POST and PUT /dispatchers/v1. Pointers
// tell an absent field from an empty one.
type dispatcherRequest struct {
	Name        *string          `json:"name"`
	Description *string          `json:"description"`
	EventType   *string          `json:"eventType"`
	Tags        *[]string        `json:"tags"`
	Actions     *[]actionRequest `json:"actions"`
}

// dispatcherResponse is a dispatcher on the wire.
type dispatcherResponse struct {
	ID                string           `json:"id"`
	Name              string           `json:"name,omitempty"`
	Description       string           `json:"description,omitempty"`
	EventType         string           `json:"eventType"`
	Actions           []actionResponse `json:"actions"`
	Tags              []string         `json:"tags"`
	CreationTimestamp int64            `json:"creationTimestamp"`
	UpdateTimestamp   int64            `json:"updateTimestamp"`
}

// pageResponse is the shape of every list.
type pageResponse struct {
	Page struct {
		Total  int `json:"total"`
		Offset int `json:"offset"`
		Limit  int `json:"limit"`
	} `json:"page"`
	Data []any `json:"data"`
}

// affected is the answer to updates and deletes.
type affected struct {
	AffectedRecords int `json:"affectedRecords"`
}

func toDomainDispatcher(r dispatcherRequest) (dispatcher.Dispatcher, error) {
	d := dispatcher.Dispatcher{
		Name:        deref(r.Name),
		Description: deref(r.Description),
		EventType:   deref(r.EventType),
	}
	if r.Tags != nil {
		d.Tags = *r.Tags
	}
	if r.Actions != nil {
		for i, ar := range *r.Actions {
			a, err := toDomainAction(ar, "actions["+strconv.Itoa(i)+"].")
			if err != nil {
				return d, err
			}
			d.Actions = append(d.Actions, a)
		}
	}
	return d, nil
}

func toDispatcherUpdate(r dispatcherRequest) dispatcher.DispatcherUpdate {
	return dispatcher.DispatcherUpdate{Name: r.Name, Description: r.Description, EventType: r.EventType, Tags: r.Tags}
}

func toDispatcherResponse(d dispatcher.Dispatcher) dispatcherResponse {
	out := dispatcherResponse{
		ID:                d.ID,
		Name:              d.Name,
		Description:       d.Description,
		EventType:         d.EventType,
		Actions:           make([]actionResponse, len(d.Actions)),
		Tags:              d.Tags,
		CreationTimestamp: d.Created.UnixMilli(),
		UpdateTimestamp:   d.Updated.UnixMilli(),
	}
	if out.Tags == nil {
		out.Tags = []string{}
	}
	for i, a := range d.Actions {
		out.Actions[i] = toActionResponse(a)
	}
	return out
}

// listDispatchers answers GET /dispatchers/v1?<rql>.
func (s *Server) listDispatchers(c *gin.Context) {
	q, err := parseRQL(c.Request.URL.RawQuery)
	if err != nil {
		fail(c, err)
		return
	}
	ds, total, err := s.store.FindDispatchers(c.Request.Context(), q)
	if err != nil {
		fail(c, err)
		return
	}
	var page pageResponse
	page.Page.Total, page.Page.Offset, page.Page.Limit = total, q.Offset, q.Limit
	page.Data = make([]any, len(ds))
	for i, d := range ds {
		page.Data[i] = project(toDispatcherResponse(d), q.Select)
	}
	c.JSON(http.StatusOK, page)
}

// getDispatcher answers GET /dispatchers/v1/{id}, an extension of the
// Extra Horizon API (which finds one dispatcher with ?eq(id,…)).
func (s *Server) getDispatcher(c *gin.Context) {
	d, err := s.store.FindDispatcher(c.Request.Context(), c.Param("dispatcherId"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, toDispatcherResponse(d))
}

// createDispatcher answers POST /dispatchers/v1.
func (s *Server) createDispatcher(c *gin.Context) {
	var req dispatcherRequest
	if !bindJSON(c, &req) {
		return
	}
	if req.Actions != nil {
		for i := range *req.Actions {
			if err := s.resolveTemplateName(c.Request.Context(), &(*req.Actions)[i], "actions["+strconv.Itoa(i)+"]."); err != nil {
				fail(c, err)
				return
			}
		}
	}
	d, err := toDomainDispatcher(req)
	if err != nil {
		fail(c, err)
		return
	}
	if err := s.store.CreateDispatcher(c.Request.Context(), &d); err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, toDispatcherResponse(d))
}

// updateDispatcher answers PUT /dispatchers/v1/{id}. An actions key in the
// body is ignored: actions have their own endpoints.
func (s *Server) updateDispatcher(c *gin.Context) {
	var req dispatcherRequest
	if !bindJSON(c, &req) {
		return
	}
	u := toDispatcherUpdate(req)
	if u.Empty() {
		abort(c, errEmptyBody, "the body changes nothing: give at least one of name, description, eventType, tags")
		return
	}
	if err := s.store.UpdateDispatcher(c.Request.Context(), c.Param("dispatcherId"), u); err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, affected{1})
}

// deleteDispatcher answers DELETE /dispatchers/v1/{id}.
func (s *Server) deleteDispatcher(c *gin.Context) {
	if err := s.store.DeleteDispatcher(c.Request.Context(), c.Param("dispatcherId")); err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, affected{1})
}

// project keeps only the selected top-level fields of v; no selection
// keeps them all.
func project(v any, fields []string) any {
	if len(fields) == 0 {
		return v
	}
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return v
	}
	out := make(map[string]json.RawMessage, len(fields))
	for _, f := range fields {
		if raw, ok := all[f]; ok {
			out[f] = raw
		}
	}
	return out
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
