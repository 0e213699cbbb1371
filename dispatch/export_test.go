package dispatch

import (
	"context"
	"time"
)

// SetSearchAttributesRecheck sets how often SearchAttributesCheck asks
// again once they are usable, until the test ends.
func SetSearchAttributesRecheck(t interface{ Cleanup(func()) }, d time.Duration) {
	old := searchAttributesRecheck
	searchAttributesRecheck = d
	t.Cleanup(func() { searchAttributesRecheck = old })
}

// RoomForBulk is roomForBulk, for the tests.
func (e *Executions) RoomForBulk(ctx context.Context) error {
	e.bulkStarts.Lock()
	defer e.bulkStarts.Unlock()
	return e.roomForBulk(ctx)
}
