package main

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/dispatcherhq/dispatcher/internal/testenv"
)

// tlsProxy terminates TLS in front of a plaintext Temporal frontend, the
// way a load balancer or Temporal Cloud's edge does: it requires a client
// certificate of the test CA, then copies bytes both ways.
type tlsProxy struct {
	addr      string
	handshook atomic.Int64 // connections that completed the TLS handshake with a client certificate
}

func startTLSProxy(t *testing.T, pki *testPKI, upstream string) *tlsProxy {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", pki.serverTLS(true))
	if err != nil {
		t.Fatal(err)
	}
	p := &tlsProxy{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.forward(c.(*tls.Conn), upstream)
			}()
		}
	}()
	return p
}

func (p *tlsProxy) forward(c *tls.Conn, upstream string) {
	defer c.Close()
	if err := c.Handshake(); err != nil || len(c.ConnectionState().PeerCertificates) == 0 {
		return
	}
	p.handshook.Add(1)
	up, err := net.Dial("tcp", upstream)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done // either side closed: tear both down
}

// TestEndToEndTemporalOverTLS runs `dispatcher serve` against Temporal
// reached only through a TLS-terminating proxy that requires mutual TLS,
// configured with the settings an operator sets (TEMPORAL_TLS, the CA, the
// client certificate and key), and runs one dispatch through it.
func TestEndToEndTemporalOverTLS(t *testing.T) {
	srv := testenv.Temporal(t)
	pki := newTestPKI(t)
	proxy := startTLSProxy(t, pki, srv.FrontendHostPort())

	s := &system{t: t, bin: testenv.Binary(t), temporal: srv.Client(), logs: &testenv.Buffer{}}
	s.env = append(os.Environ(),
		"DATABASE_URL="+testenv.SQLite(t),
		"DISPATCHER_JWT_SECRET="+e2eSecret,
		"DISPATCHER_HTTP_ADDR=127.0.0.1:0",
		"DISPATCHER_LOG_LEVEL=warn",
		"DISPATCHER_OUTBOUND_ALLOW=127.0.0.0/8",
		"TEMPORAL_ADDRESS="+proxy.addr,
		"TEMPORAL_TLS=true",
		"TEMPORAL_TLS_SERVER_CA_CERT_PATH="+pki.caFile,
		"TEMPORAL_TLS_CLIENT_CERT_PATH="+pki.certFile,
		"TEMPORAL_TLS_CLIENT_KEY_PATH="+pki.keyFile,
	)
	// serve registers the search attributes and starts polling through
	// the proxy before it reports it is up.
	s.url = s.startProcess("serve").url
	var ready string
	s.poll("the API to be ready", func() bool {
		res, err := http.Get(s.url + "/readyz")
		if err != nil {
			ready = err.Error()
			return false
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		ready = string(b)
		return res.StatusCode == 200
	}, &ready)
	s.token = strings.TrimSpace(s.run("token", "--admin"))

	s.dispatchOneTask("over-tls")
	if proxy.handshook.Load() == 0 {
		t.Error("no connection completed mutual TLS at the proxy")
	}
	if strings.Contains(s.logs.String(), "certificate") {
		t.Errorf("the process logged a certificate problem:\n%s", s.logs)
	}
}
