package activities

import (
	"testing"

	gomail "github.com/wneessen/go-mail"
)

// A password goes to a server elsewhere only over STARTTLS: before, the
// default was opportunistic, and whoever was in between could strip the
// server's offer and read the login and the mails.
func TestSMTPURLRequiresTLSForAPassword(t *testing.T) {
	for _, tt := range []struct {
		url  string
		want gomail.TLSPolicy
	}{
		{"smtp://user:pass@smtp.example.com:587", gomail.TLSMandatory},
		{"smtp://user@10.1.2.3", gomail.TLSMandatory},
		{"smtp://user:pass@smtp.example.com:587?starttls=opportunistic", gomail.TLSOpportunistic},
		{"smtp://user:pass@smtp.example.com:587?starttls=none", gomail.NoTLS},
		{"smtp://user:pass@127.0.0.1:1025", gomail.TLSOpportunistic},
		{"smtp://user:pass@[::1]:1025", gomail.TLSOpportunistic},
		{"smtp://user:pass@LocalHost:1025", gomail.TLSOpportunistic},
		{"smtp://smtp.example.com", gomail.TLSOpportunistic},
	} {
		c, err := parseSMTPURL(tt.url)
		if err != nil {
			t.Fatalf("%s: %v", tt.url, err)
		}
		if c.tls != tt.want {
			t.Errorf("%s: STARTTLS %v, want %v", tt.url, c.tls, tt.want)
		}
	}
}
