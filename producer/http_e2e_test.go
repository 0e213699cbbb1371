package producer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/proc"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
)

// dispatcherAPI is the real dispatcher a test runs: `dispatcher serve`
// on a Temporal dev server and SQLite.
type dispatcherAPI struct {
	url   string
	admin string // an admin JWT
}

func startDispatcher(t *testing.T) *dispatcherAPI {
	t.Helper()
	temporal := testenv.Temporal(t)
	bin := testenv.Binary(t)
	port, err := proc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(),
		"DATABASE_URL="+testenv.SQLite(t),
		"DISPATCHER_JWT_SECRET=producer-test-secret-of-at-least-32-bytes",
		"TEMPORAL_ADDRESS="+temporal.FrontendHostPort(),
		fmt.Sprintf("DISPATCHER_HTTP_ADDR=127.0.0.1:%d", port),
		"DISPATCHER_SMTP_URL=smtp://"+testenv.SMTP(t).Addr,
		"DISPATCHER_LOG_LEVEL=warn",
	)
	cmd := exec.Command(bin, "serve")
	cmd.Env = env
	child, err := proc.Start("dispatcher", cmd, filepath.Join(t.TempDir(), "dispatcher.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { child.Stop(syscall.SIGTERM, 10*time.Second) })
	d := &dispatcherAPI{url: fmt.Sprintf("http://127.0.0.1:%d", port)}
	if err := child.WaitHTTP(context.Background(), d.url+"/readyz", 90*time.Second); err != nil {
		t.Fatal(err)
	}
	token := exec.Command(bin, "token", "--admin")
	token.Env = env
	out, err := token.Output()
	if err != nil {
		t.Fatalf("dispatcher token: %v", err)
	}
	d.admin = strings.TrimSpace(string(out))
	return d
}

// call sends a request with the admin token and decodes the answer into out.
func (d *dispatcherAPI) call(t *testing.T, method, path string, body, out any) int {
	t.Helper()
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	req, err := http.NewRequest(method, d.url+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+d.admin)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if out != nil {
		_ = json.NewDecoder(res.Body).Decode(out)
	}
	return res.StatusCode
}

// TestHTTPAgainstTheDispatcher sends events to the real dispatcher, with
// an API key and a JWT, in both envelopes, and reads back what it
// dispatched.
func TestHTTPAgainstTheDispatcher(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the dispatcher and a Temporal dev server")
	}
	d := startDispatcher(t)
	var key struct {
		Key string `json:"key"`
	}
	if s := d.call(t, "POST", "/apikeys/v1", map[string]any{"name": "producer test", "permissions": []string{"CREATE_EVENTS"},
		"eventTypes": []string{"user_deleted"}}, &key); s != http.StatusCreated && s != http.StatusOK || !strings.HasPrefix(key.Key, "dsp_") {
		t.Fatalf("POST /apikeys/v1 = %d %+v", s, key)
	}
	ctx := context.Background()

	t.Run("lk with an API key", func(t *testing.T) {
		p := newProducer(t, HTTP(d.url, key.Key), nil, WithSource("billing@host-1"))
		ev, err := p.Dispatch(ctx, "user_deleted", map[string]any{"userId": 42, "email": "ann@example.com"},
			WithUserID("u-42"), WithPartitionKey("u-42"))
		if err != nil {
			t.Fatal(err)
		}
		if r := ev.Receipt; r.WorkflowID != "dispatch-"+ev.ID || r.RunID == "" || r.Duplicate {
			t.Errorf("receipt %+v, want a new dispatch-%s", r, ev.ID)
		}
		var got struct {
			Event struct {
				ID                string          `json:"id"`
				Type              string          `json:"type"`
				Content           json.RawMessage `json:"content"`
				CreationTimestamp int64           `json:"creationTimestamp"`
				Source            string          `json:"source"`
			} `json:"event"`
		}
		testenv.Eventually(t, 30*time.Second, func() string {
			if s := d.call(t, "GET", "/executions/v1/"+ev.Receipt.WorkflowID, nil, &got); s != http.StatusOK {
				return fmt.Sprintf("GET /executions/v1/%s = %d", ev.Receipt.WorkflowID, s)
			}
			return ""
		})
		e := got.Event
		if e.ID != ev.ID || e.Type != "user_deleted" || e.Source != "billing@host-1" || e.CreationTimestamp != ev.Time.UnixMilli() ||
			string(e.Content) != `{"email":"ann@example.com","userId":42}` {
			t.Errorf("the dispatcher dispatched %+v (content %s), want the event %+v", e, e.Content, ev)
		}

		// Sent again with its id: the dispatcher says it has it.
		again, err := p.Dispatch(ctx, "user_deleted", map[string]any{"userId": 42}, WithID(ev.ID))
		if err != nil {
			t.Fatal(err)
		}
		if r := again.Receipt; !r.Duplicate || r.WorkflowID != ev.Receipt.WorkflowID || r.RunID != ev.Receipt.RunID {
			t.Errorf("sent again: receipt %+v, want a duplicate of %+v", r, ev.Receipt)
		}
	})

	t.Run("CloudEvents with a JWT", func(t *testing.T) {
		p := newProducer(t, HTTP(d.url+"/events/v1", d.admin), nil, WithEnvelope(EnvelopeCloudEvents),
			WithSource("https://billing.example.com"))
		ev, err := p.Dispatch(ctx, "invoice_paid", map[string]any{"amount": 12}, WithUserID("u-1"), WithPartitionKey("acct-1"))
		if err != nil {
			t.Fatal(err)
		}
		if ev.Receipt.WorkflowID == "" || ev.Receipt.Duplicate {
			t.Errorf("receipt %+v", ev.Receipt)
		}
		again, err := p.Dispatch(ctx, "invoice_paid", map[string]any{"amount": 12}, WithID(ev.ID))
		if err != nil {
			t.Fatal(err)
		}
		if !again.Receipt.Duplicate || again.Receipt.WorkflowID != ev.Receipt.WorkflowID {
			t.Errorf("sent again: receipt %+v, want a duplicate of %+v", again.Receipt, ev.Receipt)
		}
	})

	t.Run("refusals are not retried", func(t *testing.T) {
		for _, tt := range []struct {
			name, token, typ string
			status           int
		}{
			{"a type the key may not send", key.Key, "invoice_paid", http.StatusForbidden},
			{"an unknown key", "dsp_unknown", "user_deleted", http.StatusUnauthorized},
			{"a token that is no JWT", "nonsense", "user_deleted", http.StatusUnauthorized},
		} {
			t.Run(tt.name, func(t *testing.T) {
				p := newProducer(t, HTTP(d.url, tt.token), &waits{}, WithRetry(Retry{Attempts: 3, Initial: time.Millisecond, Max: time.Millisecond}))
				ev, err := p.Dispatch(ctx, tt.typ, nil)
				var e *Error
				if !errors.As(err, &e) || e.Status != tt.status || e.Retryable || !errors.Is(err, ErrRejected) || ev.Receipt.Attempts != 1 {
					t.Errorf("err = %v after %d attempts; want %d, not retried", err, ev.Receipt.Attempts, tt.status)
				}
			})
		}
	})
}
