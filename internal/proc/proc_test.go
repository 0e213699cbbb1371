package proc_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/proc"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
)

func TestStopAndLogTail(t *testing.T) {
	log := filepath.Join(t.TempDir(), "child.log")
	c, err := proc.Start("sleeper", exec.Command("sh", "-c", `echo "level=INFO fine"; echo "level=ERROR boom"; exec sleep 60`), log)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, func() string {
		if tail := c.LogTail(); tail != "level=ERROR boom" {
			return "log tail is " + strconv.Quote(tail)
		}
		return ""
	})
	c.Stop(syscall.SIGTERM, 5*time.Second)
	select {
	case <-c.Exited():
	default:
		t.Fatal("Stop returned before the child exited")
	}
	if c.Err() == nil {
		t.Error("a child ended by SIGTERM reports no error")
	}
}

// TestKillEndsTheGroup: a SIGKILLed child takes what it started with it,
// as when a whole container dies.
func TestKillEndsTheGroup(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "grandchild.pid")
	c, err := proc.Start("parent", exec.Command("sh", "-c", `sleep 60 & echo $! > `+pidFile+`; wait`), filepath.Join(dir, "parent.log"))
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	testenv.Eventually(t, 5*time.Second, func() string {
		b, _ := os.ReadFile(pidFile)
		if pid, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
			return "no grandchild pid yet"
		}
		return ""
	})
	c.Kill()
	testenv.Eventually(t, 5*time.Second, func() string {
		if alive(pid) {
			return "grandchild " + strconv.Itoa(pid) + " still runs"
		}
		return ""
	})
}

// alive reports whether pid runs (a zombie waiting for init does not).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] != "Z"
}

func TestWaitHTTP(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if calls.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	c, err := proc.Start("sleeper", exec.Command("sleep", "60"), filepath.Join(dir, "sleeper.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Kill()
	if err := c.WaitHTTP(context.Background(), srv.URL, 10*time.Second); err != nil {
		t.Fatalf("WaitHTTP: %v", err)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("WaitHTTP returned after %d calls, want 3 (two 503s, then 200)", n)
	}

	t.Run("the child exits first", func(t *testing.T) {
		d, err := proc.Start("quitter", exec.Command("sh", "-c", "echo level=ERROR cannot listen; exit 3"), filepath.Join(dir, "quitter.log"))
		if err != nil {
			t.Fatal(err)
		}
		err = d.WaitHTTP(context.Background(), "http://127.0.0.1:1/never", time.Minute)
		if err == nil || !strings.Contains(err.Error(), "cannot listen") {
			t.Errorf("WaitHTTP = %v, want the exit with the log tail", err)
		}
	})
}

// A free port, left waiting so that no bind to port 0 takes it, is still
// one its caller can listen on.
func TestFreePortListens(t *testing.T) {
	port, err := proc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatalf("listening on the free port %d: %v", port, err)
	}
	l.Close()
}
