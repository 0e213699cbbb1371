package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// verdict is what a run proves. Lost, Duplicated and Failed must be 0.
type verdict struct {
	Events int // events accepted (each must have every action once)
	// Effects counts the times an effect took place at a sink.
	Effects int
	// Lost counts logical effects (event × action) that never took
	// place: no key of theirs was applied.
	Lost int
	// Duplicated counts logical effects that took place more than once:
	// under more than one key (distinct Idempotency-Keys or Message-IDs
	// for the same event and action), or one key applied twice.
	Duplicated int
	// Failed counts events whose latest dispatch did not end Completed
	// (failed, canceled, still running at the deadline, or never run).
	Failed int
	// RedeliveredHTTP and RedeliveredMail count deliveries of a key that
	// had been applied: the retries that idempotency absorbs.
	RedeliveredHTTP, RedeliveredMail int
	// Conflicts counts 409s: a call whose key was still in flight.
	Conflicts int
	Duration  time.Duration
	// Kills counts the processes SIGKILLed and restarted.
	Kills int

	// The evidence behind the figures.
	LostEffects   []string    // "chaos-000012/slow"
	Duplicates    []string    // "chaos-000012/mail: key1 (applied 1×), key2 (applied 1×)"
	FailedRuns    []execution // latest runs that did not complete; Status "" when none was listed
	FailedApplied int         // failed events whose every effect took place nonetheless
	Strays        []string    // keys applied for events that were never sent
	Malformed     []string
	MailSlowed    int
	MailDropped   int
	// RedeliveredBy splits the redeliveries by action (slow, quick, mail).
	RedeliveredBy map[string]int
}

// judge draws the verdict from what the sinks saw and the latest run of
// each of the n events.
func judge(s snapshot, latest map[string]execution, n int) verdict {
	v := verdict{Events: n, MailSlowed: s.MailSlowed, MailDropped: s.MailDropped, Malformed: s.Malformed, RedeliveredBy: map[string]int{}}
	sent := map[string]bool{}
	for seq := 1; seq <= n; seq++ {
		sent[eventID(seq)] = true
	}
	applied := map[string][]record{} // by event/action: the keys that took effect
	for _, r := range s.Records {
		v.Conflicts += r.Conflicts
		v.RedeliveredBy[r.Action] += r.Redelivered
		if r.Channel == chanHTTP {
			v.RedeliveredHTTP += r.Redelivered
		} else {
			v.RedeliveredMail += r.Redelivered
		}
		if r.Applied == 0 {
			continue
		}
		v.Effects += r.Applied
		if !sent[r.Event] {
			v.Strays = append(v.Strays, fmt.Sprintf("%s %s for event %q", r.Channel, r.Key, r.Event))
			continue
		}
		applied[r.Event+"/"+r.Action] = append(applied[r.Event+"/"+r.Action], r)
	}
	for seq := 1; seq <= n; seq++ {
		id := eventID(seq)
		all := true
		for _, a := range eventActions() {
			rs := applied[id+"/"+a]
			switch {
			case len(rs) == 0:
				v.Lost++
				v.LostEffects = append(v.LostEffects, id+"/"+a)
				all = false
			case len(rs) > 1 || rs[0].Applied > 1:
				v.Duplicated++
				keys := make([]string, len(rs))
				for i, r := range rs {
					keys[i] = fmt.Sprintf("%s (applied %d×)", r.Key, r.Applied)
				}
				v.Duplicates = append(v.Duplicates, id+"/"+a+": "+strings.Join(keys, ", "))
			}
		}
		if x, ok := latest[id]; !ok || x.Status != "completed" {
			v.Failed++
			if !ok {
				x = execution{EventID: id, WorkflowID: "dispatch-" + id}
			}
			v.FailedRuns = append(v.FailedRuns, x)
			if all {
				v.FailedApplied++
			}
		}
	}
	return v
}

// passed reports whether every event had every effect exactly once and
// every dispatch says so.
func (v verdict) passed() bool { return v.Lost == 0 && v.Duplicated == 0 && v.Failed == 0 }

// line is the machine-readable summary, the last line a run prints.
func (v verdict) line() string {
	return fmt.Sprintf("events=%d effects=%d lost=%d duplicated=%d failed=%d redelivered_http=%d redelivered_mail=%d conflicts=%d duration_s=%.0f",
		v.Events, v.Effects, v.Lost, v.Duplicated, v.Failed, v.RedeliveredHTTP, v.RedeliveredMail, v.Conflicts, v.Duration.Seconds())
}

// sampleSize is how many examples of each finding the report shows.
const sampleSize = 10

// explain writes the evidence behind the figures.
func (v verdict) explain(w io.Writer) {
	fmt.Fprintf(w, "sinks: %d effects applied (want %d), %d HTTP and %d mail redeliveries absorbed (slow %d, quick %d, mail %d), %d calls answered 409; "+
		"SMTP faults injected: %d slowed first deliveries, %d dropped connections\n",
		v.Effects, 3*v.Events, v.RedeliveredHTTP, v.RedeliveredMail, v.RedeliveredBy[actionSlow], v.RedeliveredBy[actionQuick], v.RedeliveredBy[actionMail],
		v.Conflicts, v.MailSlowed, v.MailDropped)
	if v.Lost > 0 {
		fmt.Fprintf(w, "LOST %d effects, e.g. %s\n", v.Lost, strings.Join(v.LostEffects[:min(sampleSize, len(v.LostEffects))], ", "))
	}
	for i, d := range v.Duplicates {
		if i == 0 {
			fmt.Fprintf(w, "DUPLICATED %d effects:\n", v.Duplicated)
		}
		if i < sampleSize {
			fmt.Fprintf(w, "  %s\n", d)
		}
	}
	if v.Failed > 0 {
		fmt.Fprintf(w, "FAILED %d dispatches (%d of them had every effect applied at the sinks): %s\n",
			v.Failed, v.FailedApplied, failureGroups(v.FailedRuns))
	}
	if len(v.Strays) > 0 {
		fmt.Fprintf(w, "STRAY effects of events never sent: %s\n", strings.Join(v.Strays[:min(sampleSize, len(v.Strays))], "; "))
	}
	if len(v.Malformed) > 0 {
		fmt.Fprintf(w, "MALFORMED deliveries (%d): %s\n", len(v.Malformed), strings.Join(v.Malformed[:min(sampleSize, len(v.Malformed))], "; "))
	}
}

// failureGroups counts failed runs by status, error classes and failed
// actions: "193 × failed [HTTPPermanent] actions [a1]".
func failureGroups(runs []execution) string {
	groups := map[string]int{}
	for _, x := range runs {
		status := x.Status
		if status == "" {
			status = "never listed"
		}
		groups[fmt.Sprintf("%s %v", status, x.ErrorClasses)]++
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(groups)) {
		parts = append(parts, fmt.Sprintf("%d × %s", groups[k], k))
	}
	return strings.Join(parts, "; ")
}
