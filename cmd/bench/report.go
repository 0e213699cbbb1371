package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"
)

// report is everything one run measured.
type report struct {
	Machine    machine
	Params     params
	Started    time.Time
	Dispatcher phase
	Baseline   phase // zero with -skip-baseline
	Reference  phase // zero with -reference=false
}

// ratio is the dispatcher's throughput over the baseline's; 0 without one.
func (r report) ratio() float64 {
	if r.Baseline.Load.N == 0 {
		return 0
	}
	return r.Dispatcher.Load.perSecond() / r.Baseline.Load.perSecond()
}

// markdown renders the report as the section docs/benchmarks.md keeps.
func (r report) markdown() string {
	var b strings.Builder
	m, p := r.Machine, r.Params
	fmt.Fprintf(&b, "Run of %s.\n\n", r.Started.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "- Machine: %d × %s, %s, %s, Temporal CLI %s; load average at start %s\n",
		m.CPUs, m.Model, m.Kernel, m.Go, m.Temporal, m.Load)
	kinds := actionKinds(p.Actions)
	fmt.Fprintf(&b, "- Parameters: %d events measured after %d warm-up, %d concurrent callers, %d actions per event (%s), %s store, done = %s\n\n",
		p.N, p.Warmup, p.Concurrency, p.Actions, kinds, p.DB, awaitMeaning(p.Await))

	b.WriteString("| run | events/s | p50 end-to-end | p99 end-to-end | p99 intake | RSS (peak) | history events/run | CPU/run: server | CPU/run: worker | CPU/run: load gen + sinks |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	row := func(label string, ph phase) {
		l := ph.Load
		driver := "(in worker)"
		if ph.SeparateDriver {
			driver = perRun(ph.CPU.Driver, l.N)
		}
		fmt.Fprintf(&b, "| %s | %.1f | %s | %s | %s | %s (%s) | %s | %s | %s | %s |\n", label,
			l.perSecond(), ms(percentile(l.Total, 50)), ms(percentile(l.Total, 99)), ms(percentile(l.Intake, 99)),
			mib(ph.Memory.RSS), mib(ph.Memory.HWM), ph.History, perRun(ph.CPU.Server, l.N), perRun(ph.CPU.Worker, l.N), driver)
	}
	row("dispatcher: HTTP intake → eager start → local activities → SMTP + HTTP sinks", r.Dispatcher)
	if r.Baseline.Load.N > 0 {
		row(fmt.Sprintf("baseline: bare workflow, %d regular no-op activities, no eager start", p.Actions), r.Baseline)
	}
	if r.Reference.Load.N > 0 {
		row(fmt.Sprintf("reference: bare workflow, %d no-op local activities, eager start", p.Actions), r.Reference)
	}
	if r.Baseline.Load.N > 0 {
		fmt.Fprintf(&b, "\n**Throughput ratio dispatcher / baseline: %.2f×**\n", r.ratio())
	}
	b.WriteString("\n")
	b.WriteString("RSS: dispatcher row = the `dispatcher serve` process after the run; other rows = the bench process (worker + load generator).\n")
	for _, n := range r.Dispatcher.Notes {
		fmt.Fprintf(&b, "Dispatcher: %s.\n", n)
	}
	return b.String()
}

// summaryLine is the machine-readable last line of the output.
func (r report) summaryLine() string {
	l := r.Dispatcher.Load
	s := fmt.Sprintf("events_per_s=%.1f p50_ms=%d p99_ms=%d intake_p99_ms=%d",
		l.perSecond(), percentile(l.Total, 50).Milliseconds(), percentile(l.Total, 99).Milliseconds(), percentile(l.Intake, 99).Milliseconds())
	if b := r.Baseline.Load; b.N > 0 {
		s += fmt.Sprintf(" baseline_per_s=%.1f baseline_p99_ms=%d ratio=%.2f", b.perSecond(), percentile(b.Total, 99).Milliseconds(), r.ratio())
	}
	return s
}

func (h history) String() string {
	switch {
	case h.Samples == 0:
		return "—"
	case h.Min == h.Max:
		return fmt.Sprint(h.Min)
	}
	return fmt.Sprintf("%.1f (%d–%d)", h.Mean, h.Min, h.Max)
}

func actionKinds(n int) string {
	mails, tasks := (n+1)/2, n/2
	return fmt.Sprintf("%d mail + %d task", mails, tasks)
}

func awaitMeaning(await string) string {
	if await == "temporal" {
		return "the dispatch workflow closed (`GetWorkflow(...).Get`)"
	}
	return "every action of the event reached its sink"
}

func ms(d time.Duration) string {
	if d < 10*time.Millisecond {
		return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000)
	}
	return fmt.Sprintf("%d ms", d.Milliseconds())
}

func mib(n int64) string { return fmt.Sprintf("%d MiB", n>>20) }

func perRun(d time.Duration, n int) string {
	if n == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000/float64(n))
}

// Markers of the section of the page that the bench rewrites.
const (
	sectionStart = "<!-- bench:start -->"
	sectionEnd   = "<!-- bench:end -->"
)

// writeSection puts text between the marker lines of the page at path,
// keeping the rest of the page; a page without them gets the section
// appended. Only a line that is a marker alone counts, so a page may quote
// the markers in its prose.
func writeSection(path, text string) error {
	page, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	s := string(page)
	section := sectionStart + "\n" + text + sectionEnd
	i, j := markerLine(s, sectionStart, 0), -1
	if i >= 0 {
		j = markerLine(s, sectionEnd, i)
	}
	switch {
	case i >= 0 && j >= 0:
		s = s[:i] + section + s[j+len(sectionEnd):]
	case s == "":
		s = "# Benchmarks\n\n" + section + "\n"
	default:
		s = strings.TrimRight(s, "\n") + "\n\n" + section + "\n"
	}
	return os.WriteFile(path, []byte(s), 0o644)
}

// markerLine returns the offset of the first line at or after from that
// holds marker and nothing else, or -1.
func markerLine(s, marker string, from int) int {
	for off := from; off < len(s); {
		line, _, _ := strings.Cut(s[off:], "\n")
		if strings.TrimRight(line, " \r") == marker {
			return off
		}
		off += len(line) + 1
	}
	return -1
}
