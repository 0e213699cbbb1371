package dispatcher_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/dispatcherhq/dispatcher"
)

// hosts is a resolver for tests: name → addresses; other names do not
// resolve.
type hosts map[string][]string

func (h hosts) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, a := range h[host] {
		out = append(out, netip.MustParseAddr(a))
	}
	if len(out) == 0 {
		return nil, errors.New("no such host")
	}
	return out, nil
}

func TestOutboundCheckFunction(t *testing.T) {
	resolver := hosts{
		"api.example.com":      {"93.184.215.14"},
		"internal.example.com": {"10.0.0.5"},
		"split.example.com":    {"93.184.215.14", "192.168.1.9"},
		"billing.internal":     {"10.9.9.9"},
		"sink.dev":             {"127.0.0.1"},
	}
	strict := outbound(t, nil, nil)
	allowing := outbound(t, []string{"127.0.0.0/8", "billing.internal:8443", "fd12::7"}, []string{"dispatcher", "pii"})
	ranges := outbound(t, []string{"fd00::/8", "100.64.0.0/10", "169.254.0.0/16", "0.0.0.0/0", "::/0"}, nil)
	metadata := outbound(t, []string{"169.254.169.254"}, nil)
	mapped := outbound(t, []string{"::ffff:10.1.0.0/112", "::ffff:192.168.1.9"}, nil)
	http := func(url string) dispatcher.Function {
		return dispatcher.Function{Name: "f", Kind: dispatcher.FunctionHTTP, URL: url}
	}
	tests := []struct {
		name   string
		policy dispatcher.Outbound
		f      dispatcher.Function
		want   string // "" for no error; else a part of the message
	}{
		{"public https", strict, http("https://api.example.com/hook?token=t0k3n"), ""},
		{"public address", strict, http("https://93.184.215.14/hook"), ""},
		{"a name that does not resolve, over https", strict, http("https://nowhere.example.com/"), ""},
		{"private address", strict, http("https://10.0.0.5/hook"),
			"url: host 10.0.0.5 is a private address; allow it with DISPATCHER_OUTBOUND_ALLOW"},
		{"loopback", strict, http("https://127.0.0.1:9000/"), "url: host 127.0.0.1 is a loopback address"},
		{"IPv6 loopback", strict, http("https://[::1]:9000/"), "url: host ::1 is a loopback address"},
		{"metadata address", strict, http("https://169.254.169.254/latest/meta-data/"), "url: host 169.254.169.254 is a cloud metadata address"},
		{"metadata name", strict, http("https://metadata.google.internal/computeMetadata/v1/"), "url: host metadata.google.internal is a cloud metadata service"},
		{"metadata name, absolute", strict, http("https://METADATA.google.internal./"), "cloud metadata service"},
		// Before, saved: only a name that resolved was checked, and Go's
		// resolver does not find these in /etc/hosts.
		{"localhost, absolute", strict, http("https://LocalHost./"), "url: host LocalHost. resolves to a loopback address"},
		{"a subdomain of localhost", strict, http("https://api.localhost:8443/"), "resolves to a loopback address"},
		{"ip6-localhost", strict, http("https://ip6-localhost/"), "resolves to a loopback address"},
		{"localhost.localdomain", strict, http("https://localhost.localdomain/"), "resolves to a loopback address"},
		{"localhost6", strict, http("https://localhost6/"), "resolves to a loopback address"},
		{"ip6-localhost is ::1, which a loopback range of IPv4 does not open", allowing, http("https://ip6-localhost/"), "resolves to a loopback address"},
		{"link-local", strict, http("https://169.254.10.1/"), "a link-local address"},
		{"IPv6 link-local", strict, http("https://[fe80::1]/"), "a link-local address"},
		{"CGNAT", strict, http("https://100.64.1.1/"), "carrier-grade NAT"},
		{"unique-local", strict, http("https://[fd00::1]/"), "a unique-local address"},
		{"this network", strict, http("https://0.0.0.0:8080/"), "unspecified"},
		{"multicast", strict, http("https://224.0.0.1/"), "multicast"},
		{"IPv4-mapped private", strict, http("https://[::ffff:10.0.0.5]/"), "url: host ::ffff:10.0.0.5 is a private address"},
		{"IPv4-mapped metadata", strict, http("https://[::ffff:169.254.169.254]/"), "cloud metadata address"},
		// Before, taken for public: Azure's host service, and the
		// documentation ranges, which no public service uses.
		{"Azure WireServer", strict, http("https://168.63.129.16/"), "url: host 168.63.129.16 is a cloud metadata address"},
		{"TEST-NET-3", strict, http("https://203.0.113.7/"), "url: host 203.0.113.7 is a documentation address"},
		{"IPv6 documentation", strict, http("https://[2001:db8::1]/"), "is a documentation address"},
		// The worker's HTTP client maps a Unicode host as IDNA does:
		// before, this was saved and refused only when called.
		{"loopback in Unicode digits", strict, http("https://①②⑦.0.0.1:9000/"), "url: host 127.0.0.1 is a loopback address"},
		{"metadata name in full-width letters", strict, http("https://ｍｅｔａｄａｔａ.google.internal/"), "cloud metadata service"},
		{"NAT64 of loopback", strict, http("https://[64:ff9b::7f00:1]/"), "a loopback address"},
		{"IPv4-translated loopback", strict, http("https://[::ffff:0:7f00:1]/"), "an IPv4-translated address"},
		// Local-use NAT64 may carry the IPv4 address at any RFC 6052
		// position: before, the metadata address at the /48's passed, a
		// public one in the last four bytes.
		{"local-use NAT64", strict, http("https://[64:ff9b:1:a9fe:a9:fe00:808:808]/"), "a local-use NAT64 address"},
		// Before, these were public: a Teredo address tunnels to the IPv4
		// address it hides, and the discard prefix goes nowhere.
		{"Teredo", strict, http("https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/"), "a Teredo (tunnelled IPv4) address"},
		{"discard-only", strict, http("https://[100::1]/"), "a discard-only address"},
		// Before, these were public (found by a probe).
		{"6to4 relay anycast", strict, http("https://192.88.99.1/"), "a 6to4 relay anycast address"},
		{"ORCHID", strict, http("https://[2001:10::1]/"), "an ORCHID (non-routable identifier) address"},
		{"ORCHIDv2", strict, http("https://[2001:2f::1]/"), "an ORCHID (non-routable identifier) address"},
		{"IPv6 benchmarking", strict, http("https://[2001:2::1]/"), "a benchmarking address"},
		{"IPv6 documentation (RFC 9637)", strict, http("https://[3fff:1::1]/"), "a documentation address"},
		{"a name resolving to a private address", strict, http("https://internal.example.com/hook"),
			"url: host internal.example.com resolves to a private address; allow it with DISPATCHER_OUTBOUND_ALLOW"},
		{"a name resolving to a public and a private address", strict, http("https://split.example.com/"), "url: host split.example.com resolves to a private address"},
		{"http to a public host", strict, http("http://api.example.com/hook"),
			"url: host api.example.com: plain http is refused; use https, or allow api.example.com:80 with DISPATCHER_OUTBOUND_ALLOW"},
		{"http to a name that does not resolve", strict, http("http://nowhere.example.com/"), "plain http is refused"},

		{"allowed CIDR, http", allowing, http("http://127.0.0.1:9000/erase"), ""},
		{"allowed CIDR by name", allowing, http("http://sink.dev:9000/erase"), ""},
		{"allowed CIDR by a loopback name", allowing, http("http://localhost.:9000/erase"), ""},
		{"allowed single address", allowing, http("https://[fd12::7]/"), ""},
		{"allowed host:port", allowing, http("http://billing.internal:8443/charge"), ""},
		{"allowed host:port, name in capitals", allowing, http("http://Billing.Internal:8443/charge"), ""},
		{"host:port is that port only", allowing, http("https://billing.internal/charge"), "host billing.internal resolves to a private address"},
		{"allowed CIDR does not open another", allowing, http("https://10.0.0.5/"), "a private address"},
		{"allowing a range does not open http to the internet", allowing, http("http://api.example.com/"), "plain http is refused"},
		// A range that holds a metadata address opens the rest of it, not
		// that address, which only an entry of its own opens. Before, it
		// opened it too.
		{"a range does not open a metadata address in it", ranges, http("https://169.254.169.254/latest/meta-data/"), "a cloud metadata address"},
		{"nor an IPv6 one", ranges, http("https://[fd00:ec2::254]/latest/meta-data/"), "a cloud metadata address"},
		{"nor Alibaba's", ranges, http("https://100.100.100.200/latest/meta-data/"), "a cloud metadata address"},
		{"nor ECS's credentials", ranges, http("http://169.254.170.2/v2/credentials"), "a cloud metadata address"},
		{"nor EKS Pod Identity's", ranges, http("http://[fd00:ec2::23]/v1/credentials"), "a cloud metadata address"},
		{"nor a mapped one in everything", ranges, http("https://[::ffff:169.254.169.254]/"), "a cloud metadata address"},
		{"the rest of the range", ranges, http("https://169.254.10.1/"), ""},
		{"a metadata address allowed by itself", metadata, http("http://169.254.169.254/latest/meta-data/"), ""},
		// IPv4-mapped entries allow the IPv4 addresses they map. Before,
		// they never matched: addresses are checked in their IPv4 form.
		{"a mapped range", mapped, http("http://10.1.2.3/"), ""},
		{"a mapped range, by a mapped address", mapped, http("http://[::ffff:10.1.2.3]/"), ""},
		{"a mapped single address", mapped, http("http://192.168.1.9/"), ""},
		{"a mapped range is that range only", mapped, http("https://10.2.0.1/"), "a private address"},

		{"temporal on an allowed queue", allowing, dispatcher.Function{Name: "child", Kind: dispatcher.FunctionTemporal, TaskQueue: "pii"}, ""},
		{"temporal on another queue", allowing, dispatcher.Function{Name: "child", Kind: dispatcher.FunctionTemporal, TaskQueue: "payments"},
			`taskQueue: "payments" is not a task queue functions may run on (dispatcher, pii); add it to DISPATCHER_FUNCTION_TASK_QUEUES`},
		{"temporal with no queue allowed", strict, dispatcher.Function{Name: "child", Kind: dispatcher.FunctionTemporal, TaskQueue: "dispatcher"},
			"taskQueue: no task queue is open to temporal functions; set DISPATCHER_FUNCTION_TASK_QUEUES to the queues your workers poll"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.f
			if err := f.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			err := tt.policy.CheckFunction(t.Context(), resolver, f)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if dispatcher.ErrorCode(err) != dispatcher.EINVALID || !strings.Contains(dispatcher.ErrorMessage(err), tt.want) {
				t.Fatalf("error = %v, want EINVALID containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "t0k3n") || strings.Contains(err.Error(), "/hook") {
				t.Errorf("the message shows the URL: %v", err)
			}
		})
	}
}

