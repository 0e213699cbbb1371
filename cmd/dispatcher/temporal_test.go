package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// configFrom loads the configuration from the given variables only.
func configFrom(t *testing.T, env map[string]string) config {
	t.Helper()
	cfg, err := loadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// frontend is a stand-in for the Temporal frontend behind TLS: it answers
// GetSystemInfo, the call client.Dial makes first, and records what the
// client sent.
type frontend struct {
	workflowservice.UnimplementedWorkflowServiceServer
	addr string

	mu         sync.Mutex
	auth       []string // authorization metadata received
	namespaces []string // temporal-namespace metadata received
	clientCN   []string // common names of client certificates
}

func startFrontend(t *testing.T, pki *testPKI, mutual bool) *frontend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &frontend{addr: ln.Addr().String()}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(pki.serverTLS(mutual))))
	workflowservice.RegisterWorkflowServiceServer(srv, f)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return f
}

func (f *frontend) GetSystemInfo(ctx context.Context, _ *workflowservice.GetSystemInfoRequest) (*workflowservice.GetSystemInfoResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	md, _ := metadata.FromIncomingContext(ctx)
	f.auth = append(f.auth, md.Get("authorization")...)
	f.namespaces = append(f.namespaces, md.Get("temporal-namespace")...)
	if p, ok := peer.FromContext(ctx); ok {
		if info, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(info.State.PeerCertificates) > 0 {
			f.clientCN = append(f.clientCN, info.State.PeerCertificates[0].Subject.CommonName)
		}
	}
	return &workflowservice.GetSystemInfoResponse{}, nil
}

// dial connects with the options the settings build, as the process does.
func dial(t *testing.T, env map[string]string) error {
	t.Helper()
	opts, err := temporalOptions(configFrom(t, env))
	if err != nil {
		t.Fatalf("temporalOptions: %v", err)
	}
	opts.ConnectionOptions.GetSystemInfoTimeout = 3 * time.Second
	tc, err := client.Dial(opts)
	if err != nil {
		return err
	}
	tc.Close()
	return nil
}

// TestTemporalTLSSettings dials a TLS frontend with the settings a user
// sets, and shows that each one is needed: without the CA, the right
// server name or the client certificate the handshake fails.
func TestTemporalTLSSettings(t *testing.T) {
	pki := newTestPKI(t)
	plain, mutual := startFrontend(t, pki, false), startFrontend(t, pki, true)
	localhost := func(f *frontend) string { return strings.Replace(f.addr, "127.0.0.1", "localhost", 1) }
	for _, tc := range []struct {
		name    string
		env     map[string]string
		fail    bool
		wantErr string // what the error mentions
	}{
		{"TLS with the CA file", map[string]string{
			"TEMPORAL_ADDRESS": plain.addr, "TEMPORAL_TLS": "true", "TEMPORAL_TLS_SERVER_CA_CERT_PATH": pki.caFile}, false, ""},
		{"the CA file alone turns TLS on", map[string]string{
			"TEMPORAL_ADDRESS": plain.addr, "TEMPORAL_TLS_SERVER_CA_CERT_PATH": pki.caFile}, false, ""},
		{"without the CA the certificate is not trusted", map[string]string{
			"TEMPORAL_ADDRESS": plain.addr, "TEMPORAL_TLS": "true"}, true, "certificate"},
		{"a host the certificate does not name", map[string]string{
			"TEMPORAL_ADDRESS": localhost(plain), "TEMPORAL_TLS_SERVER_CA_CERT_PATH": pki.caFile}, true, "certificate"},
		{"the server name override", map[string]string{
			"TEMPORAL_ADDRESS": localhost(plain), "TEMPORAL_TLS_SERVER_CA_CERT_PATH": pki.caFile, "TEMPORAL_TLS_SERVER_NAME": pki.serverName}, false, ""},
		{"mutual TLS", map[string]string{
			"TEMPORAL_ADDRESS": mutual.addr, "TEMPORAL_TLS_SERVER_CA_CERT_PATH": pki.caFile,
			"TEMPORAL_TLS_CLIENT_CERT_PATH": pki.certFile, "TEMPORAL_TLS_CLIENT_KEY_PATH": pki.keyFile}, false, ""},
		// With TLS 1.3 the server refuses the missing certificate after
		// the client's side of the handshake: the client may see the
		// alert or only a closed connection.
		{"mutual TLS without a client certificate", map[string]string{
			"TEMPORAL_ADDRESS": mutual.addr, "TEMPORAL_TLS_SERVER_CA_CERT_PATH": pki.caFile}, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := dial(t, tc.env)
			switch {
			case !tc.fail && err != nil:
				t.Fatalf("dial: %v", err)
			case tc.fail && err == nil:
				t.Fatal("dial succeeded")
			case tc.fail && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("dial: %v, want an error about the %s", err, tc.wantErr)
			}
		})
	}
	mutual.mu.Lock()
	defer mutual.mu.Unlock()
	if len(mutual.clientCN) == 0 || mutual.clientCN[0] != "dispatcher" {
		t.Errorf("the mutual-TLS frontend saw client certificates %v, want the test's (CN dispatcher)", mutual.clientCN)
	}
}

