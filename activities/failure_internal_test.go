package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
)

// untilStoreAnswers tries again while the attempt keeps more than keep of
// its time, and noStoreWait keeps all of it: one try. Before, keep+wait
// overflowed for noStoreWait, and a mail's first attempt (a local
// activity, holding its dispatch's workflow task) waited out its whole
// minute for a store that was down instead of failing at once.
func TestUntilStoreAnswersKeeps(t *testing.T) {
	down := dispatcher.Errorf(dispatcher.EUNAVAILABLE, "the store is down")
	for _, tt := range []struct {
		name  string
		keep  time.Duration
		tries int // at least
		most  int
	}{
		{"noStoreWait: no wait", noStoreWait, 1, 1},
		{"a keep longer than the attempt: no wait", time.Hour, 1, 1},
		{"a short keep: tries again", 100 * time.Millisecond, 2, 10},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			tries := 0
			err := untilStoreAnswers(ctx, tt.keep, func() error {
				tries++
				return down
			})
			if err != down || tries < tt.tries || tries > tt.most {
				t.Errorf("%d tries, %v; want %d to %d, the store's error", tries, err, tt.tries, tt.most)
			}
		})
	}
}

// A store's error shows readers of executions the domain error only: the
// driver's cause (a host, a user) is the operators', in the logs.
func TestStoreTroubleHidesTheCause(t *testing.T) {
	err := fmt.Errorf("loading: %w", &dispatcher.Caused{Err: dispatcher.Errorf(dispatcher.EUNAVAILABLE, "the database is unavailable or busy: try again"),
		Cause: errors.New("failed to connect to `user=dispatcher database=dispatcher`: 10.0.0.5:5432")})
	if got := storeTrouble(context.Background(), err); got != "unavailable: the database is unavailable or busy: try again" {
		t.Errorf("storeTrouble = %q", got)
	}
	// A driver's text that no domain error stands for: the schema's
	// names after a rollback, a permission. Before, shown as it was.
	if got := storeTrouble(context.Background(), errors.New(`ERROR: column "flow" does not exist (SQLSTATE 42703)`)); strings.Contains(got, "flow") {
		t.Errorf("storeTrouble of a driver's error = %q", got)
	}
}
