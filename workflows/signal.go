package workflows

import "go.temporal.io/sdk/workflow"

// receive takes into v the signal a selector found ready on c, and
// reports whether there was one. The SDK drops a signal whose payload does
// not decode (a `temporal workflow signal` with garbage input), and Receive
// then waits for the next one, holding up every timer and signal of the
// workflow until it comes: a Gate whose leases no longer expire, a key's
// release not taken, a bulk replay stalled. From the marker
// changeSignalDropped on, receive reports false instead; a run that
// dropped one before it replays as it ran.
func receive(ctx workflow.Context, c workflow.ReceiveChannel, v any) bool {
	if c.ReceiveAsync(v) {
		return true
	}
	if workflow.GetVersion(ctx, changeSignalDropped, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		c.Receive(ctx, v)
		return true
	}
	workflow.GetLogger(ctx).Warn("Signal ignored: its payload does not decode", "Signal", c.Name())
	return false
}
