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