func TestNewOutboundRefusesMalformedEntries(t *testing.T) {
	for _, e := range []string{"10.0.0.0/33", "::ffff:0:0/95", "billing.internal", "billing.internal:http", ":8080", "host:0", "host:70000"} {
		if _, err := dispatcher.NewOutbound([]string{e}, nil); err == nil || !strings.Contains(err.Error(), e) {
			t.Errorf("%q: err = %v, want one naming the entry", e, err)
		}
	}
	if _, err := dispatcher.NewOutbound([]string{" 10.0.0.0/8 ", "", "[::1]:8080", "192.168.1.1"}, nil); err != nil {
		t.Errorf("valid entries: %v", err)
	}
}

// TestOutboundForTenant: an entry written tenant=entry opens its
// addresses, or its task queue, to that tenant's functions only; the
// others are every tenant's. Before, every exception was every tenant's
// (security probe).
func TestOutboundForTenant(t *testing.T) {
	o := outbound(t, []string{"10.0.0.0/8", "acme=172.16.0.0/12", " acme = billing.internal:8443"}, []string{"jobs", "acme=acme-billing"})
	private := netip.MustParseAddr("172.16.0.9")
	for _, tc := range []struct {
		tenant       string
		private, tcp bool
		queues       string
	}{
		{"acme", true, true, "jobs,acme-billing"},
		{"beta", false, false, "jobs"},
		{"", false, false, "jobs"},
	} {
		p := o.For(tc.tenant)
		if got := p.CheckAddr("h", "443", private, false) == nil; got != tc.private {
			t.Errorf("%q: 172.16.0.9 allowed %v, want %v", tc.tenant, got, tc.private)
		}
		if got := p.AllowsHostPort("billing.internal", "8443"); got != tc.tcp {
			t.Errorf("%q: billing.internal:8443 allowed %v, want %v", tc.tenant, got, tc.tcp)
		}
		if p.CheckAddr("h", "443", netip.MustParseAddr("10.1.2.3"), true) != nil {
			t.Errorf("%q: 10.1.2.3, every tenant's, refused", tc.tenant)
		}
		if got := strings.Join(p.TaskQueues(), ","); got != tc.queues {
			t.Errorf("%q: task queues %s, want %s", tc.tenant, got, tc.queues)
		}
		if o.Scoped(tc.tenant) != (tc.tenant == "acme") {
			t.Errorf("%q: scoped %v", tc.tenant, o.Scoped(tc.tenant))
		}
	}
	for _, e := range []string{"=10.0.0.0/8", "ac:me=10.0.0.0/8", "acme=", "acme=billing.internal"} {
		if _, err := dispatcher.NewOutbound([]string{e}, nil); err == nil && e != "acme=" {
			t.Errorf("%q: accepted", e)
		}
	}
	if _, err := dispatcher.NewOutbound(nil, []string{"a b=jobs"}); err == nil {
		t.Error("a queue of a malformed tenant: accepted")
	}
}

func outbound(t *testing.T, allow, queues []string) dispatcher.Outbound {
	t.Helper()
	o, err := dispatcher.NewOutbound(allow, queues)
	if err != nil {
		t.Fatal(err)
	}
	return o
}
