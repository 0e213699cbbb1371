package main

import (
	"strings"
	"testing"
)

// effects returns records applying every action of events 1..n once.
func effects(n int) []record {
	var out []record
	for seq := 1; seq <= n; seq++ {
		id := eventID(seq)
		for _, a := range eventActions() {
			ch := chanHTTP
			if a == actionMail {
				ch = chanMail
			}
			out = append(out, record{Channel: ch, Key: "dispatch-" + id + "/" + a, Event: id, Action: a, Deliveries: 1, Applied: 1})
		}
	}
	return out
}

func completed(n int) map[string]execution {
	out := map[string]execution{}
	for seq := 1; seq <= n; seq++ {
		out[eventID(seq)] = execution{EventID: eventID(seq), WorkflowID: "dispatch-" + eventID(seq), Status: "completed"}
	}
	return out
}

func TestJudge(t *testing.T) {
	tests := []struct {
		name   string
		change func(rs []record, runs map[string]execution) ([]record, map[string]execution)
		want   string // the verdict line without duration_s
		pass   bool
	}{
		{
			name:   "every effect once, every dispatch completed",
			change: func(rs []record, runs map[string]execution) ([]record, map[string]execution) { return rs, runs },
			want:   "events=2 effects=6 lost=0 duplicated=0 failed=0 redelivered_http=0 redelivered_mail=0 conflicts=0",
			pass:   true,
		},
		{
			name: "redeliveries and conflicts are figures, not errors",
			change: func(rs []record, runs map[string]execution) ([]record, map[string]execution) {
				rs[0].Redelivered, rs[0].Conflicts, rs[2].Redelivered = 2, 1, 1
				return rs, runs
			},
			want: "events=2 effects=6 lost=0 duplicated=0 failed=0 redelivered_http=2 redelivered_mail=1 conflicts=1",
			pass: true,
		},
		{
			name: "an effect never applied is lost",
			change: func(rs []record, runs map[string]execution) ([]record, map[string]execution) {
				rs[1].Applied = 0 // chaos-000001/quick was delivered, but never took effect
				return rs, runs
			},
			want: "events=2 effects=5 lost=1 duplicated=0 failed=0",
		},
		{
			name: "the same action under a second key is duplicated",
			change: func(rs []record, runs map[string]execution) ([]record, map[string]execution) {
				extra := rs[2]
				extra.Key += "/replay-x"
				return append(rs, extra), runs
			},
			want: "events=2 effects=7 lost=0 duplicated=1 failed=0",
		},
		{
			name: "one key applied twice is duplicated",
			change: func(rs []record, runs map[string]execution) ([]record, map[string]execution) {
				rs[0].Applied = 2
				return rs, runs
			},
			want: "events=2 effects=7 lost=0 duplicated=1 failed=0",
		},
		{
			name: "a failed dispatch counts though its effects were applied",
			change: func(rs []record, runs map[string]execution) ([]record, map[string]execution) {
				runs[eventID(2)] = execution{EventID: eventID(2), Status: "failed", ErrorClasses: []string{"HTTPPermanent"}}
				return rs, runs
			},
			want: "events=2 effects=6 lost=0 duplicated=0 failed=1",
		},
		{
			name: "an event without any run failed",
			change: func(rs []record, runs map[string]execution) ([]record, map[string]execution) {
				delete(runs, eventID(1))
				return rs, runs
			},
			want: "events=2 effects=6 lost=0 duplicated=0 failed=1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, runs := tt.change(effects(2), completed(2))
			v := judge(snapshot{Records: rs}, runs, 2)
			if got := v.line(); !strings.HasPrefix(got, tt.want) {
				t.Errorf("line = %q, want it to begin %q", got, tt.want)
			}
			if v.passed() != tt.pass {
				t.Errorf("passed = %v, want %v", v.passed(), tt.pass)
			}
		})
	}
}

func TestJudgeEvidence(t *testing.T) {
	rs := effects(1)
	rs[0].Applied = 0
	v := judge(snapshot{Records: rs}, map[string]execution{eventID(1): {EventID: eventID(1), Status: "failed", ErrorClasses: []string{"HTTPPermanent"}}}, 1)
	var b strings.Builder
	v.explain(&b)
	for _, want := range []string{"LOST 1 effects, e.g. chaos-000001/slow", "FAILED 1 dispatches (0 of them had every effect applied at the sinks): 1 × failed [HTTPPermanent]"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("explanation lacks %q:\n%s", want, b.String())
		}
	}
}
