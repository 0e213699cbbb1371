package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriteSection(t *testing.T) {
	tests := []struct {
		name, page, want string
	}{
		{
			name: "replaces the marked section, keeps the rest",
			page: "# Benchmarks\nintro\n<!-- bench:start -->\nold run\n<!-- bench:end -->\nafter\n",
			want: "# Benchmarks\nintro\n<!-- bench:start -->\nnew run\n<!-- bench:end -->\nafter\n",
		},
		{
			name: "appends a section to a page without markers",
			page: "# Benchmarks\nintro\n",
			want: "# Benchmarks\nintro\n\n<!-- bench:start -->\nnew run\n<!-- bench:end -->\n",
		},
		{
			name: "markers quoted inside a line are prose",
			page: "flag `-out`: the `<!-- bench:start -->` section\n<!-- bench:start -->\nold\n<!-- bench:end -->\n",
			want: "flag `-out`: the `<!-- bench:start -->` section\n<!-- bench:start -->\nnew run\n<!-- bench:end -->\n",
		},
		{
			name: "creates a missing page",
			want: "# Benchmarks\n\n<!-- bench:start -->\nnew run\n<!-- bench:end -->\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "benchmarks.md")
			if tt.page != "" {
				if err := os.WriteFile(path, []byte(tt.page), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := writeSection(path, "new run\n"); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("page =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 200; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for _, tt := range []struct {
		p    float64
		want time.Duration
	}{{50, 100 * time.Millisecond}, {99, 198 * time.Millisecond}, {100, 200 * time.Millisecond}, {0.1, time.Millisecond}} {
		if got := percentile(ds, tt.p); got != tt.want {
			t.Errorf("p%v = %v, want %v", tt.p, got, tt.want)
		}
	}
	if got := percentile(nil, 99); got != 0 {
		t.Errorf("p99 of nothing = %v, want 0", got)
	}
}

// fixed is a run of n items in elapsed, each taking each end to end and
// a tenth of it at the intake.
func fixed(n int, elapsed, each time.Duration) load {
	l := load{N: n, Elapsed: elapsed}
	for range n {
		l.Total = append(l.Total, each)
		l.Intake = append(l.Intake, each/10)
	}
	return l
}

func TestSummaryLineDevServerOnly(t *testing.T) {
	r := report{
		Params:     params{Actions: 2},
		Dispatcher: phase{Load: fixed(100, time.Second, 200*time.Millisecond)},
		Baseline:   phase{Load: fixed(100, 4*time.Second, 800*time.Millisecond)},
	}
	got := r.summaryLine()
	// The fields that were there before the production layout keep their
	// names, order and format.
	want := "events_per_s=100.0 p50_ms=200 p99_ms=200 intake_p99_ms=20 baseline_per_s=25.0 baseline_p99_ms=800 ratio=4.00 targets_met=1/8"
	if got != want {
		t.Errorf("summary line = %q, want %q", got, want)
	}
	if md := r.markdown(); !strings.Contains(md, "**Throughput ratio dispatcher / baseline: 4.00×**") {
		t.Errorf("markdown lacks the ratio:\n%s", md)
	}
}

// fullReport is a run with every row, meeting every target but the
// production p99 (250 ms against a dev-server 200 ms: 1.25, met) and
// the visibility writes (2 per dispatch: missed).
func fullReport() report {
	db := func(runs int, vis, temporal int64) *dbUse {
		return &dbUse{Runs: runs, WALBytes: 40 << 10 * int64(runs), DB: map[string]dbCounters{
			dbTemporal:   {Commits: 40 * int64(runs), Inserted: temporal * int64(runs)},
			dbVisibility: {Commits: 4 * int64(runs), Inserted: int64(runs), Updated: (vis - 1) * int64(runs)},
			dbStore:      {Commits: 3 * int64(runs), Inserted: int64(runs)},
		}, Tables: map[string]dbCounters{
			"history_node":          {Inserted: temporal / 6 * int64(runs), Scans: int64(runs)},
			"executions":            {Inserted: int64(runs), Updated: int64(runs), Scans: 3 * int64(runs)},
			"cluster_metadata_info": {Scans: temporal * int64(runs)},
		}}
	}
	serve := phase{Name: "prod", Layout: "serve", Procs: 1, Load: fixed(1000, 10*time.Second, 250*time.Millisecond),
		DB: db(1000, 2, 12), History: history{Samples: 20, Min: 7, Max: 7, Mean: 7}, Memory: memory{RSS: 70 << 20, HWM: 80 << 20},
		CPU: cpuUse{Server: 9 * time.Second, Worker: 3500 * time.Millisecond, Postgres: 9 * time.Second, Driver: 500 * time.Millisecond}}
	scale := func(k int, per time.Duration) phase {
		ph := phase{Name: fmt.Sprintf("scale-%d", k), Layout: fmt.Sprintf("serve ×%d", k), Procs: k, Load: fixed(500, per, 250*time.Millisecond)}
		for range k {
			ph.Memories = append(ph.Memories, memory{HWM: 60 << 20})
		}
		return ph
	}
	return report{
		Params:     params{Actions: 2, N: 1000, ScaleN: 500, Concurrency: 32},
		Dispatcher: phase{Name: "dispatcher", Load: fixed(1000, 5*time.Second, 200*time.Millisecond), History: history{Samples: 20, Min: 7, Max: 7, Mean: 7}},
		Baseline:   phase{Load: fixed(1000, 20*time.Second, 800*time.Millisecond)},
		Reference:  phase{Load: fixed(1000, 4*time.Second, 150*time.Millisecond)},
		Production: production{
			Serve: serve,
			Open:  openPhase{Load: openLoad{load: fixed(500, 10*time.Second, 30*time.Millisecond), Rate: 50}},
			Split: phase{Name: "split", Layout: "worker + api", Procs: 2, Load: fixed(1000, 20*time.Second, 500*time.Millisecond), DB: db(1000, 2, 18)},
			Bare: phase{Name: "bare", Load: fixed(1000, 30*time.Second, 900*time.Millisecond), DB: db(1000, 3, 60),
				CPU: cpuUse{Server: 33 * time.Second, Worker: 6 * time.Second, Postgres: 21 * time.Second}},
			Scale: []phase{scale(1, 5*time.Second), scale(2, 5*time.Second), scale(4, 6*time.Second)},
		},
	}
}

func TestSummaryLineProduction(t *testing.T) {
	got := fullReport().summaryLine()
	want := "events_per_s=200.0 p50_ms=200 p99_ms=200 intake_p99_ms=20" +
		" baseline_per_s=50.0 baseline_p99_ms=800 ratio=4.00" +
		" reference_per_s=250.0 ref_ratio=0.80" +
		" prod_per_s=100.0 prod_p99_ms=250 prod_intake_p99_ms=25 bare_pg_per_s=33.3 prod_ratio=3.00 prod_cpu_ratio=2.73 prod_p99_factor=1.25" +
		" split_per_s=50.0 scale1_per_s=100.0 scale2_per_s=100.0 scale4_per_s=83.3" +
		" open_rate=50.0 open_intake_p50_ms=3.0 open_intake_p99_ms=3.0" +
		" vis_writes=2.00 history_max=7 worker_peak_mb=84 targets_met=6/8"
	if got != want {
		t.Errorf("summary line =\n%q\nwant\n%q", got, want)
	}
}

func TestTargets(t *testing.T) {
	ts := fullReport().targets()
	want := []struct {
		prefix, verdict string
	}{
		{"ratio:", "met"},
		{"ref_ratio:", "**missed** by 6 %"}, // 0.80 against 0.85
		{"prod_ratio:", "met"},
		{"p99 end-to-end:", "met"},
		{"history events", "met"},
		{"visibility writes", "**missed** by 100 %"}, // 2 against 1
		{"intake p99", "met"},
		{"worker RSS", "met"},
	}
	if len(ts) != len(want) {
		t.Fatalf("%d targets, want %d", len(ts), len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(ts[i].Name, w.prefix) || ts[i].verdict() != w.verdict {
			t.Errorf("target %d = %q: %q, want %q…: %q", i, ts[i].Name, ts[i].verdict(), w.prefix, w.verdict)
		}
	}
	if got := ts[5].Got; got != "2.00 (bare workflow: 3.00)" {
		t.Errorf("visibility writes measured %q, want the bare workflow's beside", got)
	}

	// Without the dev-server rows, nothing to compare the production
	// p99 with.
	r := fullReport()
	r.Dispatcher = phase{}
	if tt := r.targets()[3]; tt.Measured || tt.Got != "—" {
		t.Errorf("%s without a dev-server row: %+v, want not measured", tt.Name, tt)
	}
	if line := r.summaryLine(); strings.Contains(line, "events_per_s=") || strings.Contains(line, "prod_p99_factor") {
		t.Errorf("summary line without a dev-server row: %s", line)
	}

	// A run without the production layout measures none of its targets
	// and says so, rather than claiming them met or missed.
	r = fullReport()
	r.Production = production{}
	for _, tt := range r.targets()[2:] {
		if strings.HasPrefix(tt.Name, "history") || strings.HasPrefix(tt.Name, "worker RSS") {
			continue // the dev-server row measures those too
		}
		if tt.Measured || tt.verdict() != "not measured" || tt.Got != "—" {
			t.Errorf("%s: %+v, want not measured", tt.Name, tt)
		}
	}
}

func TestBound(t *testing.T) {
	tests := []struct {
		name      string
		atLeast   bool
		got, want float64
		met       bool
		miss      float64
	}{
		{"at least, above", true, 3.2, 3, true, 0},
		{"at least, equal", true, 3, 3, true, 0},
		{"at least, below", true, 2.4, 3, false, 0.2},
		{"at most, below", false, 20, 25, true, 0},
		{"at most, above", false, 30, 25, false, 0.2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := bound("x", tt.atLeast, true, tt.got, tt.want, "%.1f")
			if b.Met != tt.met || (b.Miss-tt.miss) > 1e-9 || (tt.miss-b.Miss) > 1e-9 {
				t.Errorf("bound(%v, %v) = met %v miss %v, want met %v miss %v", tt.got, tt.want, b.Met, b.Miss, tt.met, tt.miss)
			}
		})
	}
}

func TestMarkdownProduction(t *testing.T) {
	r := fullReport()
	r.Started = time.Date(2026, 12, 1, 6, 12, 0, 0, time.UTC)
	r.Finished = r.Started.Add(5*time.Minute + 30*time.Second)
	r.Machine.Load, r.EndLoad = "4.66 8.81 10.30", "1.65 5.73 8.54"
	r.Dispatcher.LoadAvg, r.Production.Serve.LoadAvg = "4.66", "5.20"
	r.Production.Scale[2].Notes = []string{"the sinks received 550 mails"}
	md := r.markdown()
	for _, want := range []string{
		"Run of 2026-12-01 06:12 UTC, 5.5 minutes.",
		"load average at start 4.66 8.81 10.30, at the end 1.65 5.73 8.54",
		"when each row's measured run began, the bench's own processes included: dispatcher (dev server) 4.66; production serve 5.20.",
		"scale-out ×4: the sinks received 550 mails.",
		"#### Targets",
		"| prod_ratio: production `serve` ÷ bare workflow (same server on PostgreSQL) | ≥ 2.50 | 3.00 | met |",
		"#### Production layout: Temporal server on PostgreSQL, store on PostgreSQL",
		"**Throughput ratio production / bare workflow on the same server: 3.00×**; CPU per event, all processes, bare ÷ production: 2.73× (60 ms ÷ 22 ms); production p99 / dev-server dispatcher p99: 1.25×",
		"| production: `dispatcher serve` | 12.00 | 40.00 | 2.00 | 4.00 | 1.00 | 3.00 | 40.0 KiB |",
		"| 4 | 83.3 | 0.83 |",
		"60, 60, 60, 60 MiB",
		"| 50.0/s | 500 | 50.0/s | 3.0 ms | 3.0 ms |",
		"| table | `serve` | `api` + `worker` | bare workflow |",
		// By rows written and scans, the serve column's most first; a
		// table only read shows its scans.
		"| cluster_metadata_info | 0.00 / 0.00 / 0.00 · 12.00 | 0.00 / 0.00 / 0.00 · 18.00 | 0.00 / 0.00 / 0.00 · 60.00 |\n| executions | 1.00 / 1.00 / 0.00 · 3.00 |",
		"| history_node | 2.00 / 0.00 / 0.00 · 1.00 | 3.00 / 0.00 / 0.00 · 1.00 | 10.00 / 0.00 / 0.00 · 1.00 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}
