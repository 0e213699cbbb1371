package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/dispatcherhq/dispatcher/encryption"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
	"github.com/dispatcherhq/dispatcher/models"
)

// TestEndToEndEncryption runs the binary with DISPATCHER_ENCRYPTION_KEY:
// a function's secret and headers are ciphertext in PostgreSQL, an
// event's content is ciphertext in Temporal's history (read with a client
// that has no key), while the API still shows the execution decoded and
// the codec endpoint decodes the history's payloads for a token allowed
// to, and for no one else.
func TestEndToEndEncryption(t *testing.T) {
	const name, ui = "Ann Zebrafinch", "https://temporal-ui.example.com"
	key, err := encryption.GenerateKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	s := startSystem(t, withEnv("DISPATCHER_ENCRYPTION_KEY="+key, "DISPATCHER_OUTBOUND_ALLOW=127.0.0.0/8",
		"DISPATCHER_CODEC_CORS_ORIGINS="+ui, "DISPATCHER_LOG_LEVEL=info"))

	// At rest.
	s.call("POST", "/functions/v1", map[string]any{"name": "erase", "url": "http://127.0.0.1:9/",
		"secret": "fn-secret-value", "headers": map[string]string{"X-Api-Key": "fn-header-value"}}, 200)
	secret, headers := rawFunctionColumns(t, s.setting("DATABASE_URL"), "erase")
	for _, col := range []string{secret, headers} {
		if !strings.HasPrefix(col, "enc:v1:k1:") || strings.Contains(col, "fn-secret-value") || strings.Contains(col, "fn-header-value") || strings.Contains(col, "X-Api-Key") {
			t.Errorf("stored column %q: want an envelope under k1", col)
		}
	}
	fns := s.call("GET", "/functions/v1", nil, 200)["data"].([]any)
	if f := fns[0].(map[string]any); f["hasSecret"] != true || len(f["headerNames"].([]any)) != 1 {
		t.Errorf("the API reads the function back as %v", f)
	}
	if out := s.run("encryption", "rotate", "--dry-run"); !strings.Contains(out, "done: 1 functions, 0 to re-encrypt, 1 already current or with no secret") {
		t.Errorf("encryption rotate --dry-run:\n%s", out)
	}

	// In Temporal.
	tmpl := s.call("POST", "/templates/v1", map[string]any{"name": "hi", "subject": "Hi {{ .event.content.name }}", "text": "Hello"}, 200)["id"].(string)
	s.call("POST", "/dispatchers/v1", map[string]any{"name": "welcome", "eventType": "signup",
		"actions": []any{map[string]any{"type": "mail", "templateId": tmpl, "recipients": map[string]any{"to": []string{"ann@example.com"}}}}}, 200)
	acc := s.call("POST", "/events/v1", map[string]any{"id": "enc-1", "type": "signup", "content": map[string]any{"name": name}}, 202)
	wid, run := acc["workflowId"].(string), acc["runId"].(string)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.temporal.GetWorkflow(ctx, wid, run).Get(ctx, nil); err != nil {
		t.Fatalf("dispatch: %v\nlogs:\n%s", err, s.logs)
	}
	if m := s.smtp.Mails(); len(m) != 1 || !strings.Contains(string(m[0].Data), "Subject: Hi "+name) {
		t.Errorf("mails: %+v; want one to Ann, its subject rendered from the decrypted event", m)
	}
	it := s.temporal.GetWorkflowHistory(ctx, wid, run, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	first, err := it.Next()
	if err != nil {
		t.Fatal(err)
	}
	input := first.GetWorkflowExecutionStartedEventAttributes().GetInput()
	p := input.GetPayloads()[0]
	if string(p.GetMetadata()["encoding"]) != "binary/encrypted" || json.Valid(p.GetData()) || strings.Contains(string(p.GetData()), name) {
		t.Fatalf("the history's input is readable without the key: %q %q", p.GetMetadata(), p.GetData())
	}

	// The API decodes.
	detail, err := json.Marshal(s.call("GET", "/executions/v1/"+wid, nil, 200))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(detail), name) || !strings.Contains(string(detail), `"succeeded"`) {
		t.Errorf("the execution detail does not show the decoded event and outcome:\n%s", detail)
	}

	// The codec endpoint, as the Temporal Web UI calls it.
	body, err := protojson.Marshal(input)
	if err != nil {
		t.Fatal(err)
	}
	viewer := strings.TrimSpace(s.run("token", "--permissions", "VIEW_EXECUTIONS,VIEW_EVENT_CONTENT"))
	for _, tt := range []struct {
		who, token string
		status     int
	}{
		{"a token with DECODE_PAYLOADS", s.token, 200},
		{"a token without it", viewer, 403},
		{"no token", "", 401},
	} {
		status, got, allow := codecDecode(t, s.url, tt.token, ui, body)
		if status != tt.status || allow != ui {
			t.Errorf("%s: %d (Access-Control-Allow-Origin %q) %s, want %d", tt.who, status, allow, got, tt.status)
			continue
		}
		var out commonpb.Payloads
		if status == 200 {
			if err := protojson.Unmarshal(got, &out); err != nil || !strings.Contains(string(out.GetPayloads()[0].GetData()), name) {
				t.Errorf("%s: decoded %s, %v", tt.who, got, err)
			}
		} else if strings.Contains(string(got), name) {
			t.Errorf("%s: the refusal shows the payload: %s", tt.who, got)
		}
	}
	// Temporal's CLI, a client of the same protocol.
	show := exec.Command(testenv.TemporalCLI(t), "workflow", "show", "--address", s.setting("TEMPORAL_ADDRESS"), "-w", wid,
		"--codec-endpoint", s.url+"/codec", "--codec-auth", "Bearer "+s.token)
	out, err := show.CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"Status":"succeeded"`) || !regexp.MustCompile(`ResultEncoding\s+json/plain`).Match(out) {
		t.Errorf("temporal workflow show --codec-endpoint: %v\n%s", err, out)
	}
	if _, k, _ := strings.Cut(key, ":"); strings.Contains(s.logs.String(), k) {
		t.Error("the logs show the key")
	}

	// A process of the deployment without the key (its Secret not
	// mounted) refuses to start. Before, it ran, ready, and stored the
	// secrets it was given in clear text beside the others' envelopes.
	keyless := exec.Command(s.bin, "serve")
	for _, kv := range s.env {
		if !strings.HasPrefix(kv, "DISPATCHER_ENCRYPTION_KEY=") && !strings.HasPrefix(kv, "DISPATCHER_HTTP_ADDR=") {
			keyless.Env = append(keyless.Env, kv)
		}
	}
	keyless.Env = append(keyless.Env, "DISPATCHER_HTTP_ADDR=127.0.0.1:0")
	if out, err := keyless.CombinedOutput(); err == nil || !strings.Contains(string(out), "DISPATCHER_ENCRYPTION_KEY is not set, but other processes encrypt this store, with the keys k1") {
		t.Errorf("a process without the key: %v\n%s\nwant it refused", err, out)
	}
}

// setting returns the value of a KEY=value entry of the system's
// environment.
func (s *system) setting(name string) string {
	s.t.Helper()
	for i := len(s.env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(s.env[i], name+"="); ok {
			return v
		}
	}
	s.t.Fatalf("%s is not set", name)
	return ""
}

// rawFunctionColumns reads a function's secret and headers as stored.
func rawFunctionColumns(t *testing.T, databaseURL, name string) (secret, headers string) {
	t.Helper()
	db, err := models.Open(databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	defer sqlDB.Close()
	if err := sqlDB.QueryRow("SELECT secret, COALESCE(headers, '') FROM functions WHERE name = $1", name).Scan(&secret, &headers); err != nil {
		t.Fatal(err)
	}
	return secret, headers
}

// codecDecode posts payloads to /codec/decode as the Web UI does.
func codecDecode(t *testing.T, base, token, origin string, body []byte) (int, []byte, string) {
	t.Helper()
	req, err := http.NewRequest("POST", base+"/codec/decode", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Namespace", "default")
	req.Header.Set("Origin", origin)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b, res.Header.Get("Access-Control-Allow-Origin")
}
