package proc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
)

// DevServerOptions says how to run `temporal server start-dev`.
type DevServerOptions struct {
	// CLI is the Temporal CLI binary (bin/temporal).
	CLI string
	// LogPath is where the server's output goes; each start attempt
	// writes LogPath.1, LogPath.2, ...
	LogPath string
	// Port is the frontend's gRPC port on 127.0.0.1; 0 picks a free one
	// (and another when the server dies starting on it).
	Port int
	// DBFile, when set, keeps the server's state in this SQLite file,
	// journaled (WAL, synchronous=normal as scripts/run.sh runs it), so
	// that a server killed with SIGKILL and started again on the same
	// file has every committed workflow; empty keeps state in memory.
	DBFile string
	// LogLevel of the server; empty means "error".
	LogLevel string
	// ExtraArgs go to start-dev after the others.
	ExtraArgs []string
}

// DevServer is a Temporal dev server: headless, one history shard, on
// loopback.
type DevServer struct {
	*Child
	// Addr is the frontend's host:port.
	Addr string
	// Options are those it was started with, with the port it got:
	// StartDevServer(ctx, s.Options) starts it again on the same address
	// (and the same DBFile) once it has exited.
	Options DevServerOptions
}

// StartDevServer starts `temporal server start-dev` as the SDK's
// testsuite.StartDevServer does, but as a child the caller controls, and
// waits until its frontend answers. The server picks some of its
// internal ports itself, free when it looked: when another process takes
// one first and the server dies starting, it is started again (on another
// frontend port too, unless opts fixed it).
func StartDevServer(ctx context.Context, opts DevServerOptions) (*DevServer, error) {
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		var s *DevServer
		if s, err = startDevServerOnce(ctx, opts, fmt.Sprintf("%s.%d", opts.LogPath, attempt)); err == nil || !errors.Is(err, ErrExited) {
			return s, err
		}
	}
	return nil, err
}

// ErrExited is wrapped by StartDevServer's error when the server exited
// while starting.
var ErrExited = errors.New("temporal dev server exited")

func startDevServerOnce(ctx context.Context, opts DevServerOptions, logPath string) (*DevServer, error) {
	port := opts.Port
	if port == 0 {
		var err error
		if port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	level := opts.LogLevel
	if level == "" {
		level = "error"
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	args := []string{"server", "start-dev", "--headless",
		"--ip", "127.0.0.1", "--port", strconv.Itoa(port), "--namespace", "default",
		"--log-level", level, "--dynamic-config-value", "frontend.enableServerVersionCheck=false"}
	if opts.DBFile != "" {
		args = append(args, "--db-filename", opts.DBFile,
			"--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal")
	}
	args = append(args, opts.ExtraArgs...)
	c, err := Start("temporal dev server", exec.Command(opts.CLI, args...), logPath)
	if err != nil {
		return nil, err
	}
	resolved := opts
	resolved.Port = port
	s := &DevServer{Child: c, Addr: addr, Options: resolved}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		tc, err := s.Dial()
		if err == nil {
			_, err = tc.CheckHealth(ctx, &client.CheckHealthRequest{})
			tc.Close()
			if err == nil {
				return s, nil
			}
		}
		select {
		case <-c.exited:
			return nil, fmt.Errorf("%w (%v)\n%s", ErrExited, c.err, c.LogTail())
		case <-ctx.Done():
			s.Stop(syscall.SIGINT, 5*time.Second)
			return nil, fmt.Errorf("temporal dev server did not answer at %s: %v\n%s", addr, err, c.LogTail())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Dial returns a client of the dev server with default options and a
// silent logger (the SDK logs every reconnection otherwise).
func (s *DevServer) Dial() (client.Client, error) {
	return client.Dial(client.Options{HostPort: s.Addr, Logger: log.NewStructuredLogger(slog.New(slog.DiscardHandler))})
}
