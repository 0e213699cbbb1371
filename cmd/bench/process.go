package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
)

// child is a process the bench started. It runs in a process group of its
// own, so a Ctrl-C reaches the bench alone and the bench stops its
// children in order; if the bench dies without cleaning up, the kernel
// kills them (Pdeathsig).
type child struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	err     error // valid once exited is closed
}

// startChild starts cmd, its stderr (and stdout unless set) going to
// logPath.
func startChild(name string, cmd *exec.Cmd, logPath string) (*child, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	if cmd.Stdout == nil {
		cmd.Stdout = f
	}
	cmd.Stderr = f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		f.Close()
		close(c.exited)
	}()
	return c, nil
}

// stop asks the process to end with sig and kills it (and its group)
// when it has not after grace.
func (c *child) stop(sig syscall.Signal, grace time.Duration) {
	select {
	case <-c.exited:
		return
	default:
	}
	_ = c.cmd.Process.Signal(sig)
	select {
	case <-c.exited:
	case <-time.After(grace):
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		<-c.exited
	}
}

// logTail returns what matters at the end of the child's log, for error
// messages: its last warnings and errors, else its last lines.
func (c *child) logTail() string {
	b, _ := os.ReadFile(c.logPath)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var important []string
	for _, l := range lines {
		if !strings.Contains(l, "level=INFO") && !strings.Contains(l, "level=DEBUG") {
			important = append(important, l)
		}
	}
	if len(important) == 0 {
		important = lines
	}
	return strings.Join(important[max(0, len(important)-15):], "\n")
}

// withLog adds the child's log to err, unless the run was interrupted or
// timed out, which explains itself.
func (c *child) withLog(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return err
	}
	return fmt.Errorf("%w\n%s log:\n%s", err, c.name, c.logTail())
}

// devServer is a Temporal dev server: in memory, headless, one history
// shard, on a free loopback port.
type devServer struct {
	*child
	addr string
}

// startDevServer starts `temporal server start-dev` as the SDK's
// testsuite.StartDevServer does, but as a child the bench controls, and
// waits until its frontend answers. The server picks some of its ports
// itself, free when it looked: when another process takes one first and
// the server dies starting, it is started again.
func startDevServer(ctx context.Context, cli, logPath string) (*devServer, error) {
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		var s *devServer
		if s, err = startDevServerOnce(ctx, cli, fmt.Sprintf("%s.%d", logPath, attempt)); err == nil || !errors.Is(err, errExited) {
			return s, err
		}
	}
	return nil, err
}

var errExited = errors.New("temporal dev server exited")

func startDevServerOnce(ctx context.Context, cli, logPath string) (*devServer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command(cli, "server", "start-dev", "--headless",
		"--ip", "127.0.0.1", "--port", strconv.Itoa(port), "--namespace", "default",
		"--log-level", "error", "--dynamic-config-value", "frontend.enableServerVersionCheck=false")
	c, err := startChild("temporal dev server", cmd, logPath)
	if err != nil {
		return nil, err
	}
	s := &devServer{child: c, addr: addr}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		tc, err := s.dial()
		if err == nil {
			_, err = tc.CheckHealth(ctx, &client.CheckHealthRequest{})
			tc.Close()
			if err == nil {
				return s, nil
			}
		}
		select {
		case <-c.exited:
			return nil, fmt.Errorf("%w (%v)\n%s", errExited, c.err, c.logTail())
		case <-ctx.Done():
			s.stop(syscall.SIGINT, 5*time.Second)
			return nil, fmt.Errorf("temporal dev server did not answer at %s: %v\n%s", addr, err, c.logTail())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// dial returns a client of the dev server with default options and a
// silent logger.
func (s *devServer) dial() (client.Client, error) {
	return client.Dial(client.Options{HostPort: s.addr, Logger: log.NewStructuredLogger(discardLogger)})
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// buildDispatcher builds cmd/dispatcher into dir and returns its path.
func buildDispatcher(ctx context.Context, root, dir string) (string, error) {
	out := dir + "/dispatcher"
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/dispatcher")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/dispatcher: %v\n%s", err, b)
	}
	return out, nil
}

// commandOutput runs name args and returns its trimmed output, or "".
func commandOutput(name string, args ...string) string {
	b, err := exec.Command(name, args...).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
