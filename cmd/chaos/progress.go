package main

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// progress prints what the run is doing, one line at a time, stamped
// with the time since it began: a run takes minutes, and a reader should
// see the kills land while events flow.
type progress struct {
	w     io.Writer
	start time.Time
	mu    sync.Mutex
}

func newProgress(w io.Writer) *progress {
	return &progress{w: w, start: time.Now()}
}

func (p *progress) note(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "chaos %6.1fs  %s\n", time.Since(p.start).Seconds(), fmt.Sprintf(format, args...))
}

// every prints status() every interval until stop is called.
func (p *progress) every(interval time.Duration, status func() string) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(interval):
				p.note("%s", status())
			}
		}
	})
	return func() { close(done); wg.Wait() }
}
