package dispatcher_test

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
)

// task returns a valid task action changed by edit.
func task(edit func(a *dispatcher.Action)) dispatcher.Action {
	a := dispatcher.Action{Type: dispatcher.ActionTask, FunctionName: "erase"}
	edit(&a)
	return a
}

// mail returns a valid mail action changed by edit.
func mail(edit func(a *dispatcher.Action)) dispatcher.Action {
	a := dispatcher.Action{Type: dispatcher.ActionMail, TemplateID: "0123456789abcdef01234567",
		Recipients: dispatcher.Recipients{To: []string{"a@example.com"}}}
	edit(&a)
	return a
}

func policy(p dispatcher.RetryPolicy) func(a *dispatcher.Action) {
	return func(a *dispatcher.Action) { a.RetryPolicy = &p }
}

func addresses(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("a%d@example.com", i)
	}
	return out
}

func words(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("t%d", i)
	}
	return out
}

// dataOf returns a JSON object of exactly n bytes.
func dataOf(n int) json.RawMessage {
	const frame = len(`{"k":""}`)
	return json.RawMessage(`{"k":"` + strings.Repeat("x", n-frame) + `"}`)
}

func TestActionLimits(t *testing.T) {
	const day = 24 * time.Hour
	tests := []struct {
		name    string
		action  dispatcher.Action
		wantErr string // "" for valid
	}{
		// Retry policy: the workflow narrows maximumAttempts to int32, so
		// 4294967296 became 0, which Temporal reads as "retry forever".
		{"default policy", task(policy(dispatcher.RetryPolicy{})), ""},
		{"attempts at the limit", task(policy(dispatcher.RetryPolicy{MaximumAttempts: 100})), ""},
		{"one attempt", task(policy(dispatcher.RetryPolicy{MaximumAttempts: 1})), ""},
		{"attempts that wrap to 0", task(policy(dispatcher.RetryPolicy{MaximumAttempts: 4294967296})),
			"retryPolicy.maximumAttempts: must be between 1 and 100 (0 means the default, 10), not 4294967296"},
		{"attempts above the limit", task(policy(dispatcher.RetryPolicy{MaximumAttempts: 101})), "retryPolicy.maximumAttempts: must be between 1 and 100"},
		{"negative attempts", task(policy(dispatcher.RetryPolicy{MaximumAttempts: -1})), "retryPolicy.maximumAttempts: must be between 1 and 100 (0 means the default, 10), not -1"},
		{"coefficient 1", task(policy(dispatcher.RetryPolicy{BackoffCoefficient: 1})), ""},
		{"coefficient at the limit", task(policy(dispatcher.RetryPolicy{BackoffCoefficient: 100})), ""},
		{"coefficient below 1", task(policy(dispatcher.RetryPolicy{BackoffCoefficient: 0.5})),
			"retryPolicy.backoffCoefficient: must be between 1 and 100 (0 means the default, 2), not 0.5"},
		{"coefficient above the limit", task(policy(dispatcher.RetryPolicy{BackoffCoefficient: 1e6})), "retryPolicy.backoffCoefficient: must be between 1 and 100"},
		{"coefficient NaN", task(policy(dispatcher.RetryPolicy{BackoffCoefficient: math.NaN()})), "retryPolicy.backoffCoefficient: must be between 1 and 100"},
		{"negative coefficient", task(policy(dispatcher.RetryPolicy{BackoffCoefficient: -2})), "retryPolicy.backoffCoefficient:"},
		{"intervals at the limit", task(policy(dispatcher.RetryPolicy{InitialInterval: 30 * day, MaximumInterval: 30 * day})), ""},
		{"initial interval too long", task(policy(dispatcher.RetryPolicy{InitialInterval: 30*day + time.Millisecond})),
			"retryPolicy.initialIntervalMs: must be between 0 and 2592000000 (30 days), not 2592000001"},
		{"negative initial interval", task(policy(dispatcher.RetryPolicy{InitialInterval: -time.Second})), "retryPolicy.initialIntervalMs: must be between 0 and 2592000000 (30 days), not -1000"},
		{"maximum interval too long", task(policy(dispatcher.RetryPolicy{MaximumInterval: 31 * day})), "retryPolicy.maximumIntervalMs: must be between 0 and 2592000000 (30 days), not 2678400000"},
		{"negative maximum interval", task(policy(dispatcher.RetryPolicy{MaximumInterval: -1})), "retryPolicy.maximumIntervalMs: must be between 0 and 2592000000 (30 days), not -0.000001"},
		{"maximum below initial", task(policy(dispatcher.RetryPolicy{InitialInterval: time.Minute, MaximumInterval: time.Second})),
			"retryPolicy.maximumIntervalMs: must not be below initialIntervalMs (60000), not 1000"},
		{"maximum equal to initial", task(policy(dispatcher.RetryPolicy{InitialInterval: time.Minute, MaximumInterval: time.Minute})), ""},
		{"maximum alone", task(policy(dispatcher.RetryPolicy{MaximumInterval: time.Millisecond})), ""},
		{"mail policies too", mail(policy(dispatcher.RetryPolicy{MaximumAttempts: 1000})), "retryPolicy.maximumAttempts:"},

		// Size: the whole configuration of an event type is one recorded
		// activity result, so one big action must not reach Temporal's limit.
		{"data at the limit", task(func(a *dispatcher.Action) { a.Data = dataOf(65536) }), ""},
		{"data above the limit", task(func(a *dispatcher.Action) { a.Data = dataOf(65537) }), "data: must be at most 65536 bytes of JSON, not 65537"},
		{"megabyte of data", task(func(a *dispatcher.Action) { a.Data = dataOf(1 << 20) }), "data: must be at most 65536 bytes of JSON, not 1048576"},
		{"recipients at the limit", mail(func(a *dispatcher.Action) { a.Recipients.To = addresses(50) }), ""},
		{"too many to", mail(func(a *dispatcher.Action) { a.Recipients.To = addresses(51) }), "recipients.to: at most 50 addresses, not 51"},
		{"too many cc", mail(func(a *dispatcher.Action) { a.Recipients.CC = addresses(51) }), "recipients.cc: at most 50 addresses, not 51"},
		{"too many bcc", mail(func(a *dispatcher.Action) { a.Recipients.BCC = addresses(60) }), "recipients.bcc: at most 50 addresses, not 60"},
		{"tags at the limit", task(func(a *dispatcher.Action) { a.Tags = words(50) }), ""},
		{"too many tags", task(func(a *dispatcher.Action) { a.Tags = words(51) }), "tags: at most 50 tags, not 51"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.action
			wantError(t, a.Validate(), tt.wantErr)
		})
	}
}

