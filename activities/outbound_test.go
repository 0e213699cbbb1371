package activities_test

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/activities"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
)

// policy returns the outbound policy that allows allow (CIDRs, host:port)
// and temporal functions on queues.
func policy(t *testing.T, allow []string, queues ...string) dispatcher.Outbound {
	t.Helper()
	o, err := dispatcher.NewOutbound(allow, queues)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// loopback is the policy of tests whose functions run on 127.0.0.1.
func loopback(t *testing.T) dispatcher.Outbound {
	t.Helper()
	return policy(t, []string{"127.0.0.0/8"})
}

// resolver answers with what its function says, for names the tests make
// up (one that resolves to 10.x, one that changes its answer); the system
// resolves the others.
type resolver func(host string) []string

func (r resolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, a := range r(host) {
		out = append(out, netip.MustParseAddr(a))
	}
	if len(out) == 0 {
		return net.DefaultResolver.LookupNetIP(ctx, network, host)
	}
	return out, nil
}

// callWith runs CallFunction of the function f with activities built
// from o.
func callWith(t *testing.T, o activities.Options, f dispatcher.Function) error {
	t.Helper()
	store := newFakeStore()
	if f.Name == "" {
		f.Name = "fn"
	}
	f.Kind = dispatcher.FunctionHTTP
	store.functions[f.Name] = f
	o.Store = store
	a := newActivities(t, o)
	var res dispatcher.TaskResult
	return execute(t, a, a.CallFunction, dispatcher.TaskInput{Event: testEvent(), FunctionName: f.Name, IdempotencyKey: "k"}, &res)
}

// TestCallFunctionRefusesPrivateTargets: a function whose URL is, or
// resolves to, a loopback, private, link-local or metadata address fails
// for good with OutboundRefused, and nothing reaches it; before the
// outbound policy, the worker called whatever URL an admin saved.
func TestCallFunctionRefusesPrivateTargets(t *testing.T) {
	sink := startFunctionSink(t, nil)
	tlsSink := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { t.Error("the TLS sink was called") }))
	t.Cleanup(tlsSink.Close)
	port := strings.TrimPrefix(sink.URL, "http://127.0.0.1:")
	names := resolver(func(host string) []string {
		return map[string][]string{
			"internal.example.com": {"10.0.0.5"},
			"sink.example.com":     {"127.0.0.1"},
			"mapped.example.com":   {"::ffff:127.0.0.1"},
		}[host]
	})
	tests := []struct {
		name, url, want string
	}{
		{"loopback", sink.URL + "/erase", "host 127.0.0.1 is a loopback address; allow it with DISPATCHER_OUTBOUND_ALLOW"},
		{"loopback over https", tlsSink.URL, "host 127.0.0.1 is a loopback address"},
		{"metadata address", "http://169.254.169.254/latest/meta-data/iam/", "host 169.254.169.254 is a cloud metadata address"},
		{"metadata name", "http://metadata.google.internal/computeMetadata/v1/", "host metadata.google.internal is a cloud metadata service"},
		{"private address", "https://10.0.0.5/hook", "host 10.0.0.5 is a private address"},
		{"a name resolving to a private address", "https://internal.example.com/hook", "host internal.example.com resolves to a private address"},
		{"a name resolving to loopback", "http://sink.example.com:" + port + "/erase", "host sink.example.com resolves to a loopback address"},
		{"a name resolving to IPv4-mapped loopback", "http://mapped.example.com:" + port + "/erase", "a loopback address"},
		{"localhost, resolved by the system", "http://localhost:" + port + "/erase", "host localhost resolves to"},
		{"unspecified address", "http://0.0.0.0:" + port + "/erase", "unspecified"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := callWith(t, activities.Options{Resolver: names}, dispatcher.Function{URL: tt.url, Timeout: 5 * time.Second})
			appErr := wantFailure(t, err, dispatcher.FailureOutboundRefused, false)
			if !strings.Contains(appErr.Message(), tt.want) {
				t.Errorf("message %q, want it to contain %q", appErr.Message(), tt.want)
			}
		})
	}
	if n := sink.count(); n != 0 {
		t.Fatalf("the sink received %d requests", n)
	}
}

