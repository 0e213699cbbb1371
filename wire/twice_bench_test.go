package wire_test

import (
	"testing"

	"github.com/dispatcherhq/dispatcher/wire"
)

// BenchmarkTwice is the twice check's cost on an event as the intake
// takes it: one without a key twice (the bytes' look alone), and one whose
// content repeats an envelope key (the walk of its tokens too).
func BenchmarkTwice(b *testing.B) {
	for _, bb := range []struct{ name, body string }{
		{"plain", `{"id":"b-1","type":"user_deleted","content":{"userId":"u-1","n":1}}`},
		{"walked", `{"id":"b-1","type":"user_deleted","content":{"type":"x","n":1}}`},
	} {
		b.Run(bb.name, func(b *testing.B) {
			body := []byte(bb.body)
			for b.Loop() {
				if p, _ := wire.Twice(body, &wire.Event{}); p != "" {
					b.Fatal(p)
				}
			}
		})
	}
}
