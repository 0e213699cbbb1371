package redact

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

// A URL that does not parse is not quoted with its password: url.Parse's
// error quotes it whole, and the sources logged it on every attempt.
func TestURL(t *testing.T) {
	for _, tt := range []struct{ raw, want string }{
		{"amqp://guest:s3cr%zzet@127.0.0.1:5672/vhost", `parse "amqp://xxxxx@127.0.0.1:5672": not a valid URL (percent-encode`},
		{"nats://tok%zzen@nats:4222", `parse "nats://xxxxx@nats:4222": not a valid URL`},
		{"amqp://u:s3cr/et@host:5672/?password=s3cr%zzet", `parse "amqp://xxxxx@host:5672": not a valid URL`},
		{"no scheme s3cr%zzet", `parse "(hidden)"`},
		// Cut at the #, the password is the port of a host named after
		// the user. Before, quoted whole.
		{"amqp://guest:s3cretzz#x@127.0.0.1:5672/", `parse "amqp://(hidden)": not a valid URL`},
		{"nats://u:s3cretzz#x@127.0.0.1:4222", `parse "nats://(hidden)": not a valid URL`},
		{"amqp://[::1]:s3cretzz/", `parse "amqp://(hidden)": not a valid URL`},
		// A key=value connection string taken for a host. Before, quoted.
		{"nats://host=h user=u password=s3cretzz dbname=x", `parse "nats://(hidden)": not a valid URL`},
	} {
		_, err := url.Parse(tt.raw)
		if err == nil {
			t.Fatalf("%s parses", tt.raw)
		}
		got := URL(err).Error()
		if !strings.HasPrefix(got, tt.want) || strings.Contains(got, "s3cr") || strings.Contains(got, "zz") {
			t.Errorf("%s: %q, want one beginning %q, without the password", tt.raw, got, tt.want)
		}
	}
	other := fmt.Errorf("dial: %w", errors.New("connection refused"))
	if got := URL(other); got != other {
		t.Errorf("an error without a URL became %v", got)
	}
}

// A password with an unencoded #, / or @ parses, the rest of it taken for
// a host, a fragment or a path: such a URL is refused without quoting it.
// Before, the sources accepted it, dialed a host named after a piece of
// the password and logged the rest.
func TestAmbiguous(t *testing.T) {
	for _, raw := range []string{
		"amqp://guest:4242#Zsecret@127.0.0.1:5672/",
		"amqp://guest:Zp@ss/word@127.0.0.1:5672/",
		"nats://u:4222#Zsecret@127.0.0.1:4222",
		"nats://u:Zp@ss/word@127.0.0.1:4222",
		"amqp://guest:Zp@ss?word@127.0.0.1:5672/",
	} {
		err := Ambiguous(raw)
		if err == nil || strings.Contains(err.Error(), "Zsecret") || strings.Contains(err.Error(), "Zp") || !strings.Contains(err.Error(), "# as %23") {
			t.Errorf("%s: %v, want it refused without the password", raw, err)
		}
	}
	for _, raw := range []string{
		"amqp://guest:p%40ss%2Fw%23rd@127.0.0.1:5672/",
		"amqp://guest:guest@127.0.0.1:5672/v%40host",
		"nats://127.0.0.1:4222",
		"postgres://u:p@db/app?sslmode=disable",
	} {
		if err := Ambiguous(raw); err != nil {
			t.Errorf("%s: %v, want it taken", raw, err)
		}
	}
}
