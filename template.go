package dispatcher

import "time"

// Template is a mail template in Go template syntax: Subject and Text are
// rendered with text/template, HTML with html/template, all with the event
// as .event and its content as .content.
type Template struct {
	ID      string
	Name    string // unique
	Subject string
	Text    string
	HTML    string
	Created time.Time
	Updated time.Time
}

// TemplateUpdate holds the fields a template update may change; nil means
// "leave as it is".
type TemplateUpdate struct {
	Name    *string
	Subject *string
	Text    *string
	HTML    *string
}

// Apply changes t as u says and validates the result.
func (u TemplateUpdate) Apply(t *Template) error {
	set(&t.Name, u.Name)
	set(&t.Subject, u.Subject)
	set(&t.Text, u.Text)
	set(&t.HTML, u.HTML)
	return t.validate(u.Name != nil)
}

// Validate checks that a template has a name and a subject, a body, and
// that each part parses.
func (t *Template) Validate() error { return t.validate(true) }

// validate is Validate, checking the name's characters only when named is
// set (a create, or an update that sets it): a template stored before
// their rules tightened still takes an update of its other fields.
func (t *Template) validate(named bool) error {
	if err := checkText("name", t.Name, "subject", t.Subject, "text", t.Text, "html", t.HTML); err != nil {
		return err
	}
	var err error
	if named {
		err = validateName(t.Name)
	}
	switch {
	case t.Name == "":
		return Errorf(EREQUIRED, "name: is required")
	case err != nil:
		return err
	case t.Subject == "":
		return Errorf(EREQUIRED, "subject: is required")
	case t.Text == "" && t.HTML == "":
		return Errorf(EREQUIRED, "text or html: a template needs a body")
	}
	return ParseTemplate(*t)
}