// TestCallFunctionRefusesRebinding: the worker checks the address it
// connects to, not the one the name had when the function was saved.
func TestCallFunctionRefusesRebinding(t *testing.T) {
	sink := startFunctionSink(t, nil)
	var mu sync.Mutex
	lookups := 0
	rebinding := resolver(func(host string) []string {
		mu.Lock()
		defer mu.Unlock()
		if lookups++; lookups == 1 {
			return []string{"93.184.215.14"} // public when saved
		}
		return []string{"127.0.0.1"}
	})
	url := strings.Replace(sink.URL, "127.0.0.1", "rebind.example.com", 1) + "/erase"
	f := dispatcher.Function{Name: "fn", Kind: dispatcher.FunctionHTTP, URL: strings.Replace(url, "http:", "https:", 1)}
	if err := policy(t, nil).CheckFunction(t.Context(), rebinding, f); err != nil {
		t.Fatalf("saving: %v", err)
	}
	err := callWith(t, activities.Options{Resolver: rebinding}, f)
	if appErr := wantFailure(t, err, dispatcher.FailureOutboundRefused, false); !strings.Contains(appErr.Message(), "host rebind.example.com resolves to a loopback address") {
		t.Errorf("message %q", appErr.Message())
	}
	if sink.count() != 0 {
		t.Fatal("the sink was called")
	}
}

// TestCallFunctionAllowed: DISPATCHER_OUTBOUND_ALLOW's CIDRs and host:port
// entries open exceptions, and only those.
func TestCallFunctionAllowed(t *testing.T) {
	sink := startFunctionSink(t, nil)
	other := startFunctionSink(t, nil)
	hostPort := strings.TrimPrefix(sink.URL, "http://")
	named := resolver(func(host string) []string {
		if host == "sink.internal" {
			return []string{"127.0.0.1"}
		}
		return nil
	})
	for _, tt := range []struct {
		name  string
		allow []string
		url   string
		ok    bool
	}{
		{"a CIDR", []string{"127.0.0.0/8"}, sink.URL + "/erase", true},
		{"a CIDR, by name", []string{"127.0.0.0/8"}, strings.Replace(sink.URL, "127.0.0.1", "sink.internal", 1), true},
		{"an address", []string{"127.0.0.1"}, sink.URL, true},
		{"host:port", []string{hostPort}, sink.URL, true},
		{"host:port by name", []string{"sink.internal:" + strings.Split(hostPort, ":")[1]}, strings.Replace(sink.URL, "127.0.0.1", "sink.internal", 1), true},
		{"host:port is that port only", []string{hostPort}, other.URL, false},
		{"another range", []string{"10.0.0.0/8"}, sink.URL, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := callWith(t, activities.Options{Outbound: policy(t, tt.allow), Resolver: named}, dispatcher.Function{URL: tt.url, Timeout: 5 * time.Second})
			if tt.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tt.ok {
				wantFailure(t, err, dispatcher.FailureOutboundRefused, false)
			}
		})
	}
}

// TestCallFunctionPlainHTTP: http reaches only allowed addresses; a
// public one needs https.
func TestCallFunctionPlainHTTP(t *testing.T) {
	public := resolver(func(string) []string { return []string{"93.184.215.14"} })
	err := callWith(t, activities.Options{Resolver: public}, dispatcher.Function{URL: "http://api.example.com/hook?token=s3cr3t", Timeout: 5 * time.Second})
	appErr := wantFailure(t, err, dispatcher.FailureOutboundRefused, false)
	if want := "plain http is refused; use https, or allow api.example.com:80 with DISPATCHER_OUTBOUND_ALLOW"; !strings.Contains(appErr.Message(), want) {
		t.Errorf("message %q, want it to contain %q", appErr.Message(), want)
	}
	if strings.Contains(appErr.Message(), "s3cr3t") {
		t.Errorf("message %q shows the URL's token", appErr.Message())
	}
}