// Updates go through the same checks: an update that sets a bad policy
// is refused like a create.
func TestActionUpdateLimits(t *testing.T) {
	a := task(func(*dispatcher.Action) {})
	p := &dispatcher.RetryPolicy{MaximumAttempts: 4294967296}
	err := dispatcher.ActionUpdate{RetryPolicy: &p}.Apply(&a)
	wantError(t, err, "retryPolicy.maximumAttempts: must be between 1 and 100")
}

func TestDispatcherLimits(t *testing.T) {
	actions := func(n int) []dispatcher.Action {
		out := make([]dispatcher.Action, n)
		for i := range out {
			out[i] = task(func(*dispatcher.Action) {})
		}
		return out
	}
	tests := []struct {
		name       string
		dispatcher dispatcher.Dispatcher
		wantErr    string
	}{
		{"actions at the limit", dispatcher.Dispatcher{EventType: "e", Actions: actions(50)}, ""},
		{"too many actions", dispatcher.Dispatcher{EventType: "e", Actions: actions(51)}, "actions: a dispatcher holds at most 50 actions, not 51"},
		{"tags at the limit", dispatcher.Dispatcher{EventType: "e", Tags: words(50)}, ""},
		{"too many tags", dispatcher.Dispatcher{EventType: "e", Tags: words(51)}, "tags: at most 50 tags, not 51"},
		{"an action's limit is prefixed", dispatcher.Dispatcher{EventType: "e", Actions: []dispatcher.Action{
			task(func(*dispatcher.Action) {}), task(func(a *dispatcher.Action) { a.Data = dataOf(70000) })}},
			"actions[1].data: must be at most 65536 bytes of JSON, not 70000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.dispatcher
			wantError(t, d.Validate(), tt.wantErr)
		})
	}
	tags := words(51)
	d := dispatcher.Dispatcher{EventType: "e"}
	wantError(t, dispatcher.DispatcherUpdate{Tags: &tags}.Apply(&d), "tags: at most 50 tags, not 51")
}

func TestCheckReplayRate(t *testing.T) {
	for _, tt := range []struct {
		rate    float64
		wantErr string
	}{
		{0, ""},
		{dispatcher.MinReplayRate, ""},
		{1, ""},
		{dispatcher.MaxReplayRate, ""},
		{dispatcher.MinReplayRate / 2, "rate: must be between 0.01 and 100 replays per second (0 means 10), not 0.005"},
		{1e-300, "rate: must be between 0.01 and 100"},
		{-1, "rate: must be between 0.01 and 100"},
		{dispatcher.MaxReplayRate + 1, "not 101"},
		{math.NaN(), "not NaN"},
		{math.Inf(1), "not +Inf"},
	} {
		err := dispatcher.CheckReplayRate(tt.rate)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("CheckReplayRate(%g) = %v, want nil", tt.rate, err)
		case tt.wantErr != "" && (dispatcher.ErrorCode(err) != dispatcher.EINVALID || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("CheckReplayRate(%g) = %v, want an EINVALID error containing %q", tt.rate, err, tt.wantErr)
		}
	}
}

// The templated values of an action are checked when it is saved: before,
// a syntax error in data or a recipient was accepted, and every event
// then failed the action with a TemplateError.
func TestActionTemplatesCheckedWhenSaved(t *testing.T) {
	for _, tt := range []struct {
		name    string
		action  dispatcher.Action
		wantErr string
	}{
		{"data", task(func(a *dispatcher.Action) { a.Data = json.RawMessage(`{"x":"{{ .event.content.x "}`) }), "data.x: line 1: unclosed action"},
		{"nested data", task(func(a *dispatcher.Action) {
			a.Data = json.RawMessage(`{"a":[1,{"b":"ok {{ .event.id }}"},"{{ nope .event.id }}"]}`)
		}), `data.a[2]: line 1: function "nope" not defined`},
		{"recipient", mail(func(a *dispatcher.Action) {
			a.Recipients.CC = []string{"b@example.com", "{{ .event.content.email"}
		}), "recipients.cc[1]: line 1: unclosed action"},
		{"valid templates", task(func(a *dispatcher.Action) {
			a.Data = json.RawMessage(`{"id":"{{ .event.content.userId }}","at":"{{ formatTime .event.time \"2006\" }}"}`)
		}), ""},
		{"valid recipient", mail(func(a *dispatcher.Action) { a.Recipients.To = []string{"{{ .event.content.email }}"} }), ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantError(t, tt.action.Validate(), tt.wantErr)
		})
	}
}
