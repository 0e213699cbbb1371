package activities

import (
	"fmt"
	"net"
	"net/url"
	"strconv"

	gomail "github.com/wneessen/go-mail"
)

// smtpConfig is a parsed DISPATCHER_SMTP_URL.
type smtpConfig struct {
	host     string
	port     int
	ssl      bool // smtps: TLS from the first byte
	tls      gomail.TLSPolicy
	auth     gomail.SMTPAuthType
	username string
	password string
}

// parseSMTPURL parses smtp://user:pass@host:port?starttls=...&auth=... and
// smtps://... . The default port is 25 for smtp and 465 for smtps; the
// default STARTTLS policy is opportunistic, so a local mail catcher
// without TLS works and a real server that offers STARTTLS gets it. With a
// user the mechanism is discovered (auth=auto), which never sends a
// password in the clear; auth=plain or login name one (go-mail still
// refuses them unencrypted except on localhost).
func parseSMTPURL(raw string) (*smtpConfig, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse quotes the whole URL, password included.
		return nil, fmt.Errorf("SMTP URL: not a valid URL (want smtp://user:pass@host:port)")
	}
	c := &smtpConfig{host: u.Hostname(), tls: gomail.TLSOpportunistic}
	switch u.Scheme {
	case "smtp":
		c.port = 25
	case "smtps":
		c.port, c.ssl = 465, true
	default:
		return nil, fmt.Errorf("SMTP URL: scheme must be smtp or smtps, not %q", u.Scheme)
	}
	if c.host == "" {
		return nil, fmt.Errorf("SMTP URL: a host is required")
	}
	if p := u.Port(); p != "" {
		if c.port, err = strconv.Atoi(p); err != nil || c.port <= 0 || c.port > 65535 {
			return nil, fmt.Errorf("SMTP URL: bad port %q", p)
		}
	}
	switch s := u.Query().Get("starttls"); s {
	case "", "opportunistic":
	case "required":
		c.tls = gomail.TLSMandatory
	case "none":
		c.tls = gomail.NoTLS
	default:
		return nil, fmt.Errorf("SMTP URL: starttls must be required, opportunistic or none, not %q", s)
	}
	c.auth = gomail.SMTPAuthAutoDiscover
	if s := u.Query().Get("auth"); s != "" {
		if err := c.auth.UnmarshalString(s); err != nil {
			return nil, fmt.Errorf("SMTP URL: auth: %v", err)
		}
	}
	if u.User != nil {
		c.username = u.User.Username()
		c.password, _ = u.User.Password()
	}
	return c, nil
}

// client returns a go-mail client for one delivery. go-mail clients keep
// per-connection state, so each delivery gets its own.
func (c *smtpConfig) client(opts ...gomail.Option) (*gomail.Client, error) {
	opts = append([]gomail.Option{gomail.WithTLSPolicy(c.tls)}, opts...)
	if c.ssl {
		opts = append(opts, gomail.WithSSL())
	}
	opts = append(opts, gomail.WithPort(c.port)) // last: WithSSL would pick its own
	if c.username != "" {
		opts = append(opts, gomail.WithSMTPAuth(c.auth),
			gomail.WithUsername(c.username), gomail.WithPassword(c.password))
	}
	return gomail.NewClient(c.host, opts...)
}

// String shows the server without the password, for logs and errors.
func (c *smtpConfig) String() string {
	return net.JoinHostPort(c.host, strconv.Itoa(c.port))
}
