package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	iproc "github.com/dispatcherhq/dispatcher/internal/proc"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
)

// TestREADMEQuickStart walks the README's quick start as written: what
// `make run` runs (scripts/run.sh: a Temporal dev server, the mail
// catcher, the binary), on free ports, then the shell blocks of "Try it"
// and "Break it, find it, replay it", pasted into one bash session as a
// reader would, with only the token and the addresses filled in. The
// first event must end Completed with a mail and a function call in the
// catcher, the second Failed, and its replay Completed without a second
// mail. A README that drifts from what works fails here.
func TestREADMEQuickStart(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		testenv.Missing(t, "the README's examples use curl, which is not installed (make services installs it)")
	}
	readme, err := os.ReadFile(filepath.Join(testenv.Root(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	try := shellBlocks(t, string(readme), "### Try it")
	broken := shellBlocks(t, string(readme), "### Break it, find it, replay it")
	if len(try) != 1 || len(broken) != 3 {
		t.Fatalf("the quick start has %d block(s) under Try it and %d under Break it; this test expects 1 and 3 (break, fix, replay): update both together", len(try), len(broken))
	}

	r := startRunScript(t)
	fill := strings.NewReplacer("<the admin token>", r.token, "127.0.0.1:8080", r.api, "127.0.0.1:8025", r.catcher)
	sh := startShell(t)
	// waitStatus waits until the latest run of workflowID has status;
	// out is what the block printed, for the failure message.
	waitStatus := func(workflowID, status, out string) {
		t.Helper()
		testenv.Eventually(t, 30*time.Second, func() string {
			req, _ := http.NewRequest("GET", "http://"+r.api+"/executions/v1/"+workflowID, nil)
			req.Header.Set("Authorization", "Bearer "+r.token)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				return err.Error()
			}
			defer res.Body.Close()
			body, _ := io.ReadAll(res.Body)
			var d struct{ Status string }
			if json.Unmarshal(body, &d); d.Status == status {
				return ""
			}
			return fmt.Sprintf("waiting for %s to be %s: %d %s\nthe README's block printed:\n%s", workflowID, status, res.StatusCode, body, out)
		})
	}

	// Try it: the first event, its mail and its function call.
	out := sh.run(fill.Replace(try[0]))
	waitStatus("dispatch-evt-1", "completed", out)
	mails := r.catcherJSON(t, "/api/messages")
	calls := r.catcherJSON(t, "/api/calls")
	if len(mails) != 1 || mails[0]["subject"] != "Goodbye Ann" || fmt.Sprint(mails[0]["to"]) != "[ann@example.com]" {
		t.Errorf("the catcher's mails after Try it: %v", mails)
	}
	if len(calls) != 1 || calls[0]["function"] != "erase-pii" || calls[0]["status"] != 200.0 ||
		!strings.HasPrefix(calls[0]["headers"].(map[string]any)["Idempotency-Key"].(string), "dispatch-evt-1/") {
		t.Errorf("the catcher's function calls after Try it: %v", calls)
	}

	// The block keeps the dispatcher's id in $ID, which the ETag example
	// of "Configuring dispatchers" uses.
	if out := sh.run("echo \"ID=$ID\""); !regexp.MustCompile(`ID=[0-9a-f]{24}\b`).MatchString(out) {
		t.Errorf("after Try it, $ID is not the dispatcher's id: %q", out)
	}

	// Break it: the function fails for good, the second event fails.
	out = sh.run(fill.Replace(broken[0]))
	waitStatus("dispatch-evt-2", "failed", out)
	// Fix it and replay it: completed, with no second mail.
	out = sh.run(fill.Replace(broken[1]))
	out += sh.run(fill.Replace(broken[2]))
	waitStatus("dispatch-evt-2", "completed", out)
	if mails := r.catcherJSON(t, "/api/messages"); len(mails) != 2 {
		t.Errorf("%d mails at the end, want 2 (one per event: the replay runs only the failed call)", len(mails))
	}
	calls = r.catcherJSON(t, "/api/calls")
	if len(calls) != 3 || calls[0]["status"] != 200.0 || calls[1]["status"] != 422.0 {
		t.Errorf("the catcher's calls at the end (newest first): %v; want the first call, the refused one, the replayed one", calls)
	}

	// The CLI lines the banner printed, pasted as they are: the commands
	// reach the API, and dispatcher token signs what it accepts. Before,
	// token failed: DISPATCHER_JWT_SECRET is not set.
	cli := regexp.MustCompile(`(?m)^\s+(export DISPATCHER_URL=.*)\n\s+(\S+) executions list$`).FindStringSubmatch(r.out.String())
	if cli == nil {
		t.Fatalf("scripts/run.sh printed no CLI lines:\n%s", r.out.String())
	}
	out = sh.run(cli[1] + "\n" + cli[2] + " executions list\n" +
		"t=$(" + cli[2] + " token --permissions VIEW_EXECUTIONS --ttl 1m) && curl -s -o /dev/null -w 'token answered %{http_code}\\n' -H \"Authorization: Bearer $t\" \"$DISPATCHER_URL/executions/v1\"")
	if !strings.Contains(out, "dispatch-evt-2") || !strings.Contains(out, "token answered 200") {
		t.Errorf("the CLI lines of the banner did not list the dispatches and mint a token the API takes:\n%s", out)
	}
}

// shellBlocks returns the ```sh blocks of the README section that starts
// with heading, up to the next heading of the same or a higher level.
func shellBlocks(t *testing.T, readme, heading string) []string {
	t.Helper()
	level := len(strings.SplitN(heading, " ", 2)[0])
	var (
		blocks         []string
		in, fenced, sh bool
		block          strings.Builder
	)
	for _, line := range strings.Split(readme, "\n") {
		switch {
		case !in:
			in = line == heading
		case strings.HasPrefix(line, "```"):
			if fenced && sh {
				blocks = append(blocks, block.String())
			}
			fenced, sh = !fenced, !fenced && line == "```sh"
			block.Reset()
		case fenced:
			if sh {
				block.WriteString(line + "\n")
			}
		case strings.HasPrefix(line, "#"):
			if n := len(line) - len(strings.TrimLeft(line, "#")); n <= level && strings.HasPrefix(line[n:], " ") {
				return blocks
			}
		}
	}
	if !in {
		t.Fatalf("README.md has no section %q", heading)
	}
	return blocks
}

// runScript is scripts/run.sh running on free ports with its state in a
// temporary folder.
type runScript struct {
	api, catcher string // host:port of the API and of the catcher's web UI
	temporal     string // host:port of the Temporal dev server
	token        string
	out          *testenv.Buffer // what it printed
	outPipe      *os.File        // what it prints goes through, to out
	cmd          *exec.Cmd
	exited       chan struct{} // closed once it has
}

var tokenLine = regexp.MustCompile(`Admin token \(valid 24h\):\s+(\S+)`)

// startRunScript starts scripts/run.sh with env added to its environment,
// and waits until it is ready. A port that another process took between
// the moment it was found free and run.sh's listen is tried again, with
// other ports, twice.
func startRunScript(t *testing.T, env ...string) *runScript {
	t.Helper()
	for range 2 {
		if r := tryRunScript(t, false, env...); r != nil {
			return r
		}
	}
	return tryRunScript(t, true, env...)
}

// tryRunScript is startRunScript's attempt; it returns nil when a port was
// taken, unless last.
func tryRunScript(t *testing.T, last bool, env ...string) *runScript {
	t.Helper()
	ports := make([]int, 5)
	for i := range ports {
		p, err := iproc.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = p
	}
	r := &runScript{api: fmt.Sprintf("127.0.0.1:%d", ports[0]), catcher: fmt.Sprintf("127.0.0.1:%d", ports[4]),
		temporal: fmt.Sprintf("127.0.0.1:%d", ports[1]), exited: make(chan struct{})}
	for _, kv := range os.Environ() {
		// What run.sh reads comes from this test alone.
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "DISPATCHER_") || strings.HasPrefix(k, "TEMPORAL_") || strings.HasPrefix(k, "OTEL_") || k == "DATABASE_URL" {
			continue
		}
		env = append(env, kv)
	}
	cmd := exec.Command("bash", filepath.Join(testenv.Root(), "scripts", "run.sh"))
	runDir := t.TempDir()
	cmd.Env = append(env,
		"DISPATCHER_RUN_DIR="+runDir,
		"DISPATCHER_BIN="+testenv.Binary(t),
		"TEMPORAL_CLI="+testenv.TemporalCLI(t),
		"MAILCATCHER_BIN="+testenv.Mailcatcher(t),
		"DISPATCHER_HTTP_ADDR="+r.api,
		"TEMPORAL_ADDRESS="+r.temporal,
		fmt.Sprintf("DISPATCHER_TEMPORAL_UI_PORT=%d", ports[2]),
		fmt.Sprintf("DISPATCHER_MAIL_SMTP_PORT=%d", ports[3]),
		fmt.Sprintf("DISPATCHER_MAIL_UI_PORT=%d", ports[4]),
		"DISPATCHER_LOG_LEVEL=warn",
	)
	out := &testenv.Buffer{}
	pr, pw, err := os.Pipe() // as `make run | tee run.log` has it
	if err != nil {
		t.Fatal(err)
	}
	r.out, r.outPipe = out, pr
	cmd.Stdout, cmd.Stderr = pw, pw
	err = cmd.Start()
	pw.Close()
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = io.Copy(out, pr) }()
	exited := r.exited // closed once it has, its error in err
	r.cmd = cmd
	go func() { err = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		// run.sh stops what it started, newest first, on SIGTERM as on
		// Ctrl-C (SIGINT, which a shell started in the background may be
		// made to ignore).
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("scripts/run.sh did not stop within 60 s of SIGTERM:\n%s", out)
		}
	})
	deadline := time.After(3 * time.Minute)
	for {
		if m := tokenLine.FindStringSubmatch(out.String()); m != nil {
			r.token = m[1]
			return r
		}
		select {
		case <-exited:
			if !last && portTaken(out.String(), runDir) {
				t.Logf("a port was taken meanwhile; trying others:\n%s", out)
				return nil
			}
			t.Fatalf("scripts/run.sh exited before it was ready: %v\n%s", err, out)
		case <-deadline:
			t.Fatalf("scripts/run.sh printed no admin token within 3 minutes:\n%s", out)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// portTaken reports whether run.sh's output, or the log of a service it
// started in runDir, says a port was taken: the dev server panics on it,
// and the end of the stack that run.sh prints leaves the reason out (it
// also binds ports of its own choosing, which another test may take).
func portTaken(out, runDir string) bool {
	for _, name := range []string{"temporal.log", "mailcatcher.log"} {
		b, _ := os.ReadFile(filepath.Join(runDir, name))
		out += string(b)
	}
	return strings.Contains(out, "address already in use")
}

// catcherJSON returns the JSON list the catcher serves at path.
func (r *runScript) catcherJSON(t *testing.T, path string) []map[string]any {
	t.Helper()
	res, err := http.Get("http://" + r.catcher + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out []map[string]any
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		t.Fatalf("GET %s on the catcher: %v", path, err)
	}
	return out
}

// shell is one bash session fed block after block, as a terminal would
// be: variables and functions of a block stay for the next.
type shell struct {
	t     *testing.T
	stdin io.WriteCloser
	lines chan string
}

const blockDone = "__README_BLOCK_DONE__"

func startShell(t *testing.T) *shell {
	t.Helper()
	cmd := exec.Command("bash", "--norc", "--noprofile")
	cmd.Dir = t.TempDir()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &shell{t: t, stdin: stdin, lines: make(chan string, 1024)}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
		close(s.lines)
	}()
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
		pw.Close()
		wg.Wait()
	})
	return s
}