// TestCallFunctionRedirects: a redirect stays on the host and port the
// admin configured and never leaves https, so a function's headers and
// signature reach nobody else, and a redirect cannot point the worker at
// an internal address.
func TestCallFunctionRedirects(t *testing.T) {
	var mu sync.Mutex
	var leaked []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		leaked = append(leaked, r.Header.Get("X-Api-Key")+r.Header.Get(activities.HeaderSignature))
		mu.Unlock()
	}))
	t.Cleanup(other.Close)
	redirectWith := func(to string, code int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/final" {
				w.WriteHeader(204)
				return
			}
			http.Redirect(w, r, to, code)
		}
	}
	redirect := func(to string) http.HandlerFunc { return redirectWith(to, http.StatusTemporaryRedirect) }
	var tlsSink *httptest.Server
	tlsSink = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/downgrade":
			// The same host and port, over http.
			http.Redirect(w, r, strings.Replace(tlsSink.URL, "https:", "http:", 1)+"/final", http.StatusFound)
		case "/same":
			http.Redirect(w, r, "/final", http.StatusPermanentRedirect)
		default:
			w.WriteHeader(204)
		}
	}))
	t.Cleanup(tlsSink.Close)
	roots := x509.NewCertPool()
	roots.AddCert(tlsSink.Certificate())

	for _, tt := range []struct {
		name, url string
		handler   http.HandlerFunc
		want      string // "" for success
	}{
		{"same host", "", redirect("/final"), ""},
		{"same host over https", tlsSink.URL + "/same", nil, ""},
		{"https to http", tlsSink.URL + "/downgrade", nil, "a redirect may not leave https"},
		// 127.0.0.1 and localhost are different hosts to the client.
		{"another host", "", redirect(strings.Replace(other.URL, "127.0.0.1", "localhost", 1) + "/steal"), "another host"},
		{"another port", "", redirect(other.URL + "/steal"), "another port"},
		// A client follows 301, 302 and 303 with a GET without the body:
		// the call would be recorded as made, its payload lost.
		{"301 to the same host", "", redirectWith("/final", http.StatusMovedPermanently), "a 301 turns the call into a GET without its payload"},
		{"302 to the same host", "", redirectWith("/final", http.StatusFound), "a 302 turns the call into a GET without its payload"},
		{"303 to the same host", "", redirectWith("/final", http.StatusSeeOther), "a 303 turns the call into a GET"},
		// Not "from http://127.0.0.1:N to http://127.0.0.1:N": paths are not shown.
		{"the same host, shown once", "", redirectWith("/final", http.StatusFound), "refused a redirect to another path of http://127.0.0.1:"},
		{"the metadata address", "", redirect("http://169.254.169.254/latest/meta-data/"), "refused a redirect from http://127.0.0.1:"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			url := tt.url
			if url == "" {
				url = startFunctionSink(t, tt.handler).URL + "/start?token=s3cr3t"
			}
			err := callWith(t, activities.Options{Outbound: loopback(t), RootCAs: roots},
				dispatcher.Function{URL: url, Secret: "sig", Headers: map[string]string{"X-Api-Key": "k3y"}, Timeout: 5 * time.Second})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			appErr := wantFailure(t, err, dispatcher.FailureOutboundRefused, false)
			if !strings.Contains(appErr.Message(), tt.want) || strings.Contains(appErr.Message(), "s3cr3t") {
				t.Errorf("message %q, want it to contain %q and no token", appErr.Message(), tt.want)
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if len(leaked) != 0 {
		t.Fatalf("the other host was called, with credentials %q", leaked)
	}
}

// TestCallFunctionFailureMessagesShowNoSecrets: a failure message, which
// the executions API and the Temporal UI show, holds the status and what
// it means, never the answer's body (an internal service's error page, a
// metadata document) nor the URL's query or user information.
func TestCallFunctionFailureMessagesShowNoSecrets(t *testing.T) {
	const body = "AccessKeyId=AKIAIOSFODNN7EXAMPLE internal stack trace"
	sink := startFunctionSink(t, status(403, "", body))
	withToken := strings.Replace(sink.URL, "http://", "http://user:pa55word@", 1) + "/erase?token=s3cr3t#frag"
	unreachable := "http://user:pa55word@127.0.0.1:1/services/T0/XyZwebhookS3cret/erase?token=s3cr3t"
	for _, tt := range []struct {
		name, url, want string
		typ             string
	}{
		{"an error answer", withToken, `function "fn" answered 403 Forbidden (the function refused the call's credentials)`, dispatcher.FailureHTTPPermanent},
		{"unreachable", unreachable, `function "fn": POST http://127.0.0.1:1: dial tcp: connect: connection refused`, dispatcher.FailureHTTPTemporary},
		// Nor the address a name resolves to: readers of executions
		// would learn the network's insides.
		{"unreachable, by name", "http://erase.internal:1/erase", `function "fn": POST http://erase.internal:1: dial tcp: connect: connection refused`, dispatcher.FailureHTTPTemporary},
	} {
		t.Run(tt.name, func(t *testing.T) {
			internal := resolver(func(string) []string { return []string{"127.0.0.1"} })
			err := callWith(t, activities.Options{Outbound: loopback(t), Resolver: internal}, dispatcher.Function{URL: tt.url, Timeout: 5 * time.Second})
			appErr := wantFailure(t, err, tt.typ, tt.typ == dispatcher.FailureHTTPTemporary)
			msg := appErr.Message()
			if !strings.Contains(msg, tt.want) {
				t.Errorf("message %q, want it to contain %q", msg, tt.want)
			}
			for _, secret := range []string{"AKIA", "stack trace", "s3cr3t", "S3cret", "pa55word", "token"} {
				if strings.Contains(msg, secret) {
					t.Errorf("message %q shows %q", msg, secret)
				}
			}
		})
	}
}

// rawServer answers every connection on loopback with answer, whatever
// the request, and closes it.
func rawServer(t *testing.T, answer string) string {
	t.Helper()
	return "http://" + testenv.AcceptLoopback(t, func(c net.Conn) {
		go func() {
			defer c.Close()
			_, _ = bufio.NewReader(c).ReadString('\n') // the request line
			_, _ = io.WriteString(c, answer)
		}()
	}) + "/hook"
}

// TestCallFunctionUnreadableAnswersAreNotQuoted: an answer the HTTP
// client cannot read fails the call as temporary with a fixed reason.
// The client's own errors quote the answer, and with the outbound policy
// allowing an internal network, an admin who may edit functions could
// point one at an internal service and read its banner back from the
// executions API. Before, the message quoted "SECRET" each time.
func TestCallFunctionUnreadableAnswersAreNotQuoted(t *testing.T) {
	for _, tt := range []struct{ name, answer string }{
		{"not HTTP", "SSH-2.0-OpenSSH_9.6 SECRET-banner password=hunter2\r\n"},
		{"a header line without a colon", "HTTP/1.1 500 Internal\r\nContent-Length: 0\r\nSECRET-api-token-abc123\r\n\r\n"},
		{"an unparsable Location", "HTTP/1.1 307 Temporary Redirect\r\nLocation: https://exa mple.com/SECRET?token=xyz\r\nContent-Length: 0\r\n\r\n"},
		{"an unknown transfer encoding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: SECRET-te\r\n\r\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := callWith(t, activities.Options{Outbound: loopback(t)}, dispatcher.Function{URL: rawServer(t, tt.answer), Timeout: 5 * time.Second})
			msg := wantFailure(t, err, dispatcher.FailureHTTPTemporary, true).Message()
			if !strings.Contains(msg, "the answer is not HTTP the dispatcher can read") || strings.Contains(msg, "SECRET") {
				t.Errorf("message %q, want the fixed reason and nothing of the answer", msg)
			}
		})
	}
}

// TestCallFunctionCertificateFailuresNameNothing: a certificate the
// worker refuses fails the call without the names it is valid for nor
// the authority it claims, which an internal service's certificate
// would tell whoever may read executions. Before, "x509: certificate is
// valid for example.com, not erase.internal", and the authority's name.
func TestCallFunctionCertificateFailuresNameNothing(t *testing.T) {
	sink := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	t.Cleanup(sink.Close)
	roots := x509.NewCertPool()
	roots.AddCert(sink.Certificate())
	internal := resolver(func(string) []string { return []string{"127.0.0.1"} })
	port := sink.URL[strings.LastIndex(sink.URL, ":"):]
	for _, tt := range []struct {
		name, url string
		roots     *x509.CertPool
		want      string
	}{
		{"another host's", "https://erase.internal" + port, roots, "tls: the certificate is not valid for the function's host"},
		{"an unknown authority's", sink.URL, nil, "tls: the certificate is signed by an authority the worker does not trust"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := callWith(t, activities.Options{Outbound: loopback(t), Resolver: internal, RootCAs: tt.roots},
				dispatcher.Function{URL: tt.url, Timeout: 5 * time.Second})
			msg := wantFailure(t, err, dispatcher.FailureHTTPTemporary, true).Message()
			if !strings.Contains(msg, tt.want) || strings.Contains(msg, "example.com") || strings.Contains(msg, "Acme") {
				t.Errorf("message %q, want %q and no name from the certificate", msg, tt.want)
			}
		})
	}
}

