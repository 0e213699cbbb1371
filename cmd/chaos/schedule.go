package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// kill is one planned fault: Comp is SIGKILLed once At events have been
// accepted, and started again, on the same address, after Down.
type kill struct {
	Comp string
	At   int
	Down time.Duration
}

// plan spreads the kills of comps over n events: the i-th of k at about
// i/(k+1) of them (25 %, 50 %, 75 % for three, each ±5 %), each down
// 1.5–2.5 s. The same seed gives the same plan.
func plan(seed int64, comps []string, n int) []kill {
	r := rand.New(rand.NewPCG(uint64(seed), 0xc4a05))
	ks := make([]kill, len(comps))
	prev := 1
	for i, c := range comps {
		frac := float64(i+1)/float64(len(comps)+1) + (r.Float64()-0.5)/10
		at := min(max(int(frac*float64(n)), prev, 1), n)
		ks[i] = kill{Comp: c, At: at, Down: 1500*time.Millisecond + time.Duration(r.Int64N(int64(time.Second)))}
		prev = at
	}
	return ks
}

// killed is what became of a planned kill.
type killed struct {
	kill
	Pid      int
	Accepted int           // events accepted when it struck
	Back     time.Duration // from the kill until every process was ready again
}

func (k killed) String() string {
	return fmt.Sprintf("%s (pid %d) at %d accepted events, down %.1fs, all ready again after %.1fs",
		k.Comp, k.Pid, k.Accepted, k.Down.Seconds(), k.Back.Seconds())
}

// strike carries out the plan as events are accepted, counting the
// kills done in struck. A process that
// does not come back is an error: the run cannot go on without it.
func strike(ctx context.Context, t *topology, ks []kill, accepted func() int, struck *atomic.Int64, prog *progress) ([]killed, error) {
	var done []killed
	for _, k := range ks {
		for accepted() < k.At {
			select {
			case <-ctx.Done():
				return done, ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
		kd := killed{kill: k, Accepted: accepted()}
		t0 := time.Now()
		kd.Pid = t.kill(k.Comp)
		prog.note("SIGKILL %s (pid %d) at %d accepted events; restarting it in %.1fs", k.Comp, kd.Pid, kd.Accepted, k.Down.Seconds())
		select {
		case <-ctx.Done():
			return done, ctx.Err()
		case <-time.After(k.Down):
		}
		if err := t.start(ctx, k.Comp); err != nil {
			return done, fmt.Errorf("%s did not come back: %w", k.Comp, err)
		}
		kd.Back = time.Since(t0)
		prog.note("%s is back; every process ready %.1fs after the kill", k.Comp, kd.Back.Seconds())
		done = append(done, kd)
		struck.Add(1)
	}
	return done, nil
}
