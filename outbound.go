package dispatcher

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/idna"
)

// OutboundAllowSetting is the setting that opens exceptions to the
// outbound policy; refusals name it, so whoever reads one knows the fix.
const OutboundAllowSetting = "DISPATCHER_OUTBOUND_ALLOW"

// FunctionQueuesSetting names the task queues temporal functions may run on.
const FunctionQueuesSetting = "DISPATCHER_FUNCTION_TASK_QUEUES"

// Outbound is where task functions may go. Whoever may edit functions
// chooses the URLs the worker calls, from inside its network: without a
// policy a function could reach a database's HTTP port, an admin console
// on loopback or a cloud metadata service (169.254.169.254), and a
// failure message would read the answer back. So an HTTP function must
// be an https URL of a public address, except what the operator allows
// (DISPATCHER_OUTBOUND_ALLOW), and a temporal function must run on one of
// the task queues the operator names. The API checks a function when it
// is saved; the worker checks every connection it opens, after
// resolution, so a name that resolves elsewhere later (DNS rebinding)
// gets no further.
//
// The zero value allows https to public addresses and no task queue.
type Outbound struct {
	nets   []netip.Prefix // allowed address ranges, any port
	hosts  []string       // allowed "host:port", host lower-case
	queues []string       // task queues temporal functions may run on
	// tenants holds what is open to one tenant only, beyond the above
	// ("acme=billing.internal:8443"): For(tenant) is its policy.
	tenants map[string]*Outbound
}

// NewOutbound returns the policy that allows, beyond https to public
// addresses, what allow names — CIDRs such as 10.0.0.0/8 (those addresses,
// any port, http too), single addresses, or host:port entries such as
// billing.internal:8080 (that host and port exactly, whatever it resolves
// to) — and temporal functions on queues. An entry of either written
// tenant=entry ("acme=10.1.0.0/16", "acme=acme-billing") is open to that
// tenant's functions only.
func NewOutbound(allow, queues []string) (Outbound, error) {
	var o Outbound
	for _, q := range queues {
		q = strings.TrimSpace(q)
		scope, err := o.scope(&q)
		if err != nil {
			return Outbound{}, fmt.Errorf("%s: %w", FunctionQueuesSetting, err)
		}
		if q != "" {
			scope.queues = append(scope.queues, q)
		}
	}
	for _, e := range allow {
		e = strings.TrimSpace(e)
		scope, err := o.scope(&e)
		if err == nil {
			err = scope.allow(e)
		}
		if err != nil {
			return Outbound{}, fmt.Errorf("%s: %w", OutboundAllowSetting, err)
		}
	}
	return o, nil
}

// scope returns the policy an entry adds to: o's own, or, for an entry
// "tenant=rest", that tenant's, and leaves rest in e.
func (o *Outbound) scope(e *string) (*Outbound, error) {
	tenant, rest, ok := strings.Cut(*e, "=")
	if !ok {
		return o, nil
	}
	if tenant = strings.TrimSpace(tenant); tenant == "" || !ValidTenant(tenant) {
		return nil, fmt.Errorf("%q: a tenant is 1 to 64 letters, digits, '_' or '-' (tenant=entry)", *e)
	}
	*e = strings.TrimSpace(rest)
	if o.tenants == nil {
		o.tenants = map[string]*Outbound{}
	}
	if o.tenants[tenant] == nil {
		o.tenants[tenant] = &Outbound{}
	}
	return o.tenants[tenant], nil
}

// For returns the policy of tenant's functions: what every tenant may
// reach, and what is open to that tenant only.
func (o Outbound) For(tenant string) Outbound {
	t := o.tenants[tenant]
	if t == nil {
		return Outbound{nets: o.nets, hosts: o.hosts, queues: o.queues}
	}
	return Outbound{nets: append(slices.Clone(o.nets), t.nets...), hosts: append(slices.Clone(o.hosts), t.hosts...),
		queues: append(slices.Clone(o.queues), t.queues...)}
}

// OpensTaskQueue reports whether queue is open to the functions of any
// tenant.
func (o Outbound) OpensTaskQueue(queue string) bool {
	if slices.Contains(o.queues, queue) {
		return true
	}
	for _, t := range o.tenants {
		if slices.Contains(t.queues, queue) {
			return true
		}
	}
	return false
}

// Scoped reports whether the policy opens something to tenant alone.
func (o Outbound) Scoped(tenant string) bool { return o.tenants[tenant] != nil }