// run pastes block into the session and returns what it printed.
func (s *shell) run(block string) string {
	s.t.Helper()
	if _, err := io.WriteString(s.stdin, block+"\necho; echo "+blockDone+"\n"); err != nil {
		s.t.Fatal(err)
	}
	var out bytes.Buffer
	timeout := time.After(60 * time.Second)
	for {
		select {
		case line, ok := <-s.lines:
			if !ok {
				s.t.Fatalf("bash ended while running:\n%s\noutput:\n%s", block, out.String())
			}
			if line == blockDone {
				return out.String()
			}
			out.WriteString(line + "\n")
		case <-timeout:
			s.t.Fatalf("the block did not finish within 60 s:\n%s\noutput:\n%s", block, out.String())
		}
	}
}

// TestRunScriptHidesPasswords: what `make run` prints (its progress, the
// banner) shows the URLs it was given without their passwords. Before, the
// SMTP URL's password was printed three times and the database URL's twice.
func TestRunScriptHidesPasswords(t *testing.T) {
	db, err := url.Parse(testenv.Postgres(t)) // trust authentication: any password does
	if err != nil {
		t.Fatal(err)
	}
	db.User = url.UserPassword(db.User.Username(), "DBPASS456")
	smtp, err := iproc.FreePort() // nothing listens: no mail is sent
	if err != nil {
		t.Fatal(err)
	}
	// An @ in the password, as a URL may carry one unescaped.
	r := startRunScript(t, "DATABASE_URL="+db.String(), fmt.Sprintf("DISPATCHER_SMTP_URL=smtp://mailuser:SMTP@PASS123@127.0.0.1:%d", smtp))
	out := r.out.String()
	for _, secret := range []string{"PASS123", "DBPASS456"} {
		if strings.Contains(out, secret) {
			t.Errorf("scripts/run.sh printed the password %s:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, "smtp://mailuser:xxxxx@127.0.0.1:") || !strings.Contains(out, db.User.Username()+":xxxxx@") {
		t.Errorf("scripts/run.sh does not show the URLs it was given, their passwords hidden:\n%s", out)
	}
}

// TestRunScriptStopsWithItsOutputGone: `make run | tee run.log` stopped
// with Ctrl-C, or a terminal closed under it (SIGHUP), leaves the script
// without its output as it stops what it started. Before, its first line
// saying so killed it (SIGPIPE, or a failed write under set -e), and left
// Temporal, the mail catcher and the dispatcher running in sessions of
// their own, on the ports the next `make run` wanted.
func TestRunScriptStopsWithItsOutputGone(t *testing.T) {
	r := startRunScript(t)
	r.outPipe.Close() // tee is gone
	if err := r.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.exited:
	case <-time.After(60 * time.Second):
		t.Fatalf("scripts/run.sh did not stop within 60 s of SIGHUP:\n%s", r.out)
	}
	for name, addr := range map[string]string{"the dispatcher": r.api, "the mail catcher": r.catcher, "Temporal": r.temporal} {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still listens on %s after scripts/run.sh stopped on SIGHUP:\n%s", name, addr, r.out)
		}
	}
}

// TestRunScriptRefusesPortZero: `make run` checks the API and Temporal on
// their ports and prints them for the CLI, so port 0 ("any free port",
// which serve accepts) is refused before anything starts. Before, it
// started everything and waited for the API on port 0 until it timed out.
func TestRunScriptRefusesPortZero(t *testing.T) {
	for _, env := range []string{"DISPATCHER_HTTP_ADDR=127.0.0.1:0", "DISPATCHER_HTTP_ADDR=:0", "TEMPORAL_ADDRESS=127.0.0.1:0"} {
		cmd := exec.Command("bash", filepath.Join(testenv.Root(), "scripts", "run.sh"))
		cmd.Env = append(os.Environ(), "DISPATCHER_RUN_DIR="+t.TempDir(), env)
		out, err := cmd.CombinedOutput()
		name := strings.SplitN(env, "=", 2)[0]
		if err == nil || !strings.Contains(string(out), name+"=") || !strings.Contains(string(out), "not 0") {
			t.Errorf("%s: err %v, output:\n%s\nwant a refusal naming %s", env, err, out, name)
		}
	}
}
