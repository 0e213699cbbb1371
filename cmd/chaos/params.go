package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/proc"
)

// Components that -kills may name, in the order a default run kills them.
const (
	compWorker   = "worker"
	compAPI      = "api"
	compTemporal = "temporal"
)

// params are the command-line settings of a run.
type params struct {
	Events      int
	Producers   int
	Rate        float64
	Kills       []string
	TemporalCLI string
	Dispatcher  string
	PostgresURL string
	Slow        time.Duration
	Timeout     time.Duration
	Seed        int64
	Out         string
	Ledger      string
	Dir         string
	LogLevel    string
	root        string // the module root, where bin/ and go.mod are
}

func parseParams(args []string, getenv func(string) string, stderr io.Writer) (params, error) {
	var p params
	var kills string
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&p.Events, "events", 1000, "events to produce (ids chaos-000001, ...); each has 3 actions")
	fs.IntVar(&p.Producers, "producers", 16, "concurrent producers; each retries its event with the same id until it gets a 202")
	fs.Float64Var(&p.Rate, "rate", 25, "events offered per second (0: as fast as the API takes them), so the kills land while work is in flight")
	fs.StringVar(&kills, "kills", "worker,api,temporal", "components to SIGKILL and restart, in this order, spread over the run: worker, api, temporal (\"none\": no faults but the sinks')")
	fs.StringVar(&p.TemporalCLI, "temporal", getenv("TEMPORAL_CLI"), "Temporal CLI binary (default $TEMPORAL_CLI, else bin/temporal)")
	fs.StringVar(&p.Dispatcher, "dispatcher", getenv("DISPATCHER_BIN"), "dispatcher binary (default $DISPATCHER_BIN, else built into the run's folder)")
	fs.StringVar(&p.PostgresURL, "postgres-url", firstNonEmpty(getenv("TEST_DATABASE_URL"), "postgres://postgres@127.0.0.1:5432/dispatcher_test?sslmode=disable"),
		"PostgreSQL database of the dispatcher (default $TEST_DATABASE_URL); the run uses a fresh schema in it, dropped at the end, unless the URL names a search_path")
	fs.DurationVar(&p.Slow, "slow", 8*time.Second, "how long the slow task function takes to answer: longer than the engine's first-attempt budget")
	fs.DurationVar(&p.Timeout, "timeout", 15*time.Minute, "the run, recovery included, must be over within this")
	fs.Int64Var(&p.Seed, "seed", 1, "seed of the kill schedule and of the SMTP faults: the same seed, the same faults")
	fs.StringVar(&p.Out, "out", "", "markdown file to append the run's figures to")
	fs.StringVar(&p.Ledger, "ledger", "", "file to write every key the receivers saw to, one JSON object a line (deliveries, times), for digging into a run")
	fs.StringVar(&p.Dir, "dir", "", "folder for logs and Temporal's database (default a temp folder, removed after a passing run)")
	fs.StringVar(&p.LogLevel, "log-level", "info", "DISPATCHER_LOG_LEVEL of the dispatcher processes")
	if err := fs.Parse(args); err != nil {
		return p, err
	}
	switch {
	case fs.NArg() > 0:
		return p, fmt.Errorf("unexpected arguments %q", fs.Args())
	case p.Events <= 0 || p.Producers <= 0 || p.Rate < 0:
		return p, errors.New("-events and -producers must be positive, -rate not negative")
	case p.Slow <= 0 || p.Timeout <= 0:
		return p, errors.New("-slow and -timeout must be positive")
	}
	var err error
	if p.Kills, err = parseKills(kills); err != nil {
		return p, err
	}
	if p.root, err = proc.ModuleRoot(); err != nil {
		return p, err
	}
	if p.TemporalCLI == "" {
		p.TemporalCLI = filepath.Join(p.root, "bin", "temporal")
	}
	if _, err := os.Stat(p.TemporalCLI); err != nil {
		return p, fmt.Errorf("no Temporal CLI at %s: run `make tools` (builds bin/temporal) or set TEMPORAL_CLI / -temporal", p.TemporalCLI)
	}
	return p, nil
}

// parseKills reads -kills: known components, each at most once.
func parseKills(s string) ([]string, error) {
	if s == "" || s == "none" {
		return nil, nil
	}
	var out []string
	for c := range strings.SplitSeq(s, ",") {
		c = strings.TrimSpace(c)
		if !slices.Contains([]string{compWorker, compAPI, compTemporal}, c) {
			return nil, fmt.Errorf("-kills: unknown component %q (want worker, api, temporal or none)", c)
		}
		if slices.Contains(out, c) {
			return nil, fmt.Errorf("-kills: %s named twice", c)
		}
		out = append(out, c)
	}
	return out, nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
