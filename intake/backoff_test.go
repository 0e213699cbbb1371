package intake

import "testing"

// Failures after a success are reported once a minute at most: a
// Temporal that came back slowly failed and succeeded in turn, and each
// turn logged its warning again.
func TestBackoffReportsFlappingOnce(t *testing.T) {
	var b Backoff
	reported := 0
	for range 10 {
		if _, first := b.Failed(); first {
			reported++
		}
		b.Succeeded()
	}
	if reported != 1 {
		t.Errorf("ten outages in a row were reported %d times, want once", reported)
	}
	if waiting, _ := b.waiting(); waiting {
		t.Error("waiting after a success")
	}
}
