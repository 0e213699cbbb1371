package activities

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dispatcherhq/dispatcher"
)

// TestFunctionClientsPerTenant: what the policy opens to one tenant
// ("acme=127.0.0.0/8") its calls reach, and no other tenant's, not even
// over the connection acme's call left idle: each tenant the policy opens
// more to has a client, and a pool, of its own.
func TestFunctionClientsPerTenant(t *testing.T) {
	sink := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(sink.Close)
	policy, err := dispatcher.NewOutbound([]string{"acme=127.0.0.0/8"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &functionClients{policy: policy, newClient: func(p dispatcher.Outbound) *http.Client {
		return newFunctionClient(&guard{policy: p, resolver: net.DefaultResolver}, nil, nil)
	}}
	post := func(tenant string) error {
		resp, err := c.of(tenant).Post(sink.URL, "application/json", strings.NewReader("{}"))
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := post("acme"); err != nil {
		t.Fatalf("acme's call: %v", err)
	}
	for _, tenant := range []string{"beta", ""} {
		var refused *dispatcher.OutboundError
		if err := post(tenant); !errors.As(err, &refused) {
			t.Errorf("tenant %q's call: %v, want it refused", tenant, err)
		}
	}
	acme := c.of("acme")
	if c.of("beta") != c.of("") || acme == c.of("") || c.of("acme") != acme {
		t.Error("want one client for the tenants the policy opens nothing more to, and one of acme's own, kept")
	}
}