// allow adds entry e of DISPATCHER_OUTBOUND_ALLOW.
func (o *Outbound) allow(e string) error {
	if e == "" {
		return nil
	}
	if p, err := netip.ParsePrefix(e); err == nil {
		if p, err = unmapped(p); err != nil {
			return fmt.Errorf("%q: %v", e, err)
		}
		o.nets = append(o.nets, p.Masked())
		return nil
	}
	if a, err := netip.ParseAddr(e); err == nil {
		a = a.Unmap()
		o.nets = append(o.nets, netip.PrefixFrom(a, a.BitLen()))
		return nil
	}
	host, port, err := net.SplitHostPort(e)
	if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: want a CIDR (10.0.0.0/8), an address, or host:port (billing.internal:8080), each as tenant=… for one tenant only", e)
	}
	o.hosts = append(o.hosts, hostPort(host, port))
	return nil
}

// unmapped returns an IPv4-mapped prefix (::ffff:10.0.0.0/104) as the
// IPv4 prefix it maps (10.0.0.0/8), the form in which the addresses it is
// checked against come. Before, such an entry never matched.
func unmapped(p netip.Prefix) (netip.Prefix, error) {
	if !p.Addr().Is4In6() {
		return p, nil
	}
	if p.Bits() < 96 {
		return p, fmt.Errorf("an IPv4-mapped range shorter than /96 holds more than IPv4 addresses; write the IPv4 range (10.0.0.0/8)")
	}
	return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96), nil
}

// TaskQueues returns the task queues temporal functions may run on.
func (o Outbound) TaskQueues() []string { return slices.Clone(o.queues) }

// AllowsTaskQueue reports whether a temporal function may run on queue.
func (o Outbound) AllowsTaskQueue(queue string) bool { return slices.Contains(o.queues, queue) }

// AllowsHostPort reports whether host:port is allowed by name: calls to
// it are not checked further.
func (o Outbound) AllowsHostPort(host, port string) bool {
	return slices.Contains(o.hosts, hostPort(host, port))
}

// CheckName refuses, before any lookup, a host that names a cloud
// metadata service; nil otherwise.
func (o Outbound) CheckName(host, port string) error {
	if o.AllowsHostPort(host, port) {
		return nil
	}
	if slices.Contains(metadataNames, strings.TrimSuffix(strings.ToLower(host), ".")) {
		return &OutboundError{Host: host, Port: port, Reason: "a cloud metadata service"}
	}
	return nil
}

// CheckAddr reports, as an *OutboundError, why a call to host:port may not
// connect to addr, which host resolved to; nil when it may. plaintext
// says the call is http, not https: only allowed addresses may receive
// that.
func (o Outbound) CheckAddr(host, port string, addr netip.Addr, plaintext bool) error {
	if o.AllowsHostPort(host, port) || o.allowsAddr(addr) {
		return nil
	}
	if what, ok := reserved(addr); ok {
		return &OutboundError{Host: host, Port: port, Addr: addr, Reason: what}
	}
	if plaintext {
		return &OutboundError{Host: host, Port: port, Plaintext: true}
	}
	return nil
}

func (o Outbound) allowsAddr(a netip.Addr) bool {
	a = a.WithZone("").Unmap()
	what, _ := reserved(a)
	for _, p := range o.nets {
		// A cloud metadata address only by itself: a range that holds
		// it (a VPC's fd00::/8, the link-local 169.254.0.0/16) opens
		// the others. Before, it opened the metadata service too.
		if p.Contains(a) && (what != metadataAddress || p.Bits() == a.BitLen()) {
			return true
		}
	}
	return false
}

// Resolver looks up the addresses of a host; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// lookupTimeout bounds the lookup of a function's host when it is saved.
const lookupTimeout = 5 * time.Second

