package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/worker"

	"github.com/dispatcherhq/dispatcher/activities"
	"github.com/dispatcherhq/dispatcher/api"
	"github.com/dispatcherhq/dispatcher/encryption"
	"github.com/dispatcherhq/dispatcher/models"
)

// TestAuthDisabledOnlyOnLoopback runs the real commands: with
// authentication off, an API process refuses to start unless it listens on
// a loopback address, and says which settings to change. It fails before
// it opens the database or dials Temporal.
func TestAuthDisabledOnlyOnLoopback(t *testing.T) {
	for _, tt := range []struct {
		addr string
		want string // "" means the check lets it through
	}{
		{"127.0.0.1:0", ""},
		{"127.0.0.2:8080", ""},
		{"[::1]:8080", ""},
		{"localhost:8080", ""},
		{":8080", `DISPATCHER_AUTH_DISABLED=true is allowed only when DISPATCHER_HTTP_ADDR is a loopback address (127.0.0.1, ::1 or localhost), not ":8080"`},
		{"0.0.0.0:8080", `not "0.0.0.0:8080"`},
		{"[::]:8080", `not "[::]:8080"`},
		{"10.0.0.5:8080", `not "10.0.0.5:8080"`},
		{"dispatcher.example.com:8080", `not "dispatcher.example.com:8080"`},
		{"127.0.0.1", `DISPATCHER_HTTP_ADDR="127.0.0.1"`},
	} {
		t.Run(tt.addr, func(t *testing.T) {
			err := checkAuthDisabled(config{AuthDisabled: true, HTTPAddr: tt.addr})
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			if err := checkAuthDisabled(config{HTTPAddr: tt.addr}); err != nil {
				t.Fatalf("with authentication on: %v", err)
			}
		})
	}

	// The processes that serve the API check it first; a worker serves no API.
	env := map[string]string{"DISPATCHER_AUTH_DISABLED": "true", "DISPATCHER_HTTP_ADDR": "0.0.0.0:0",
		"DATABASE_URL": "postgres://nobody@127.0.0.1:1/none?connect_timeout=1"}
	getenv := func(k string) string { return env[k] }
	for _, cmd := range []string{"serve", "api"} {
		err := run(t.Context(), []string{cmd}, getenv, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "DISPATCHER_AUTH_DISABLED=true is allowed only when") {
			t.Errorf("dispatcher %s with auth disabled on 0.0.0.0: %v", cmd, err)
		}
	}
}

// TestHTTPServerTimeouts: no client holds a connection for ever by
// sending, reading or idling slowly.
func TestHTTPServerTimeouts(t *testing.T) {
	srv := newHTTPServer(http.NotFoundHandler())
	for name, d := range map[string]int64{
		"ReadHeaderTimeout": int64(srv.ReadHeaderTimeout), "ReadTimeout": int64(srv.ReadTimeout),
		"WriteTimeout": int64(srv.WriteTimeout), "IdleTimeout": int64(srv.IdleTimeout),
	} {
		if d <= 0 {
			t.Errorf("%s is not set", name)
		}
	}
	if srv.ReadTimeout < srv.ReadHeaderTimeout {
		t.Errorf("ReadTimeout %s is shorter than ReadHeaderTimeout %s", srv.ReadTimeout, srv.ReadHeaderTimeout)
	}
}

