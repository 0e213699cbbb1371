// Command chaos is the fault suite: it proves, on the production
// topology, that every event's actions take effect exactly once even when
// processes die, or shows where they do not.
//
// It starts a Temporal dev server on a file, `dispatcher api` and
// `dispatcher worker` as separate processes on PostgreSQL, and in this
// process an idempotent HTTP receiver and an SMTP server that record
// every effect by its key (the SMTP server slows or drops some first
// deliveries). It configures one dispatcher with a slow task, a quick
// task and a mail, produces events that are each retried with the same id
// until accepted, and SIGKILLs and restarts the worker, the API and
// Temporal while they flow. When all has settled it counts lost,
// duplicated and failed effects; its last line is machine-readable and
// it exits non-zero unless all three are 0. docs/reliability.md has the
// definitions and the figures.
//
//	go run ./cmd/chaos [-events 1000] [-kills worker,api,temporal] [-slow 8s] [-seed 1] [-out docs/reliability.md]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first Ctrl-C the run stops its children in order; a
		// second one kills it at once (and the kernel its children).
		<-ctx.Done()
		stop()
	}()
	_, err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errVerdict):
		os.Exit(1)
	case err != nil:
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(2)
	}
}

// errVerdict is run's error when the run went through but effects were
// lost, duplicated or failed.
var errVerdict = errors.New("effects were lost, duplicated or failed")

// cleanups runs the clean-ups it was given, last first.
type cleanups []func()

func (c *cleanups) add(f func()) { *c = append(*c, f) }

func (c *cleanups) run() {
	for i := len(*c) - 1; i >= 0; i-- {
		(*c)[i]()
	}
	*c = nil
}

// run is the whole fault suite; see the package comment. It returns the
// verdict and errVerdict when it is not clean, or another error when
// the run itself could not be carried out.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (verdict, error) {
	p, err := parseParams(args, getenv, stderr)
	if err != nil {
		return verdict{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	prog := newProgress(stderr)
	dir, keep := p.Dir, p.Dir != ""
	if dir == "" {
		if dir, err = os.MkdirTemp("", "dispatcher-chaos-"); err != nil {
			return verdict{}, err
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return verdict{}, err
	}
	passed := false
	defer func() {
		if passed && !keep {
			_ = os.RemoveAll(dir)
			return
		}
		prog.note("logs and Temporal's database kept in %s", dir)
	}()

	r := &runner{p: p, args: args, dir: dir, prog: prog, stdout: stdout}
	defer r.cl.run()
	v, err := r.do(ctx)
	if err != nil {
		return v, err
	}
	if !v.passed() {
		return v, errVerdict
	}
	passed = true
	return v, nil
}
