//go:build race

package sandbox

// raceEnabled: under the race detector sync.Pool drops some of what is
// put back, on purpose, so a pooled template may be parsed again.
const raceEnabled = true
