package api

import (
	"net/http"

	"github.com/dispatcherhq/dispatcher"
	"github.com/gin-gonic/gin"
)

// templateRequest is the body of POST and PUT /templates/v1.
type templateRequest struct {
	Name    *string `json:"name"`
	Subject *string `json:"subject"`
	Text    *string `json:"text"`
	HTML    *string `json:"html"`
}

type templateResponse struct {
	ID                string `json:"id"`
	Name              string `json:"name"`
	Subject           string `json:"subject"`
	Text              string `json:"text,omitempty"`
	HTML              string `json:"html,omitempty"`
	CreationTimestamp int64  `json:"creationTimestamp"`
	UpdateTimestamp   int64  `json:"updateTimestamp"`
}

// renderRequest is the body of POST /templates/v1/{id}/render: a sample
// event in any accepted envelope's normalised form.
type renderRequest struct {
	Event eventJSON `json:"event"`
}

type renderResponse struct {
	Subject string `json:"subject"`
	Text    string `json:"text,omitempty"`
	HTML    string `json:"html,omitempty"`
}

func toTemplateUpdate(r templateRequest) dispatcher.TemplateUpdate {
	return dispatcher.TemplateUpdate{Name: r.Name, Subject: r.Subject, Text: r.Text, HTML: r.HTML}
}

func toTemplateResponse(t dispatcher.Template) templateResponse {
	return templateResponse{ID: t.ID, Name: t.Name, Subject: t.Subject, Text: t.Text, HTML: t.HTML,
		CreationTimestamp: t.Created.UnixMilli(), UpdateTimestamp: t.Updated.UnixMilli()}
}

// listTemplates answers GET /templates/v1?<rql> (filters and sorts on id
// and name).
func (s *Server) listTemplates(c *gin.Context) {
	q, err := parseRQL(c.Request.URL.RawQuery)
	if err != nil {
		fail(c, err)
		return
	}
	ts, err := s.store.FindTemplates(c.Request.Context())
	if err != nil {
		fail(c, err)
		return
	}
	page, err := pageOf(ts, q, func(t dispatcher.Template) map[string]string {
		return map[string]string{"id": t.ID, "name": t.Name}
	}, func(t dispatcher.Template) any { return toTemplateResponse(t) })
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, page)
}

func (s *Server) getTemplate(c *gin.Context) {
	t, err := s.store.FindTemplate(c.Request.Context(), c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, toTemplateResponse(t))
}

func (s *Server) createTemplate(c *gin.Context) {
	var req templateRequest
	if !bindJSON(c, &req) {
		return
	}
	var t dispatcher.Template
	if err := toTemplateUpdate(req).Apply(&t); err != nil {
		fail(c, err)
		return
	}
	if err := s.store.CreateTemplate(c.Request.Context(), &t); err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, toTemplateResponse(t))
}

func (s *Server) updateTemplate(c *gin.Context) {
	var req templateRequest
	if !bindJSON(c, &req) {
		return
	}
	u := toTemplateUpdate(req)
	if u == (dispatcher.TemplateUpdate{}) {
		abort(c, errEmptyBody, "the body changes nothing: give at least one of name, subject, text, html")
		return
	}
	if err := s.store.UpdateTemplate(c.Request.Context(), c.Param("id"), u); err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, affected{1})
}

func (s *Server) deleteTemplate(c *gin.Context) {
	if err := s.store.DeleteTemplate(c.Request.Context(), c.Param("id")); err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, affected{1})
}

// renderTemplate renders a stored template against a sample event: a dry
// run that sends nothing.
func (s *Server) renderTemplate(c *gin.Context) {
	var req renderRequest
	if !bindJSON(c, &req) {
		return
	}
	t, err := s.store.FindTemplate(c.Request.Context(), c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	ev, err := req.Event.toEvent()
	if err != nil {
		fail(c, err)
		return
	}
	out, err := dispatcher.RenderMail(t, ev)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, renderResponse{Subject: out.Subject, Text: out.Text, HTML: out.HTML})
}
