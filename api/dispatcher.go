package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/wire"
	"github.com/gin-gonic/gin"
)

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
	c.JSON(http.StatusOK, page(ds, total, q, func(d dispatcher.Dispatcher) any { return wire.FromDispatcher(d) }))
}

// getDispatcher answers GET /dispatchers/v1/{id}, an extension of the
// Extra Horizon API (which finds one dispatcher with ?eq(id,…)).
func (s *Server) getDispatcher(c *gin.Context) {
	d, err := s.store.FindDispatcher(c.Request.Context(), c.Param("dispatcherId"))
	if err != nil {
		fail(c, err)
		return
	}
	setETag(c, d.Updated)
	c.JSON(http.StatusOK, wire.FromDispatcher(d))
}

// createDispatcher answers POST /dispatchers/v1.
func (s *Server) createDispatcher(c *gin.Context) {
	var req wire.DispatcherRequest
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
	d, err := req.ToDomain()
	if err != nil {
		fail(c, err)
		return
	}
	if err := s.store.CreateDispatcher(c.Request.Context(), &d); err != nil {
		fail(c, err)
		return
	}
	setETag(c, d.Updated)
	c.JSON(http.StatusOK, wire.FromDispatcher(d))
}

// updateDispatcher answers PUT /dispatchers/v1/{id}. An actions key in the
// body is ignored: actions have their own endpoints.
func (s *Server) updateDispatcher(c *gin.Context) {
	var req wire.DispatcherUpdate
	if !bindJSON(c, &req) {
		return
	}
	u := req.Update()
	if u.Empty() {
		abort(c, errEmptyBody, "the body changes nothing (null leaves name, eventType, tags and enabled as they are, and removes description, ordering and filter): give at least one of name, description, eventType, tags, ordering, filter, enabled")
		return
	}
	ifUpdated, ok := s.ifDispatcherMatch(c)
	if !ok {
		return
	}
	at, err := s.store.UpdateDispatcher(c.Request.Context(), c.Param("dispatcherId"), u, ifUpdated)
	if err != nil {
		fail(c, err)
		return
	}
	setETag(c, at)
	c.JSON(http.StatusOK, wire.Affected{AffectedRecords: 1})
}

// batchDispatcher answers POST /dispatchers/v1/{id}/batch: changes of the
// dispatcher and its actions in one transaction, which events see all
// of or none of. It answers with the dispatcher as they left it.
func (s *Server) batchDispatcher(c *gin.Context) {
	var req wire.DispatcherBatch
	if !bindJSON(c, &req) {
		return
	}
	ctx := c.Request.Context()
	for i := range req.UpdateActions {
		if err := s.resolveTemplateName(ctx, &req.UpdateActions[i].ActionRequest, "updateActions["+strconv.Itoa(i)+"]."); err != nil {
			fail(c, err)
			return
		}
	}
	for i := range req.CreateActions {
		if err := s.resolveTemplateName(ctx, &req.CreateActions[i], "createActions["+strconv.Itoa(i)+"]."); err != nil {
			fail(c, err)
			return
		}
	}
	b, err := req.ToDomain()
	if err != nil {
		fail(c, err)
		return
	}
	if b.Empty() {
		abort(c, errEmptyBody, "the batch changes nothing: give at least one of dispatcher, deleteActions, updateActions, createActions")
		return
	}
	ifUpdated, ok := s.ifDispatcherMatch(c)
	if !ok {
		return
	}
	d, err := s.store.ApplyBatch(ctx, c.Param("dispatcherId"), &b, ifUpdated)
	if err != nil {
		for i, u := range req.UpdateActions {
			err = byName(err, u.ActionRequest, "updateActions["+strconv.Itoa(i)+"].")
		}
		for i, r := range req.CreateActions {
			err = byName(err, r, "createActions["+strconv.Itoa(i)+"].")
		}
		fail(c, err)
		return
	}
	setETag(c, d.Updated)
	c.JSON(http.StatusOK, wire.FromDispatcher(d))
}

// deleteDispatcher answers DELETE /dispatchers/v1/{id}.
func (s *Server) deleteDispatcher(c *gin.Context) {
	ifUpdated, ok := s.ifDispatcherMatch(c)
	if !ok {
		return
	}
	if err := s.store.DeleteDispatcher(c.Request.Context(), c.Param("dispatcherId"), ifUpdated); err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, wire.Affected{AffectedRecords: 1})
}

// ifDispatcherMatch is ifMatch for the dispatcher of the route, whose
// version its actions' routes are matched against too.
func (s *Server) ifDispatcherMatch(c *gin.Context) (time.Time, bool) {
	id := c.Param("dispatcherId")
	return ifMatch(c, "dispatcher", id, func(ctx context.Context) (time.Time, error) {
		d, err := s.store.FindDispatcher(ctx, id)
		return d.Updated, err
	})
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
