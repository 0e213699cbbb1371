package testenv

import (
	"testing"
	"time"
)

// Eventually polls cond every few milliseconds until it returns "" (done)
// or within fails the test with cond's last answer, which says what it
// was still waiting for.
func Eventually(t testing.TB, within time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	wait := 5 * time.Millisecond
	for {
		why := cond()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", within, why)
		}
		time.Sleep(wait)
		wait = min(2*wait, 200*time.Millisecond)
	}
}
