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
