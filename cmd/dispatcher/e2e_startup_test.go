package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/testenv"

	child "github.com/dispatcherhq/dispatcher/internal/proc"
)

// TestEndToEndServeStartsBeforeTemporal starts `dispatcher serve` while
// Temporal is down, as a pod rescheduled during a cluster restart would
// be: it stays up, answers /healthz, says on /readyz that Temporal and its
// worker are down, and once Temporal answers starts polling and
// dispatching without a restart. Before, it exited at start-up, and an
// orchestrator restarted it in a loop.
func TestEndToEndServeStartsBeforeTemporal(t *testing.T) {
	port, err := child.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	s := startWithoutTemporal(t, fmt.Sprintf("127.0.0.1:%d", port))
	env := s.env
	s.env = append(env[:len(env):len(env)], "DISPATCHER_HTTP_ADDRESS=127.0.0.1:1") // misnamed: warned of, and ignored
	p := s.launch("serve")
	s.env, s.url = env, p.url
	if want := "DISPATCHER_HTTP_ADDRESS is set, but is not a setting and is ignored: did you mean DISPATCHER_HTTP_ADDR?"; !strings.Contains(s.logs.String(), want) {
		t.Errorf("the process did not warn of a misnamed setting, want %q in its log:\n%s", want, s.logs)
	}

	// Alive, not ready, and saying which part is not.
	if code, body := get(t, s.url+"/healthz"); code != 200 {
		t.Fatalf("/healthz = %d %s while Temporal is down, want 200", code, body)
	}
	code, body := get(t, s.url+"/readyz")
	if code != 503 || !strings.Contains(body, `"temporal":"down"`) || !strings.Contains(body, `"worker":"down"`) {
		t.Fatalf("/readyz = %d %s while Temporal is down, want 503 naming temporal and worker down", code, body)
	}
	s.poll("the worker to say it waits for Temporal", func() bool { return strings.Contains(s.logs.String(), waitingForTemporalLog) })
	select {
	case <-p.exited:
		t.Fatalf("dispatcher serve exited while Temporal was down: %v\n%s", p.err, s.logs)
	case <-p.polling:
		t.Fatal("the worker polls a Temporal that is not there")
	default:
	}

	dir := t.TempDir()
	srv, err := child.StartDevServer(t.Context(), child.DevServerOptions{
		CLI: testenv.TemporalCLI(t), LogPath: filepath.Join(dir, "temporal.log"), Port: port,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop(syscall.SIGINT, 5*time.Second) })
	if s.temporal, err = srv.Dial(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.temporal.Close)

	select {
	case <-p.polling:
	case <-p.exited:
		t.Fatalf("dispatcher serve exited: %v\n%s", p.err, s.logs)
	case <-time.After(90 * time.Second):
		t.Fatalf("the worker did not start polling within 90 s of Temporal answering:\n%s", s.logs)
	}
	s.waitReady()

	s.token = strings.TrimSpace(s.run("token", "--admin"))
	s.dispatchOneTask("late")

	// Temporal gone once the worker polls: the worker is down with it.
	// Before, /readyz said "worker":"ok" for as long as the outage.
	srv.Kill()
	s.poll("/readyz to say the worker is down with Temporal", func() bool {
		_, body := get(t, s.url+"/readyz")
		return strings.Contains(body, `"temporal":"down"`) && strings.Contains(body, `"worker":"down"`)
	})
}

// dispatchOneTask configures a dispatcher of event type <name>_event whose
// one task action calls a function sink, sends it an event and checks that
// the dispatch succeeded with one call.
func (s *system) dispatchOneTask(name string) {
	s.t.Helper()
	fn := &functionSink{}
	fnSrv := httptest.NewServer(fn)
	s.t.Cleanup(fnSrv.Close)
	s.call("POST", "/functions/v1", map[string]any{"name": name, "url": fnSrv.URL}, 200)
	s.call("POST", "/dispatchers/v1", map[string]any{"name": name, "eventType": name + "_event", "actions": []any{
		map[string]any{"type": "task", "functionName": name}}}, 200)
	acc := s.call("POST", "/events/v1", map[string]any{"id": name + "-1", "type": name + "_event", "content": map[string]any{}}, 202)
	if res, failed := s.result(acc["workflowId"].(string), acc["runId"].(string)); failed {
		s.t.Fatalf("the dispatch failed: %+v", res.Outcomes)
	}
	if fn.count() != 1 {
		s.t.Errorf("the function was called %d times, want 1", fn.count())
	}
}

// TestEndToEndWorkerStopsWhileWaitingForTemporal: a worker still waiting
// for Temporal stops at once, and cleanly, on SIGTERM.
func TestEndToEndWorkerStopsWhileWaitingForTemporal(t *testing.T) {
	port, err := child.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	s := startWithoutTemporal(t, fmt.Sprintf("127.0.0.1:%d", port))
	p := s.launch("worker")
	s.poll("the worker to say it waits for Temporal", func() bool { return strings.Contains(s.logs.String(), waitingForTemporalLog) })
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		t.Fatalf("dispatcher worker waiting for Temporal did not stop within 15 s of SIGTERM:\n%s", s.logs)
	}
	if p.err != nil {
		t.Fatalf("dispatcher worker did not exit cleanly: %v\n%s", p.err, s.logs)
	}
}

