package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/encryption"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
	"github.com/dispatcherhq/dispatcher/models"
)

// keygen runs `dispatcher encryption keygen` and returns its entry.
func keygen(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := run(context.Background(), append([]string{"encryption", "keygen"}, args...), func(string) string { return "" }, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	// A rotation appends the key before it puts it first: before, the
	// advice put it first at once, and processes still on the old value
	// could not read what updated ones wrote during the rollout.
	if !strings.Contains(errOut.String(), "DISPATCHER_ENCRYPTION_KEY=") || !strings.Contains(errOut.String(), "append it, DISPATCHER_ENCRYPTION_KEY=<the keys you have>,") {
		t.Errorf("keygen's advice on stderr: %q", errOut.String())
	}
	return strings.TrimSpace(out.String())
}

func TestEncryptionKeySetting(t *testing.T) {
	k1, k2 := keygen(t, "--id", "k1"), keygen(t, "--id", "k2")
	if !strings.HasPrefix(k1, "k1:") {
		t.Fatalf("keygen --id k1 printed %q", k1)
	}
	def, again := keygen(t), keygen(t)
	if !strings.HasPrefix(def, "k"+time.Now().UTC().Format("20060102")+"-") || strings.Split(def, ":")[0] == strings.Split(again, ":")[0] {
		t.Errorf("keygen without --id printed %q, then %q; want dated ids of their own", def, again)
	}
	env := map[string]string{"DISPATCHER_ENCRYPTION_KEY": k2 + "," + k1, "DISPATCHER_JWT_SECRET": "jwt-secret-jwt-secret-jwt-secret-jwt"}
	cfg := configFrom(t, env)
	if cfg.Keys == nil || cfg.Keys.Current() != "k2" {
		t.Fatalf("keys %v: want k2 current", cfg.Keys)
	}

	// `dispatcher config` shows the ids, never a key.
	var out bytes.Buffer
	if err := run(context.Background(), []string{"config"}, func(k string) string { return env[k] }, &out, &out); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{k1, k2} {
		if _, key, _ := strings.Cut(k, ":"); strings.Contains(out.String(), key) {
			t.Fatalf("dispatcher config shows a key:\n%s", out.String())
		}
	}
	if !strings.Contains(out.String(), "(hidden; key ids k2, k1, the first encrypting)") {
		t.Errorf("dispatcher config does not show the key ids:\n%s", out.String())
	}
	// Nor does an error.
	_, key, _ := strings.Cut(k1, ":")
	_, err := loadConfig(func(k string) string {
		return map[string]string{"DISPATCHER_ENCRYPTION_KEY": "k1:" + key[:20]}[k]
	})
	if err == nil || !strings.Contains(err.Error(), "DISPATCHER_ENCRYPTION_KEY") || strings.Contains(err.Error(), key[:20]) {
		t.Errorf("a short key: %v; want an error naming the setting, not the key", err)
	}

	// Every Temporal client encrypts with them.
	opts, err := temporalOptions(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.DataConverter.ToPayload("ann@example.com")
	if err != nil || string(p.GetMetadata()["encoding"]) != "binary/encrypted" || string(p.GetMetadata()["encryption-key-id"]) != "k2" {
		t.Errorf("the client's data converter gives %q, %v; want binary/encrypted under k2", p.GetMetadata(), err)
	}
	if f := opts.FailureConverter.ErrorToFailure(context.DeadlineExceeded); f.GetMessage() != "Encoded failure" {
		t.Errorf("the client's failure converter leaves %q readable", f.GetMessage())
	}
	plain, err := temporalOptions(configFrom(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := plain.DataConverter.ToPayload("x"); string(p.GetMetadata()["encoding"]) != "json/plain" {
		t.Errorf("without keys the client encodes %q", p.GetMetadata())
	}
}

func TestCodecOriginsSetting(t *testing.T) {
	// The local Web UI under both its names: the Temporal CLI prints
	// localhost. Before, only 127.0.0.1.
	if got := configFrom(t, nil).CodecOrigins; !slices.Equal(got, []string{"http://127.0.0.1:8233", "http://localhost:8233"}) {
		t.Errorf("default codec origins %v, want the Web UI's", got)
	}
	for ui, want := range map[string][]string{
		"http://localhost:18233":     {"http://localhost:18233", "http://127.0.0.1:18233"},
		"https://LOCALHOST/ui":       {"https://localhost", "https://127.0.0.1"},
		"http://127.0.0.1":           {"http://127.0.0.1", "http://localhost"},
		"http://127.0.0.2:8233":      {"http://127.0.0.2:8233"},
		"https://temporal.localhost": {"https://temporal.localhost"},
	} {
		if got := configFrom(t, map[string]string{"DISPATCHER_TEMPORAL_UI_URL": ui}).CodecOrigins; !slices.Equal(got, want) {
			t.Errorf("codec origins of a UI at %s: %v, want %v", ui, got, want)
		}
	}
	got := configFrom(t, map[string]string{"DISPATCHER_TEMPORAL_UI_URL": "https://Temporal.example.com/ui",
		"DISPATCHER_CODEC_CORS_ORIGINS": ""}).CodecOrigins
	if !slices.Equal(got, []string{"https://temporal.example.com"}) {
		t.Errorf("codec origins from the UI URL: %v", got)
	}
	got = configFrom(t, map[string]string{"DISPATCHER_CODEC_CORS_ORIGINS": "https://a.example.com, http://b.example.com:8080/"}).CodecOrigins
	if !slices.Equal(got, []string{"https://a.example.com", "http://b.example.com:8080"}) {
		t.Errorf("codec origins %v", got)
	}
	for _, bad := range []string{"a.example.com", "https://a.example.com/ui", "*", "ftp://a.example.com"} {
		if _, err := loadConfig(func(k string) string {
			return map[string]string{"DISPATCHER_CODEC_CORS_ORIGINS": bad}[k]
		}); err == nil || !strings.Contains(err.Error(), "DISPATCHER_CODEC_CORS_ORIGINS") {
			t.Errorf("%q: %v, want refused", bad, err)
		}
	}
}

// TestEncryptionRotateCommand: `dispatcher encryption rotate` encrypts
// what was stored in clear text, with progress, and a dry run writes
// nothing.
func TestEncryptionRotateCommand(t *testing.T) {
	ctx := context.Background()
	url := testenv.SQLite(t)
	db, err := models.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := models.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	f := dispatcher.Function{Name: "erase", URL: "https://erase.example.com/", Secret: "legacy-secret"}
	if err := models.NewStore(db, time.Now).CreateFunction(ctx, &f); err != nil {
		t.Fatal(err)
	}
	k1 := keygen(t, "--id", "k1")
	rotate := func(env map[string]string, args ...string) (string, error) {
		var out bytes.Buffer
		err := run(ctx, append([]string{"encryption", "rotate"}, args...), func(k string) string { return env[k] }, &out, &out)
		return out.String(), err
	}
	env := map[string]string{"DATABASE_URL": url, "DISPATCHER_ENCRYPTION_KEY": k1}
	raw := func() string {
		sqlDB, err := db.DB()
		if err != nil {
			t.Fatal(err)
		}
		var s string
		if err := sqlDB.QueryRow("SELECT secret FROM functions WHERE id = ?", f.ID).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}

	// A key no process has: what rotate wrote under it, none could read.
	// Before, rotate went on.
	started := func(entries ...string) { // a process with these keys starts
		t.Helper()
		ring, err := encryption.ParseKeyRing(strings.Join(entries, ","))
		if err == nil {
			err = models.NewStore(db, time.Now, models.WithKeys(ring)).CheckKeys(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"--dry-run"}, nil} {
		if out, err := rotate(env, args...); err == nil || !strings.Contains(err.Error(), "no process has run with a key yet (none stored a check value), so none could read what rotate encrypts: start them with the key first, then rotate") || raw() != "legacy-secret" {
			t.Fatalf("rotate %v to a key no process has: %v\n%s", args, err, out)
		}
	}
	started(k1)
	out, err := rotate(env, "--dry-run")
	if err != nil || !strings.Contains(out, "done: 1 functions, 1 to re-encrypt") || raw() != "legacy-secret" {
		t.Fatalf("dry run: %v\n%s (stored %q)", err, out, raw())
	}
	out, err = rotate(env)
	if err != nil || !strings.Contains(out, `current key "k1"`) || !strings.Contains(out, "1 functions read: 1 re-encrypted") ||
		!strings.Contains(out, "done: 1 functions, 1 re-encrypted, 0 already current or with no secret") {
		t.Fatalf("rotate: %v\n%s", err, out)
	}
	if id, ok := encryption.EnvelopeKey(raw()); !ok || id != "k1" {
		t.Fatalf("after rotate the secret is stored as %q", raw())
	}
	if _, key, _ := strings.Cut(k1, ":"); strings.Contains(out, key) {
		t.Errorf("rotate printed the key:\n%s", out)
	}

	k2 := keygen(t, "--id", "k2")
	// A new key no process has yet, once they run with others, is to be
	// rolled out first.
	if out, err := rotate(map[string]string{"DATABASE_URL": url, "DISPATCHER_ENCRYPTION_KEY": k2 + "," + k1}, "--dry-run"); err == nil ||
		!strings.Contains(err.Error(), `no process has the key "k2" yet (none stored its check value), so none could read what it encrypts: roll it out first, appended, then first`) {
		t.Fatalf("rotate to k2 before any process has it: %v\n%s", err, out)
	}
	started(k1, k2)
	started(k2, k1)
	// Other material under the id the processes have for k2, given as
	// the new key or beside the current one: refused, the dry run too.
	// Before, rotate re-encrypted every secret with it, and the running
	// processes read no function until it was rotated back.
	fake := keygen(t, "--id", "k2")
	for _, ring := range []string{fake + "," + k1, k1 + "," + fake} {
		for _, args := range [][]string{{"--dry-run"}, nil} {
			if out, err := rotate(map[string]string{"DATABASE_URL": url, "DISPATCHER_ENCRYPTION_KEY": ring}, args...); err == nil ||
				!strings.Contains(err.Error(), `key "k2" is not the key "k2" the other processes have`) {
				t.Fatalf("rotate %v with other material under k2: %v\n%s", args, err, out)
			}
		}
	}
	if id, _ := encryption.EnvelopeKey(raw()); id != "k1" {
		t.Fatalf("a refused rotate changed the secret: %q", raw())
	}
	out, err = rotate(map[string]string{"DATABASE_URL": url, "DISPATCHER_ENCRYPTION_KEY": k2 + "," + k1})
	if err != nil || !strings.Contains(out, "1 re-encrypted") || !strings.Contains(out, "no stored secret needs k1 any more") {
		t.Fatalf("rotate to k2: %v\n%s", err, out)
	}
	if id, _ := encryption.EnvelopeKey(raw()); id != "k2" {
		t.Fatalf("after rotating to k2 the secret is stored as %q", raw())
	}
	if _, err := rotate(map[string]string{"DATABASE_URL": url}); err == nil || !strings.Contains(err.Error(), "DISPATCHER_ENCRYPTION_KEY is not set") {
		t.Errorf("rotate without a key: %v", err)
	}
	if out, err := rotate(map[string]string{"DATABASE_URL": url, "DISPATCHER_ENCRYPTION_KEY": k1}); err == nil ||
		!strings.Contains(err.Error(), `encrypted with key "k2"`) || !strings.Contains(err.Error(), f.ID) {
		t.Errorf("rotate with only the old key: %v\n%s", err, out)
	}
}
