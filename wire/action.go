package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/dispatcherhq/dispatcher"
)

// ActionRequest is an action in a request body. Fields that may be
// cleared with null are Optional.
type ActionRequest struct {
	Type           *string                   `json:"type"`
	Name           *string                   `json:"name"`
	Description    Optional[string]          `json:"description"` // null removes it, as "" does
	Recipients     *Recipients               `json:"recipients"`
	TemplateID     *string                   `json:"templateId"`
	TemplateName   *string                   `json:"templateName"` // the Extra Horizon CLI's alternative to templateId
	FunctionName   *string                   `json:"functionName"`
	Data           Optional[json.RawMessage] `json:"data"`
	Tags           *[]string                 `json:"tags"`
	StartTimestamp Optional[json.RawMessage] `json:"startTimestamp"`
	RetryPolicy    Optional[json.RawMessage] `json:"retryPolicy"`
}

// Action is an action in an answer; only its type's fields appear.
type Action struct {
	ID                string          `json:"id"`
	Type              string          `json:"type"`
	Name              string          `json:"name,omitempty"`
	Description       string          `json:"description,omitempty"`
	Recipients        *Recipients     `json:"recipients,omitempty"`
	TemplateID        string          `json:"templateId,omitempty"`
	FunctionName      string          `json:"functionName,omitempty"`
	Data              json.RawMessage `json:"data,omitempty"`
	Tags              []string        `json:"tags,omitempty"`
	StartTimestamp    string          `json:"startTimestamp,omitempty"`
	RetryPolicy       *RetryPolicy    `json:"retryPolicy,omitempty"`
	CreationTimestamp int64           `json:"creationTimestamp,omitempty"`
	UpdateTimestamp   int64           `json:"updateTimestamp,omitempty"`
}

// Recipients of a mail action.
type Recipients struct {
	To  []string `json:"to"`
	CC  []string `json:"cc,omitempty"`
	BCC []string `json:"bcc,omitempty"`
}

// RetryPolicy of an action.
type RetryPolicy struct {
	MaximumAttempts    int     `json:"maximumAttempts,omitempty"`
	InitialIntervalMs  int64   `json:"initialIntervalMs,omitempty"`
	BackoffCoefficient float64 `json:"backoffCoefficient,omitempty"`
	MaximumIntervalMs  int64   `json:"maximumIntervalMs,omitempty"`
}

// ToDomain converts a create request into a validated action; prefix is
// the path of the action in the body ("actions[2]."), for errors.
func (r ActionRequest) ToDomain(prefix string) (dispatcher.Action, error) {
	u, err := r.Update(prefix)
	if err != nil {
		return dispatcher.Action{}, err
	}
	a := dispatcher.Action{Type: value(r.Type)}
	if err := u.Apply(&a); err != nil {
		return a, dispatcher.Prefixed(err, prefix)
	}
	return a, nil
}

// Update converts an update request; prefix is as for ToDomain.
func (r ActionRequest) Update(prefix string) (dispatcher.ActionUpdate, error) {
	u := dispatcher.ActionUpdate{
		Type:         r.Type,
		Name:         r.Name,
		Description:  r.Description.Ptr(),
		TemplateID:   r.TemplateID,
		FunctionName: r.FunctionName,
		Tags:         distinct(r.Tags),
	}
	if r.Recipients != nil {
		rs := r.Recipients.ToDomain()
		u.Recipients = &rs
	}
	if r.Data.Set {
		data := r.Data.Value
		if r.Data.Null {
			data = nil
		}
		// Without the spaces it was sent with: before, a pretty-printed
		// data counted its indentation against the limit, and was stored
		// with it.
		var compact bytes.Buffer
		if json.Compact(&compact, data) == nil {
			data = compact.Bytes()
		}
		u.Data = &data
	}
	if r.StartTimestamp.Set {
		var start *time.Time
		if !r.StartTimestamp.Null {
			t, err := ParseTimestamp(r.StartTimestamp.Value)
			if err != nil {
				return u, dispatcher.Errorf(dispatcher.EINVALID, "%sstartTimestamp: %v", prefix, err)
			}
			// To the second, and said in full: before, "at 2126, not 2126";
			// then, a time less than a second past showed as the limit.
			if limit := time.Now().Add(dispatcher.MaxStartAhead).Truncate(time.Second); t.After(limit) {
				return u, dispatcher.Errorf(dispatcher.EINVALID, "%sstartTimestamp: must be at most 36,500 days ahead, until %s (past Temporal's longest timer, which would fire early), not %s",
					prefix, limit.UTC().Format(time.RFC3339), t.UTC().Format(time.RFC3339Nano))
			}
			start = &t
		}
		u.StartTimestamp = &start
	}
	if r.RetryPolicy.Set {
		var p *dispatcher.RetryPolicy
		if !r.RetryPolicy.Null {
			var err error
			if p, err = parseRetryPolicy(r.RetryPolicy.Value); err != nil {
				return u, dispatcher.Prefixed(err, prefix)
			}
		}
		u.RetryPolicy = &p
	}
	return u, nil
}

