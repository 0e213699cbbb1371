package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dispatcherhq/dispatcher/workflows"
)

// A setting that cannot mean anything is refused at start-up, naming it.
// Before, DISPATCHER_LOG_LEVEL=verbose ran at info, and TEMPORAL_ADDRESS
// without a port dialled port 443 and waited for Temporal for ever.
func TestConfigRefusesMeaninglessSettings(t *testing.T) {
	oldest, newest := workflows.OldestDispatchVersion, workflows.NewestDispatchVersion
	for _, tt := range []struct{ name, value, want string }{
		{"DISPATCHER_LOG_LEVEL", "verbose", `DISPATCHER_LOG_LEVEL="verbose": want debug, info, warn or error`},
		{"DISPATCHER_LOG_FORMAT", "yaml", `DISPATCHER_LOG_FORMAT="yaml": want text or json`},
		{"TEMPORAL_ADDRESS", "localhost", `TEMPORAL_ADDRESS="localhost": want host:port`},
		{"TEMPORAL_ADDRESS", "temporal:", `TEMPORAL_ADDRESS="temporal:": want host:port`},
		{"DISPATCHER_LOG_LEVEL", "WARN", ""},
		{"DISPATCHER_LOG_LEVEL", "debug", ""},
		{"TEMPORAL_ADDRESS", "temporal.example.com:7233", ""},
		{"TEMPORAL_ADDRESS", "[::1]:7233", ""},
		{"DISPATCHER_DISPATCH_VERSION", fmt.Sprint(oldest - 1), fmt.Sprintf(`DISPATCHER_DISPATCH_VERSION="%d": want a whole number from %d to %d`, oldest-1, oldest, newest)},
		{"DISPATCHER_DISPATCH_VERSION", fmt.Sprint(newest + 1), fmt.Sprintf(`want a whole number from %d to %d`, oldest, newest)},
		{"DISPATCHER_DISPATCH_VERSION", "ten", `want a whole number`},
		{"DISPATCHER_DISPATCH_VERSION", fmt.Sprint(oldest), ""},
		{"DISPATCHER_DISPATCH_VERSION", fmt.Sprint(newest - 2), ""}, // from a release before two were added
		{"DISPATCHER_NATS_CONSUMER", "tenant.b", `DISPATCHER_NATS_CONSUMER="tenant.b": want a name without white space, dots`},
		{"DISPATCHER_NATS_CONSUMER", "dispatcher-tenant-b", ""},
		// AMQP's prefetch is 16 bits: 65536 would wrap to 0, no limit.
		{"DISPATCHER_AMQP_PREFETCH", "65536", `DISPATCHER_AMQP_PREFETCH="65536": want a whole number from 1 to 65535`},
		{"DISPATCHER_AMQP_PREFETCH", "0", `want a whole number from 1 to 65535`},
		{"DISPATCHER_AMQP_PREFETCH", "65535", ""},

		// Whole days, as the README writes the window and as the flags
		// take them: before, 7d was refused.
		{"DISPATCHER_DEDUP_WINDOW", "7d", ""},
		{"DISPATCHER_DEDUP_WINDOW", "0d", `DISPATCHER_DEDUP_WINDOW="0d": want a positive duration such as 5s, 2m or 7d`},
		// A third of 2ns is no ticker's interval.
		{"DISPATCHER_NATS_ACK_WAIT", "2ns", `DISPATCHER_NATS_ACK_WAIT="2ns": want a duration of at least 1s`},
		{"DISPATCHER_NATS_ACK_WAIT", "1s", ""},
		// Found at start, not by the source, for ever not ready.
		{"DISPATCHER_NATS_STREAM", "DISPATCHER.EVENTS", `DISPATCHER_NATS_STREAM="DISPATCHER.EVENTS": want a name without white space, dots`},
		{"DISPATCHER_NATS_STREAM", "EVENTS*", `want a name without`},
		// Before, taken, and its dead letters' exchange failed to declare
		// at every retry.
		{"DISPATCHER_AMQP_EXCHANGE", strings.Repeat("x", 252), `want at most 251 bytes: with .dlx, the name of its dead letters', it would be 256`},
		{"DISPATCHER_AMQP_QUEUE", strings.Repeat("x", 251), `want at most 250 bytes: with .dead`},
		{"DISPATCHER_NATS_SUBJECT", "events.>", `DISPATCHER_NATS_SUBJECT="events.>": want tokens separated by dots`},
		{"DISPATCHER_NATS_SUBJECT", "events.", `want tokens separated by dots`},
		{"DISPATCHER_NATS_SUBJECT", "my events", `want tokens separated by dots`},
		{"DISPATCHER_NATS_SUBJECT", "tenant_a.events", ""},
		// Found at start, not after the migrations and the worker: the
		// SDK panicked at 1, the listener failed on garbage, and 1ns
		// answered every request 503.
		{"DISPATCHER_MAX_CONCURRENT_WORKFLOW_TASKS", "1", `DISPATCHER_MAX_CONCURRENT_WORKFLOW_TASKS="1": want a whole number of at least 2`},
		{"DISPATCHER_MAX_CONCURRENT_WORKFLOW_TASKS", "2", ""},
		{"DISPATCHER_HTTP_ADDR", "garbage", `DISPATCHER_HTTP_ADDR="garbage": want host:port`},
		{"DISPATCHER_HTTP_ADDR", ":0", ""},
		// Before, accepted, and found only once the listener failed (the
		// port), or never (a link that led nowhere, a CORS origin of none).
		{"DISPATCHER_HTTP_ADDR", "127.0.0.1:99999", `DISPATCHER_HTTP_ADDR="127.0.0.1:99999": want host:port, the port from 0 to 65535`},
		{"DISPATCHER_TEMPORAL_UI_URL", "not a url", `DISPATCHER_TEMPORAL_UI_URL="not a url": want an http:// or https:// URL with a host`},
		{"DISPATCHER_TEMPORAL_UI_URL", "https://temporal.example.com", ""},
		{"DISPATCHER_TEMPORAL_UI_URL", "https://temporal.example.com/?tab=history", `want a base URL, without a query or fragment`},
		// Before, found once the workers had started, in errors that did
		// not name the setting.
		{"DISPATCHER_SMTP_URL", "http://mail:25", `DISPATCHER_SMTP_URL="http://mail:25": SMTP URL: scheme must be smtp or smtps`},
		{"DISPATCHER_MAIL_FROM", "not an address", `DISPATCHER_MAIL_FROM="not an address": mail sender`},
		{"DISPATCHER_JWT_SECRET", "s3cr-short", `DISPATCHER_JWT_SECRET="(hidden)": the HS256 secret is 10 bytes, it must be at least 32`},
		{"DISPATCHER_SMTP_URL", "smtps://u:s3cret@mail.example.com", ""},
		// Before, twice 1e300 overflowed the burst.
		{"DISPATCHER_RATE_LIMIT", "1e300", `DISPATCHER_RATE_LIMIT="1e300": want a number a second up to 1000000`},
		{"DISPATCHER_RATE_LIMIT", "1000000", ""},
		{"DISPATCHER_REQUEST_TIMEOUT", "1ns", `DISPATCHER_REQUEST_TIMEOUT="1ns": want a duration of at least 1s`},
		{"DISPATCHER_REQUEST_TIMEOUT", "1s", ""},
	} {
		checkSetting(t, tt.name, tt.value, tt.want)
	}
}

