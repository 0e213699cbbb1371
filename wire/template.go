package wire

import (
	"encoding/json"

	"github.com/dispatcherhq/dispatcher"
)

// TemplateRequest is the body of POST and PUT /templates/v1.
type TemplateRequest struct {
	Name    *string `json:"name"`
	Subject *string `json:"subject"`
	Text    *string `json:"text"`
	HTML    *string `json:"html"`
}

// Template is a template in an answer.
type Template struct {
	ID                string `json:"id"`
	Name              string `json:"name"`
	Subject           string `json:"subject"`
	Text              string `json:"text,omitempty"`
	HTML              string `json:"html,omitempty"`
	CreationTimestamp int64  `json:"creationTimestamp"`
	UpdateTimestamp   int64  `json:"updateTimestamp"`
}

// RenderRequest is the body of POST /templates/v1/{id}/render: a sample
// event as POST /events/v1 takes it in a body, in any envelope.
type RenderRequest struct {
	Event json.RawMessage `json:"event"`
}

// Rendered is a template rendered against a sample event.
type Rendered struct {
	Subject string `json:"subject"`
	Text    string `json:"text,omitempty"`
	HTML    string `json:"html,omitempty"`
}

// Update converts a create or update request.
func (r TemplateRequest) Update() dispatcher.TemplateUpdate {
	return dispatcher.TemplateUpdate{Name: r.Name, Subject: r.Subject, Text: r.Text, HTML: r.HTML}
}

// FromTemplate converts a template for an answer.
func FromTemplate(t dispatcher.Template) Template {
	return Template{ID: t.ID, Name: t.Name, Subject: t.Subject, Text: t.Text, HTML: t.HTML,
		CreationTimestamp: t.Created.UnixMilli(), UpdateTimestamp: t.Updated.UnixMilli()}
}

// FromRendered converts a rendered mail for an answer.
func FromRendered(m dispatcher.RenderedMail) Rendered {
	return Rendered{Subject: m.Subject, Text: m.Text, HTML: m.HTML}
}
