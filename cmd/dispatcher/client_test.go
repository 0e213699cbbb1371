package main

import (
	"testing"
	"time"
)

func TestTimeArg(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		in, want string
		json     string
		wantErr  bool
	}{
		{"", "", "", false},
		{"24h", "2026-04-30T12:00:00Z", `"2026-04-30T12:00:00Z"`, false},
		{"1767225600000", "1767225600000", `1767225600000`, false},
		{"2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", `"2026-01-01T00:00:00Z"`, false},
		{"yesterday", "", "", true},
	} {
		got, err := timeArg("from", tt.in, now)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("timeArg(%q) = %q, %v; want %q (error %v)", tt.in, got, err, tt.want, tt.wantErr)
		}
		if j := string(jsonTime(got)); j != tt.json {
			t.Errorf("jsonTime(%q) = %s, want %s", got, j, tt.json)
		}
	}
}

func TestWorkflowIDArg(t *testing.T) {
	for in, want := range map[string]string{
		"dispatch-evt-1": "dispatch-evt-1", // a workflow ID stays as it is
		"evt-1":          "dispatch-evt-1", // an event id becomes its dispatch's
	} {
		if got := workflowIDArg(in); got != want {
			t.Errorf("workflowIDArg(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFilterFlagsQuery(t *testing.T) {
	f := filterFlags{status: "failed", dispatcherID: "d1", errorClass: "HTTPPermanent", from: "1h"}
	q, err := f.query(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if got := q.Encode(); got != "dispatcherId=d1&errorClass=HTTPPermanent&from=2026-05-01T11%3A00%3A00Z&status=failed" {
		t.Errorf("query = %s", got)
	}
	if (&filterFlags{}).set() || !f.set() {
		t.Error("set() does not tell filters from none")
	}
}