// A broker URL that cannot be dialled is refused at start-up, and the
// error does not quote its password. Before, it was accepted, and the
// sources logged url.Parse's error, which quotes the URL whole, on every
// attempt to connect and on /readyz.
func TestConfigRefusesBadBrokerURLsWithoutThePassword(t *testing.T) {
	for _, tt := range []struct{ name, value, want string }{
		{"DISPATCHER_AMQP_URL", "amqp://guest:s3cr%zzet@127.0.0.1:5672/", `DISPATCHER_AMQP_URL="(hidden: not a valid URL)": parse "amqp://xxxxx@127.0.0.1:5672": not a valid URL`},
		{"DISPATCHER_AMQP_URL", "http://guest:s3cret@127.0.0.1:5672/", `AMQP scheme must be either 'amqp://' or 'amqps://'`},
		{"DISPATCHER_NATS_URL", "nats://a:4222, nats://u:s3cr%zzet@b:4222", `URL 2: parse "nats://xxxxx@b:4222": not a valid URL`},
		{"DISPATCHER_NATS_URL", "nats://a:4222,s3cr%zzet@b", `URL 2: parse "nats://xxxxx@b": not a valid URL`},
		{"DISPATCHER_NATS_URL", "http://u:s3cret@b:4222", `URL 1: want nats://, tls://, ws:// or wss:// and a host`},
		{"DISPATCHER_AMQP_URL", "amqps://guest:s%25cret@rabbit/vhost", ""},
		{"DISPATCHER_NATS_URL", "nats://a:4222, tls://tok@b, c:4222", ""},
		{"DISPATCHER_NATS_URL", "nats://a:4222,,nats://b:4222,", ""}, // as nats.go reads it
		// The driver took "ss@db" for the host, and quoted it.
		{"DATABASE_URL", "postgres://u:s3cr@ss@db/x", "not a valid URL: percent-encode"},
		{"DATABASE_URL", "postgres://u:s3cr/ss@db/x", "not a valid URL: percent-encode"},
		{"DATABASE_URL", "postgres://u:s3cr%40ss@db/x?sslmode=disable", ""},
		// Without their scheme: url.Parse took the user for one, and
		// nothing was hidden. And a user alone is a token.
		{"DISPATCHER_AMQP_URL", "guest:s3cret@127.0.0.1:5672/", `DISPATCHER_AMQP_URL="xxxxx@127.0.0.1:5672/"`},
		{"DISPATCHER_SMTP_URL", "user:s3cret@127.0.0.1:25", `DISPATCHER_SMTP_URL="xxxxx@127.0.0.1:25"`},
	} {
		checkSetting(t, tt.name, tt.value, tt.want)
	}
}