// TestEndToEndStopsWhileWaitingForTheDatabase: a process whose database
// refuses connections says it waits for it, and stops at once, cleanly,
// on SIGTERM (a pod deleted while it starts). Before, it waited without
// a word and exited 1 with the refusal, a failure that never happened.
func TestEndToEndStopsWhileWaitingForTheDatabase(t *testing.T) {
	port, err := child.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	s := startWithoutTemporal(t, "127.0.0.1:1")
	// Not launch, which waits for a process that listens: this one never
	// gets that far.
	cmd := exec.Command(s.bin, "serve")
	cmd.Env = append(s.env, fmt.Sprintf("DATABASE_URL=postgres://postgres@127.0.0.1:%d/none?sslmode=disable", port))
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	s.poll("the process to say it waits for the database", func() bool { return strings.Contains(s.logs.String(), waitingForDatabaseLog) })
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("dispatcher serve did not exit cleanly: %v\n%s", err, s.logs)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("dispatcher serve waiting for the database did not stop within 5 s of SIGTERM:\n%s", s.logs)
	}
}

// TestEndToEndWorkerOutlivesItsLogPipe: a process whose log pipe is gone
// (`make run | tee` stopped with Ctrl-C, a log shipper restarting) still
// stops as asked, cleanly. Before, its first line after the reader died,
// "stopping", killed it (SIGPIPE) in the middle of its first attempts.
func TestEndToEndWorkerOutlivesItsLogPipe(t *testing.T) {
	port, err := child.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	s := startWithoutTemporal(t, fmt.Sprintf("127.0.0.1:%d", port))
	cmd := exec.Command(s.bin, "worker")
	cmd.Env = append(s.env, "DISPATCHER_LOG_LEVEL=info") // it says it stops
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	err = cmd.Start()
	pw.Close()
	if err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	waiting := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), waitingForTemporalLog) {
				close(waiting)
				return
			}
		}
	}()
	select {
	case <-waiting:
	case <-time.After(30 * time.Second):
		t.Fatal("dispatcher worker did not say it waits for Temporal within 30 s")
	}
	pr.Close() // the reader is gone
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("dispatcher worker without its log pipe did not exit cleanly on SIGTERM: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("dispatcher worker without its log pipe did not stop within 15 s of SIGTERM")
	}
}

// startWithoutTemporal is a system whose processes reach Temporal at
// addr, where nothing listens yet.
func startWithoutTemporal(t *testing.T, addr string) *system {
	s := &system{t: t, bin: testenv.Binary(t), logs: &testenv.Buffer{}}
	s.env = append(os.Environ(),
		"DATABASE_URL="+testenv.SQLite(t),
		"DISPATCHER_JWT_SECRET="+e2eSecret,
		"DISPATCHER_HTTP_ADDR=127.0.0.1:0",
		"DISPATCHER_LOG_LEVEL=warn",
		"DISPATCHER_OUTBOUND_ALLOW=127.0.0.0/8",
		"TEMPORAL_ADDRESS="+addr,
	)
	return s
}

// TestEndToEndWarnsOfAShortDedupWindow: a dedup window under an hour is
// said at start. Before, DISPATCHER_DEDUP_WINDOW=1ns was taken without a
// word, and every worker pruned the records the others kept (a probe).
func TestEndToEndWarnsOfAShortDedupWindow(t *testing.T) {
	s := startWithoutTemporal(t, "127.0.0.1:1")
	s.env = append(s.env, "DISPATCHER_DEDUP_WINDOW=1m")
	s.launch("api")
	s.poll("the API to warn of its dedup window", func() bool {
		return strings.Contains(s.logs.String(), "DISPATCHER_DEDUP_WINDOW is under an hour")
	})
}

// TestEndToEndAPIWarnsOfBrokerSettings: `dispatcher api` with a broker's
// URL says it takes no events from it, and without a metrics token that
// /metrics answers no one. Before, it ignored the setting
// without a word, and the events waited in the broker.
func TestEndToEndAPIWarnsOfBrokerSettings(t *testing.T) {
	port, err := child.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	s := startWithoutTemporal(t, fmt.Sprintf("127.0.0.1:%d", port))
	s.env = append(s.env, "DISPATCHER_NATS_URL=nats://127.0.0.1:4222")
	s.launch("api")
	s.poll("the API to warn that it takes no events from brokers", func() bool {
		return strings.Contains(s.logs.String(), "`dispatcher api` takes no events from brokers")
	})
	// Nor does it say nothing of a /metrics no one may scrape. Before,
	// only Prometheus' 403s and its process-down alerts said so.
	if !strings.Contains(s.logs.String(), "DISPATCHER_METRICS_TOKEN is not set: /metrics answers no one") {
		t.Errorf("no warning that /metrics has no token:\n%s", s.logs.String())
	}
}

