package wire_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/wire"
)

func TestActionRequestLimits(t *testing.T) {
	const task = `"type":"task","functionName":"erase"`
	tests := []struct {
		name    string
		body    string
		wantErr string // "" for valid
	}{
		{"policy within the limits", `{` + task + `,"retryPolicy":{"maximumAttempts":100,"initialIntervalMs":1000,"backoffCoefficient":100,"maximumIntervalMs":2592000000}}`, ""},
		{"attempts that wrap to 0 as int32", `{` + task + `,"retryPolicy":{"maximumAttempts":4294967296}}`,
			"actions[3].retryPolicy.maximumAttempts: must be between 1 and 100 (0 means the default, 10), not 4294967296"},
		{"coefficient", `{` + task + `,"retryPolicy":{"backoffCoefficient":1000}}`,
			"actions[3].retryPolicy.backoffCoefficient: must be between 1 and 100 (0 means the default, 2), not 1000"},
		{"largest int64 interval", `{` + task + `,"retryPolicy":{"initialIntervalMs":9223372036854775807}}`,
			"actions[3].retryPolicy.initialIntervalMs: must be between 0 and 2592000000 (30 days), not 9223372036854775807"},
		// ms × 1e6 wraps around int64 to 448384 ns: the range is checked
		// before the conversion, not after.
		{"interval that wraps as a duration", `{` + task + `,"retryPolicy":{"maximumIntervalMs":18446744073710}}`,
			"actions[3].retryPolicy.maximumIntervalMs: must be between 0 and 2592000000 (30 days), not 18446744073710"},
		{"negative interval", `{` + task + `,"retryPolicy":{"maximumIntervalMs":-5}}`,
			"actions[3].retryPolicy.maximumIntervalMs: must be between 0 and 2592000000 (30 days), not -5"},
		{"maximum below initial", `{` + task + `,"retryPolicy":{"initialIntervalMs":5000,"maximumIntervalMs":1000}}`,
			"actions[3].retryPolicy.maximumIntervalMs: must not be below initialIntervalMs (5000), not 1000"},
		// Before: `retryPolicy: want {…}: json: unknown field "attempts"`.
		{"unknown key", `{` + task + `,"retryPolicy":{"attempts":3}}`, "actions[3].retryPolicy.attempts: unknown field; a retry policy has maximumAttempts, initialIntervalMs"},
		// Before: `retryPolicy: want {…}: json: cannot unmarshal string into Go value of type wire.RetryPolicy`.
		{"not an object", `{` + task + `,"retryPolicy":"x"}`, "actions[3].retryPolicy: must be an object, not string"},
		{"a key nearly right", `{` + task + `,"retryPolicy":{"maximumAttempt":3}}`, `actions[3].retryPolicy.maximumAttempt: unknown field; did you mean "maximumAttempts"?`},
		{"big data", `{` + task + `,"data":{"k":"` + strings.Repeat("x", 65536) + `"}}`, "actions[3].data: must be at most 65536 bytes of JSON, not 65544"},
		// Counted without its indentation: before, refused at 85781.
		{"big data pretty-printed", `{` + task + `,"data":{` + strings.Repeat("\n        ", 4000) + `"k":"` + strings.Repeat("x", 60000) + `"` + "\n}}", ""},
		{"many tags", `{` + task + `,"tags":["` + strings.Repeat(`t","`, 50) + `t"]}`, ""}, // one tag, named 51 times
		{"too many tags", `{` + task + `,"tags":[` + manyTags(51) + `]}`, "actions[3].tags: at most 50 tags, not 51"},
		{"many recipients", `{"type":"mail","templateId":"0123456789abcdef01234567","recipients":{"to":["` +
			strings.Repeat(`a@example.com","`, 50) + `a@example.com"]}}`, "actions[3].recipients.to: at most 50 addresses, not 51"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r wire.ActionRequest
			if err := json.Unmarshal([]byte(tt.body), &r); err != nil {
				t.Fatal(err)
			}
			_, err := r.ToDomain("actions[3].")
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if dispatcher.ErrorCode(err) != dispatcher.EINVALID || !strings.Contains(dispatcher.ErrorMessage(err), tt.wantErr) {
				t.Fatalf("got %v, want an EINVALID error containing %q", err, tt.wantErr)
			}
		})
	}
}

// A dispatcher of a configuration a dispatch recorded has no times: its
// timestamps are 0, as its actions' are. Before, they were the year 1.
func TestFromDispatcherWithoutTimes(t *testing.T) {
	d := wire.FromDispatcher(dispatcher.Dispatcher{ID: "d1", Actions: []dispatcher.Action{{ID: "a1"}}})
	if d.CreationTimestamp != 0 || d.UpdateTimestamp != 0 || d.Actions[0].CreationTimestamp != 0 {
		t.Errorf("timestamps %d, %d, action %d; want 0", d.CreationTimestamp, d.UpdateTimestamp, d.Actions[0].CreationTimestamp)
	}
}

// manyTags is n distinct tags, as JSON array elements.
func manyTags(n int) string {
	tags := make([]string, n)
	for i := range tags {
		tags[i] = fmt.Sprintf(`"t%d"`, i)
	}
	return strings.Join(tags, ",")
}

