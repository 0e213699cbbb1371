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

// benchDatabase returns the store URL of the dispatcher under test in
// row name: a fresh SQLite file in dir, or a fresh schema in PostgreSQL,
// and what removes it.
func benchDatabase(ctx context.Context, p params, dir, name string) (string, func(), error) {
	if p.DB == "sqlite" {
		return "sqlite:" + filepath.Join(dir, "bench-"+name+".db"), func() {}, nil
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

// dispatcherProc is the dispatcher binary running serve, api or worker.
type dispatcherProc struct {
	*proc.Child
	mode  string // serve, api or worker
	url   string // of its API (serve, api) or its health and metrics (worker)
	token string
	http  *http.Client
}

// listening is the line a dispatcher process prints once it listens:
// "dispatcher API listening on ..." (serve, api) or "dispatcher worker
// health and metrics listening on ..." (worker).
var listening = regexp.MustCompile(`dispatcher (?:API|worker health and metrics) listening on (http://[^\s"]+)`)

// startDispatcher starts `bin mode` and waits until it answers /readyz,
// which it does once its store and Temporal answer it.
func startDispatcher(ctx context.Context, bin, mode string, env []string, logPath string) (*dispatcherProc, error) {
	urls := make(chan string, 1)
	cmd := exec.Command(bin, mode)
	cmd.Env = env
	cmd.Stdout = &lineWatcher{match: func(line string) {
		if m := listening.FindStringSubmatch(line); m != nil {
			select {
			case urls <- m[1]:
			default:
			}
		}
	}}
	c, err := proc.Start("dispatcher "+mode, cmd, logPath)
	if err != nil {
		return nil, err
	}
	d := &dispatcherProc{Child: c, mode: mode, http: &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: 1024, DisableCompression: true,
	}}}
	select {
	case d.url = <-urls:
	case <-c.Exited():
		return nil, fmt.Errorf("dispatcher %s exited: %v\n%s", mode, c.Err(), c.LogTail())
	case <-time.After(time.Minute):
		d.Stop(syscall.SIGKILL, time.Second)
		return nil, fmt.Errorf("dispatcher %s did not start in a minute:\n%s", mode, c.LogTail())
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
// mail, task, ..., ordered by the key ordering unless it is "".
// Templates and data refer to the event, as real ones do.
func (d *dispatcherProc) configure(ctx context.Context, n int, functionURL, ordering string) error {
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
	disp := map[string]any{"name": "bench", "eventType": "bench", "actions": actions}
	if ordering != "" {
		disp["ordering"] = map[string]any{"key": ordering}
	}
	return d.call(ctx, "POST", "/dispatchers/v1", disp, nil)
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

// accepted is the 202 answer of POST /events/v1, or what a broker's
// acknowledgement says of an event.
type accepted struct {
	WorkflowID string `json:"workflowId"`
	RunID      string `json:"runId"` // "" when sequenced
	Duplicate  bool   `json:"duplicate"`
	Sequenced  bool   `json:"sequenced"`
	Attempts   int    `json:"-"` // sends of a producer
}

// content is the content of a bench event, which the bench dispatcher's
// templates and task data refer to.
type content struct {
	Name   string `json:"name"`
	UserID int    `json:"userId"`
	Email  string `json:"email"`
}

// sendEvent posts one Extra Horizon event of type "bench".
func (d *dispatcherProc) sendEvent(ctx context.Context, id string, c content) (accepted, error) {
	body, err := json.Marshal(struct {
		ID      string  `json:"id"`
		Type    string  `json:"type"`
		Content content `json:"content"`
	}{id, "bench", c})
	if err != nil {
		return accepted{}, err
	}
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

// waitClosed waits until want runs of workflowType on taskQueue
// completed and none runs, per the visibility store, which trails the
// runs by milliseconds (by more on a loaded server on PostgreSQL).
func waitClosed(ctx context.Context, tc client.Client, workflowType, taskQueue string, want int) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	q := fmt.Sprintf("WorkflowType = '%s' AND TaskQueue = '%s' AND ExecutionStatus = ", workflowType, taskQueue)
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
			return fmt.Errorf("%d of %d %s runs on %s completed (%d still running, last error %v)", completed, want, workflowType, taskQueue, open, err)
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