func TestRateLimitSettings(t *testing.T) {
	for _, tt := range []struct {
		value string
		want  api.RateLimit
		err   string
	}{
		{"", api.RateLimit{Rate: 100, Burst: 200}, ""}, // the default
		{"50", api.RateLimit{Rate: 50, Burst: 100}, ""},
		{"0.5", api.RateLimit{Rate: 0.5, Burst: 1}, ""},
		{"10,15", api.RateLimit{Rate: 10, Burst: 15}, ""},
		{" 10 , 15 ", api.RateLimit{Rate: 10, Burst: 15}, ""},
		{"0", api.RateLimit{}, ""},
		{"0,100", api.RateLimit{}, ""},
		{"fast", api.RateLimit{}, `DISPATCHER_RATE_LIMIT="fast": want a number a second`},
		{"-1", api.RateLimit{}, "want a number a second"},
		{"10,0", api.RateLimit{}, "the burst after the comma must be a positive whole number"},
		{"10,lots", api.RateLimit{}, "the burst after the comma"},
	} {
		cfg, err := loadConfig(func(k string) string {
			if k == "DISPATCHER_RATE_LIMIT" {
				return tt.value
			}
			return ""
		})
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("%q: %v", tt.value, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%q: error %v, want one containing %q", tt.value, err, tt.err)
		case tt.err == "" && cfg.Limits.Token != tt.want:
			t.Errorf("%q: %+v, want %+v", tt.value, cfg.Limits.Token, tt.want)
		}
	}
	// The defaults let the benchmark's single token send ~200 events a
	// second, in batches, without a 429.
	cfg, err := loadConfig(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if l := cfg.Limits; l.IntakeToken.Rate < 1000 || l.IntakeTenant.Rate < l.IntakeToken.Rate || l.Tenant.Rate < l.Token.Rate {
		t.Errorf("default limits %+v: too low for the benchmark, or a tenant below one of its tokens", l)
	}
}

// Every worker sends heartbeats as often as the activities beat
// (activities.HeartbeatEvery): the SDK's default throttle, 80 % of an
// activity's heartbeat timeout, left the bulk replays' starts 0.6 s of
// their 3 s timeout to reach a loaded server, and some were retried beside
// a live attempt.
func TestWorkersDoNotThrottleHeartbeats(t *testing.T) {
	for name, o := range map[string]worker.Options{"dispatch": workerOptions(config{}, nil), "bulk replay": replayWorkerOptions(config{}, nil)} {
		if o.MaxHeartbeatThrottleInterval != activities.HeartbeatEvery {
			t.Errorf("%s worker throttles heartbeats to %v, want %v", name, o.MaxHeartbeatThrottleInterval, activities.HeartbeatEvery)
		}
	}
}

// TestUnmigratedDatabase: with DISPATCHER_AUTO_MIGRATE=false (as
// deployed: a Job migrates), a process on a database whose schema is
// older than it needs refuses to start, naming the fix, and migrate
// --status fails until it is migrated. Before, the process said it was
// ready and answered 500 to every request ("relation accepted_events does
// not exist"), and --status exited 0 at version 0.
func TestUnmigratedDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"DATABASE_URL": "sqlite:" + path, "DISPATCHER_AUTO_MIGRATE": "false", "DISPATCHER_HTTP_ADDR": "127.0.0.1:0",
		"DISPATCHER_JWT_SECRET": strings.Repeat("s", 32), "TEMPORAL_ADDRESS": "127.0.0.1:1"}
	getenv := func(k string) string { return env[k] }
	for _, cmd := range []string{"serve", "api", "worker"} {
		err := run(t.Context(), []string{cmd}, getenv, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "the database schema is at version 0, and this dispatcher needs") {
			t.Errorf("dispatcher %s on an unmigrated database: %v, want a refusal naming the schema", cmd, err)
		}
	}
	var out bytes.Buffer
	// It names the fix, not DISPATCHER_AUTO_MIGRATE, which a process
	// started with its default would have applied.
	if err := run(t.Context(), []string{"migrate", "--status"}, getenv, &out, &out); err == nil || !strings.Contains(out.String(), "schema version 0") ||
		!strings.Contains(err.Error(), "`dispatcher migrate` applies the rest") || strings.Contains(err.Error(), "AUTO_MIGRATE") {
		t.Errorf("migrate --status before migrating: %v\n%s\nwant it to fail naming the fix", err, out.String())
	}
	out.Reset()
	if err := run(t.Context(), []string{"migrate"}, getenv, &out, &out); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out.String())
	}
	if err := run(t.Context(), []string{"migrate", "--status"}, getenv, &out, &out); err != nil {
		t.Errorf("migrate --status once migrated: %v\n%s", err, out.String())
	}
	// A newer release migrated it further: said, not an error (a
	// rollback runs on it). Before, only "schema version 99 (latest 15)".
	db, err := models.Open("sqlite:" + path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Exec("INSERT INTO goose_db_version (version_id, is_applied) VALUES (99, true)").Error; err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run(t.Context(), []string{"migrate", "--status"}, getenv, &out, &out); err != nil || !strings.Contains(out.String(), "the schema is newer than this dispatcher's") {
		t.Errorf("migrate --status of a newer schema: %v\n%s", err, out.String())
	}
}

// TestRedactURL: the database URL in a start-up error shows no password,
// in the user information or the query. Before, ?password= showed whole.
func TestRedactURL(t *testing.T) {
	for raw, want := range map[string]string{
		"postgres://u:s3cret@db:5432/x":                           "postgres://u:xxxxx@db:5432/x",
		"postgres://u@db:5432/x?password=s3cret&sslmode=disable":  "postgres://u@db:5432/x?password=xxxxx&sslmode=disable",
		"sqlite:/var/lib/dispatcher.db":                           "sqlite:/var/lib/dispatcher.db",
		"file:/var/lib/d.db?_auth&_auth_user=u&_auth_pass=s3cret": "file:/var/lib/d.db?_auth=&_auth_pass=xxxxx&_auth_user=u",
	} {
		if got := redactURL(raw); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", raw, got, want)
		}
	}
}

// TestRateLimitsCheckedFirst: a rate limit that could never let a batch
// through is refused before the database is opened (here: unreachable),
// not once migrations ran and the worker polled.
func TestRateLimitsCheckedFirst(t *testing.T) {
	env := map[string]string{"DISPATCHER_INTAKE_RATE_LIMIT": "1,5", "DISPATCHER_JWT_SECRET": strings.Repeat("s", 32),
		"DATABASE_URL": "postgres://nobody@127.0.0.1:1/none?connect_timeout=1"}
	for _, cmd := range []string{"serve", "api"} {
		err := run(t.Context(), []string{cmd}, func(k string) string { return env[k] }, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "DISPATCHER_INTAKE_RATE_LIMIT: the burst must be at least 100, not 5") {
			t.Errorf("dispatcher %s: %v, want the rate limit refused first", cmd, err)
		}
	}
}

