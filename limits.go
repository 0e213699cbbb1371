package dispatcher

import (
	"encoding/json"
	"strconv"
	"time"
)

// Limits of a configuration. A dispatch loads the whole configuration of
// its event type as one local-activity result, recorded in its history,
// and Temporal fails a workflow task whose payload passes 2 MiB: one
// oversized action would fail every dispatch of its type. These limits
// are checked when a configuration is saved, so that what is saved can
// always run.
const (
	// MaxAttempts bounds RetryPolicy.MaximumAttempts, which Temporal takes
	// as an int32 where 0 means "retry forever".
	MaxAttempts = 100
	// MaxBackoffCoefficient bounds RetryPolicy.BackoffCoefficient.
	MaxBackoffCoefficient = 100
	// MaxRetryInterval bounds RetryPolicy.InitialInterval and
	// MaximumInterval.
	MaxRetryInterval = 30 * 24 * time.Hour

	// MaxActionData bounds an action's data, in bytes of JSON.
	MaxActionData = 64 << 10
	// MaxRecipients bounds each list of a mail action's recipients.
	MaxRecipients = 50
	// MaxResolvedRecipients bounds the addresses one mail goes to, to, cc
	// and bcc together, once its templated recipients are resolved: a
	// template that names a list in the event expands into as many
	// addresses as the producer sent, which the admin who saved the
	// action does not control, and an SMTP server need accept no more
	// than 100 recipients per message (RFC 5321 §4.5.3.1.8).
	MaxResolvedRecipients = 100
	// MaxTags bounds the tags of a dispatcher and of a task action.
	MaxTags = 50
	// MaxActions bounds the actions of one dispatcher.
	MaxActions = 50
	// MaxEventTypeConfig bounds the configuration of one event type: the
	// size of json.Marshal of all its dispatchers with their actions,
	// which is what a dispatch records (an eighth of Temporal's limit,
	// which the rest of the history shares). The store checks it in the
	// transaction of the write.
	MaxEventTypeConfig = 256 << 10
	// MaxStartAhead bounds how far ahead of the time it is saved a task
	// action's startTimestamp may be: Temporal caps a timer at 100 years,
	// and one further would fire early, at the cap.
	MaxStartAhead = 36500 * 24 * time.Hour
)

// The most dispatchers, templates and functions one tenant may have, far
// above what a tenant uses: so that one tenant cannot fill the database
// that all share. A list of templates or functions is filtered, sorted
// and paged on their ids and names in memory, which these bound too.
const (
	MaxDispatchers = 10_000
	MaxTemplates   = 10_000
	MaxFunctions   = 10_000
)

// MaxAPIKeys bounds a tenant's API keys that are not revoked (expired ones
// included: a list shows them) and MaxAPIKeyEventTypes the event types one key may be held to: a list
// of keys is read whole, every request a key makes reads its row, and
// one tenant must not fill the database that all share.
const (
	MaxAPIKeys          = 1_000
	MaxAPIKeyEventTypes = 100
)

// MaxEventBatch bounds the CloudEvents of one batch request: each one is a
// workflow start that the request waits for, so a larger batch would hold
// the request, and Temporal, for longer than a client waits.
const MaxEventBatch = 100

// The defaults of a retry policy's fields, for the messages that say what
// 0 means; they must equal those of workflows.DefaultRetryPolicy, which
// applies them.
const (
	DefaultAttempts           = 10
	DefaultBackoffCoefficient = 2
)

// validateRetryPolicy checks p against the limits. Intervals are written
// in milliseconds, as the API takes them.
func validateRetryPolicy(p *RetryPolicy) error {
	if p == nil {
		return nil
	}
	if p.MaximumAttempts < 0 || p.MaximumAttempts > MaxAttempts {
		return Errorf(EINVALID, "retryPolicy.maximumAttempts: must be between 1 and %d (0 means the default, %d), not %d",
			MaxAttempts, DefaultAttempts, p.MaximumAttempts)
	}
	if c := p.BackoffCoefficient; c != 0 && !(c >= 1 && c <= MaxBackoffCoefficient) {
		return Errorf(EINVALID, "retryPolicy.backoffCoefficient: must be between 1 and %d (0 means the default, %d), not %v",
			MaxBackoffCoefficient, DefaultBackoffCoefficient, c)
	}
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"initialIntervalMs", p.InitialInterval}, {"maximumIntervalMs", p.MaximumInterval}} {
		if f.d < 0 || f.d > MaxRetryInterval {
			return RetryIntervalError(f.name, millis(f.d))
		}
	}
	if p.InitialInterval > 0 && p.MaximumInterval > 0 && p.MaximumInterval < p.InitialInterval {
		return Errorf(EINVALID, "retryPolicy.maximumIntervalMs: must not be below initialIntervalMs (%s), not %s",
			millis(p.InitialInterval), millis(p.MaximumInterval))
	}
	return nil
}

// RetryIntervalError is the error of a retry interval beyond the limits;
// field is its name in the API (initialIntervalMs), ms its value in
// milliseconds. The API checks the milliseconds it reads before turning
// them into a time.Duration, which a huge value would overflow.
func RetryIntervalError(field, ms string) error {
	return Errorf(EINVALID, "retryPolicy.%s: must be between 0 and %d (30 days), not %s", field, MaxRetryInterval.Milliseconds(), ms)
}

// millis writes d in milliseconds, with a fraction only when it has one.
func millis(d time.Duration) string {
	if d%time.Millisecond == 0 {
		return strconv.FormatInt(d.Milliseconds(), 10)
	}
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', -1, 64)
}

// validateSizes checks an action's data and recipient lists against the
// limits; validateTask checks its tags.
func (a *Action) validateSizes() error {
	if len(a.Data) > MaxActionData {
		return Errorf(EINVALID, "data: must be at most %d bytes of JSON, not %d", MaxActionData, len(a.Data))
	}
	for _, l := range []struct {
		field string
		addrs []string
	}{{"to", a.Recipients.To}, {"cc", a.Recipients.CC}, {"bcc", a.Recipients.BCC}} {
		if len(l.addrs) > MaxRecipients {
			return Errorf(EINVALID, "recipients.%s: at most %d addresses, not %d", l.field, MaxRecipients, len(l.addrs))
		}
	}
	return nil
}

// ConfigSize returns the size the configuration of an event type made of
// ds has as a dispatch records it, to compare with MaxEventTypeConfig.
func ConfigSize(ds []Dispatcher) (int, error) {
	b, err := json.Marshal(ds)
	return len(b), err
}

// ConfigTooBig is the error of a write that would take the configuration
// of eventType to size bytes, beyond MaxEventTypeConfig; field names what
// the write changed.
func ConfigTooBig(field, eventType string, size int) error {
	return Errorf(EINVALID, "%s: the configuration of event type %q would be %d bytes of JSON; one event type may hold at most %d",
		field, eventType, size, MaxEventTypeConfig)
}
