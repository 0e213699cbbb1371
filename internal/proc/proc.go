// Package proc starts and stops the child processes of the project's
// harnesses (cmd/bench, cmd/chaos): the dispatcher binary and a Temporal
// dev server. Each child runs in a process group of its own, so a Ctrl-C
// in the terminal reaches the harness alone and the harness stops its
// children in order; if the harness dies without cleaning up, the kernel
// kills them (Pdeathsig). A child's output goes to a log file whose tail
// explains its failure.
package proc

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Child is a process a harness started.
type Child struct {
	// Name names the child in messages ("temporal dev server").
	Name string
	// Cmd is the command it runs.
	Cmd *exec.Cmd
	// LogPath is the file its stderr (and stdout unless set) goes to.
	LogPath string

	exited chan struct{}
	err    error // valid once exited is closed
}

// Start starts cmd, its stderr (and stdout unless set) going to logPath,
// which is created or truncated.
func Start(name string, cmd *exec.Cmd, logPath string) (*Child, error) {
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
	c := &Child{Name: name, Cmd: cmd, LogPath: logPath, exited: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		f.Close()
		close(c.exited)
	}()
	return c, nil
}

// Pid is the child's process id (and that of its process group).
func (c *Child) Pid() int { return c.Cmd.Process.Pid }

// Exited is closed once the child has exited and been reaped.
func (c *Child) Exited() <-chan struct{} { return c.exited }

// Err is how the child ended (as exec.Cmd.Wait reports it); valid once
// Exited is closed.
func (c *Child) Err() error {
	select {
	case <-c.exited:
		return c.err
	default:
		return nil
	}
}

// Stop asks the process to end with sig and kills it (and its group)
// when it has not after grace. It returns once the child has exited.
func (c *Child) Stop(sig syscall.Signal, grace time.Duration) {
	select {
	case <-c.exited:
		return
	default:
	}
	_ = c.Cmd.Process.Signal(sig)
	select {
	case <-c.exited:
	case <-time.After(grace):
		_ = syscall.Kill(-c.Pid(), syscall.SIGKILL)
		<-c.exited
	}
}

// Kill sends SIGKILL to the child's whole process group, as a crash or
// the OOM killer would end it: no clean-up runs. It returns once the
// child has exited, so its ports are free again.
func (c *Child) Kill() {
	select {
	case <-c.exited:
		return
	default:
	}
	_ = syscall.Kill(-c.Pid(), syscall.SIGKILL)
	<-c.exited
}

// LogTail returns what matters at the end of the child's log, for error
// messages: its last warnings and errors, else its last lines.
func (c *Child) LogTail() string {
	b, _ := os.ReadFile(c.LogPath)
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

// WithLog adds the child's log tail to err, unless the run was
// interrupted or timed out (ctx ended), which explains itself.
func (c *Child) WithLog(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return err
	}
	return fmt.Errorf("%w\n%s log:\n%s", err, c.Name, c.LogTail())
}