// A Web UI URL given with a trailing slash makes links without a double
// one: the Web UI answered //namespaces/… with a 404.
func TestConfigWebURLWithoutTrailingSlash(t *testing.T) {
	for _, v := range []string{"https://temporal.example.com/", "https://temporal.example.com//", "https://temporal.example.com"} {
		c, err := loadConfig(func(k string) string {
			if k == "DISPATCHER_TEMPORAL_UI_URL" {
				return v
			}
			return ""
		})
		if err != nil || c.TemporalUIURL != "https://temporal.example.com" {
			t.Errorf("%q: %q (%v), want https://temporal.example.com", v, c.TemporalUIURL, err)
		}
	}
}

// checkSetting loads the configuration with setting name alone set to
// value: it must be refused with an error containing want, and no
// password (s3cr…), or accepted when want is "".
func checkSetting(t *testing.T, name, value, want string) {
	t.Helper()
	_, err := loadConfig(func(k string) string {
		if k == name {
			return value
		}
		return ""
	})
	switch {
	case want == "" && err != nil:
		t.Errorf("%s=%q: %v", name, value, err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "s3cr")):
		t.Errorf("%s=%q: error %v, want one containing %q, without a password", name, value, err, want)
	}
}

// A variable surely meant as a setting, but misnamed, is warned of rather
// than ignored without a word; the variables of the CLI, the scripts, the
// tests and the tools beside the dispatcher (Temporal's CLI and SDKs,
// OpenTelemetry) are not.
func TestMisnamedSettings(t *testing.T) {
	for name, want := range map[string]string{
		"DISPATCHER_DATABASE_URL":     "DATABASE_URL",
		"DISPATCHER_TEMPORAL_ADDRESS": "TEMPORAL_ADDRESS",
		"DISPATCHER_HTTP_ADDRESS":     "DISPATCHER_HTTP_ADDR",
		"DISPATCHER_SMTP_ULR":         "DISPATCHER_SMTP_URL",
		"dispatcher_log_level":        "DISPATCHER_LOG_LEVEL",
		"DISPATCHER_ENCRYPTION_KEYS":  "DISPATCHER_ENCRYPTION_KEY",
		"TEMPORAL_NAMESPCE":           "TEMPORAL_NAMESPACE",
		"OTEL_SERVICE_NAMES":          "OTEL_SERVICE_NAME",
		// Other Temporal tools' names.
		"TEMPORAL_TLS_CERT":    "TEMPORAL_TLS_CLIENT_CERT_PATH",
		"TEMPORAL_CLI_TLS_KEY": "TEMPORAL_TLS_CLIENT_KEY_PATH",
		"TEMPORAL_TLS_CA":      "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
		// The CLI's own.
		"DISPATCHER_ULR":    "DISPATCHER_URL",
		"DISPATCHER_TOKENS": "DISPATCHER_TOKEN",
	} {
		got := misnamed([]string{name + "=x"})
		if len(got) != 1 || !strings.HasPrefix(got[0], name+" is set, but is not a setting") || !strings.Contains(got[0], "did you mean "+want+"?") {
			t.Errorf("%s: warnings %q, want one naming %s", name, got, want)
		}
	}
	// Temporal's SDKs read inline TLS data; the dispatcher reads files.
	for _, name := range []string{"TEMPORAL_TLS_CLIENT_CERT_DATA", "TEMPORAL_TLS_CLIENT_KEY_DATA", "TEMPORAL_TLS_SERVER_CA_CERT_DATA"} {
		path := strings.TrimSuffix(name, "_DATA") + "_PATH"
		got := misnamed([]string{name + "=-----BEGIN CERTIFICATE-----"})
		if len(got) != 1 || !strings.Contains(got[0], "reads no inline TLS data") || !strings.Contains(got[0], "set "+path) || strings.Contains(got[0], "BEGIN") {
			t.Errorf("%s: warnings %q, want one saying to set %s, without the value", name, got, path)
		}
	}
	var environ []string
	for _, s := range settings {
		environ = append(environ, s.name+"=x")
	}
	for _, name := range []string{
		"DISPATCHER_URL", "DISPATCHER_TOKEN", "DISPATCHER_SECRET_ERASE", "DISPATCHER_HEADER_ERASE_X_API_KEY",
		"DISPATCHER_BIN", "DISPATCHER_RUN_DIR", "DISPATCHER_STARTUP_TIMEOUT", "DISPATCHER_TEMPORAL_UI_PORT",
		"DISPATCHER_MAIL_SMTP_PORT", "DISPATCHER_MAIL_UI_PORT", "DISPATCHER_IMAGE", "DISPATCHER_DB_PASSWORD",
		"DISPATCHER_TEST_STRICT", "DISPATCHER_RECORD_HISTORY", "DISPATCHER_FLOW_COST", "DISPATCHER_CONSOLE_SCREENSHOTS",
		"TEMPORAL_CLI", "TEMPORAL_TLS_CERT", "TEMPORAL_TLS_KEY", "TEMPORAL_TLS_CA", "TEMPORAL_PROFILE",
		"TEMPORAL_CONFIG_FILE", "TEMPORAL_CODEC_ENDPOINT", "TEMPORAL_TLS_DISABLE_HOST_VERIFICATION", "TEMPORAL_ENV",
		"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_TRACES_EXPORTER", "OTEL_LOG_LEVEL",
		"OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_TRACES_SAMPLER", "LOG_LEVEL", "HTTP_ADDR", "PATH", "HOME",
		// Kubernetes tells every pod of a namespace of the services
		// "dispatcher", "temporal" and "temporal-frontend" so.
		"DISPATCHER_PORT", "DISPATCHER_SERVICE_HOST", "DISPATCHER_SERVICE_PORT", "DISPATCHER_PORT_8080_TCP",
		"DISPATCHER_PORT_8080_TCP_ADDR", "DISPATCHER_PORT_8080_TCP_PORT", "DISPATCHER_PORT_8080_TCP_PROTO",
		"DISPATCHER_SERVICE_PORT_HTTP", "TEMPORAL_PORT", "TEMPORAL_SERVICE_HOST", "TEMPORAL_SERVICE_PORT",
		"TEMPORAL_PORT_7233_TCP_ADDR", "TEMPORAL_FRONTEND_SERVICE_HOST", "TEMPORAL_FRONTEND_PORT_7233_TCP_ADDR",
	} {
		environ = append(environ, name+"=x")
	}
	if got := misnamed(environ); len(got) > 0 {
		t.Errorf("warnings for the settings and for variables that are not meant as one:\n%s", strings.Join(got, "\n"))
	}
}

