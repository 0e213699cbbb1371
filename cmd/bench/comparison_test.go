package main

import (
	"strings"
	"testing"
	"time"
)

// devReport is a dev-server run with the HTTP row and the rows compared
// with it: AMQP as fast as HTTP but 1 ms more CPU per event, its broker's;
// NATS a bit slower; ordered a quarter of the throughput at three times
// the CPU.
func devReport() report {
	cpu := func(total time.Duration, n int) cpuUse {
		// 60 % server, 30 % worker, 10 % load generator
		per := total * time.Duration(n)
		return cpuUse{Server: per * 6 / 10, Worker: per * 3 / 10, Driver: per / 10}
	}
	amqp := phase{Name: "amqp", SeparateDriver: true, Load: fixed(1000, 5*time.Second, 200*time.Millisecond), CPU: cpu(8*time.Millisecond, 1000)}
	amqp.CPU.Broker = time.Second
	return report{
		Params:     params{Actions: 2, N: 1000, OrderedKeys: 64},
		Dispatcher: phase{Name: "dispatcher", SeparateDriver: true, Load: fixed(1000, 5*time.Second, 200*time.Millisecond), CPU: cpu(8*time.Millisecond, 1000)},
		AMQP:       amqp,
		NATS:       phase{Name: "nats", SeparateDriver: true, Load: fixed(1000, 6250*time.Millisecond, 250*time.Millisecond), CPU: cpu(10*time.Millisecond, 1000)},
		Ordered:    phase{Name: "ordered", SeparateDriver: true, Load: fixed(1000, 20*time.Second, 900*time.Millisecond), CPU: cpu(24*time.Millisecond, 1000)},
	}
}

func TestSummaryLineComparisons(t *testing.T) {
	got := devReport().summaryLine()
	// The HTTP row's fields first, as ever; each compared row's after.
	want := "events_per_s=200.0 p50_ms=200 p99_ms=200 intake_p99_ms=20" +
		" amqp_per_s=200.0 amqp_p50_ms=200 amqp_p99_ms=200 amqp_ratio=1.00 amqp_cpu_ratio=0.89" +
		" nats_per_s=160.0 nats_p50_ms=250 nats_p99_ms=250 nats_ratio=0.80 nats_cpu_ratio=0.80" +
		" ordered_per_s=50.0 ordered_p50_ms=900 ordered_p99_ms=900 ordered_ratio=0.25 ordered_cpu_ratio=0.33" +
		" targets_met=0/8"
	if got != want {
		t.Errorf("summary line =\n%q\nwant\n%q", got, want)
	}

	// A row turned off leaves its fields out, the others keep theirs.
	r := devReport()
	r.AMQP, r.NATS = phase{}, phase{}
	if got := r.summaryLine(); strings.Contains(got, "amqp_") || strings.Contains(got, "nats_") || !strings.Contains(got, " ordered_ratio=0.25 ") {
		t.Errorf("summary line with -brokers=false: %s", got)
	}
	r = devReport()
	r.Ordered = phase{}
	if got := r.summaryLine(); strings.Contains(got, "ordered_") || !strings.Contains(got, " nats_ratio=0.80 ") {
		t.Errorf("summary line with -ordered=false: %s", got)
	}
}

