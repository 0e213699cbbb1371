// Package activities holds the side effects of a dispatch: loading the
// configuration, sending mail over SMTP and calling HTTP task functions.
// The workflows in package workflows call them by name; they never do I/O
// themselves.
package activities

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/dispatcherhq/dispatcher"
)

// Store is what the activities read from the configuration database.
type Store interface {
	// ConfigVersion returns a number that is bumped in the same
	// transaction as every change to dispatchers, actions, templates or
	// functions, so caches keyed by it are never stale.
	ConfigVersion(ctx context.Context) (int64, error)
	// DispatchersByEventType returns the dispatchers for eventType with
	// their actions in order.
	DispatchersByEventType(ctx context.Context, eventType string) ([]dispatcher.Dispatcher, error)
	// FindTemplate returns the template with id, or a *dispatcher.Error
	// with code ENOTFOUND.
	FindTemplate(ctx context.Context, id string) (dispatcher.Template, error)
	// FindFunctionByName returns the function named name, Secret
	// included, or a *dispatcher.Error with code ENOTFOUND.
	FindFunctionByName(ctx context.Context, name string) (dispatcher.Function, error)
	// MailSent reports whether RecordMailSent recorded messageID.
	MailSent(ctx context.Context, messageID string) (bool, error)
	// RecordMailSent records that the SMTP server accepted the mail with
	// messageID; recording it twice keeps the first.
	RecordMailSent(ctx context.Context, messageID string, at time.Time) error
}

// Options are the dependencies of the activities.
type Options struct {
	Store Store
	// HTTPClient calls task functions; nil means a client without a
	// global timeout (each call is bounded by its function's timeout and
	// the activity's deadline).
	HTTPClient *http.Client
	// SMTPURL is where mail goes: smtp://user:pass@host:port, or
	// smtps:// for implicit TLS, with ?starttls=required|opportunistic|none
	// (default opportunistic). Empty means mail actions fail as temporary
	// until it is configured.
	SMTPURL string
	// MailFrom is the sender of every mail, e.g. "Dispatcher <no-reply@example.com>".
	MailFrom string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Cache is the configuration cache to share (with the intake); nil
	// means one of their own.
	Cache *Cache
}

// Effects runs the side effects of a dispatch. Every exported method is an
// activity, registered under its own name (worker.RegisterActivity(e)):
// the names workflows.Activity* and workflows.Local* call.
type Effects struct {
	store    Store
	http     *http.Client
	smtp     *smtpConfig // nil when no SMTP server is configured
	mailFrom string
	now      func() time.Time
	cache    *Cache
}

// New returns the activities with their dependencies. It fails when the
// SMTP URL or sender is malformed, so a misconfigured worker stops at
// start-up rather than failing every mail.
func New(o Options) (*Effects, error) {
	if o.Store == nil {
		return nil, errors.New("activities: a Store is required")
	}
	a := &Effects{store: o.Store, http: o.HTTPClient, mailFrom: o.MailFrom, now: o.Now, cache: o.Cache}
	if a.cache == nil {
		a.cache = NewCache(o.Store)
	}
	if a.http == nil {
		a.http = &http.Client{}
	}
	if a.now == nil {
		a.now = time.Now
	}
	if o.SMTPURL != "" {
		c, err := parseSMTPURL(o.SMTPURL)
		if err != nil {
			return nil, err
		}
		if err := validateSender(o.MailFrom); err != nil {
			return nil, err
		}
		a.smtp = c
	}
	return a, nil
}