// The tools say which variables are misnamed before they run.
func TestToolsWarnOfMisnamedSettings(t *testing.T) {
	defer func(e func() []string) { environ = e }(environ)
	environ = func() []string { return []string{"DISPATCHER_DATABASE_URL=postgres://db.example.com/dispatcher"} }
	var out, errOut strings.Builder
	if err := run(t.Context(), []string{"config"}, func(string) string { return "" }, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if want := "dispatcher: warning: DISPATCHER_DATABASE_URL is set, but is not a setting and is ignored: did you mean DATABASE_URL?"; !strings.Contains(errOut.String(), want) {
		t.Errorf("stderr = %q, want it to contain %q", errOut.String(), want)
	}
	if strings.Contains(errOut.String()+out.String(), "db.example.com") {
		t.Error("the misnamed variable's value was printed: it may be a secret")
	}
}

// dispatcher config shows every setting when one is wrong, and fails
// naming it. Before, it printed the error alone: the tool that shows the
// settings showed none when they were needed most.
func TestConfigShownWhenAValueIsWrong(t *testing.T) {
	var out, errOut strings.Builder
	err := run(t.Context(), []string{"config"}, func(k string) string {
		return map[string]string{"DISPATCHER_RATE_LIMIT": "abc"}[k]
	}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "DISPATCHER_RATE_LIMIT") ||
		!strings.Contains(out.String(), "DISPATCHER_RATE_LIMIT") || !strings.Contains(out.String(), "DATABASE_URL") {
		t.Errorf("config = %v, printed\n%s", err, out.String())
	}
}

// TestBlankBrokerNames: a broker intake's name set to nothing is refused,
// naming it and its default, rather than taken for the default that other
// deployments on the broker may use (broker probe: an empty
// DISPATCHER_AMQP_EXCHANGE bound the queue to the shared exchange). An
// intake that is off, or a name unset or given, is no concern.
func TestBlankBrokerNames(t *testing.T) {
	amqp := config{}
	amqp.AMQP.URL = "amqp://guest:guest@127.0.0.1:5672/"
	nats := config{}
	nats.NATS.URL = "nats://127.0.0.1:4222"
	for _, tc := range []struct {
		environ []string
		c       config
		want    string
	}{
		{[]string{"DISPATCHER_AMQP_EXCHANGE="}, amqp, "DISPATCHER_AMQP_EXCHANGE is set, but empty: unset it for its default (dispatcher.events)"},
		{[]string{"DISPATCHER_AMQP_QUEUE= "}, amqp, "DISPATCHER_AMQP_QUEUE is set, but empty"},
		{[]string{"DISPATCHER_NATS_SUBJECT="}, nats, "DISPATCHER_NATS_SUBJECT is set, but empty: unset it for its default (events)"},
		{[]string{"DISPATCHER_NATS_STREAM="}, nats, "DISPATCHER_NATS_STREAM is set, but empty"},
		{[]string{"DISPATCHER_NATS_CONSUMER="}, nats, "DISPATCHER_NATS_CONSUMER is set, but empty"},
		{[]string{"DISPATCHER_AMQP_EXCHANGE="}, nats, ""},
		{[]string{"DISPATCHER_NATS_STREAM="}, config{}, ""},
		{[]string{"DISPATCHER_AMQP_EXCHANGE=team.events", "DISPATCHER_AMQP_QUEUE=team.events"}, amqp, ""},
		// Before, served the default queue and namespace, shown as set.
		{[]string{"DISPATCHER_TASK_QUEUE= "}, config{}, "DISPATCHER_TASK_QUEUE is set, but empty: unset it for its default (dispatcher)"},
		{[]string{"TEMPORAL_NAMESPACE="}, config{}, "TEMPORAL_NAMESPACE is set, but empty: unset it for its default (default)"},
		{nil, amqp, ""},
	} {
		err := blankSharedNames(tc.environ, tc.c)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%q: %v, want %q", tc.environ, err, tc.want)
		}
	}
}