// CheckFunction refuses, as an EINVALID *Error that names the field, a
// function the policy does not allow: an HTTP function whose URL is not
// https, or whose host is, or resolves (with r) to, a private, loopback,
// link-local, metadata or otherwise reserved address that is not
// allowed; a temporal function on a task queue not allowed. f must have
// passed Validate. A host that does not resolve is accepted over https:
// the worker checks the addresses it connects to anyway.
func (o Outbound) CheckFunction(ctx context.Context, r Resolver, f Function) error {
	switch f.Kind {
	case FunctionHTTP:
		u, err := url.Parse(f.URL)
		if err != nil {
			return Errorf(EINVALID, "url: not an absolute http(s) URL")
		}
		if err := o.checkURL(ctx, r, u); err != nil {
			return Errorf(EINVALID, "url: %v", err)
		}
	case FunctionTemporal:
		switch {
		case len(o.queues) == 0:
			return Errorf(EINVALID, "taskQueue: no task queue is open to temporal functions; set DISPATCHER_FUNCTION_TASK_QUEUES to the queues your workers poll")
		case !o.AllowsTaskQueue(f.TaskQueue):
			return Errorf(EINVALID, "taskQueue: %q is not a task queue functions may run on (%s); add it to DISPATCHER_FUNCTION_TASK_QUEUES",
				f.TaskQueue, strings.Join(o.queues, ", "))
		}
	}
	return nil
}

func (o Outbound) checkURL(ctx context.Context, r Resolver, u *url.URL) error {
	host, port := u.Hostname(), URLPort(u)
	// The name the worker's HTTP client will look up: it maps a host of
	// Unicode as IDNA does (①②⑦.0.0.1 is 127.0.0.1).
	if strings.ContainsFunc(host, func(r rune) bool { return r > '~' }) {
		ascii, err := idna.Lookup.ToASCII(host)
		if err != nil {
			return fmt.Errorf("host %s is not a valid host name", host)
		}
		host = ascii
	}
	plaintext := u.Scheme != "https"
	if err := o.CheckName(host, port); err != nil || o.AllowsHostPort(host, port) {
		return err
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else if a, ok := loopbackName(host); ok {
		// Before, saved when Go's resolver did not find it (localhost.,
		// ip6-localhost): refused only when called.
		addrs = []netip.Addr{a}
	} else {
		ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
		defer cancel()
		addrs, _ = r.LookupNetIP(ctx, "ip", host)
		for i, a := range addrs {
			addrs[i] = a.Unmap() // Go's resolver answers IPv4 in IPv6 form
		}
	}
	if len(addrs) == 0 && plaintext {
		return &OutboundError{Host: host, Port: port, Plaintext: true}
	}
	for _, a := range addrs {
		if err := o.CheckAddr(host, port, a, plaintext); err != nil {
			return err
		}
	}
	return nil
}

// loopbackName returns the loopback address host names by convention:
// localhost and its subdomains (RFC 6761), and the names /etc/hosts gives
// loopback on Debian and Red Hat.
func loopbackName(host string) (netip.Addr, bool) {
	name := strings.TrimSuffix(strings.ToLower(host), ".")
	switch {
	case slices.Contains([]string{"ip6-localhost", "ip6-loopback", "localhost6", "localhost6.localdomain6"}, name):
		return netip.IPv6Loopback(), true
	case slices.Contains([]string{"localhost", "localhost.localdomain", "localhost4", "localhost4.localdomain4"}, name) ||
		strings.HasSuffix(name, ".localhost"):
		return netip.AddrFrom4([4]byte{127, 0, 0, 1}), true
	}
	return netip.Addr{}, false
}

// URLPort returns the port of u, or its scheme's default.
func URLPort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "http" {
		return "80"
	}
	return "443"
}

// OutboundError is a call the outbound policy refuses. Its message names
// the host (never the whole URL, which may carry a token) and the reason,
// never the address a name resolved to: whoever may save a function or
// read executions would map the network's internal names to addresses.
type OutboundError struct {
	Host      string     // as the URL names it
	Port      string     // the port called
	Addr      netip.Addr // the address refused; invalid when the name was
	Reason    string     // what Addr (or Host) is: "a private address"
	Plaintext bool       // refused for being http to an address not allowed
}

func (e *OutboundError) Error() string {
	fix := "allow it with " + OutboundAllowSetting
	switch {
	case e.Plaintext:
		return fmt.Sprintf("host %s: plain http is refused; use https, or allow %s with %s", e.Host, hostPort(e.Host, e.Port), OutboundAllowSetting)
	case !e.Addr.IsValid() || e.Addr.WithZone("").String() == strings.Trim(e.Host, "[]"):
		return fmt.Sprintf("host %s is %s; %s", e.Host, e.Reason, fix)
	default:
		return fmt.Sprintf("host %s resolves to %s; %s", e.Host, e.Reason, fix)
	}
}

func hostPort(host, port string) string {
	return net.JoinHostPort(strings.TrimSuffix(strings.ToLower(host), "."), port)
}

