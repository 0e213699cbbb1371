package dispatch_test

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"

	"github.com/dispatcherhq/dispatcher/dispatch"
	"github.com/dispatcherhq/dispatcher/internal/testenv"
)

// TestCollectorsDoNotHoldTheScrape: with a Temporal that does not answer,
// a scrape of the collectors that read it returns without waiting out
// their reads (5 and 10 s, which Prometheus's 10 s scrape timeout failed
// the whole scrape on), says no read succeeded yet, and, once the reads
// time out, that they failed.
func TestCollectorsDoNotHoldTheScrape(t *testing.T) {
	c, err := client.NewLazyClient(client.Options{HostPort: testenv.AcceptLoopback(t, func(c net.Conn) {
		t.Cleanup(func() { c.Close() }) // held, never answered: a Temporal stuck
	})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(
		&dispatch.PendingCollector{Client: c, Namespace: "default", Now: time.Now, Every: time.Millisecond, Limit: 10},
		&dispatch.FlowCollector{Client: c, Namespace: "default", Now: time.Now, Every: time.Millisecond, Limit: 10},
	)
	up := func() map[string]float64 {
		t.Helper()
		start := time.Now()
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		// The shorter read's timeout: a scrape that waited for the reads
		// took at least that.
		if took := time.Since(start); took >= 5*time.Second {
			t.Fatalf("the scrape took %s: it waited for Temporal", took)
		}
		out := map[string]float64{}
		for _, f := range families {
			out[f.GetName()] = f.GetMetric()[0].GetGauge().GetValue()
		}
		return out
	}
	// Nothing read yet: no success to report.
	if got := up(); got["dispatcher_pending_dispatch_scrape_success"] != 0 || got["dispatcher_function_flow_scrape_success"] != 0 {
		t.Errorf("before any read ended, the scrape says a read succeeded: %v", got)
	}
	testenv.Eventually(t, 30*time.Second, func() string {
		if got := up(); got["dispatcher_pending_dispatch_scrape_success"] != 0 || got["dispatcher_function_flow_scrape_success"] != 0 {
			return fmt.Sprintf("the reads that timed out are not reported as failed: %v", got)
		}
		return ""
	})
}
