// Package activities holds the side effects of a dispatch: loading the
// configuration, sending mail over SMTP and calling HTTP task functions.
// The workflows in package workflows call them by name; they never do I/O
// themselves.
package activities

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
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
	// ClaimMail claims the delivery of the mail with messageID for owner
	// until until, unless RecordMailSent recorded it (Sent), or another
	// owner's claim lasts past now (HeldUntil). Two attempts of a mail
	// may run at once: a worker stalled past its workflow task's timeout
	// goes on with its first attempt while another worker runs it again.
	// A gated call's first attempt claims its permit so too (claimCall).
	ClaimMail(ctx context.Context, messageID, owner string, now, until time.Time) (dispatcher.MailClaim, error)
	// ReleaseMail ends owner's claim of a mail it did not send, so that
	// the next attempt need not wait for the claim to expire.
	ReleaseMail(ctx context.Context, messageID, owner string) error
	// RecordMailSent records that the SMTP server accepted the mail with
	// messageID; recording it twice keeps the first.
	RecordMailSent(ctx context.Context, messageID string, at time.Time) error
}

// Options are the dependencies of the activities.
type Options struct {
	Store Store
	// Outbound is where task functions may go: every connection a call
	// opens, and every redirect, is checked against it. Its zero value
	// allows https to public addresses only, and no task queue.
	Outbound dispatcher.Outbound
	// Resolver looks up the hosts of task functions; nil means
	// net.DefaultResolver.
	Resolver dispatcher.Resolver
	// WrapTransport, when not nil, wraps the transport of task calls
	// (e.g. with tracing). There is no global timeout: each call is
	// bounded by its function's timeout and the activity's deadline.
	WrapTransport func(http.RoundTripper) http.RoundTripper
	// RootCAs verifies the certificates of https functions; nil means
	// the system's.
	RootCAs *x509.CertPool
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
	// LaterReplay returns the id of a replay of the dispatch workflowID
	// asked for after replay run ("" for the dispatch's first run): an
	// action of a run reset from a run of run's is not made
	// (FailureSuperseded) when there is one. Nil: it is made.
	LaterReplay func(ctx context.Context, workflowID, run string) (string, error)
	// FirstCallSlots are the slots the tenants share for function calls
	// made as first attempts at once (tenantShare); 0: no bound.
	FirstCallSlots int
}

// Effects runs the side effects of a dispatch. Every exported method is an
// activity, registered under its own name (worker.RegisterActivity(e)):
// the names workflows.Activity* and workflows.Local* call.
type Effects struct {
	store    Store
	http     *functionClients
	outbound dispatcher.Outbound
	smtp     *smtpConfig // nil when no SMTP server is configured
	mailFrom string
	now      func() time.Time
	cache    *Cache
	later    func(ctx context.Context, workflowID, run string) (string, error)
	// firstCalls: tenantShare is one per process, as the slots it shares.
	firstCalls *tenantShare
}

// New returns the activities with their dependencies. It fails when the
// SMTP URL or sender is malformed, so a misconfigured worker stops at
// start-up rather than failing every mail.
func New(o Options) (*Effects, error) {
	if o.Store == nil {
		return nil, errors.New("activities: a Store is required")
	}
	a := &Effects{store: o.Store, outbound: o.Outbound, mailFrom: o.MailFrom, now: o.Now, cache: o.Cache, later: o.LaterReplay,
		firstCalls: &tenantShare{slots: o.FirstCallSlots}}
	if a.cache == nil {
		a.cache = NewCache(o.Store)
	}
	resolver := o.Resolver
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	a.http = &functionClients{policy: o.Outbound, newClient: func(p dispatcher.Outbound) *http.Client {
		g := &guard{policy: p, resolver: resolver, dialer: net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}}
		return newFunctionClient(g, o.RootCAs, o.WrapTransport)
	}}
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
