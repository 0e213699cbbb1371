package api

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
)

// harnessOutbound is the harness's outbound policy: loopback allowed (the
// tests' functions run there), temporal functions on two queues.
func harnessOutbound(t *testing.T) dispatcher.Outbound {
	t.Helper()
	o, err := dispatcher.NewOutbound([]string{"127.0.0.0/8"}, []string{"dispatcher", "pii"})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// fakeHosts resolves the names the tests use, without DNS.
type fakeHosts map[string]string

func (h fakeHosts) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	a, ok := h[host]
	if !ok {
		return nil, errors.New("no such host")
	}
	return []netip.Addr{netip.MustParseAddr(a)}, nil
}

var harnessHosts = fakeHosts{
	"example.com":          "93.184.215.14",
	"api.example.com":      "93.184.215.14",
	"internal.example.com": "10.0.0.5",
	"localhost":            "127.0.0.1",
}

// TestFunctionOutboundPolicy: a function whose URL is, or resolves to, an
// address that is not public, or that is plain http to the internet, or
// whose task queue is not allowed, is refused when saved — created or
// changed — with a 400 that names the field and says how to allow it.
// Before the policy, any URL was saved and called.
func TestFunctionOutboundPolicy(t *testing.T) {
	hs := newHarness(t, testenv.SQLite(t))
	for _, tc := range []struct {
		body    string
		mention string
	}{
		{`{"name":"f","url":"http://169.254.169.254/latest/meta-data/"}`, "url: host 169.254.169.254 is a cloud metadata address; allow it with DISPATCHER_OUTBOUND_ALLOW"},
		{`{"name":"f","url":"https://metadata.google.internal/computeMetadata/v1/"}`, "url: host metadata.google.internal is a cloud metadata service"},
		{`{"name":"f","url":"https://10.0.0.5/hook?token=s3cr3t"}`, "url: host 10.0.0.5 is a private address; allow it with DISPATCHER_OUTBOUND_ALLOW"},
		{`{"name":"f","url":"https://internal.example.com/hook"}`, "url: host internal.example.com resolves to a private address; allow it with DISPATCHER_OUTBOUND_ALLOW"},
		{`{"name":"f","url":"https://[::1]:8080/"}`, "url: host ::1 is a loopback address"},
		{`{"name":"f","url":"http://api.example.com/hook"}`, "url: host api.example.com: plain http is refused; use https"},
		{`{"name":"f","kind":"temporal","taskQueue":"payments"}`, `taskQueue: "payments" is not a task queue functions may run on (dispatcher, pii)`},
	} {
		code, body := hs.do("POST", "/functions/v1", tc.body)
		wantError(t, code, body, 400, 15, tc.mention)
		if strings.Contains(body["message"].(string), "s3cr3t") {
			t.Errorf("the message shows the URL's query: %v", body)
		}
	}
	if fns := hs.must(200, "GET", "/functions/v1", "")["data"].([]any); len(fns) != 0 {
		t.Fatalf("refused functions were saved: %v", fns)
	}

	// Allowed: https to the internet, loopback (DISPATCHER_OUTBOUND_ALLOW
	// of the harness) also over http, an allowed task queue.
	hs.must(200, "POST", "/functions/v1", `{"name":"public","url":"https://api.example.com/hook"}`)
	id := hs.must(200, "POST", "/functions/v1", `{"name":"local","url":"http://localhost:9000/erase"}`)["id"].(string)
	child := hs.must(200, "POST", "/functions/v1", `{"name":"child","kind":"temporal","taskQueue":"pii"}`)["id"].(string)

	// A change is checked as it leaves the function.
	code, body := hs.do("PUT", "/functions/v1/"+id, `{"url":"https://169.254.169.254/"}`)
	wantError(t, code, body, 400, 15, "url: host 169.254.169.254 is a cloud metadata address")
	code, body = hs.do("PUT", "/functions/v1/"+child, `{"taskQueue":"payments"}`)
	wantError(t, code, body, 400, 15, `taskQueue: "payments"`)
	code, body = hs.do("PUT", "/functions/v1/"+child, `{"kind":"http","url":"http://api.example.com/"}`)
	wantError(t, code, body, 400, 15, "plain http is refused")
	hs.must(200, "PUT", "/functions/v1/"+id, `{"timeoutSeconds":5}`)
	if f := hs.must(200, "GET", "/functions/v1/"+id, ""); f["url"] != "http://localhost:9000/erase" || f["timeoutSeconds"] != 5.0 {
		t.Fatalf("after the refused change: %v", f)
	}
	code, body = hs.do("PUT", "/functions/v1/0123456789abcdef01234567", `{"timeoutSeconds":5}`)
	if code != 404 {
		t.Fatalf("PUT of a missing function = %d %v, want 404", code, body)
	}
}

// stalledHosts resolves as harnessHosts, but once armed, the next lookup
// says so on entered and waits for release.
type stalledHosts struct {
	armed            atomic.Bool
	entered, release chan struct{}
}

func (h *stalledHosts) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if h.armed.CompareAndSwap(true, false) {
		h.entered <- struct{}{}
		<-h.release
	}
	return harnessHosts.LookupNetIP(ctx, network, host)
}

