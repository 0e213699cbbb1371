package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// op sends item seq and waits until it is done: it returns how long the
// intake (the start request) took and how long until done, both from the
// moment it was sent.
type op func(ctx context.Context, seq int) (intake, total time.Duration, err error)

// load is the outcome of driving n items with closed-loop callers.
type load struct {
	N       int
	Elapsed time.Duration   // first send to last done
	Intake  []time.Duration // sorted
	Total   []time.Duration // sorted
}

// drive runs op for seq first..first+n-1 with conc callers, each sending
// its next item once the previous one is done, so conc items are in
// flight at any time. The first error stops it.
func drive(ctx context.Context, label string, first, n, conc int, do op, prog *progress) (load, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next, sent, done atomic.Int64
	intake := make([]time.Duration, n)
	total := make([]time.Duration, n)
	stopProgress := prog.start(label, n, &sent, &done)
	defer stopProgress()

	start := time.Now()
	var wg sync.WaitGroup
	for range min(conc, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				sent.Add(1)
				in, tot, err := do(ctx, first+i)
				if err != nil {
					cancel(fmt.Errorf("item %d: %w", first+i, err))
					return
				}
				intake[i], total[i] = in, tot
				done.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := context.Cause(ctx); err != nil {
		return load{}, err
	}
	slices.Sort(intake)
	slices.Sort(total)
	return load{N: n, Elapsed: elapsed, Intake: intake, Total: total}, nil
}

// perSecond is the throughput of the run.
func (l load) perSecond() float64 { return float64(l.N) / l.Elapsed.Seconds() }

// percentile returns the nearest-rank p-th percentile of sorted ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := int(float64(len(ds))*p/100+0.999999) - 1
	return ds[max(0, min(i, len(ds)-1))]
}

// progress prints what a phase is doing: one line rewritten in place on
// a terminal, a line every few seconds otherwise.
type progress struct {
	w   io.Writer
	tty bool
	mu  sync.Mutex
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

// note prints one line.
func (p *progress) note(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "bench: "+format+"\n", args...)
}

// start reports sent and done of n until the returned func is called.
func (p *progress) start(label string, n int, sent, done *atomic.Int64) func() {
	every := 5 * time.Second
	if p.tty {
		every = 250 * time.Millisecond
	}
	began := time.Now()
	line := func() string {
		d := done.Load()
		return fmt.Sprintf("bench: %-22s sent %5d/%d  done %5d  %6.1f/s  %4.0fs",
			label, sent.Load(), n, d, float64(d)/time.Since(began).Seconds(), time.Since(began).Seconds())
	}
	stop := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-stop:
				p.mu.Lock()
				if p.tty {
					fmt.Fprintf(p.w, "\r%s\n", line())
				} else {
					fmt.Fprintln(p.w, line())
				}
				p.mu.Unlock()
				return
			case <-t.C:
				p.mu.Lock()
				if p.tty {
					fmt.Fprintf(p.w, "\r%s", line())
				} else {
					fmt.Fprintln(p.w, line())
				}
				p.mu.Unlock()
			}
		}
	}()
	return func() { close(stop); <-finished }
}
