package main

import (
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/jetstream"
	"github.com/dispatcherhq/dispatcher/rabbitmq"
)

func TestBrokerSettings(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	cfg, err := loadConfig(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.brokers() {
		t.Fatal("a broker intake is on without its URL")
	}
	wantAMQP := rabbitmq.Config{Exchange: "dispatcher.events", Queue: "dispatcher.events", Prefetch: 64}
	wantNATS := jetstream.Config{Stream: "DISPATCHER_EVENTS", Subject: "events", Consumer: "dispatcher", Prefetch: 64, MaxDeliver: 10, AckWait: 30 * time.Second}
	if cfg.AMQP != wantAMQP || cfg.NATS != wantNATS || cfg.AMQPTenant != "" || cfg.NATSTenant != "" {
		t.Fatalf("defaults %+v %+v, want %+v %+v", cfg.AMQP, cfg.NATS, wantAMQP, wantNATS)
	}

	cfg, err = loadConfig(env(map[string]string{"DISPATCHER_NATS_URL": "nats://127.0.0.1:4222", "DISPATCHER_NATS_TENANT": "acme"}))
	if err != nil || !cfg.brokers() || cfg.NATSTenant != "acme" {
		t.Fatalf("NATS on for acme: %+v %v", cfg.NATS, err)
	}
	for name, value := range map[string]string{
		"DISPATCHER_AMQP_TENANT":      "two words",
		"DISPATCHER_NATS_MAX_DELIVER": "1",
		"DISPATCHER_AMQP_PREFETCH":    "0",
		"DISPATCHER_NATS_ACK_WAIT":    "soon",
	} {
		if _, err := loadConfig(env(map[string]string{name: value})); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%q: %v, want an error naming the setting", name, value, err)
		}
	}

	// What the process logs and `dispatcher config` prints.
	for name, url := range map[string]string{
		"DISPATCHER_AMQP_URL": "amqp://dispatcher:s3cret@rabbit:5672/",
		"DISPATCHER_NATS_URL": "nats://t0ken@nats:4222",
		"DATABASE_URL":        "postgres://u@db/dispatcher?sslmode=require&password=s3cret",
		"DISPATCHER_SMTP_URL": "smtp://mail:25?token=t0ken",
		"TEST_KEY_VALUE_DSN":  "host=db user=u password='s3cret word' dbname=d",
	} {
		if got := redacted(name, url); strings.Contains(got, "s3cret") || strings.Contains(got, "t0ken") {
			t.Errorf("%s printed as %s", name, got)
		}
	}
}

// TestRedactedNATSServers: a cluster's servers are comma-separated, each
// with its own user information; every password is hidden, not only the
// first server's.
func TestRedactedNATSServers(t *testing.T) {
	for in, want := range map[string]string{
		"tls://u:p1@h1:4222,tls://u:p2@h2:4222":                    "tls://u:xxxxx@h1:4222,tls://u:xxxxx@h2:4222",
		"nats://h1:4222, nats://u:p2@h2:4222,nats://t0ken@h3:4222": "nats://h1:4222,nats://u:xxxxx@h2:4222,nats://xxxxx@h3:4222",
		// Without a scheme, which nats.go takes as nats://.
		"u:p1@h1:4222, u:p2@h2:4222": "nats://u:xxxxx@h1:4222,nats://u:xxxxx@h2:4222",
		"u:p1@h1:4222":               "nats://u:xxxxx@h1:4222",
	} {
		if got := redacted("DISPATCHER_NATS_URL", in); got != want {
			t.Errorf("%s printed as %s, want %s", in, got, want)
		}
	}
}

// A URL whose password holds an unencoded #, / or @ is hidden whole, as
// the rest of it would read as a host, a path or a fragment; a setting
// that is no URL but holds an @ (an address, a key=value DSN) is shown.
func TestRedactedAmbiguousURLs(t *testing.T) {
	for _, tt := range []struct{ name, in, want string }{
		{"DISPATCHER_AMQP_URL", "amqp://guest:4242#Zsecret@127.0.0.1:5672/", "(hidden: not a valid URL)"},
		{"DISPATCHER_NATS_URL", "nats://u:Zp@ss/word@127.0.0.1:4222", "(hidden: not a valid URL)"},
		{"DISPATCHER_MAIL_FROM", "dispatcher@localhost", "dispatcher@localhost"},
		{"DATABASE_URL", "host=db user=app password=pw@1", "host=db user=app password=xxxxx"},
		// Without a scheme: url.Parse took the user for one, and nothing
		// was hidden (a forgotten amqp://); the query's passwords too.
		{"DISPATCHER_AMQP_URL", "guest:s3cret@127.0.0.1:5672/", "xxxxx@127.0.0.1:5672/"},
		{"DISPATCHER_AMQP_URL", "me@rabbit:5672/v?password=s3cret", "xxxxx@rabbit:5672/v?password=xxxxx"},
		{"DATABASE_URL", "u:s3cret@host/db?sslpassword=KEYPASS", "xxxxx@host/db?sslpassword=xxxxx"},
		{"DATABASE_URL", "host/db?password=p@ssWORD", "host/db?password=xxxxx"},
		{"DATABASE_URL", "sqlite:/var/lib/d.db?_auth=1&_auth_user=ops@example.com&_auth_pass=S3cret", "(hidden: not a valid URL)"},
		{"DATABASE_URL", "u:pa ss@host/db", "(hidden: not a valid URL)"},
		{"DISPATCHER_SMTP_URL", "u:a://b@smtp.example.com:587", "(hidden: not a valid URL)"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT", "tok@collector:4318", "xxxxx@collector:4318"},
		// A token as the user, or as user and password (Postmark).
		{"DISPATCHER_SMTP_URL", "smtp://TOKEN@smtp.example.com", "smtp://xxxxx@smtp.example.com"},
		{"DISPATCHER_SMTP_URL", "smtp://TOKEN:TOKEN@smtp.postmarkapp.com:587", "smtp://xxxxx@smtp.postmarkapp.com:587"},
		{"DATABASE_URL", "postgres://app@db/x?password=s3cret", "postgres://app@db/x?password=xxxxx"},
		// The CLI's URL, a path's ;password=…, and a key=value string
		// taken for a host.
		{"DISPATCHER_URL", "http://127.0.0.1:1/db?token=s3cret", "http://127.0.0.1:1/db?token=xxxxx"},
		{"DISPATCHER_URL", "http://s3cret@127.0.0.1:1", "http://xxxxx@127.0.0.1:1"},
		{"DATABASE_URL", "postgres://127.0.0.1:1/db;password=s3cret", "postgres://127.0.0.1:1/db;password=xxxxx"},
		{"DISPATCHER_NATS_URL", "password=s3cret", "(hidden: not a valid URL)"},
		{"DISPATCHER_AMQP_URL", "amqp://user:s3cret", "(hidden: not a valid URL)"},
	} {
		if got := redacted(tt.name, tt.in); got != tt.want {
			t.Errorf("%s=%s printed as %s, want %s", tt.name, tt.in, got, tt.want)
		}
	}
}