// TestAuthSettingsCheckedFirst: a process without a way to verify tokens
// says so before it opens the database (here: unreachable) or dials
// Temporal. Before, it migrated, waited for Temporal, and said it last.
func TestAuthSettingsCheckedFirst(t *testing.T) {
	env := map[string]string{"DATABASE_URL": "postgres://nobody@127.0.0.1:1/none?connect_timeout=1"}
	for _, cmd := range []string{"serve", "api"} {
		err := run(t.Context(), []string{cmd}, func(k string) string { return env[k] }, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "no way to verify access tokens: set DISPATCHER_JWT_SECRET") {
			t.Errorf("dispatcher %s: %v, want the missing secret refused first", cmd, err)
		}
	}
}

// TestTakenAddressCheckedFirst: an address another process listens on is
// refused before the database is opened (here: unreachable) and migrated.
// Before, the migrations ran, and then the listen failed.
func TestTakenAddressCheckedFirst(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	env := map[string]string{"DISPATCHER_JWT_SECRET": strings.Repeat("s", 32), "DISPATCHER_HTTP_ADDR": ln.Addr().String(),
		"DATABASE_URL": "postgres://nobody@127.0.0.1:1/none?connect_timeout=1"}
	for _, cmd := range []string{"serve", "api", "worker"} {
		err := run(t.Context(), []string{cmd}, func(k string) string { return env[k] }, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "DISPATCHER_HTTP_ADDR: listen on "+ln.Addr().String()) {
			t.Errorf("dispatcher %s: %v, want the taken address refused first", cmd, err)
		}
	}
}

// TestDBMaxConnsAtLeastTwo: the migrations hold a connection while they
// take their lock with another: a pool of one would wait for ever.
func TestDBMaxConnsAtLeastTwo(t *testing.T) {
	if _, err := loadConfig(func(k string) string { return map[string]string{"DISPATCHER_DB_MAX_CONNS": "1"}[k] }); err == nil ||
		!strings.Contains(err.Error(), "DISPATCHER_DB_MAX_CONNS") {
		t.Errorf("a pool of one connection: %v, want it refused", err)
	}
}

// TestKeyOfAnotherMaterialRefused: a process whose encryption key has the
// id of the others' but other material refuses to start. Before, it ran,
// and failed every dispatch it took.
func TestKeyOfAnotherMaterialRefused(t *testing.T) {
	key := func() string {
		k, err := encryption.GenerateKey("k1")
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	url := "sqlite:" + filepath.Join(t.TempDir(), "d.db")
	// The first process with k1 stored its check value.
	db, err := models.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := models.Migrate(t.Context(), db); err != nil {
		t.Fatal(err)
	}
	ring, err := encryption.ParseKeyRing(key())
	if err != nil {
		t.Fatal(err)
	}
	if err := models.NewStore(db, time.Now, models.WithKeys(ring)).CheckKeys(t.Context()); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"DATABASE_URL": url, "DISPATCHER_HTTP_ADDR": "127.0.0.1:0", "DISPATCHER_JWT_SECRET": strings.Repeat("s", 32),
		"TEMPORAL_ADDRESS": "127.0.0.1:1", "DISPATCHER_ENCRYPTION_KEY": key()}
	// Bounded: a process that is not refused runs until it is stopped.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	err = run(ctx, []string{"worker"}, func(k string) string { return env[k] }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `key "k1" is not the key "k1" the other processes have`) {
		t.Errorf("a process with other material under k1: %v, want it refused", err)
	}
}

// The series that reach Prometheus through the SDK's handler keep their
// label values: the function of a circuit that opened is named as the
// flow gauges name it. Before, "always_503" for "always-503".
func TestMetricsKeepLabelValues(t *testing.T) {
	reg, handler, stop := newMetrics()
	handler.WithTags(map[string]string{"function": "always-503", "tenant": "acme.eu"}).Counter("dispatcher_function_circuit_opened").Inc(1)
	// Not UTF-8: made so, not a panic of Prometheus' client.
	handler.WithTags(map[string]string{"function": "a\xffb", "tenant": "acme.eu"}).Counter("dispatcher_function_circuit_opened").Inc(1)
	stop() // reports what was counted
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range families {
		if f.GetName() != "dispatcher_function_circuit_opened_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				got = append(got, l.GetName()+"="+l.GetValue())
			}
		}
	}
	if want := []string{"function=a_b", "tenant=acme.eu", "function=always-503", "tenant=acme.eu"}; !slices.Equal(got, want) {
		t.Errorf("labels %v, want %v", got, want)
	}
}