// get returns the status and body of a GET of url.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestEndToEndServeWaitsForADatabaseStartingLate: a database that
// refuses connections at first, as one that starts after the process
// does (a pod and its database scheduled together), is asked again until
// it answers, within the ping's 15 s: the process starts. Before, the
// first refusal stopped it at once, and the orchestrator restarted it in
// a loop.
func TestEndToEndServeWaitsForADatabaseStartingLate(t *testing.T) {
	pg, err := url.Parse(testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	port, err := child.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	target := pg.Host
	pg.Host = fmt.Sprintf("127.0.0.1:%d", port) // nothing listens there yet
	s := startWithoutTemporal(t, "127.0.0.1:1")
	s.env = append(s.env, "DATABASE_URL="+pg.String())
	// The database comes up 3 s after the process asks it first; launch
	// returns once the process listens, which it does after the database
	// answered (or fails the test, had the process exited).
	time.AfterFunc(3*time.Second, func() { testenv.NewProxyOn(t, pg.Host, target) })
	s.url = s.launch("serve").url
	if _, body := get(t, s.url+"/readyz"); !strings.Contains(body, `"database":"ok"`) {
		t.Fatalf("/readyz = %s, want the database ok", body)
	}
}

// TestEndToEndServeRefusesADatabaseThatDoesNotAnswer: a database that
// accepts connections and never answers (a stalled server, a black-holed
// route) stops the process at start-up within its ping's timeout, saying
// so. Before, it hung there for good, with no log line and no /healthz.
// It names the setting, DATABASE_URL, as a bad setting is named.
// With JSON logs, why it stopped is a JSON line too: before, plain text
// over several lines, which a log pipeline split or dropped.
func TestEndToEndServeRefusesADatabaseThatDoesNotAnswer(t *testing.T) {
	db := testenv.NewProxy(t, "127.0.0.1:1")
	db.Stall() // connections held open, never answered
	cmd := exec.Command(testenv.Binary(t), "serve")
	cmd.Env = append(os.Environ(), "DATABASE_URL=postgres://postgres@"+db.Addr+"/x?sslmode=disable", "DISPATCHER_LOG_FORMAT=json",
		"DISPATCHER_JWT_SECRET="+e2eSecret, "DISPATCHER_HTTP_ADDR=127.0.0.1:0", "TEMPORAL_ADDRESS=127.0.0.1:1")
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("dispatcher serve hung at start-up on a database that does not answer:\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var last struct{ Level, Msg, Err string }
	if err == nil || json.Unmarshal([]byte(lines[len(lines)-1]), &last) != nil || last.Level != "ERROR" || !strings.Contains(last.Err, "does not answer") || !strings.HasPrefix(last.Err, "DATABASE_URL: ") {
		t.Fatalf("exit %v, output:\n%s\nwant a failure saying, in a last JSON line, that the database does not answer", err, out)
	}
}

// TestEndToEndStalledDatabaseAnswers503: a database that stops answering
// while the API runs (a black-holed route, a frozen server) gets every
// request answered 503 within DISPATCHER_REQUEST_TIMEOUT, more requests
// at once than the pool has connections, and once it answers again so
// does the API. Before, a request waited on it for as long as its client
// did, holding a pooled connection, and enough of them wedged the API.
func TestEndToEndStalledDatabaseAnswers503(t *testing.T) {
	u, err := url.Parse(testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	db := testenv.NewProxy(t, u.Host)
	u.Host = db.Addr
	s := startSystem(t, withEnv("DATABASE_URL="+u.String(), "DISPATCHER_REQUEST_TIMEOUT=2s"))
	s.call("GET", "/dispatchers/v1", nil, 200)

	db.Stall()
	const requests = 40 // the pool holds 32 connections
	type answer struct {
		code int
		body string
		err  error
	}
	answers := make(chan answer, requests)
	hc := &http.Client{Timeout: 20 * time.Second}
	for range requests {
		go func() {
			req, _ := http.NewRequest("GET", s.url+"/dispatchers/v1", nil)
			req.Header.Set("Authorization", "Bearer "+s.token)
			res, err := hc.Do(req)
			if err != nil {
				answers <- answer{err: err}
				return
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			answers <- answer{code: res.StatusCode, body: string(b)}
		}()
	}
	for range requests {
		a := <-answers
		if a.err != nil || a.code != 503 || !strings.Contains(a.body, "database") {
			t.Fatalf("a request while the database does not answer: %d %s %v, want 503 naming the database", a.code, a.body, a.err)
		}
	}

	db.Resume()
	var last string
	s.poll("the API to answer again", func() bool {
		code, body := s.request("GET", "/dispatchers/v1", nil)
		last = string(body)
		return code == 200
	}, &last)
}
