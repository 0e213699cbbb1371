package api

import (
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/gin-gonic/gin"
)

// functionRequest is the body of POST and PUT /functions/v1.
type functionRequest struct {
	Name           *string            `json:"name"`
	Kind           *string            `json:"kind"`
	URL            *string            `json:"url"`
	TimeoutSeconds *int               `json:"timeoutSeconds"`
	Secret         *string            `json:"secret"`
	Headers        *map[string]string `json:"headers"`
	TaskQueue      *string            `json:"taskQueue"`
}

// functionResponse never carries the secret nor header values: both are
// write-only (headers are where API keys go), so only header names show.
type functionResponse struct {
	ID                string   `json:"id"`
	Name              string   `json:"name"`
	Kind              string   `json:"kind"`
	URL               string   `json:"url,omitempty"`
	TimeoutSeconds    int      `json:"timeoutSeconds,omitempty"`
	HasSecret         bool     `json:"hasSecret"`
	HeaderNames       []string `json:"headerNames,omitempty"`
	TaskQueue         string   `json:"taskQueue,omitempty"`
	CreationTimestamp int64    `json:"creationTimestamp"`
	UpdateTimestamp   int64    `json:"updateTimestamp"`
}

func toFunctionUpdate(r functionRequest) dispatcher.FunctionUpdate {
	u := dispatcher.FunctionUpdate{Name: r.Name, Kind: r.Kind, URL: r.URL, Secret: r.Secret, Headers: r.Headers, TaskQueue: r.TaskQueue}
	if r.TimeoutSeconds != nil {
		// Out of range values must not wrap around into range.
		secs := min(max(*r.TimeoutSeconds, -1), int(dispatcher.MaxFunctionTimeout.Seconds())+1)
		d := time.Duration(secs) * time.Second
		u.Timeout = &d
	}
	return u
}

func toFunctionResponse(f dispatcher.Function) functionResponse {
	return functionResponse{ID: f.ID, Name: f.Name, Kind: f.Kind, URL: f.URL, TimeoutSeconds: int(f.Timeout.Seconds()),
		HasSecret: f.Secret != "", HeaderNames: slices.Sorted(maps.Keys(f.Headers)), TaskQueue: f.TaskQueue,
		CreationTimestamp: f.Created.UnixMilli(), UpdateTimestamp: f.Updated.UnixMilli()}
}

// listFunctions answers GET /functions/v1?<rql> (filters and sorts on id
// and name).
func (s *Server) listFunctions(c *gin.Context) {
	q, err := parseRQL(c.Request.URL.RawQuery)
	if err != nil {
		fail(c, err)
		return
	}
	fs, err := s.store.FindFunctions(c.Request.Context())
	if err != nil {
		fail(c, err)
		return
	}
	page, err := pageOf(fs, q, func(f dispatcher.Function) map[string]string {
		return map[string]string{"id": f.ID, "name": f.Name}
	}, func(f dispatcher.Function) any { return toFunctionResponse(f) })
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, page)
}

func (s *Server) getFunction(c *gin.Context) {
	f, err := s.store.FindFunction(c.Request.Context(), c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, toFunctionResponse(f))
}

func (s *Server) createFunction(c *gin.Context) {
	var req functionRequest
	if !bindJSON(c, &req) {
		return
	}
	var f dispatcher.Function
	if err := toFunctionUpdate(req).Apply(&f); err != nil {
		fail(c, err)
		return
	}
	if err := s.store.CreateFunction(c.Request.Context(), &f); err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, toFunctionResponse(f))
}

func (s *Server) updateFunction(c *gin.Context) {
	var req functionRequest
	if !bindJSON(c, &req) {
		return
	}
	u := toFunctionUpdate(req)
	if u == (dispatcher.FunctionUpdate{}) {
		abort(c, errEmptyBody, "the body changes nothing: give at least one field of the function")
		return
	}
	if err := s.store.UpdateFunction(c.Request.Context(), c.Param("id"), u); err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, affected{1})
}

func (s *Server) deleteFunction(c *gin.Context) {
	if err := s.store.DeleteFunction(c.Request.Context(), c.Param("id")); err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, affected{1})
}
