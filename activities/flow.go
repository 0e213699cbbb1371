package activities

import (
	"context"
	"fmt"

	"go.temporal.io/sdk/temporal"

	"github.com/dispatcherhq/dispatcher"
)

// FunctionFlow returns the current flow control of the function
// in.Name, for its Gate (workflows.Gate), which reads it with a local
// activity while calls wait: a change to a function's limits reaches its
// gate this way, without a restart. A function that does not exist (any
// more) has none. On a cache hit it costs one version query.
func (a *Effects) FunctionFlow(ctx context.Context, in dispatcher.FunctionFlowInput) (dispatcher.Flow, error) {
	ctx = Acting(ctx) // the gate's tenant
	f, err := a.cache.function(ctx, in.Name, 0)
	switch {
	case dispatcher.ErrorCode(err) == dispatcher.ENOTFOUND:
		return dispatcher.Flow{}, nil
	case err != nil:
		return dispatcher.Flow{}, temporal.NewApplicationError(fmt.Sprintf("loading function %q: %s", in.Name, storeTrouble(ctx, err)), dispatcher.FailureStore)
	}
	if rl := f.Flow.RateLimit; rl != nil && rl.PerSecond < dispatcher.MinRatePerSecond {
		// Saved before it was refused: the interval overflowed, and the
		// limit let every call through. Clamped here, in the result the
		// Gate's history records, rather than in EmissionInterval, which
		// the Gate's replay of its older histories computes again.
		r := *rl
		r.PerSecond = dispatcher.MinRatePerSecond
		f.Flow.RateLimit = &r
	}
	return f.Flow, nil
}
