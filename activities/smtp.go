package activities

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"

	gomail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"

	"github.com/dispatcherhq/dispatcher"
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
	pool     smtpPool
}

// CheckSMTPURL reports what is wrong with raw as an SMTP URL (see
// parseSMTPURL), without quoting it: the configuration checks it at start.
func CheckSMTPURL(raw string) error {
	_, err := parseSMTPURL(raw)
	return err
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
	case "":
		// A password goes to the server only over TLS, unless it is on
		// this machine or the URL says so: opportunistic STARTTLS lets
		// whoever is in between strip the offer and read the login (a
		// CRAM-MD5 answer is cracked offline) and the mails.
		if u.User != nil && !dispatcher.LoopbackHost(c.host) {
			c.tls = gomail.TLSMandatory
		}
	case "opportunistic":
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

// client returns a go-mail client for one session. go-mail clients keep
// per-connection state, so each session gets its own. go-mail bounds each
// step of a session (the dial; the greeting, STARTTLS and AUTH; the mail)
// by its timeout anew, so each step gets a share of the time ctx has
// left: a slow server cannot stretch a session past the attempt's
// deadline, while the next attempt sends the mail again. No NOOP before
// each mail (a dead pooled connection fails at MAIL FROM just as well, see
// send, which asks a pooled one for a NOOP itself) and no RSET after it
// (a transaction ends with the server's answer to the mail).
func (c *smtpConfig) client(ctx context.Context, share float64) (*gomail.Client, error) {
	step := part(ctx, share)
	if step <= 0 {
		return nil, context.DeadlineExceeded
	}
	opts := []gomail.Option{gomail.WithTLSPolicy(c.tls), gomail.WithTimeout(step), gomail.WithoutNoop(), gomail.WithoutRset()}
	if c.ssl {
		opts = append(opts, gomail.WithSSL())
	}
	opts = append(opts, gomail.WithPort(c.port)) // last: WithSSL would pick its own
	if c.username != "" {
		opts = append(opts, gomail.WithSMTPAuth(c.auth),
			gomail.WithUsername(c.username), gomail.WithPassword(c.password))
	}
	cl, err := gomail.NewClient(c.host, opts...)
	if err != nil {
		return nil, fmt.Errorf("making a client: %v", err)
	}
	return cl, nil
}

// String shows the server without the password, for logs and errors.
func (c *smtpConfig) String() string {
	return net.JoinHostPort(c.host, strconv.Itoa(c.port))
}

// send delivers m on an idle connection of the pool, or on a new one,
// each session with a client made for what is left of ctx's time;
// a connection that delivered goes back to the pool, so a busy worker
// keeps a few sessions open instead of a TCP (and TLS, and AUTH)
// handshake per mail. A pooled connection the server closed while it
// idled fails before the mail was handed over (the connection check or
// MAIL FROM): the mail then goes on a new one. Any other failure is the
// caller's to classify.
func (c *smtpConfig) send(ctx context.Context, m *gomail.Msg) error {
	if conn := c.pool.get(time.Now()); conn != nil {
		// A session that died idle may stall: a NOOP on a third of the
		// time finds out, and leaves the mail time on a new one. A live
		// one then has the mail's share of a new session (see below).
		if !alive(ctx, conn, 1.0/3) {
			_ = conn.Close()
		} else {
			cl, err := c.client(ctx, 0.9)
			if err != nil {
				c.pool.put(conn, time.Now())
				return err
			}
			if err = cl.SendWithSMTPClient(conn, m); err == nil {
				c.pool.put(conn, time.Now())
				return nil
			}
			_ = conn.Close()
			if m.IsDelivered() || !beforeMail(err) {
				return err
			}
		}
	}
	cl, err := c.client(ctx, 1.0/3) // anew: its steps share what the pooled try left
	if err != nil {
		return err
	}
	conn, err := cl.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return err
	}
	// The mail on a session just opened may take what is left but a
	// tenth, kept to record and report it: a server that scans a mail
	// before it accepts it answers late, and given up on, the mail would
	// be sent again by the next attempt.
	if cl, err = c.client(ctx, 0.9); err != nil {
		_ = conn.Close()
		return err
	}
	if err := cl.SendWithSMTPClient(conn, m); err != nil {
		_ = conn.Close()
		return err
	}
	c.pool.put(conn, time.Now())
	return nil
}

// alive reports whether a pooled session answers a NOOP within share of
// the time ctx has left.
func alive(ctx context.Context, conn *smtp.Client, share float64) bool {
	step := part(ctx, share)
	return step > 0 && conn.UpdateDeadline(step) == nil && conn.Noop() == nil
}

// part is share of the time ctx has left, of mailTimeout without a
// deadline.
func part(ctx context.Context, share float64) time.Duration {
	left := mailTimeout
	if dl, ok := ctx.Deadline(); ok {
		left = time.Until(dl)
	}
	return time.Duration(float64(left) * share)
}

// beforeMail reports whether err stopped a delivery before the server
// was given the mail.
func beforeMail(err error) bool {
	var se *gomail.SendError
	return errors.As(err, &se) && (se.Reason == gomail.ErrConnCheck || se.Reason == gomail.ErrSMTPMailFrom)
}

// afterData reports whether err stopped a delivery once the server had
// been given the whole mail, waiting for its answer.
func afterData(err error) bool {
	var se *gomail.SendError
	return errors.As(err, &se) && se.Reason == gomail.ErrSMTPDataClose
}

// smtpPool holds the idle connections of an SMTP server, newest last.
// It keeps at most smtpPoolSize, each for at most smtpIdleTimeout:
// servers drop idle sessions (Postfix after 300 s, some after 30 s), and
// one dropped under us costs a failed MAIL FROM and a new dial.
type smtpPool struct {
	mu   sync.Mutex
	idle []idleSMTP
}

type idleSMTP struct {
	conn  *smtp.Client
	since time.Time
}

const (
	smtpPoolSize    = 16
	smtpIdleTimeout = 15 * time.Second
)

// get returns the most recently used idle connection, nil if none is
// fresh enough; it closes those that idled too long.
func (p *smtpPool) get(now time.Time) *smtp.Client {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.idle) > 0 {
		last := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if now.Sub(last.since) < smtpIdleTimeout {
			return last.conn
		}
		_ = last.conn.Close()
	}
	return nil
}

// put keeps conn for the next mail, or closes it when the pool is full.
func (p *smtpPool) put(conn *smtp.Client, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.idle) >= smtpPoolSize {
		_ = conn.Close()
		return
	}
	p.idle = append(p.idle, idleSMTP{conn: conn, since: now})
}