func TestMarkdownComparisons(t *testing.T) {
	md := devReport().markdown()
	for _, want := range []string{
		"| run | events/s | p50 end-to-end | p99 end-to-end | p99 intake | RSS (peak) | history events/run | CPU/run: server | CPU/run: worker | CPU/run: broker | CPU/run: load gen + sinks |",
		// The broker's CPU in its own column; rows without one show none.
		"| AMQP intake: RabbitMQ (publisher confirms) → serve → eager start → local activities → sinks | 200.0 | 200 ms | 200 ms | 20 ms | 0 MiB (0 MiB) | — | 4.80 ms | 2.40 ms | 1.00 ms | 0.80 ms |",
		"| 4.80 ms | 2.40 ms | — | 0.80 ms |",
		"| ordered: HTTP intake, ordering by `content.userId` over 64 keys → Sequence → child dispatch → sinks | 50.0 |",
		"- **AMQP / HTTP: 1.00×**; by CPU 0.89× (9.0 ms against 8.0 ms per event); p99 200 ms against 200 ms",
		"- **NATS / HTTP: 0.80×**; by CPU 0.80× (10 ms against 8.0 ms per event); p99 250 ms against 200 ms",
		"- **ordered (64 keys) / unordered: 0.25×**; by CPU 0.33× (24 ms against 8.0 ms per event); p99 900 ms against 200 ms",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}

	// Without the compared rows the section has nothing to say.
	r := devReport()
	r.AMQP, r.NATS, r.Ordered = phase{}, phase{}, phase{}
	if md := r.markdown(); strings.Contains(md, "Against the HTTP dispatcher row") || strings.Contains(md, "AMQP intake") {
		t.Errorf("markdown without the compared rows:\n%s", md)
	}
}

func TestComparisonsWithoutHTTPRow(t *testing.T) {
	r := devReport()
	r.Dispatcher = phase{}
	// No ratio is better than a ratio over nothing.
	if got := r.summaryLine(); strings.Contains(got, "_ratio") {
		t.Errorf("summary line without the HTTP row has ratios: %s", got)
	}
}

func TestDevRows(t *testing.T) {
	tests := []struct {
		brokers, ordered bool
		want             string
	}{
		{true, true, "amqp nats ordered"},
		{false, true, "ordered"},
		{true, false, "amqp nats"},
		{false, false, ""},
	}
	for _, tt := range tests {
		var names []string
		for _, row := range devRows(params{Brokers: tt.brokers, Ordered: tt.ordered, OrderedKeys: 8, AMQPURL: "amqp://127.0.0.1/", NATSURL: "nats://127.0.0.1"}) {
			names = append(names, row.name)
			var r report
			*row.result(&r) = phase{Name: row.name, Load: load{N: 1}}
			if got := r.comparisons(); len(got) != 1 || got[0].key != row.name {
				t.Errorf("row %s is reported as %+v", row.name, got)
			}
			if (row.broker != nil) != (row.name != "ordered") || (row.keys > 0) != (row.name == "ordered") {
				t.Errorf("row %s: broker %v, keys %d", row.name, row.broker, row.keys)
			}
		}
		if got := strings.Join(names, " "); got != tt.want {
			t.Errorf("-brokers=%v -ordered=%v: rows %q, want %q", tt.brokers, tt.ordered, got, tt.want)
		}
	}
}

func TestTopologiesAreTheRunsOwn(t *testing.T) {
	a, b := newAMQPTopology("amqp://guest:guest@127.0.0.1:5672/"), newAMQPTopology("amqp://guest:guest@127.0.0.1:5672/")
	if a.queue == b.queue || a.exchange == b.exchange || !strings.HasPrefix(a.queue, "bench.") {
		t.Errorf("AMQP topologies %+v and %+v", a, b)
	}
	if env := strings.Join(a.env(), " "); !strings.Contains(env, "DISPATCHER_AMQP_QUEUE="+a.queue) || !strings.Contains(env, "DISPATCHER_AMQP_EXCHANGE="+a.exchange) {
		t.Errorf("AMQP env %s", env)
	}
	if s := a.String(); strings.Contains(s, "guest:guest") {
		t.Errorf("%s shows the password", s)
	}
	n, m := newNATSTopology("nats://127.0.0.1:4222"), newNATSTopology("nats://127.0.0.1:4222")
	if n.stream == m.stream || n.subject == m.subject || strings.ContainsAny(n.subject, ".*> ") {
		t.Errorf("NATS topologies %+v and %+v", n, m)
	}
	if env := strings.Join(n.env(), " "); !strings.Contains(env, "DISPATCHER_NATS_STREAM="+n.stream) || !strings.Contains(env, "DISPATCHER_NATS_SUBJECT="+n.subject) {
		t.Errorf("NATS env %s", env)
	}
}