// TestFunctionChangedWhileChecked: the policy is checked on the function
// as the change leaves it, and that is the function written, even when
// another change lands while the check looks up the host. Before, a
// change to kind http, checked against the function's public URL, was
// written onto the metadata URL another change had just given it as a
// temporal function, whose URL nothing checked: an http function to the
// cloud metadata address was saved. (A temporal function has no URL
// since; the change now lands on one without, which the check refuses.)
func TestFunctionChangedWhileChecked(t *testing.T) {
	hosts := &stalledHosts{entered: make(chan struct{}), release: make(chan struct{})}
	hs := harnessWith(t, testenv.SQLite(t), hosts)
	id := hs.must(200, "POST", "/functions/v1", `{"name":"f","url":"https://api.example.com/hook"}`)["id"].(string)

	hosts.armed.Store(true)
	type answer struct {
		code int
		body map[string]any
	}
	toHTTP := make(chan answer, 1)
	go func() {
		code, body := hs.do("PUT", "/functions/v1/"+id, `{"kind":"http"}`)
		toHTTP <- answer{code, body}
	}()
	<-hosts.entered // the change to http is being checked against https://api.example.com
	hs.must(200, "PUT", "/functions/v1/"+id, `{"kind":"temporal","taskQueue":"pii"}`)
	close(hosts.release)

	a := <-toHTTP
	wantError(t, a.code, a.body, 400, 14, "url: is required for an http function")
	if f := hs.must(200, "GET", "/functions/v1/"+id, ""); f["kind"] != "temporal" {
		t.Fatalf("the function is now %v", f)
	}
}

// TestFunctionConcurrentChanges: changes to one function that race, as
// writers without If-Match do, all apply. Before, a change was checked
// and written at most three times, then refused (409, "kept changing"):
// 11 of 40 concurrent PUTs (concurrency probe), which an Extra Horizon
// client does not send again.
func TestFunctionConcurrentChanges(t *testing.T) {
	hs := newHarness(t, testenv.SQLite(t))
	id := hs.must(200, "POST", "/functions/v1", `{"name":"f","url":"https://api.example.com/hook"}`)["id"].(string)
	const n = 20
	codes := make([]int, n)
	bodies := make([]map[string]any, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			body := fmt.Sprintf(`{"url":"https://api.example.com/hook%d","timeoutSeconds":%d}`, i, i+5)
			if i%2 == 1 { // checked again whenever another's URL lands first
				body = `{"maxConcurrency":2}`
			}
			codes[i], bodies[i] = hs.do("PUT", "/functions/v1/"+id, body)
		})
	}
	wg.Wait()
	for i := range n {
		if codes[i] != 200 {
			t.Errorf("change %d: %d %v", i, codes[i], bodies[i])
		}
	}
	f := hs.must(200, "GET", "/functions/v1/"+id, "")
	var i int
	if _, err := fmt.Sscanf(f["url"].(string), "https://api.example.com/hook%d", &i); err != nil || f["timeoutSeconds"] != float64(i+5) || f["maxConcurrency"] != 2.0 {
		t.Errorf("the function is %v: not one change whole", f)
	}
}

// TestFunctionHeadersTheCallSets: a function's headers may not name one
// the dispatcher or HTTP sets on a call; each is a 400 naming it, and no
// function is stored. Before, Host, Content-Type and Idempotency-Key were
// stored and then overwritten, and a configured X-Dispatcher-Signature
// went out as written on a function without a secret.
func TestFunctionHeadersTheCallSets(t *testing.T) {
	hs := newHarness(t, testenv.SQLite(t))
	for _, h := range []string{"Host", "content-type", "Idempotency-Key", "X-Dispatcher-Signature", "Transfer-Encoding"} {
		code, body := hs.do("POST", "/functions/v1", `{"name":"f","url":"http://127.0.0.1:9/f","headers":{"`+h+`":"v"}}`)
		wantError(t, code, body, 400, 15, "headers."+h+": the dispatcher or HTTP itself sets this header")
	}
	if n := len(hs.must(200, "GET", "/functions/v1", "")["data"].([]any)); n != 0 {
		t.Fatalf("%d functions stored after the refusals", n)
	}
	hs.must(200, "POST", "/functions/v1", `{"name":"f","url":"http://127.0.0.1:9/f","headers":{"X-Api-Key":"v","Authorization":"Bearer v"}}`)
}

// TestFunctionOutboundPolicyPerTenant: what the policy opens to one
// tenant ("acme=…") that tenant's functions may use when saved, and no
// other tenant's. Before, every exception was every tenant's.
func TestFunctionOutboundPolicyPerTenant(t *testing.T) {
	o, err := dispatcher.NewOutbound([]string{"acme=127.0.0.0/8"}, []string{"acme=acme-billing"})
	if err != nil {
		t.Fatal(err)
	}
	s := newAuthzServer(t, AuthConfig{}, func(c *Config) { c.Outbound = o })
	acme, beta := s.admin("acme"), s.admin("beta")
	s.mustAs(acme, 200, "POST", "/functions/v1", `{"name":"local","url":"http://127.0.0.1:9000/erase"}`)
	s.mustAs(acme, 200, "POST", "/functions/v1", `{"name":"child","kind":"temporal","taskQueue":"acme-billing"}`)
	code, body := s.doAs(beta, "POST", "/functions/v1", `{"name":"local","url":"http://127.0.0.1:9000/erase"}`)
	wantError(t, code, body, 400, 15, "url: host 127.0.0.1 is a loopback address")
	code, body = s.doAs(beta, "POST", "/functions/v1", `{"name":"child","kind":"temporal","taskQueue":"acme-billing"}`)
	wantError(t, code, body, 400, 15, "taskQueue: no task queue is open to temporal functions")
}