// A time is an ISO-8601 date-time, a date (its midnight UTC) or epoch
// milliseconds, a number or a string of digits, as Extra Horizon's
// reference takes it. Before, the date and the digits were refused. Too
// few digits for milliseconds since 1973 are refused, whether a string or
// a number.
func TestParseTimestamp(t *testing.T) {
	for raw, want := range map[string]string{
		`"2030-01-01T09:00:00.5+01:00"`: "2030-01-01T08:00:00.5Z",
		`"2030-01-01"`:                  "2030-01-01T00:00:00Z",
		`1893456000000`:                 "2030-01-01T00:00:00Z",
		`"1893456000000"`:               "2030-01-01T00:00:00Z",
		`"+1893456000000"`:              "error",
		`"20300101"`:                    "error", // a basic ISO date, not 1970
		`"1893456000"`:                  "error", // seconds, not 1970
		`1893456000`:                    "error", // as a number too: before, 1970, and a startTimestamp ran at once
		`0`:                             "error",
		`-1`:                            "error",
		`100000000000`:                  "1973-03-03T09:46:40Z",
		`"2030-1-1"`:                    "error",
		`"2030-01-01T09:00:00+24:00"`:   "error", // before, a day earlier
		`"2030-01-01T09:00:00-23:59"`:   "2030-01-02T08:59:00Z",
		`"2030-01-01T09:00:00"`:         "error", // no zone: whose 9 o'clock?
		`"99999-01-01"`:                 "error",
		`"253402300800000"`:             "error", // the year 10000
		`true`:                          "error",
		`"2030-01-01t09:00:00z"`:        "2030-01-01T09:00:00Z", // RFC 3339 allows lower case
	} {
		got, err := wire.ParseTimestamp(json.RawMessage(raw))
		if s := got.Format(time.RFC3339Nano); err != nil && want != "error" || err == nil && s != want {
			t.Errorf("ParseTimestamp(%s) = %s, %v; want %s", raw, s, err, want)
		}
	}
}

// A startTimestamp less than a second past the limit is refused with two
// dates that differ: before, both were cut to the second, and read alike.
// A date-time of the right form with a field out of range says which.
func TestParseTimestampSaysWhatIsOutOfRange(t *testing.T) {
	for raw, want := range map[string]string{
		`"2030-02-30T09:00:00Z"`: `"2030-02-30T09:00:00Z" is not a date-time: day out of range`,
		`"2030-01-01T24:00:00Z"`: `"2030-01-01T24:00:00Z" is not a date-time: hour out of range`,
		`"2030-13-01T09:00:00Z"`: `"2030-13-01T09:00:00Z" is not a date-time: month out of range`,
		// Not a range: the general message, with the text as given.
		`"2030-01-01T09:00:00Zabc"`: `"2030-01-01T09:00:00Zabc" is not an ISO-8601 date-time such as 2030-01-31T09:00:00.000Z, a date, nor epoch milliseconds`,
	} {
		if _, err := wire.ParseTimestamp(json.RawMessage(raw)); err == nil || err.Error() != want {
			t.Errorf("ParseTimestamp(%s): %v, want %s", raw, err, want)
		}
	}
}

func TestStartTimestampPastTheLimitSaysBoth(t *testing.T) {
	past := time.Now().Add(dispatcher.MaxStartAhead + 150*time.Millisecond).UnixMilli()
	r := wire.ActionRequest{StartTimestamp: wire.Optional[json.RawMessage]{Set: true, Value: json.RawMessage(fmt.Sprint(past))}}
	_, err := r.Update("")
	msg := dispatcher.ErrorMessage(err)
	_, rest, _ := strings.Cut(msg, "until ")
	limit, _, _ := strings.Cut(rest, " (")
	_, given, _ := strings.Cut(msg, "), not ")
	if !strings.HasPrefix(msg, "startTimestamp: must be at most 36,500 days ahead, until ") || limit == "" || limit == given {
		t.Fatalf("err = %v, want the limit and the time given, apart", err)
	}
}

// An event's creationTimestamp too small for milliseconds since 1973 (a
// producer's seconds) is taken as it always was, unlike a startTimestamp:
// it schedules nothing, and refused, the event was lost to a dead letter.
func TestEventTimeInSeconds(t *testing.T) {
	var e wire.Event
	if err := json.Unmarshal([]byte(`{"id":"e","type":"t","content":{},"creationTimestamp":1733500000}`), &e); err != nil {
		t.Fatal(err)
	}
	ev, err := e.ToDomain(time.Now())
	if err != nil || !ev.Time.Equal(time.UnixMilli(1733500000)) {
		t.Errorf("event time %v, %v; want %v", ev.Time, err, time.UnixMilli(1733500000).UTC())
	}
}

// Data is kept without the spaces it was sent with, its values as sent.
func TestActionRequestDataCompacted(t *testing.T) {
	var r wire.ActionRequest
	if err := json.Unmarshal([]byte(`{"type":"task","functionName":"erase","data":{
		"id": "{{ .event.content.userId }}",  "n": 1.50, "s": "a  b"
	}}`), &r); err != nil {
		t.Fatal(err)
	}
	a, err := r.ToDomain("")
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"id":"{{ .event.content.userId }}","n":1.50,"s":"a  b"}`; string(a.Data) != want {
		t.Errorf("data %s, want %s", a.Data, want)
	}
}