// TestTemporalAPIKey: an API key alone (Temporal Cloud's form: address,
// namespace, key) connects over TLS and sends the key as a bearer token.
func TestTemporalAPIKey(t *testing.T) {
	pki := newTestPKI(t)
	f := startFrontend(t, pki, false)
	const key = "tcld-api-key-0123456789"
	// Only the CA is added: the address of a real cloud endpoint is
	// signed by a public CA, which the system pool holds.
	err := dial(t, map[string]string{
		"TEMPORAL_ADDRESS": f.addr, "TEMPORAL_NAMESPACE": "dispatch.a1b2c",
		"TEMPORAL_API_KEY": key, "TEMPORAL_TLS_SERVER_CA_CERT_PATH": pki.caFile,
	})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.auth) == 0 || f.auth[0] != "Bearer "+key {
		t.Errorf("the frontend got authorization %q, want the bearer API key", f.auth)
	}

	// Without any TLS setting the key still goes over TLS only.
	opts, err := temporalOptions(configFrom(t, map[string]string{"TEMPORAL_API_KEY": key}))
	if err != nil {
		t.Fatal(err)
	}
	if opts.ConnectionOptions.TLS == nil || opts.Credentials == nil {
		t.Errorf("an API key without TEMPORAL_TLS: TLS %v, credentials %v; want both", opts.ConnectionOptions.TLS, opts.Credentials)
	}
	// Said off, it is refused, naming both, without the key: before, TLS
	// was used anyway, and a plaintext frontend retried for ever.
	_, err = loadConfig(func(k string) string { return map[string]string{"TEMPORAL_TLS": "false", "TEMPORAL_API_KEY": key}[k] })
	if err == nil || !strings.Contains(err.Error(), "TEMPORAL_TLS=false, but TEMPORAL_API_KEY is set") || strings.Contains(err.Error(), key) {
		t.Errorf("TEMPORAL_TLS=false with an API key: %v", err)
	}
}

