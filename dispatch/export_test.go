package dispatch

import "time"

// SetAwaitPoll sets how long AwaitDispatch waits before it heartbeats and
// looks again, until the test ends.
func SetAwaitPoll(t interface{ Cleanup(func()) }, d time.Duration) {
	old := awaitPoll
	awaitPoll = d
	t.Cleanup(func() { awaitPoll = old })
}
