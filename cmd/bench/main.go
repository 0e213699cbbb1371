// Command bench measures the dispatcher end to end and compares it with
// the Temporal workflows a team would first write by hand.
//
// It starts a Temporal dev server (in memory, headless), an SMTP sink and
// an HTTP function sink on loopback and the real dispatcher binary
// (`dispatcher serve`, auth on), configures one dispatcher through the
// HTTP API and drives events through POST /events/v1 with concurrent
// callers. In the same run it drives as many bare workflows, with as many
// no-op regular activities, on a fresh dev server with a worker in this
// process: the baseline. It prints a markdown report whose last line is
// machine-readable, and with -out writes the report into a marked section
// of a markdown page.
//
//	go run ./cmd/bench [-n 1000] [-concurrency 32] [-actions 2] [-db sqlite|postgres] [-out docs/benchmarks.md]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/proc"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first Ctrl-C the bench stops its children in order; a
		// second one kills it at once (and the kernel its children).
		<-ctx.Done()
		stop()
	}()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// params are the command-line settings of a run.
type params struct {
	N           int
	Warmup      int
	Concurrency int
	Actions     int
	DB          string
	PostgresURL string
	Out         string
	Timeout     time.Duration
	TemporalCLI string
	Dispatcher  string
	Await       string
	LogLevel    string
	Sample      int
	SkipBase    bool
	Reference   bool
	root        string // the module root, where bin/ and go.mod are
}

func parseParams(args []string, getenv func(string) string, stderr io.Writer) (params, error) {
	var p params
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&p.N, "n", 1000, "events (and baseline workflows) to measure")
	fs.IntVar(&p.Warmup, "warmup", 50, "events (and baseline workflows) sent first and not measured")
	fs.IntVar(&p.Concurrency, "concurrency", 32, "concurrent callers; each sends one event and waits for it to be done")
	fs.IntVar(&p.Actions, "actions", 2, "actions of the bench dispatcher: mail, task, mail, task, ...")
	fs.StringVar(&p.DB, "db", "sqlite", "the dispatcher's store: sqlite (a fresh file) or postgres (a fresh schema)")
	fs.StringVar(&p.PostgresURL, "postgres-url", firstNonEmpty(getenv("TEST_DATABASE_URL"), "postgres://postgres@127.0.0.1:5432/dispatcher_test?sslmode=disable"),
		"PostgreSQL database for -db postgres (default $TEST_DATABASE_URL)")
	fs.StringVar(&p.Out, "out", "", "markdown page whose <!-- bench:start --> ... <!-- bench:end --> section gets the report")
	fs.DurationVar(&p.Timeout, "timeout", 10*time.Minute, "the whole run stops after this long")
	fs.StringVar(&p.TemporalCLI, "temporal", getenv("TEMPORAL_CLI"), "Temporal CLI binary (default $TEMPORAL_CLI, else bin/temporal)")
	fs.StringVar(&p.Dispatcher, "dispatcher", getenv("DISPATCHER_BIN"), "dispatcher binary (default $DISPATCHER_BIN, else built into a temp dir)")
	fs.StringVar(&p.Await, "await", "sinks", "how a caller learns its event is done: sinks (every action reached the SMTP/HTTP sink) or temporal (GetWorkflow().Get)")
	fs.StringVar(&p.LogLevel, "log-level", "info", "DISPATCHER_LOG_LEVEL of the dispatcher under test")
	fs.IntVar(&p.Sample, "history-sample", 20, "runs whose history length is read after the run")
	fs.BoolVar(&p.SkipBase, "skip-baseline", false, "measure the dispatcher only (no ratio)")
	fs.BoolVar(&p.Reference, "reference", true, "also measure the reference: bare workflows with local activities, started eagerly (the best this server allows)")
	if err := fs.Parse(args); err != nil {
		return p, err
	}
	switch {
	case fs.NArg() > 0:
		return p, fmt.Errorf("unexpected arguments %q", fs.Args())
	case p.N <= 0 || p.Warmup < 0 || p.Concurrency <= 0 || p.Actions <= 0 || p.Sample < 0:
		return p, errors.New("-n, -concurrency and -actions must be positive, -warmup and -history-sample not negative")
	case p.DB != "sqlite" && p.DB != "postgres":
		return p, fmt.Errorf("-db %q: want sqlite or postgres", p.DB)
	case p.Await != "sinks" && p.Await != "temporal":
		return p, fmt.Errorf("-await %q: want sinks or temporal", p.Await)
	}
	root, err := proc.ModuleRoot()
	if err != nil {
		return p, err
	}
	p.root = root
	if p.TemporalCLI == "" {
		p.TemporalCLI = filepath.Join(root, "bin", "temporal")
	}
	if _, err := os.Stat(p.TemporalCLI); err != nil {
		return p, fmt.Errorf("no Temporal CLI at %s: run `make tools` (builds bin/temporal) or set TEMPORAL_CLI / -temporal", p.TemporalCLI)
	}
	return p, nil
}

// run is the whole benchmark: every row, the report, and the clean-up of
// every child process, also when ctx ends early (each row stops its own).
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	p, err := parseParams(args, getenv, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	dir, err := os.MkdirTemp("", "dispatcher-bench-") // logs, the SQLite store, a built binary
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	m := describeMachine(p.TemporalCLI)
	prog := newProgress(stderr)
	if p.Dispatcher == "" {
		prog.note("building the dispatcher into %s", dir)
		if p.Dispatcher, err = proc.BuildDispatcher(ctx, p.root, dir); err != nil {
			return err
		}
	}

	res := report{Machine: m, Params: p, Started: time.Now()}
	res.Dispatcher, err = benchDispatcher(ctx, p, dir, prog)
	if err != nil {
		return timeoutHint(ctx, p, fmt.Errorf("dispatcher: %w", err))
	}
	if !p.SkipBase {
		res.Baseline, err = benchBare(ctx, p, dir, prog, shape{name: "baseline", workflow: bareWorkflowName, awaitGet: true})
		if err != nil {
			return timeoutHint(ctx, p, fmt.Errorf("baseline: %w", err))
		}
	}
	if p.Reference {
		res.Reference, err = benchBare(ctx, p, dir, prog, shape{name: "reference", workflow: refWorkflowName, eager: true, awaitGet: p.Await == "temporal"})
		if err != nil {
			return timeoutHint(ctx, p, fmt.Errorf("reference: %w", err))
		}
	}
	text := res.markdown()
	fmt.Fprint(stdout, text)
	fmt.Fprintln(stdout, res.summaryLine())
	if p.Out != "" {
		if err := writeSection(p.Out, text+"\n```\n"+res.summaryLine()+"\n```\n"); err != nil {
			return err
		}
		prog.note("wrote the report into %s", p.Out)
	}
	return nil
}

func timeoutHint(ctx context.Context, p params, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w (the run hit -timeout %s)", err, p.Timeout)
	}
	return err
}

// cleanups runs the clean-ups it was given, last first.
type cleanups []func()

func (c *cleanups) add(f func()) { *c = append(*c, f) }

func (c *cleanups) run() {
	for i := len(*c) - 1; i >= 0; i-- {
		(*c)[i]()
	}
	*c = nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
