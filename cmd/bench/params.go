package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/proc"
)

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
	Keep        bool
	Dev         bool

	// The dev-server rows beside the HTTP intake's: events through
	// RabbitMQ and NATS JetStream, and ordered per key.
	Brokers     bool
	AMQPURL     string
	NATSURL     string
	Ordered     bool
	OrderedKeys int

	// The production layout: Temporal on PostgreSQL.
	Production     bool
	Scale          []int // dispatcher serve processes of the scale-out rows
	ScaleN         int
	OpenN          int
	OpenRate       float64 // events/s of the open loop; 0: half the production row's
	Shards         int
	TemporalServer string
	SQLTool        string
	script         string // scripts/temporal-pg.sh

	root string // the module root, where bin/ and go.mod are
}

func parseParams(args []string, getenv func(string) string, stderr io.Writer) (params, error) {
	var p params
	var scale string
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&p.N, "n", 1000, "events (and bare workflows) to measure in each row but the scale-out and open-loop ones")
	fs.IntVar(&p.Warmup, "warmup", 50, "events (and bare workflows) sent first in each row and not measured")
	fs.IntVar(&p.Concurrency, "concurrency", 32, "concurrent callers; each sends one event and waits for it to be done")
	fs.IntVar(&p.Actions, "actions", 2, "actions of the bench dispatcher: mail, task, mail, task, ...")
	fs.StringVar(&p.DB, "db", "sqlite", "the store of the dev-server dispatcher row: sqlite (a fresh file) or postgres (a fresh schema); the production layout always uses PostgreSQL")
	fs.StringVar(&p.PostgresURL, "postgres-url", firstNonEmpty(getenv("TEST_DATABASE_URL"), "postgres://postgres@127.0.0.1:5432/dispatcher_test?sslmode=disable"),
		"PostgreSQL for -db postgres and the production layout (default $TEST_DATABASE_URL); its user must be allowed to create databases")
	fs.StringVar(&p.Out, "out", "", "markdown page whose <!-- bench:start --> ... <!-- bench:end --> section gets the report")
	fs.DurationVar(&p.Timeout, "timeout", 25*time.Minute, "the whole run stops after this long")
	fs.StringVar(&p.TemporalCLI, "temporal", getenv("TEMPORAL_CLI"), "Temporal CLI binary (default $TEMPORAL_CLI, else bin/temporal)")
	fs.StringVar(&p.Dispatcher, "dispatcher", getenv("DISPATCHER_BIN"), "dispatcher binary (default $DISPATCHER_BIN, else built into a temp dir)")
	fs.StringVar(&p.Await, "await", "sinks", "how a caller learns its event is done: sinks (every action reached the SMTP/HTTP sink) or temporal (GetWorkflow().Get)")
	fs.StringVar(&p.LogLevel, "log-level", "info", "DISPATCHER_LOG_LEVEL of the dispatcher under test")
	fs.IntVar(&p.Sample, "history-sample", 20, "runs per row whose history length is read after the run")
	fs.BoolVar(&p.Dev, "dev", true, "measure the dev-server rows: dispatcher, baseline, reference, AMQP, NATS, ordered (-dev=false: the production layout alone)")
	fs.BoolVar(&p.SkipBase, "skip-baseline", false, "do not measure the dev-server baseline (no ratio)")
	fs.BoolVar(&p.Reference, "reference", true, "also measure the reference: bare workflows with local activities, started eagerly (the best this server allows)")
	fs.BoolVar(&p.Brokers, "brokers", true, "also measure the dispatcher taking its events from RabbitMQ and from NATS JetStream (dev server)")
	fs.StringVar(&p.AMQPURL, "amqp-url", firstNonEmpty(getenv("TEST_AMQP_URL"), "amqp://guest:guest@127.0.0.1:5672/"),
		"RabbitMQ of the AMQP row (default $TEST_AMQP_URL); its user must be allowed to declare and delete exchanges and queues")
	fs.StringVar(&p.NATSURL, "nats-url", firstNonEmpty(getenv("TEST_NATS_URL"), "nats://127.0.0.1:4222"),
		"NATS server with JetStream of the NATS row (default $TEST_NATS_URL); its user must be allowed to create and delete streams")
	fs.BoolVar(&p.Ordered, "ordered", true, "also measure the dispatcher with ordering per key (content.userId) on the HTTP intake (dev server)")
	fs.IntVar(&p.OrderedKeys, "ordered-keys", 64, "distinct keys the events of the ordered row are spread over, round-robin")
	fs.BoolVar(&p.Keep, "keep", false, "keep the temp dir with every process's log (its path is printed)")
	fs.BoolVar(&p.Production, "production", true, "also measure the production layout: Temporal server on PostgreSQL, store on PostgreSQL")
	fs.StringVar(&scale, "scale", "1,2,4", "dispatcher serve processes of the scale-out rows (comma-separated; empty: none)")
	fs.IntVar(&p.ScaleN, "scale-n", 500, "events to measure in each scale-out row")
	fs.IntVar(&p.OpenN, "open-n", 500, "events of the open-loop row (0: none)")
	fs.Float64Var(&p.OpenRate, "open-rate", 0, "events/s of the open-loop row (0: half the production row's throughput)")
	fs.IntVar(&p.Shards, "shards", 4, "history shards of the Temporal server on PostgreSQL (the deployed 4)")
	fs.StringVar(&p.TemporalServer, "temporal-server", getenv("TEMPORAL_SERVER_BIN"), "Temporal server binary (default $TEMPORAL_SERVER_BIN, else bin/temporal-server)")
	fs.StringVar(&p.SQLTool, "temporal-sql-tool", getenv("TEMPORAL_SQL_TOOL"), "temporal-sql-tool binary (default $TEMPORAL_SQL_TOOL, else bin/temporal-sql-tool)")
	if err := fs.Parse(args); err != nil {
		return p, err
	}
	var err error
	if p.Scale, err = parseCounts(scale); err != nil {
		return p, fmt.Errorf("-scale %q: %w", scale, err)
	}
	switch {
	case fs.NArg() > 0:
		return p, fmt.Errorf("unexpected arguments %q", fs.Args())
	case p.N <= 0 || p.ScaleN <= 0 || p.Warmup < 0 || p.Concurrency <= 0 || p.Actions <= 0 || p.Sample < 0 || p.OpenN < 0 || p.OpenRate < 0:
		return p, errors.New("-n, -scale-n, -concurrency and -actions must be positive; -warmup, -history-sample, -open-n and -open-rate not negative")
	case p.OrderedKeys <= 0:
		return p, errors.New("-ordered-keys must be positive")
	case !p.Dev && !p.Production:
		return p, errors.New("-dev=false and -production=false leave nothing to measure")
	case p.Shards <= 0:
		return p, errors.New("-shards must be positive")
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
	p.TemporalCLI = firstNonEmpty(p.TemporalCLI, filepath.Join(root, "bin", "temporal"))
	p.TemporalServer = firstNonEmpty(p.TemporalServer, filepath.Join(root, "bin", "temporal-server"))
	p.SQLTool = firstNonEmpty(p.SQLTool, filepath.Join(root, "bin", "temporal-sql-tool"))
	p.script = filepath.Join(root, "scripts", "temporal-pg.sh")
	need := map[string]string{p.TemporalCLI: "TEMPORAL_CLI / -temporal"}
	if p.Production {
		need[p.TemporalServer] = "TEMPORAL_SERVER_BIN / -temporal-server"
		need[p.SQLTool] = "TEMPORAL_SQL_TOOL / -temporal-sql-tool"
		need[p.script] = "the repository's scripts/"
	}
	for _, bin := range slices.Sorted(maps.Keys(need)) {
		if _, err := os.Stat(bin); err != nil {
			return p, fmt.Errorf("no %s: run `make tools` (builds bin/temporal, bin/temporal-server, bin/temporal-sql-tool) or set %s", bin, need[bin])
		}
	}
	return p, nil
}

// parseCounts reads a comma-separated list of distinct positive numbers,
// in the order given; an empty list is none.
func parseCounts(s string) ([]int, error) {
	var out []int
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a positive number", strings.TrimSpace(f))
		}
		if slices.Contains(out, n) {
			return nil, fmt.Errorf("%d twice", n)
		}
		out = append(out, n)
	}
	return out, nil
}
