package intake

import (
	"testing"
	"time"
)

// Failures are reported at most once a minute, and at least once a
// minute while they go on: a Temporal that came back slowly failed and
// succeeded in turn, and each turn logged its warning again; and an
// outage that began within a minute of a reported blip must still be
// reported.
func TestBackoffReportsOnceAMinute(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	b := Backoff{now: func() time.Time { return now }}
	reports := func(failures int, every time.Duration) (n int) {
		for range failures {
			if _, report := b.Failed(); report {
				n++
			}
			now = now.Add(every)
		}
		return n
	}
	// Ten outages of a second, a second apart: one report.
	n := 0
	for range 10 {
		n += reports(1, time.Second)
		b.Succeeded()
	}
	if n != 1 {
		t.Errorf("ten blips were reported %d times, want once", n)
	}
	// An outage beginning 10 s after that report, lasting 5 minutes: one
	// report a minute, from the first one past the minute.
	if n := reports(300, time.Second); n != 5 {
		t.Errorf("an outage of 5 minutes was reported %d times, want 5", n)
	}
}

// Failures count as going on only while they keep coming: a process whose
// failing attempts stopped (another took what failed here) is not failing
// for ever. Before, its AMQP source stayed not ready until a dead letter
// of its own succeeded.
func TestBackoffFailingSince(t *testing.T) {
	began := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	now := began
	b := Backoff{now: func() time.Time { return now }}
	if _, failing := b.FailingSince(time.Minute); failing {
		t.Fatal("failing before any failure")
	}
	b.Failed()
	now = now.Add(10 * time.Second)
	b.Failed()
	now = now.Add(59 * time.Second)
	if since, failing := b.FailingSince(time.Minute); !failing || !since.Equal(began) {
		t.Errorf("59 s after the last failure: failing %v since %v, want since %v", failing, since, began)
	}
	now = now.Add(time.Second)
	if _, failing := b.FailingSince(time.Minute); failing {
		t.Error("a minute after the last failure, still failing")
	}
}
