package main

import (
	"bytes"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestEndToEndAPIKeysCommand: a platform team makes a producer's key with
// the CLI, the producer sends its events with it, the key shows in the
// list (never the key itself), and once revoked it is refused. The key
// is alone on stdout, so that a script can take it.
func TestEndToEndAPIKeysCommand(t *testing.T) {
	s := startSystem(t)
	cmd := exec.Command(s.bin, "apikeys", "create", "--name", "billing producer", "--permissions", "CREATE_EVENTS",
		"--event-types", "invoice_paid", "--expires", "90d")
	cmd.Env = append(s.env, "DISPATCHER_URL="+s.url, "DISPATCHER_TOKEN="+s.token)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("apikeys create: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	key := strings.TrimSpace(stdout.String())
	if !regexp.MustCompile(`^dsp_\S+$`).MatchString(key) {
		t.Fatalf("stdout is %q, want the key alone", stdout.String())
	}
	id := regexp.MustCompile(`made API key ([0-9a-f]{24}) "billing producer": CREATE_EVENTS; event types invoice_paid, expires \d{4}-`).FindStringSubmatch(stderr.String())
	if id == nil || !strings.Contains(stderr.String(), "shown this once") {
		t.Fatalf("stderr says:\n%s", stderr.String())
	}

	send := func(typ string) int {
		req, _ := http.NewRequest("POST", s.url+"/events/v1", strings.NewReader(`{"type": "`+typ+`", "content": {}}`))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if code := send("invoice_paid"); code != http.StatusAccepted {
		t.Errorf("an event of the key's type: %d, want 202", code)
	}
	if code := send("user_deleted"); code != http.StatusForbidden {
		t.Errorf("an event of another type: %d, want 403", code)
	}

	list := s.cli("apikeys", "list")
	if !regexp.MustCompile(id[1]+`\s+billing producer\s+CREATE_EVENTS\s+invoice_paid\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+\S+\s+\d{4}-`).MatchString(list) ||
		strings.Contains(list, key) {
		t.Errorf("apikeys list:\n%s", list)
	}

	if out := s.cli("apikeys", "revoke", id[1]); !strings.Contains(out, "revoked API key "+id[1]) {
		t.Errorf("apikeys revoke: %s", out)
	}
	if code := send("invoice_paid"); code != http.StatusUnauthorized {
		t.Errorf("the revoked key: %d, want 401", code)
	}
	if list := s.cli("apikeys", "list"); !strings.Contains(list, "no API keys") {
		t.Errorf("apikeys list after the revocation:\n%s", list)
	}
}