// TestTemporalOptionsDefaults: plaintext, no credentials and no gRPC
// compression unless asked for.
func TestTemporalOptionsDefaults(t *testing.T) {
	opts, err := temporalOptions(configFrom(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	if opts.HostPort != "127.0.0.1:7233" || opts.Namespace != "default" || opts.ConnectionOptions.TLS != nil || opts.Credentials != nil {
		t.Errorf("defaults: %+v", opts)
	}
	if _, ok := opts.ConnectionOptions.GrpcCompression.(*client.GrpcCompressionNone); !ok {
		t.Errorf("default compression %T, want none", opts.ConnectionOptions.GrpcCompression)
	}
	gz, err := temporalOptions(configFrom(t, map[string]string{"TEMPORAL_GRPC_COMPRESSION": "gzip"}))
	if err != nil {
		t.Fatal(err)
	}
	if gz.ConnectionOptions.GrpcCompression != nil {
		t.Errorf("gzip: compression %T, want the SDK's default (gzip)", gz.ConnectionOptions.GrpcCompression)
	}
	if _, err := loadConfig(func(k string) string {
		return map[string]string{"TEMPORAL_GRPC_COMPRESSION": "zstd"}[k]
	}); err == nil || !strings.Contains(err.Error(), "TEMPORAL_GRPC_COMPRESSION") {
		t.Errorf("TEMPORAL_GRPC_COMPRESSION=zstd: %v, want an error naming it", err)
	}
}

// TestTemporalTLSErrors: a bad file is reported with the setting that
// names it, and never with the API key.
func TestTemporalTLSErrors(t *testing.T) {
	pki := newTestPKI(t)
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	other := newTestPKI(t) // a key that does not match pki's certificate
	const key = "secret-api-key-never-shown"
	for _, tc := range []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"missing CA file", map[string]string{"TEMPORAL_TLS_SERVER_CA_CERT_PATH": filepath.Join(dir, "nope.pem")},
			[]string{"TEMPORAL_TLS_SERVER_CA_CERT_PATH", "nope.pem"}},
		{"CA file without a certificate", map[string]string{"TEMPORAL_TLS_SERVER_CA_CERT_PATH": notPEM},
			[]string{"TEMPORAL_TLS_SERVER_CA_CERT_PATH", "no PEM certificate"}},
		{"certificate without key", map[string]string{"TEMPORAL_TLS_CLIENT_CERT_PATH": pki.certFile},
			[]string{"TEMPORAL_TLS_CLIENT_KEY_PATH", "set both"}},
		{"key without certificate", map[string]string{"TEMPORAL_TLS_CLIENT_KEY_PATH": pki.keyFile},
			[]string{"TEMPORAL_TLS_CLIENT_CERT_PATH", "set both"}},
		{"missing key file", map[string]string{"TEMPORAL_TLS_CLIENT_CERT_PATH": pki.certFile, "TEMPORAL_TLS_CLIENT_KEY_PATH": filepath.Join(dir, "key.pem")},
			[]string{"TEMPORAL_TLS_CLIENT_KEY_PATH", "key.pem"}},
		{"certificate file is not PEM", map[string]string{"TEMPORAL_TLS_CLIENT_CERT_PATH": notPEM, "TEMPORAL_TLS_CLIENT_KEY_PATH": pki.keyFile},
			[]string{"TEMPORAL_TLS_CLIENT_CERT_PATH", "not.pem"}},
		{"key of another certificate", map[string]string{"TEMPORAL_TLS_CLIENT_CERT_PATH": pki.certFile, "TEMPORAL_TLS_CLIENT_KEY_PATH": other.keyFile},
			[]string{"TEMPORAL_TLS_CLIENT_CERT_PATH", "TEMPORAL_TLS_CLIENT_KEY_PATH", "does not match"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Each mistake is caught on its own, and with an API key
			// set it is reported without the key.
			if _, err := temporalOptions(configFrom(t, tc.env)); err == nil {
				t.Fatal("no error without an API key")
			}
			tc.env["TEMPORAL_API_KEY"] = key
			_, err := temporalOptions(configFrom(t, tc.env))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), key) {
				t.Errorf("error %q shows the API key", err)
			}
		})
	}
}

