package dispatch_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/api/workflowservice/v1"
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

// failingList is a Temporal client whose visibility list fails its first
// fails calls, then lists nothing.
type failingList struct {
	client.Client
	fails int32
	calls atomic.Int32
}

func (f *failingList) ListWorkflow(context.Context, *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	if f.calls.Add(1) <= f.fails {
		return nil, errors.New("visibility is down")
	}
	return &workflowservice.ListWorkflowExecutionsResponse{}, nil
}

// TestCollectorsLogFailedReadsOnce: a collector whose reads of Temporal
// fail logs it once, with the error, however many reads fail, and once
// that they succeed again. Before, a failed read said nothing but its
// gauge of success, which DispatcherGaugesUnread fires on: the operator it
// paged had nothing to go on.
func TestCollectorsLogFailedReadsOnce(t *testing.T) {
	for _, tt := range []struct {
		what string
		new  func(client.Client, *slog.Logger) prometheus.Collector
	}{
		{"the running dispatches", func(c client.Client, log *slog.Logger) prometheus.Collector {
			return &dispatch.PendingCollector{Client: c, Namespace: "default", Now: time.Now, Every: time.Millisecond, Limit: 10, Logger: log}
		}},
		{"the function gates", func(c client.Client, log *slog.Logger) prometheus.Collector {
			return &dispatch.FlowCollector{Client: c, Namespace: "default", Now: time.Now, Every: time.Millisecond, Limit: 10, Logger: log}
		}},
	} {
		t.Run(tt.what, func(t *testing.T) {
			c := &failingList{fails: 3}
			var logs testenv.Buffer
			reg := prometheus.NewPedanticRegistry()
			reg.MustRegister(tt.new(c, slog.New(slog.NewTextHandler(&logs, nil))))
			testenv.Eventually(t, 10*time.Second, func() string {
				if _, err := reg.Gather(); err != nil {
					t.Fatal(err)
				}
				if c.calls.Load() < 5 {
					return "waiting for reads that fail and then succeed"
				}
				return ""
			})
			got := logs.String()
			if n := strings.Count(got, "cannot read "+tt.what+" from Temporal"); n != 1 || !strings.Contains(got, "visibility is down") {
				t.Errorf("3 failed reads logged %d times, want once with the error:\n%s", n, got)
			}
			if n := strings.Count(got, "read "+tt.what+" from Temporal again"); n != 1 {
				t.Errorf("the reads that succeeded again logged %d times, want once:\n%s", n, got)
			}
		})
	}
}
