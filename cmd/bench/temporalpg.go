package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/api/operatorservice/v1"

	"github.com/dispatcherhq/dispatcher/internal/proc"
)

// pgCluster is a Temporal server on PostgreSQL, with SQL visibility, that
// scripts/temporal-pg.sh started for this run in databases of its own
// (<prefix>_temporal, <prefix>_temporal_visibility): the production
// layout's Temporal.
type pgCluster struct {
	temporalTarget
	prefix  string
	dir     string // config, pid file, server log
	script  string
	env     []string
	log     string // the script's own output
	Version string // of the server binary
}

// startPGCluster starts the cluster on ten free consecutive ports and
// returns once its frontend answers and its namespace exists. The server
// stops by itself if this process dies (the script's --owner-pid); drop
// stops it and drops its databases, and is returned also with an error
// when the start got far enough to need it.
func startPGCluster(ctx context.Context, p params, dir string, prog *progress) (*pgCluster, func(), error) {
	pg, err := url.Parse(p.PostgresURL)
	if err != nil {
		return nil, func() {}, fmt.Errorf("-postgres-url: %w", err)
	}
	pass, _ := pg.User.Password()
	c := &pgCluster{
		prefix: fmt.Sprintf("bench_%d", os.Getpid()),
		dir:    filepath.Join(dir, "temporal-pg"),
		script: p.script,
		log:    filepath.Join(dir, "temporal-pg-script.log"),
		env: append(os.Environ(),
			"TEMPORAL_PG_HOST="+pg.Hostname(),
			"TEMPORAL_PG_PORT="+firstNonEmpty(pg.Port(), "5432"),
			"TEMPORAL_PG_USER="+pg.User.Username(),
			"TEMPORAL_PG_PASSWORD="+pass,
			"TEMPORAL_SERVER_BIN="+p.TemporalServer,
			"TEMPORAL_SQL_TOOL="+p.SQLTool,
			"TEMPORAL_CLI="+p.TemporalCLI,
		),
	}
	if f := strings.Fields(proc.Output(p.TemporalServer, "--version")); len(f) > 0 {
		c.Version = f[len(f)-1]
	}
	// Whatever happens from here, the pid file and the databases may
	// exist: drop removes what does.
	drop := c.drop(prog)
	for attempt := 1; ; attempt++ {
		port, err := freePortRange(10)
		if err != nil {
			return nil, drop, err
		}
		prog.note("starting Temporal %s on PostgreSQL at %s:%s (databases %s_*, %d history shards), frontend 127.0.0.1:%d",
			c.Version, pg.Hostname(), firstNonEmpty(pg.Port(), "5432"), c.prefix, p.Shards, port)
		out, err := c.runScript(ctx, "start", "--background", "--port", strconv.Itoa(port), "--db-prefix", c.prefix,
			"--dir", c.dir, "--shards", strconv.Itoa(p.Shards), "--owner-pid", strconv.Itoa(os.Getpid()))
		if err == nil {
			c.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
			break
		}
		// Another process may take one of the ports between the check
		// and the server's start: the script says so, and another range
		// may do.
		if ctx.Err() != nil || attempt == 3 || !strings.Contains(out, "is in use") {
			return nil, drop, fmt.Errorf("scripts/temporal-pg.sh start: %w\n%s", err, tail(out, 40))
		}
	}
	if err := c.waitNamespace(ctx); err != nil {
		return nil, drop, err
	}
	b, err := os.ReadFile(filepath.Join(c.dir, "server.pid"))
	if err != nil {
		return nil, drop, err
	}
	if c.Pid, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
		return nil, drop, fmt.Errorf("%s/server.pid: %w", c.dir, err)
	}
	return c, drop, nil
}

// waitNamespace polls until the frontend serves the namespace "default".
// The script returns once the namespace is in the database, but the
// server's namespace registry reads it only at its next refresh (up to
// 10 s later), and until then a worker's first call fails with "Namespace
// default is not found".
func (c *pgCluster) waitNamespace(ctx context.Context) error {
	tc, err := c.dial()
	if err != nil {
		return err
	}
	defer tc.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		_, err := tc.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: "default"})
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the Temporal server on PostgreSQL does not serve namespace default: %w", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// drop returns what stops the server and drops its databases; it runs
// also after ctx ended (Ctrl-C, -timeout).
func (c *pgCluster) drop(prog *progress) func() {
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		prog.note("stopping Temporal on PostgreSQL and dropping databases %s_temporal, %s_temporal_visibility", c.prefix, c.prefix)
		if out, err := c.runScript(ctx, "drop", "--db-prefix", c.prefix, "--dir", c.dir); err != nil {
			prog.note("!! scripts/temporal-pg.sh drop: %v\n%s\nDrop them by hand: scripts/temporal-pg.sh drop --db-prefix %s", err, tail(out, 20), c.prefix)
		}
	}
}

// runScript runs scripts/temporal-pg.sh and returns its output, which is
// also appended to the script's log.
func (c *pgCluster) runScript(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, c.script, args...)
	cmd.Env = c.env
	// The script dies with this process; the server it detaches does
	// not, and its watchdog stops it (--owner-pid).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if f, ferr := os.OpenFile(c.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); ferr == nil {
		fmt.Fprintf(f, "$ temporal-pg.sh %s\n%s\n", strings.Join(args, " "), out)
		f.Close()
	}
	return string(out), err
}

// freePortRange returns the first of n consecutive loopback ports that
// were all free when it looked. They stay below 32768: Temporal's SQL
// schema keeps the membership ports (N+5..N+8) in a smallint column, and
// a server on higher ports dies at start ("out of range for type
// smallint").
func freePortRange(n int) (int, error) {
	for range 50 {
		base := 20000 + rand.IntN(32767-20000-n)
		free := true
		for p := base; p < base+n && free; p++ {
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			if err != nil {
				free = false
				continue
			}
			l.Close()
		}
		if free {
			return base, nil
		}
	}
	return 0, errors.New("found no 10 consecutive free ports on 127.0.0.1")
}

// createStoreDB creates a database of its own for the dispatcher's
// store, so that pg_stat_database counts the store's work alone, and
// returns its URL and what drops it.
func createStoreDB(ctx context.Context, conn *pgx.Conn, baseURL, name string) (string, func(), error) {
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", func() {}, fmt.Errorf("create the store's database: %w", err)
	}
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	}
	return withDatabase(baseURL, name), drop, nil
}

// withDatabase returns the PostgreSQL URL base with another database.
func withDatabase(base, name string) string {
	u, err := url.Parse(base)
	if err != nil {
		return base // pgx.Connect(base) already parsed it
	}
	u.Path = "/" + name
	return u.String()
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
