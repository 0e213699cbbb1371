package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/dispatcherhq/dispatcher/internal/proc"
)

// benchDispatcher measures the real product: events through the HTTP
// intake of `dispatcher serve`, dispatched by its worker to the sinks.
func benchDispatcher(ctx context.Context, p params, dir string, prog *progress) (phase, error) {
	var cl cleanups
	defer cl.run()
	res := phase{Name: "dispatcher"}

	tr := newTracker(p.Actions)
	smtpSink, err := startSMTPSink(tr)
	if err != nil {
		return res, err
	}
	cl.add(smtpSink.close)
	fnSink, err := startFunctionSink(tr)
	if err != nil {
		return res, err
	}
	cl.add(fnSink.close)

	srv, err := proc.StartDevServer(ctx, proc.DevServerOptions{CLI: p.TemporalCLI, LogPath: filepath.Join(dir, "temporal-dispatcher.log")})
	if err != nil {
		return res, err
	}
	cl.add(func() { srv.Stop(syscall.SIGINT, 10*time.Second) })
	tc, err := srv.Dial()
	if err != nil {
		return res, err
	}
	cl.add(tc.Close)

	dbURL, dropDB, err := benchDatabase(ctx, p, dir)
	if err != nil {
		return res, err
	}
	cl.add(dropDB)

	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	env := append(os.Environ(),
		"DATABASE_URL="+dbURL,
		"DISPATCHER_JWT_SECRET="+hex.EncodeToString(secret),
		"TEMPORAL_ADDRESS="+srv.Addr,
		"DISPATCHER_HTTP_ADDR=127.0.0.1:0",
		"DISPATCHER_SMTP_URL=smtp://"+smtpSink.addr,
		"DISPATCHER_MAIL_FROM=bench@example.com",
		"DISPATCHER_LOG_LEVEL="+p.LogLevel,
	)
	prog.note("starting %s serve (%s store, Temporal at %s)", p.Dispatcher, p.DB, srv.Addr)
	d, err := startDispatcher(ctx, p.Dispatcher, env, filepath.Join(dir, "dispatcher.log"))
	if err != nil {
		return res, err
	}
	cl.add(func() { d.Stop(syscall.SIGTERM, 20*time.Second) })
	if d.token, err = mintToken(ctx, p.Dispatcher, env, p.Timeout+time.Hour); err != nil {
		return res, err
	}
	if err := d.configure(ctx, p.Actions, fnSink.url); err != nil {
		return res, err
	}

	runIDs := make([]string, p.Warmup+p.N)
	wfIDs := make([]string, p.Warmup+p.N)
	do := func(ctx context.Context, seq int) (time.Duration, time.Duration, error) {
		id := fmt.Sprintf("bench-%06d", seq)
		done := tr.expect(id)
		t0 := time.Now()
		acc, err := d.sendEvent(ctx, id, seq)
		intake := time.Since(t0)
		if err != nil {
			return 0, 0, err
		}
		if acc.Duplicate {
			return 0, 0, fmt.Errorf("event %s was taken for a duplicate", id)
		}
		wfIDs[seq], runIDs[seq] = acc.WorkflowID, acc.RunID
		switch p.Await {
		case "temporal":
			if err := tc.GetWorkflow(ctx, acc.WorkflowID, acc.RunID).Get(ctx, nil); err != nil {
				return 0, 0, fmt.Errorf("dispatch %s: %w", acc.WorkflowID, err)
			}
		default:
			select {
			case <-done:
			case <-ctx.Done():
				return 0, 0, ctx.Err()
			}
		}
		return intake, time.Since(t0), nil
	}

	if p.Warmup > 0 {
		if _, err := drive(ctx, "dispatcher warm-up", 0, p.Warmup, p.Concurrency, do, prog); err != nil {
			return res, d.WithLog(ctx, err)
		}
	}
	before := cpuSnapshot(srv.Pid(), d.Pid())
	res.Load, err = drive(ctx, "dispatcher", p.Warmup, p.N, p.Concurrency, do, prog)
	if err != nil {
		return res, d.WithLog(ctx, err)
	}
	res.CPU = cpuSnapshot(srv.Pid(), d.Pid()).since(before)
	res.SeparateDriver = true

	// Every dispatch must have completed: a failed or hanging one would
	// make the figures meaningless.
	if err := waitClosed(ctx, tc, "Dispatch", p.Warmup+p.N); err != nil {
		return res, d.WithLog(ctx, err)
	}
	if s := tr.strays.Load(); s > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%d side effects arrived twice or for unknown events (at-least-once retries)", s))
	}
	res.Notes = append(res.Notes, fmt.Sprintf("the sinks received %d mails over %d SMTP connections and %d function calls",
		tr.mails.Load(), tr.smtpConns.Load(), tr.calls.Load()))
	if res.History, err = historyLengths(ctx, tc, sample(wfIDs[p.Warmup:], runIDs[p.Warmup:], p.Sample)); err != nil {
		return res, err
	}
	if res.Memory, err = readMemory(d.Pid()); err != nil {
		return res, err
	}
	return res, nil
}