// TestSecretFiles: a secret setting may be given in a file, <NAME>_FILE,
// read without its final line ending; set both ways, or a file missing
// or empty, is refused naming the setting, and <NAME>_FILE is no
// misnamed variable. Before, secrets could come only from the
// environment, where /proc/<pid>/environ and `docker inspect` show them.
func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	secret := strings.Repeat("s", 40)
	jwt := write("jwt", secret+"\n")
	db := write("db", "postgres://u:p@db:5432/d?sslmode=disable\r\n")
	cfg, err := loadConfig(func(k string) string {
		return map[string]string{"DISPATCHER_JWT_SECRET_FILE": jwt, "DATABASE_URL_FILE": db}[k]
	})
	if err != nil || cfg.JWTSecret != secret || cfg.DatabaseURL != "postgres://u:p@db:5432/d?sslmode=disable" {
		t.Fatalf("from files: %q, %q, %v", cfg.JWTSecret, cfg.DatabaseURL, err)
	}
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"DISPATCHER_JWT_SECRET_FILE": jwt, "DISPATCHER_JWT_SECRET": secret}, "DISPATCHER_JWT_SECRET and DISPATCHER_JWT_SECRET_FILE are both set"},
		{map[string]string{"TEMPORAL_API_KEY_FILE": filepath.Join(dir, "missing")}, "TEMPORAL_API_KEY_FILE: stat "},
		{map[string]string{"DISPATCHER_ENCRYPTION_KEY_FILE": write("empty", "\n")}, "DISPATCHER_ENCRYPTION_KEY_FILE: " + filepath.Join(dir, "empty") + " is empty"},
		// Not a regular file (a device, a pipe, which could block), nor
		// a document; nor quoted when it does not do: it may be another
		// secret's file.
		{map[string]string{"DATABASE_URL_FILE": dir}, "DATABASE_URL_FILE: " + dir + " is not a regular file"},
		{map[string]string{"DATABASE_URL_FILE": write("big", strings.Repeat("x", 70_000))}, "holds 70000 bytes, more than a secret's 65536"},
		{map[string]string{"DISPATCHER_SMTP_URL_FILE": write("key", "k1:"+secret)}, "DISPATCHER_SMTP_URL, from the file DISPATCHER_SMTP_URL_FILE names: "},
	} {
		if _, err := loadConfig(func(k string) string { return tc.env[k] }); err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), secret) {
			t.Errorf("%v: %v, want an error with %q, and no secret", tc.env, err, tc.want)
		}
	}
	if got := misnamed([]string{"DISPATCHER_JWT_SECRET_FILE=" + jwt, "DATABASE_URL_FILE=" + db}); len(got) > 0 {
		t.Errorf("warnings for the secrets' files: %q", got)
	}
	for name, want := range map[string]string{
		"DISPATCHER_ENCRYPTION_KEYS_FILE": "did you mean DISPATCHER_ENCRYPTION_KEY_FILE?",
		"DISPATCHER_DATABASE_URL_FILE":    "did you mean DATABASE_URL_FILE?",
		"DISPATCHER_LOG_LEVEL_FILE":       "DISPATCHER_LOG_LEVEL is no secret, and only secrets are read from files",
	} {
		if got := misnamed([]string{name + "=x"}); len(got) != 1 || !strings.Contains(got[0], want) {
			t.Errorf("%s: warnings %q, want one saying %q", name, got, want)
		}
	}
}
