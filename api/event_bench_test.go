package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkEvents is the HTTP intake's own cost, to set beside the broker
// intakes' (rabbitmq and jetstream BenchmarkSource): events POSTed over
// loopback, 64 at once, read, checked and answered, to a Temporal that
// answers at once.
func BenchmarkEvents(b *testing.B) {
	h, err := NewServer(context.Background(), Config{Auth: AuthConfig{Disabled: true}, MaxBodyBytes: 1 << 16, MaxEventBytes: 1 << 16},
		Deps{Starter: acceptAll{}, Registry: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var n atomic.Int64
	b.SetParallelism(32) // 64 goroutines on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			res, err := client.Post(srv.URL+"/events/v1", "application/json",
				strings.NewReader(fmt.Sprintf(`{"id":"b-%d","type":"t","content":{"n":%d}}`, i, i)))
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusAccepted {
				b.Errorf("status %d", res.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