// benchDatabase returns the store URL of the dispatcher under test: a
// fresh SQLite file in dir, or a fresh schema in PostgreSQL, and what
// removes it.
func benchDatabase(ctx context.Context, p params, dir string) (string, func(), error) {
	if p.DB == "sqlite" {
		return "sqlite:" + filepath.Join(dir, "bench.db"), func() {}, nil
	}
	conn, err := pgx.Connect(ctx, p.PostgresURL)
	if err != nil {
		return "", nil, fmt.Errorf("postgres at %s: %w", redact(p.PostgresURL), err)
	}
	schema := "bench_" + randomHex(6)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		conn.Close(ctx)
		return "", nil, fmt.Errorf("create schema: %w", err)
	}
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
		conn.Close(ctx)
	}
	u, err := url.Parse(p.PostgresURL)
	if err != nil {
		drop()
		return "", nil, err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), drop, nil
}

// dispatcherProc is the dispatcher binary running `serve`.
type dispatcherProc struct {
	*proc.Child
	url   string
	token string
	http  *http.Client
}

var listening = regexp.MustCompile(`dispatcher API listening on (http://\S+)`)

func startDispatcher(ctx context.Context, bin string, env []string, logPath string) (*dispatcherProc, error) {
	urls := make(chan string, 1)
	cmd := exec.Command(bin, "serve")
	cmd.Env = env
	cmd.Stdout = &lineWatcher{match: func(line string) {
		if m := listening.FindStringSubmatch(line); m != nil {
			select {
			case urls <- m[1]:
			default:
			}
		}
	}}
	c, err := proc.Start("dispatcher", cmd, logPath)
	if err != nil {
		return nil, err
	}
	d := &dispatcherProc{Child: c, http: &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: 1024, DisableCompression: true,
	}}}
	select {
	case d.url = <-urls:
	case <-c.Exited():
		return nil, fmt.Errorf("dispatcher serve exited: %v\n%s", c.Err(), c.LogTail())
	case <-time.After(time.Minute):
		d.Stop(syscall.SIGKILL, time.Second)
		return nil, fmt.Errorf("dispatcher serve did not start in a minute:\n%s", c.LogTail())
	case <-ctx.Done():
		d.Stop(syscall.SIGKILL, time.Second)
		return nil, ctx.Err()
	}
	if err := c.WaitHTTP(ctx, d.url+"/readyz", 0); err != nil {
		d.Stop(syscall.SIGKILL, time.Second)
		return nil, err
	}
	return d, nil
}