// TestConfigHidesTemporalAPIKey: `dispatcher config` lists the key, and
// the other secrets, as hidden.
func TestConfigHidesTemporalAPIKey(t *testing.T) {
	const key = "secret-api-key-never-shown"
	env := map[string]string{"TEMPORAL_API_KEY": key, "DISPATCHER_JWT_SECRET": "jwt-secret-jwt-secret-jwt-secret-jwt",
		"DISPATCHER_METRICS_TOKEN": "metrics-token-never-shown"}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"config"}, func(k string) string { return env[k] }, &out, &out); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), key) || strings.Contains(out.String(), env["DISPATCHER_JWT_SECRET"]) ||
		strings.Contains(out.String(), env["DISPATCHER_METRICS_TOKEN"]) {
		t.Fatalf("dispatcher config shows a secret:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "TEMPORAL_API_KEY") {
		t.Fatalf("dispatcher config does not list TEMPORAL_API_KEY:\n%s", out.String())
	}
}

// TestWorkerSlotSettings: the slot settings reach the worker's options,
// with defaults when unset.
func TestWorkerSlotSettings(t *testing.T) {
	o := workerOptions(configFrom(t, map[string]string{
		"DISPATCHER_MAX_CONCURRENT_WORKFLOW_TASKS":   "300",
		"DISPATCHER_MAX_CONCURRENT_LOCAL_ACTIVITIES": "400",
		"DISPATCHER_MAX_CONCURRENT_ACTIVITIES":       "50",
		"DISPATCHER_SHUTDOWN_TIMEOUT":                "70s",
	}), nil)
	if o.MaxConcurrentWorkflowTaskExecutionSize != 300 || o.MaxConcurrentLocalActivityExecutionSize != 400 ||
		o.MaxConcurrentActivityExecutionSize != 50 || o.WorkerStopTimeout != 70*time.Second {
		t.Errorf("worker options %+v", o)
	}
	// The tenants share the fewer of the slots first calls hold: a
	// workflow task's and a local activity's.
	for env, want := range map[string]int{"": 1000, "DISPATCHER_MAX_CONCURRENT_WORKFLOW_TASKS": 300, "DISPATCHER_MAX_CONCURRENT_LOCAL_ACTIVITIES": 400} {
		if got := firstCallSlots(configFrom(t, map[string]string{env: map[string]string{
			"DISPATCHER_MAX_CONCURRENT_WORKFLOW_TASKS": "300", "DISPATCHER_MAX_CONCURRENT_LOCAL_ACTIVITIES": "400"}[env]})); got != want {
			t.Errorf("%s: first calls' slots %d, want %d", env, got, want)
		}
	}
	// A stopping worker gives its first attempts the local call limit
	// (1m) and 5 s, although the shutdown timeout (20s) is shorter.
	d := workerOptions(configFrom(t, nil), nil)
	if d.MaxConcurrentWorkflowTaskExecutionSize != 1000 || d.MaxConcurrentLocalActivityExecutionSize != 1000 || d.MaxConcurrentActivityExecutionSize != 1000 ||
		d.WorkerStopTimeout != 65*time.Second {
		t.Errorf("default worker options %+v", d)
	}
	if _, err := loadConfig(func(k string) string {
		return map[string]string{"DISPATCHER_MAX_CONCURRENT_ACTIVITIES": "0"}[k]
	}); err == nil || !strings.Contains(err.Error(), "DISPATCHER_MAX_CONCURRENT_ACTIVITIES") {
		t.Errorf("zero activity slots: %v, want an error naming the setting", err)
	}
}

// A metrics token short enough to guess, such as the deployments'
// placeholder, stops the process at start, without being printed.
func TestMetricsTokenTooShort(t *testing.T) {
	_, err := loadConfig(func(k string) string { return map[string]string{"DISPATCHER_METRICS_TOKEN": "CHANGE-ME"}[k] })
	if err == nil || !strings.Contains(err.Error(), "DISPATCHER_METRICS_TOKEN") || strings.Contains(err.Error(), "CHANGE-ME") {
		t.Fatalf("loading a 9-character metrics token: %v, want an error naming the setting, not its value", err)
	}
}
