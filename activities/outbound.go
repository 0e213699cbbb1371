package activities

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dispatcherhq/dispatcher"
)

// maxRedirects is how many redirects a task call follows.
const maxRedirects = 5

// guard enforces the outbound policy on task calls: on every connection
// they open, after name resolution, and on every redirect.
type guard struct {
	policy   dispatcher.Outbound
	resolver dispatcher.Resolver
	dialer   net.Dialer
}

// functionClients are the clients of task calls: one under what the
// policy opens to every tenant, and one for each tenant it opens more to
// ("acme=billing.internal:8443"), made when first needed. A transport
// pools connections by host: a connection dialed under one tenant's
// exceptions is never reused for another tenant's call.
type functionClients struct {
	policy    dispatcher.Outbound
	newClient func(dispatcher.Outbound) *http.Client

	once    sync.Once
	shared  *http.Client
	mu      sync.Mutex
	tenants map[string]*http.Client
}

// of returns the client of tenant's calls.
func (c *functionClients) of(tenant string) *http.Client {
	if !c.policy.Scoped(tenant) {
		c.once.Do(func() { c.shared = c.newClient(c.policy.For("")) })
		return c.shared
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tenants[tenant] == nil {
		if c.tenants == nil {
			c.tenants = map[string]*http.Client{}
		}
		c.tenants[tenant] = c.newClient(c.policy.For(tenant))
	}
	return c.tenants[tenant]
}

// plaintextKey marks the context of an http (not https) request: the
// dialer then lets it reach only allowed addresses.
type plaintextKey struct{}

// newFunctionClient returns the client of task calls. It goes direct,
// never through HTTP(S)_PROXY: the checks are on the address the worker
// connects to, which a proxy would hide. rootCAs, when not nil, verify
// the functions' certificates; wrap, when not nil, wraps its transport
// (tracing).
func newFunctionClient(g *guard, rootCAs *x509.CertPool, wrap func(http.RoundTripper) http.RoundTripper) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.DialContext = g.dial
	if rootCAs != nil {
		t.TLSClientConfig = &tls.Config{RootCAs: rootCAs, MinVersion: tls.VersionTLS12}
	}
	// Keep connections to functions alive under concurrency (the default
	// keeps 2 per host and closes the rest).
	t.MaxIdleConnsPerHost = 32
	var rt http.RoundTripper = markPlaintext{t}
	if wrap != nil {
		rt = wrap(rt)
	}
	return &http.Client{Transport: rt, CheckRedirect: checkRedirect}
}

// markPlaintext marks http requests for the dialer. The transport pools
// connections by scheme, so a connection dialed for https never carries
// http, nor the other way round.
type markPlaintext struct{ next http.RoundTripper }

func (m markPlaintext) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme != "https" {
		r = r.WithContext(context.WithValue(r.Context(), plaintextKey{}, true))
	}
	return m.next.RoundTrip(r)
}

// dial connects to addr ("host:port" of the URL) if the policy allows it:
// to the first address host resolves to that is public or allowed (any,
// for an allowed host:port), checked again by the dialer's Control on the
// address it actually connects to.
func (g *guard) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if err := g.policy.CheckName(host, port); err != nil {
		return nil, err
	}
	plaintext, _ := ctx.Value(plaintextKey{}).(bool)
	addrs, err := g.lookup(ctx, network, host)
	if err != nil {
		return nil, err
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("port %q: %w", port, err)
	}
	d := g.dialer
	d.Control = func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return err
		}
		return g.policy.CheckAddr(host, port, ap.Addr(), plaintext)
	}
	// Like net.Dialer, each address gets its share of the time left.
	var refused, failed error
	for i, a := range addrs {
		if err := g.policy.CheckAddr(host, port, a, plaintext); err != nil {
			refused = firstErr(refused, err)
			continue
		}
		dctx, cancel := ctx, context.CancelFunc(func() {})
		if dl, ok := ctx.Deadline(); ok {
			dctx, cancel = context.WithTimeout(ctx, time.Until(dl)/time.Duration(len(addrs)-i))
		}
		c, err := d.DialContext(dctx, network, netip.AddrPortFrom(a, uint16(p)).String())
		cancel()
		if err == nil {
			return c, nil
		}
		failed = firstErr(failed, err)
	}
	// An address that could not be reached is worth a retry; one that
	// was refused is not, unless another was reachable.
	if failed != nil {
		return nil, failed
	}
	return nil, refused
}

func firstErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// lookup resolves host, or parses it when it is an address.
func (g *guard) lookup(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a}, nil
	}
	ipNet := "ip"
	switch network {
	case "tcp4":
		ipNet = "ip4"
	case "tcp6":
		ipNet = "ip6"
	}
	addrs, err := g.resolver.LookupNetIP(ctx, ipNet, host)
	if err == nil && len(addrs) == 0 {
		err = fmt.Errorf("lookup %s: no addresses", host)
	}
	for i, a := range addrs {
		addrs[i] = a.Unmap() // Go's resolver answers IPv4 in IPv6 form
	}
	return addrs, err
}

// redirectError is a redirect the outbound policy refuses.
type redirectError struct {
	from, to *url.URL
	why      string
}

func (e *redirectError) Error() string {
	from, to := redactURL(e.from), redactURL(e.to)
	if from == to { // the paths differ, and are not shown
		return fmt.Sprintf("refused a redirect to another path of %s: %s", from, e.why)
	}
	return fmt.Sprintf("refused a redirect from %s to %s: %s", from, to, e.why)
}

// checkRedirect follows a redirect only to the same host and port (or
// from http to https on the default ports), and never from https to http:
// the function's headers (API keys) and signature go with a redirected
// request, and Go drops only Authorization and cookies on a cross-host
// one. The dialer checks the address of any new connection.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", len(via))
	}
	prev, to := via[len(via)-1].URL, req.URL
	upgrade := prev.Scheme == "http" && to.Scheme == "https" && prev.Port() == "" && to.Port() == ""
	switch {
	case prev.Scheme == "https" && to.Scheme != "https":
		return &redirectError{prev, to, "a redirect may not leave https"}
	case !strings.EqualFold(prev.Hostname(), to.Hostname()):
		return &redirectError{prev, to, "another host; configure the function's final URL"}
	case dispatcher.URLPort(prev) != dispatcher.URLPort(to) && !upgrade:
		return &redirectError{prev, to, "another port; configure the function's final URL"}
	case req.Method != via[len(via)-1].Method:
		// 301, 302 and 303: the client would follow with a GET and no
		// body, and the call would count as made, its payload lost.
		code := 0
		if req.Response != nil {
			code = req.Response.StatusCode
		}
		return &redirectError{prev, to, fmt.Sprintf("a %d turns the call into a GET without its payload; configure the function's final URL (or answer 307 or 308)", code)}
	}
	return nil
}

// refusal returns the policy's refusal in err, if that is why it failed.
func refusal(err error) (error, bool) {
	var o *dispatcher.OutboundError
	if errors.As(err, &o) {
		return o, true
	}
	var r *redirectError
	if errors.As(err, &r) {
		return r, true
	}
	return nil, false
}

// redactURL shows u as scheme://host[:port]: the path, the query and the
// user information may carry a token (a webhook's path often is one), and
// messages end up in the Temporal UI, the executions API, whose readers
// need not see functions, and logs.
func redactURL(u *url.URL) string {
	if u == nil {
		return "(no URL)"
	}
	r := url.URL{Scheme: u.Scheme, Host: u.Host}
	return r.String()
}

// redactRawURL is redactURL of a URL not parsed yet.
func redactRawURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return redactURL(u)
}

// errUnreadable stands in for what the HTTP client says of an answer it
// could not read: its errors quote the answer (a status line, a header
// line, a Location), which may be an internal service's banner or a
// secret, and readers of executions need not see functions.
var errUnreadable = errors.New("the answer is not HTTP the dispatcher can read")

// callError is what a failed request says, without the URL that
// *url.Error puts in front (it carries the query), and without the
// addresses of the resolver that a failed lookup names or of the host
// that a failed connection names: the network's insides are none of the
// readers' of executions. Of the rest, only errors known to quote
// nothing of the answer are shown: a timeout, an early end, a failed TLS
// handshake.
func callError(err error) error {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		hidden := *dns
		hidden.Server = ""
		return &hidden
	}
	var op *net.OpError
	if errors.As(err, &op) {
		hidden := *op
		hidden.Source, hidden.Addr = nil, nil
		return &hidden
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var (
		timeout   net.Error
		cert      *tls.CertificateVerificationError
		alert     tls.AlertError
		record    tls.RecordHeaderError
		host      x509.HostnameError
		authority x509.UnknownAuthorityError
	)
	switch {
	case errors.As(err, &host):
		// Not its text: it lists the names the certificate is for.
		return errors.New("tls: the certificate is not valid for the function's host")
	case errors.As(err, &authority):
		// Nor this one's: it names the authority the certificate claims.
		return errors.New("tls: the certificate is signed by an authority the worker does not trust")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, context.Canceled),
		errors.As(err, &timeout) && timeout.Timeout(),
		errors.As(err, &cert), errors.As(err, &alert), errors.As(err, &record),
		err.Error() == "http: server gave HTTP response to HTTPS client":
		return err
	}
	return errUnreadable
}