// metadataNames are the names of cloud metadata services, refused by
// name: their addresses (169.254.169.254, fd00:ec2::254) are refused too.
var metadataNames = []string{"metadata", "metadata.google.internal", "metadata.goog", "instance-data", "instance-data.ec2.internal"}

// addrRange is a range of addresses and what they are, for messages.
type addrRange struct {
	p    netip.Prefix
	what string
}

func ranges(what string, prefixes ...string) []addrRange {
	out := make([]addrRange, len(prefixes))
	for i, p := range prefixes {
		out[i] = addrRange{netip.MustParsePrefix(p), what}
	}
	return out
}

// metadataAddress is what reserved says of a cloud metadata address.
const metadataAddress = "a cloud metadata address"

// reservedRanges are the addresses a function may not reach unless
// allowed: every range that is not the public internet. The first match
// names the reason, so the metadata addresses come before their ranges.
var reservedRanges = slices.Concat(
	// Azure's WireServer (168.63.129.16) is public space its VMs reach
	// as a host service, of their certificates and extensions.
	// Alibaba Cloud's is 100.100.100.200, AWS ECS's task credentials
	// 169.254.170.2, EKS Pod Identity's 169.254.170.23 and fd00:ec2::23.
	ranges(metadataAddress, "169.254.169.254/32", "fd00:ec2::254/128", "168.63.129.16/32", "100.100.100.200/32",
		"169.254.170.2/32", "169.254.170.23/32", "fd00:ec2::23/128"),
	ranges("an unspecified (\"this network\") address", "0.0.0.0/8", "::/128"),
	ranges("a private address", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"),
	ranges("a shared (carrier-grade NAT) address", "100.64.0.0/10"),
	ranges("a loopback address", "127.0.0.0/8", "::1/128"),
	ranges("a link-local address", "169.254.0.0/16", "fe80::/10"),
	ranges("an IETF protocol address", "192.0.0.0/24"),
	ranges("a benchmarking address", "198.18.0.0/15", "2001:2::/48"),
	ranges("a documentation address", "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32", "3fff::/20"),
	// RFC 7526 deprecated the 6to4 relays' anycast; ORCHIDs (RFC 7343)
	// are identifiers, never routed.
	ranges("a 6to4 relay anycast address", "192.88.99.0/24"),
	ranges("an ORCHID (non-routable identifier) address", "2001:10::/28", "2001:20::/28"),
	ranges("a multicast address", "224.0.0.0/4", "ff00::/8"),
	ranges("a reserved address", "240.0.0.0/4"),
	ranges("an IPv4-compatible address", "::/96"),
	// RFC 2765 (SIIT): the IPv4 address in its last four bytes, and
	// never a public route of its own.
	ranges("an IPv4-translated address", "::ffff:0:0:0/96"),
	ranges("a unique-local address", "fc00::/7"),
	ranges("a site-local address", "fec0::/10"),
	ranges("a Teredo (tunnelled IPv4) address", "2001::/32"),
	ranges("a discard-only address", "100::/64"),
	// RFC 8215: never public, and its IPv4 address may sit at any of
	// RFC 6052's positions, which no check can tell apart.
	ranges("a local-use NAT64 address", "64:ff9b:1::/48"),
)

// Prefixes whose addresses carry an IPv4 address that the network
// reaches through them: the well-known NAT64 prefix (RFC 6052) and 6to4.
var (
	nat64  = netip.MustParsePrefix("64:ff9b::/96")
	sixTo4 = netip.MustParsePrefix("2002::/16")
)

// reserved says what a is when it is not a public address: its own range,
// or that of the IPv4 address it maps or embeds.
func reserved(a netip.Addr) (string, bool) {
	a = a.WithZone("").Unmap()
	if a.Is6() {
		b := a.As16()
		var v4 netip.Addr
		switch {
		case nat64.Contains(a):
			v4 = netip.AddrFrom4([4]byte(b[12:16]))
		case sixTo4.Contains(a):
			v4 = netip.AddrFrom4([4]byte(b[2:6]))
		}
		if what, ok := reserved(v4); v4.IsValid() && ok {
			return what, true
		}
	}
	for _, r := range reservedRanges {
		if r.p.Contains(a) {
			return r.what, true
		}
	}
	return "", false
}

// LoopbackHost reports whether host (no port) is this machine: a loopback
// address, or localhost.
func LoopbackHost(host string) bool {
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsLoopback()
	}
	return strings.EqualFold(host, "localhost")
}
