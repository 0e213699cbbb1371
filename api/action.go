package api

import (
	"context"
	"net/http"
	"strings"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/wire"
	"github.com/gin-gonic/gin"
)

// createAction answers POST /dispatchers/v1/{id}/actions.
func (s *Server) createAction(c *gin.Context) {
	req, ok := s.bindAction(c)
	if !ok {
		return
	}
	a, err := req.ToDomain("")
	if err != nil {
		fail(c, err)
		return
	}
	ifUpdated, ok := s.ifDispatcherMatch(c)
	if !ok {
		return
	}
	at, err := s.store.CreateAction(c.Request.Context(), c.Param("dispatcherId"), &a, ifUpdated)
	if err != nil {
		fail(c, err)
		return
	}
	setETag(c, at)
	c.JSON(http.StatusOK, wire.FromAction(a))
}

// updateAction answers PUT /dispatchers/v1/{id}/actions/{actionId}.
func (s *Server) updateAction(c *gin.Context) {
	req, ok := s.bindAction(c)
	if !ok {
		return
	}
	u, err := req.Update("")
	if err != nil {
		fail(c, err)
		return
	}
	if u == (dispatcher.ActionUpdate{}) {
		abort(c, errEmptyBody, "the body changes nothing (null leaves a field as it is, but removes description, data, startTimestamp and retryPolicy): give at least one field of the action")
		return
	}
	ifUpdated, ok := s.ifDispatcherMatch(c)
	if !ok {
		return
	}
	at, err := s.store.UpdateAction(c.Request.Context(), c.Param("dispatcherId"), c.Param("actionId"), u, ifUpdated)
	if err != nil {
		fail(c, byName(err, req, ""))
		return
	}
	setETag(c, at)
	c.JSON(http.StatusOK, wire.Affected{AffectedRecords: 1})
}

// deleteAction answers DELETE /dispatchers/v1/{id}/actions/{actionId}.
func (s *Server) deleteAction(c *gin.Context) {
	ifUpdated, ok := s.ifDispatcherMatch(c)
	if !ok {
		return
	}
	at, err := s.store.DeleteAction(c.Request.Context(), c.Param("dispatcherId"), c.Param("actionId"), ifUpdated)
	if err != nil {
		fail(c, err)
		return
	}
	setETag(c, at)
	c.JSON(http.StatusOK, wire.Affected{AffectedRecords: 1})
}

// byName names templateName in an error about the templateId it was
// resolved to, when the body (at prefix in it) named the template so: before, a task
// action's update with a templateName was refused for a templateId the
// client had not sent.
func byName(err error, r wire.ActionRequest, prefix string) error {
	msg, ok := strings.CutPrefix(dispatcher.ErrorMessage(err), prefix+"templateId:")
	if !ok || r.TemplateName == nil || dispatcher.ErrorCode(err) != dispatcher.EINVALID {
		return err
	}
	return dispatcher.Errorf(dispatcher.EINVALID, "%stemplateName:%s", prefix, msg)
}

// bindAction reads an action body and resolves its templateName; on
// failure it has answered.
func (s *Server) bindAction(c *gin.Context) (wire.ActionRequest, bool) {
	var req wire.ActionRequest
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
// Extra Horizon CLI may send instead, or beside it: then both must name
// the same template.
func (s *Server) resolveTemplateName(ctx context.Context, r *wire.ActionRequest, prefix string) error {
	if r.TemplateName == nil {
		return nil
	}
	if r.Type != nil && *r.Type == dispatcher.ActionTask {
		return dispatcher.Errorf(dispatcher.EINVALID, "%stemplateName: a task action has no template", prefix)
	}
	id, err := s.store.TemplateIDByName(ctx, *r.TemplateName)
	if dispatcher.ErrorCode(err) == dispatcher.ENOTFOUND {
		return dispatcher.Errorf(dispatcher.EINVALID, "%stemplateName: no template named %q", prefix, *r.TemplateName)
	}
	if err != nil {
		return err
	}
	if r.TemplateID != nil && *r.TemplateID != "" && *r.TemplateID != id {
		return dispatcher.Errorf(dispatcher.EINVALID, "%stemplateName: template %q is %s, not the templateId %s; give one of them, or both naming the same template",
			prefix, *r.TemplateName, id, *r.TemplateID)
	}
	r.TemplateID = &id
	return nil
}