// mintToken asks the binary for an admin token, as an operator would.
func mintToken(ctx context.Context, bin string, env []string, ttl time.Duration) (string, error) {
	cmd := exec.CommandContext(ctx, bin, "token", "--admin", "--ttl", ttl.String())
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("dispatcher token: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// configure creates, through the HTTP API, a template, a task function
// and the dispatcher of event type "bench" with n actions: mail, task,
// mail, task, ... Templates and data refer to the event, as real ones do.
func (d *dispatcherProc) configure(ctx context.Context, n int, functionURL string) error {
	var tmpl struct{ ID string }
	if err := d.call(ctx, "POST", "/templates/v1", map[string]any{
		"name": "bench-goodbye", "subject": "Goodbye {{ .event.content.name }}",
		"text": "Your account {{ .content.userId }} is gone.", "html": "<p>Bye {{ .content.name }}</p>",
	}, &tmpl); err != nil {
		return err
	}
	if err := d.call(ctx, "POST", "/functions/v1", map[string]any{
		"name": "bench-erase", "url": functionURL, "timeoutSeconds": 10,
	}, nil); err != nil {
		return err
	}
	actions := make([]any, n)
	for i := range actions {
		if i%2 == 0 {
			actions[i] = map[string]any{"type": "mail", "name": fmt.Sprintf("mail-%d", i+1), "templateId": tmpl.ID,
				"recipients": map[string]any{"to": []string{"{{ .event.content.email }}"}}}
		} else {
			actions[i] = map[string]any{"type": "task", "name": fmt.Sprintf("task-%d", i+1), "functionName": "bench-erase",
				"data": map[string]any{"userId": "{{ .event.content.userId }}", "reason": "bench"}}
		}
	}
	return d.call(ctx, "POST", "/dispatchers/v1", map[string]any{
		"name": "bench", "eventType": "bench", "actions": actions,
	}, nil)
}

// call sends an admin request and decodes its 200 answer into out.
func (d *dispatcherProc) call(ctx context.Context, method, path string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, d.url+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+d.token)
	req.Header.Set("Content-Type", "application/json")
	res, err := d.http.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s = %s: %s", method, path, res.Status, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// accepted is the 202 answer of POST /events/v1.
type accepted struct {
	WorkflowID string `json:"workflowId"`
	RunID      string `json:"runId"`
	Duplicate  bool   `json:"duplicate"`
}

// sendEvent posts one Extra Horizon event of type "bench".
func (d *dispatcherProc) sendEvent(ctx context.Context, id string, seq int) (accepted, error) {
	body := fmt.Appendf(nil, `{"id":%q,"type":"bench","content":{"name":"Ann <b>","userId":%d,"email":"user%d@example.com"}}`, id, seq, seq)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url+"/events/v1", bytes.NewReader(body))
	if err != nil {
		return accepted{}, err
	}
	req.Header.Set("Authorization", "Bearer "+d.token)
	req.Header.Set("Content-Type", "application/json")
	res, err := d.http.Do(req)
	if err != nil {
		return accepted{}, err
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusAccepted {
		return accepted{}, fmt.Errorf("POST /events/v1 = %s: %s", res.Status, raw)
	}
	var acc accepted
	return acc, json.Unmarshal(raw, &acc)
}

// lineWatcher passes every complete line written to it to match.
type lineWatcher struct {
	mu    sync.Mutex
	buf   []byte
	match func(string)
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.match(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
}

// waitClosed waits until want runs of workflowType completed and none
// runs, per the visibility store, which trails the runs by milliseconds.
func waitClosed(ctx context.Context, tc client.Client, workflowType string, want int) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	q := fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus = ", workflowType)
	var completed, open int64
	for {
		c, err := tc.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: q + "'Completed'"})
		if err == nil {
			completed = c.GetCount()
			o, err2 := tc.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: q + "'Running'"})
			if err2 == nil {
				open = o.GetCount()
			}
			err = err2
		}
		if err == nil && completed == int64(want) && open == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d %s runs completed (%d still running, last error %v)", completed, want, workflowType, open, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