// parseRetryPolicy reads a retry policy. Its intervals are checked here,
// before they become time.Durations, which milliseconds beyond about 292
// years overflow (18446744073710 ms wraps to 0.45 ms); the domain checks
// the rest when the action is validated.
func parseRetryPolicy(raw json.RawMessage) (*dispatcher.RetryPolicy, error) {
	var p RetryPolicy
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var typ *json.UnmarshalTypeError
	switch err := dec.Decode(&p); {
	case errors.As(err, &typ) && typ.Field != "":
		return nil, dispatcher.Errorf(dispatcher.EINVALID, "%s", TypeError("retryPolicy.", typ))
	case errors.As(err, &typ): // the policy itself: a string, an array
		return nil, dispatcher.Errorf(dispatcher.EINVALID, "%s", typeMessage("retryPolicy", typ))
	case err != nil:
		const fields = "maximumAttempts, initialIntervalMs, backoffCoefficient, maximumIntervalMs"
		if name, ok := strings.CutPrefix(err.Error(), `json: unknown field "`); ok {
			if err := CheckKeys(raw, &p); err != nil { // a near miss: "did you mean"
				return nil, dispatcher.Prefixed(err, "retryPolicy.")
			}
			return nil, dispatcher.Errorf(dispatcher.EINVALID, "retryPolicy.%s: unknown field; a retry policy has %s", strings.TrimSuffix(name, `"`), fields)
		}
		return nil, dispatcher.Errorf(dispatcher.EINVALID, "retryPolicy: want {%s}: %v", fields, err)
	}
	// The API checks a request's keys (CheckKeys) but not the retry
	// policy's, which it keeps raw: the same rules apply to them here.
	if err := CheckKeys(raw, &p); err != nil {
		return nil, dispatcher.Prefixed(err, "retryPolicy.")
	}
	for _, f := range []struct {
		name string
		ms   int64
	}{{"initialIntervalMs", p.InitialIntervalMs}, {"maximumIntervalMs", p.MaximumIntervalMs}} {
		if f.ms < 0 || f.ms > dispatcher.MaxRetryInterval.Milliseconds() {
			return nil, dispatcher.RetryIntervalError(f.name, strconv.FormatInt(f.ms, 10))
		}
	}
	d := p.ToDomain()
	return &d, nil
}

// ToDomain converts recipients.
func (r Recipients) ToDomain() dispatcher.Recipients {
	return dispatcher.Recipients{To: r.To, CC: r.CC, BCC: r.BCC}
}

// FromRecipients converts recipients for an answer.
func FromRecipients(r dispatcher.Recipients) Recipients {
	return Recipients{To: r.To, CC: r.CC, BCC: r.BCC}
}

// ToDomain converts a retry policy.
func (p RetryPolicy) ToDomain() dispatcher.RetryPolicy {
	return dispatcher.RetryPolicy{
		MaximumAttempts:    p.MaximumAttempts,
		InitialInterval:    time.Duration(p.InitialIntervalMs) * time.Millisecond,
		BackoffCoefficient: p.BackoffCoefficient,
		MaximumInterval:    time.Duration(p.MaximumIntervalMs) * time.Millisecond,
	}
}

// FromRetryPolicy converts a retry policy for an answer.
func FromRetryPolicy(p dispatcher.RetryPolicy) RetryPolicy {
	return RetryPolicy{
		MaximumAttempts:    p.MaximumAttempts,
		InitialIntervalMs:  p.InitialInterval.Milliseconds(),
		BackoffCoefficient: p.BackoffCoefficient,
		MaximumIntervalMs:  p.MaximumInterval.Milliseconds(),
	}
}

// FromAction converts an action for an answer.
func FromAction(a dispatcher.Action) Action {
	out := Action{
		ID:                a.ID,
		Type:              a.Type,
		Name:              a.Name,
		Description:       a.Description,
		TemplateID:        a.TemplateID,
		FunctionName:      a.FunctionName,
		Data:              a.Data,
		Tags:              a.Tags,
		CreationTimestamp: a.Created.UnixMilli(),
		UpdateTimestamp:   a.Updated.UnixMilli(),
	}
	if a.Created.IsZero() {
		out.CreationTimestamp, out.UpdateTimestamp = 0, 0
	}
	if a.Type == dispatcher.ActionMail {
		r := FromRecipients(a.Recipients)
		out.Recipients = &r
	}
	if a.StartTimestamp != nil {
		out.StartTimestamp = a.StartTimestamp.UTC().Format(isoMillis)
	}
	if a.RetryPolicy != nil {
		p := FromRetryPolicy(*a.RetryPolicy)
		out.RetryPolicy = &p
	}
	return out
}