// failingDNS fails every lookup as the system's resolver does, naming
// the server it asked.
type failingDNS struct{}

func (failingDNS) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	return nil, &net.DNSError{Err: "no such host", Name: host, Server: "10.255.255.53:53", IsNotFound: true}
}

// A call to a host that does not resolve says so, without the address of
// the resolver the worker asked: the message reaches whoever may read
// executions, and the network's insides are none of theirs. Before, it
// read "lookup nowhere.example.com on 10.255.255.53:53: no such host".
func TestCallFunctionDNSFailureHidesTheResolver(t *testing.T) {
	err := callWith(t, activities.Options{Outbound: loopback(t), Resolver: failingDNS{}},
		dispatcher.Function{URL: "https://nowhere.example.com/erase", Timeout: 5 * time.Second})
	msg := wantFailure(t, err, dispatcher.FailureHTTPTemporary, true).Message()
	if !strings.Contains(msg, "lookup nowhere.example.com: no such host") || strings.Contains(msg, "10.255.255.53") {
		t.Errorf("message %q, want the lookup's failure without the resolver's address", msg)
	}
}

// TestPrepareTaskRefusesTaskQueues: a temporal function runs only on a
// task queue the policy allows, even one saved before the policy was: the
// queue the dispatch would start the child on.
func TestPrepareTaskRefusesTaskQueues(t *testing.T) {
	store := newFakeStore()
	in := dispatcher.TaskInput{Event: testEvent(), FunctionName: "child", IdempotencyKey: "k", TaskQueue: "payments"}
	var p dispatcher.TaskPayload

	a := newActivities(t, activities.Options{Store: store, Outbound: policy(t, nil, "dispatcher")})
	appErr := wantFailure(t, execute(t, a, a.PrepareTask, in, &p), dispatcher.FailureOutboundRefused, false)
	if want := `task queue "payments" is not one functions may run on; add it to DISPATCHER_FUNCTION_TASK_QUEUES`; !strings.Contains(appErr.Message(), want) {
		t.Errorf("message %q, want it to contain %q", appErr.Message(), want)
	}

	a = newActivities(t, activities.Options{Store: store, Outbound: policy(t, nil, "dispatcher", "payments")})
	if err := execute(t, a, a.PrepareTask, in, &p); err != nil {
		t.Fatalf("allowed queue: %v", err)
	}
	if p.FunctionName != "child" {
		t.Errorf("payload %+v", p)
	}
}

