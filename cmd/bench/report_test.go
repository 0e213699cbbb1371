package main

import (
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

func TestSummaryLine(t *testing.T) {
	run := func(n int, elapsed, each time.Duration) load {
		l := load{N: n, Elapsed: elapsed}
		for range n {
			l.Total = append(l.Total, each)
			l.Intake = append(l.Intake, each/10)
		}
		return l
	}
	r := report{
		Dispatcher: phase{Load: run(100, time.Second, 200*time.Millisecond)},
		Baseline:   phase{Load: run(100, 4*time.Second, 800*time.Millisecond)},
	}
	got := r.summaryLine()
	want := "events_per_s=100.0 p50_ms=200 p99_ms=200 intake_p99_ms=20 baseline_per_s=25.0 baseline_p99_ms=800 ratio=4.00"
	if got != want {
		t.Errorf("summary line = %q, want %q", got, want)
	}
	if md := r.markdown(); !strings.Contains(md, "**Throughput ratio dispatcher / baseline: 4.00×**") {
		t.Errorf("markdown lacks the ratio:\n%s", md)
	}
}