func (s *functionSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.requests)
}

// A child's payload over MaxTaskPayloadBytes as Temporal encodes it is a
// template error: data copying an event of HTML, whose < each encode as
// six bytes, made a marker over Temporal's limits, which failed the
// dispatch's workflow task on every retry.
func TestPrepareTaskRefusesAnOversizedPayload(t *testing.T) {
	ev := testEvent()
	ev.Content = json.RawMessage(`{"s":"` + strings.Repeat("<", 200<<10) + `"}`)
	in := dispatcher.TaskInput{Event: ev, FunctionName: "child", IdempotencyKey: "k", TaskQueue: "dispatcher",
		Data: json.RawMessage(`{"copy":"{{ .event.content.s }}"}`)}
	a := newActivities(t, activities.Options{Store: newFakeStore(), Outbound: policy(t, nil, "dispatcher")})
	var p dispatcher.TaskPayload
	appErr := wantFailure(t, execute(t, a, a.PrepareTask, in, &p), dispatcher.FailureTemplate, false)
	if want := fmt.Sprintf("more than %d; copy less of the event into data", dispatcher.MaxTaskPayloadBytes); !strings.Contains(appErr.Message(), want) {
		t.Errorf("message %q, want it to contain %q", appErr.Message(), want)
	}
	in.Data = json.RawMessage(`{"n":"{{ .event.id }}"}`)
	if err := execute(t, a, a.PrepareTask, in, &p); err != nil {
		t.Fatalf("the event once, and an id: %v", err)
	}
}
