package main

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"
)

// report is everything one run measured.
type report struct {
	Machine    machine
	Params     params
	Started    time.Time
	Finished   time.Time
	EndLoad    string     // load averages when the run ended
	Dispatcher phase      // dev server
	Baseline   phase      // dev server; zero with -skip-baseline
	Reference  phase      // dev server; zero with -reference=false
	AMQP       phase      // dev server, events through RabbitMQ; zero with -brokers=false
	NATS       phase      // dev server, events through NATS JetStream; zero with -brokers=false
	Ordered    phase      // dev server, ordered per key; zero with -ordered=false
	Production production // zero with -production=false
}

// throughput divides a's events/s by b's; 0 without both.
func throughput(a, b phase) float64 {
	if a.Load.N == 0 || b.Load.N == 0 {
		return 0
	}
	return a.Load.perSecond() / b.Load.perSecond()
}

// ratio is the dispatcher's throughput over the baseline's, on dev servers.
func (r report) ratio() float64 { return throughput(r.Dispatcher, r.Baseline) }

// refRatio is the dispatcher's throughput over the reference's, on dev servers.
func (r report) refRatio() float64 { return throughput(r.Dispatcher, r.Reference) }

// prodRatio is the production unit's throughput over the bare workflow's
// on the same Temporal server on PostgreSQL.
func (r report) prodRatio() float64 { return throughput(r.Production.Serve, r.Production.Bare) }

// cpuPerRun is the CPU time of a run: server, worker(s), PostgreSQL, the
// broker and the load generator with the sinks.
func (ph phase) cpuPerRun() time.Duration {
	if ph.Load.N == 0 {
		return 0
	}
	c := ph.CPU
	return (c.Server + c.Worker + c.Postgres + c.Broker + c.Driver) / time.Duration(ph.Load.N)
}

// cpuRatio is b's CPU per run over a's: on a machine that the CPU
// limits, the ratio of a's throughput over b's that it allows, steadier
// than the measured one when the load of the machine drifts between the
// rows. 0 without both.
func cpuRatio(a, b phase) float64 {
	ca, cb := a.cpuPerRun(), b.cpuPerRun()
	if ca == 0 || cb == 0 {
		return 0
	}
	return float64(cb) / float64(ca)
}

// prodCPURatio is the throughput ratio of the production unit over the
// bare workflow that their CPU per run allows.
func (r report) prodCPURatio() float64 { return cpuRatio(r.Production.Serve, r.Production.Bare) }

// prodP99Factor is the production unit's p99 over the dev-server
// dispatcher's; 0 without both.
func (r report) prodP99Factor() float64 {
	a, b := r.Production.Serve.Load, r.Dispatcher.Load
	if a.N == 0 || b.N == 0 {
		return 0
	}
	return float64(percentile(a.Total, 99)) / float64(percentile(b.Total, 99))
}

// dispatcherPhases are the rows that ran the dispatcher, in report order.
func (r report) dispatcherPhases() []phase {
	var out []phase
	pr := r.Production
	for _, ph := range append([]phase{r.Dispatcher, r.AMQP, r.NATS, r.Ordered, pr.Serve, pr.Split}, pr.Scale...) {
		if ph.Load.N > 0 {
			out = append(out, ph)
		}
	}
	return out
}

// markdown renders the report as the section docs/benchmarks.md keeps.
func (r report) markdown() string {
	var b strings.Builder
	m, p := r.Machine, r.Params
	fmt.Fprintf(&b, "Run of %s", r.Started.UTC().Format("2006-01-02 15:04 MST"))
	if !r.Finished.IsZero() {
		fmt.Fprintf(&b, ", %.1f minutes", r.Finished.Sub(r.Started).Minutes())
	}
	b.WriteString(".\n\n")
	fmt.Fprintf(&b, "- Machine: %d × %s, %s, %s, Temporal CLI %s; load average at start %s", m.CPUs, m.Model, m.Kernel, m.Go, m.Temporal, m.Load)
	if r.EndLoad != "" {
		fmt.Fprintf(&b, ", at the end %s", r.EndLoad)
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "- Parameters: %d events measured per row after %d warm-up, %d concurrent callers, %d actions per event (%s), done = %s\n",
		p.N, p.Warmup, p.Concurrency, p.Actions, actionKinds(p.Actions), awaitMeaning(p.Await))
	if r.Dispatcher.Load.N > 0 {
		fmt.Fprintf(&b, "- Dev-server rows: a fresh `temporal server start-dev` each (in memory, 1 history shard); store of the dispatcher row: %s\n", p.DB)
	}
	pr := r.Production
	if pr.Serve.Load.N > 0 {
		fmt.Fprintf(&b, "- Production layout: %s, %d history shards, one cluster for all its rows; the store in a PostgreSQL database of its own\n", pr.Server, pr.Shards)
	}

	b.WriteString("\n#### Targets\n\n| target | wanted | measured | |\n|---|---|---|---|\n")
	for _, t := range r.targets() {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", t.Name, t.Want, t.Got, t.verdict())
	}

	if r.Dispatcher.Load.N > 0 {
		r.devMarkdown(&b)
	}
	if pr.Serve.Load.N > 0 {
		r.productionMarkdown(&b)
	}
	r.notesMarkdown(&b)
	return b.String()
}

func (r report) devMarkdown(b *strings.Builder) {
	p := r.Params
	b.WriteString("\n#### Dev server\n\n")
	b.WriteString("| run | events/s | p50 end-to-end | p99 end-to-end | p99 intake | RSS (peak) | history events/run | CPU/run: server | CPU/run: worker | CPU/run: broker | CPU/run: load gen + sinks |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	row := func(label string, ph phase) {
		l := ph.Load
		fmt.Fprintf(b, "| %s | %.1f | %s | %s | %s | %s (%s) | %s | %s | %s | %s | %s |\n", label,
			l.perSecond(), ms(percentile(l.Total, 50)), ms(percentile(l.Total, 99)), ms(percentile(l.Intake, 99)),
			mib(ph.Memory.RSS), mib(ph.Memory.HWM), ph.History, perRun(ph.CPU.Server, l.N), perRun(ph.CPU.Worker, l.N),
			perRun(ph.CPU.Broker, l.N), driverCPU(ph))
	}
	row("dispatcher: HTTP intake → eager start → local activities → SMTP + HTTP sinks", r.Dispatcher)
	for _, c := range r.comparisons() {
		row(c.row, c.ph)
	}
	if r.Baseline.Load.N > 0 {
		row(fmt.Sprintf("baseline: bare workflow, %d regular no-op activities, no eager start", p.Actions), r.Baseline)
	}
	if r.Reference.Load.N > 0 {
		row(fmt.Sprintf("reference: bare workflow, %d no-op local activities, eager start", p.Actions), r.Reference)
	}
	if r.Baseline.Load.N > 0 {
		fmt.Fprintf(b, "\n**Throughput ratio dispatcher / baseline: %.2f×**", r.ratio())
		if r.Reference.Load.N > 0 {
			fmt.Fprintf(b, "; dispatcher / reference: %.2f×", r.refRatio())
		}
		b.WriteString("\n")
	}
	r.comparisonsMarkdown(b)
}

func (r report) notesMarkdown(b *strings.Builder) {
	b.WriteString("\nRSS: dispatcher rows = the dispatcher process with the highest peak, after the run; bare rows = the bench process (worker + load generator).\n")
	for _, ph := range r.dispatcherPhases() {
		for _, n := range ph.Notes {
			fmt.Fprintf(b, "%s: %s.\n", ph.label(), n)
		}
	}
	var loads []string
	for _, ph := range r.phases() {
		if ph.LoadAvg != "" {
			loads = append(loads, ph.label()+" "+ph.LoadAvg)
		}
	}
	if len(loads) > 0 {
		fmt.Fprintf(b, "Load average (1 minute) when each row's measured run began, the bench's own processes included: %s.\n", strings.Join(loads, "; "))
	}
	var servers []string
	for _, ph := range r.phases() {
		if ph.ServerMemory.HWM > 0 {
			servers = append(servers, fmt.Sprintf("%s %s (peak %s)", ph.label(), mib(ph.ServerMemory.RSS), mib(ph.ServerMemory.HWM)))
		}
	}
	if len(servers) > 0 {
		fmt.Fprintf(b, "Temporal server RSS after the row: %s.\n", strings.Join(servers, "; "))
	}
}

func (r report) productionMarkdown(b *strings.Builder) {
	pr, p := r.Production, r.Params
	b.WriteString("\n#### Production layout: Temporal server on PostgreSQL, store on PostgreSQL\n\n")
	b.WriteString("| run | events/s | p50 end-to-end | p99 end-to-end | p99 intake | RSS (peak) | history events/run | CPU/run: Temporal server | CPU/run: dispatcher | CPU/run: PostgreSQL | CPU/run: load gen + sinks |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	row := func(label string, ph phase) {
		l := ph.Load
		fmt.Fprintf(b, "| %s | %.1f | %s | %s | %s | %s (%s) | %s | %s | %s | %s | %s |\n", label,
			l.perSecond(), ms(percentile(l.Total, 50)), ms(percentile(l.Total, 99)), ms(percentile(l.Intake, 99)),
			mib(ph.Memory.RSS), mib(ph.Memory.HWM), ph.History, perRun(ph.CPU.Server, l.N), perRun(ph.CPU.Worker, l.N),
			perRun(ph.CPU.Postgres, l.N), driverCPU(ph))
	}
	row("production: `dispatcher serve` (intake + worker, eager start)", pr.Serve)
	if pr.Split.Load.N > 0 {
		row("`dispatcher api` + `dispatcher worker` (no eager start)", pr.Split)
	}
	if pr.Bare.Load.N > 0 {
		row(fmt.Sprintf("bare workflow, %d regular no-op activities, no eager start", p.Actions), pr.Bare)
		fmt.Fprintf(b, "\n**Throughput ratio production / bare workflow on the same server: %.2f×**; CPU per event, all processes, bare ÷ production: %.2f× (%s ÷ %s)",
			r.prodRatio(), r.prodCPURatio(), ms(pr.Bare.cpuPerRun()), ms(pr.Serve.cpuPerRun()))
		if f := r.prodP99Factor(); f > 0 {
			fmt.Fprintf(b, "; production p99 / dev-server dispatcher p99: %.2f×", f)
		}
		b.WriteString("\n")
	}

	b.WriteString("\nPostgreSQL per event of the measured runs (rows written = inserted + updated + deleted; transactions include reads, one per statement outside a transaction):\n\n")
	b.WriteString("| run | Temporal DB: rows written | transactions | visibility DB: rows written | transactions | store DB: rows written | transactions | WAL (whole server) | database growth: Temporal / visibility / store | connections after the run: Temporal / visibility / store (server: all of max) |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, x := range []struct {
		label string
		ph    phase
	}{{"production: `dispatcher serve`", pr.Serve}, {"`dispatcher api` + `dispatcher worker`", pr.Split}, {"bare workflow", pr.Bare}} {
		u := x.ph.DB
		if u == nil {
			continue
		}
		fmt.Fprintf(b, "| %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %s | %s / %s / %s | %s |\n", x.label,
			u.PerRun(u.DB[dbTemporal].Written()), u.PerRun(u.DB[dbTemporal].Commits),
			u.PerRun(u.DB[dbVisibility].Written()), u.PerRun(u.DB[dbVisibility].Commits),
			u.PerRun(u.DB[dbStore].Written()), u.PerRun(u.DB[dbStore].Commits),
			kib(u.PerRun(u.WALBytes)), kib(u.PerRun(u.DB[dbTemporal].Bytes)), kib(u.PerRun(u.DB[dbVisibility].Bytes)), kib(u.PerRun(u.DB[dbStore].Bytes)), x.ph.Conns)
	}

	r.tablesMarkdown(b)

	if len(pr.Scale) > 0 {
		fmt.Fprintf(b, "\n#### Scale-out: `dispatcher serve` × k on the same server and store, events round-robin across their intakes (%d events per row after %d warm-up, %d callers in all)\n\n",
			p.ScaleN, p.Warmup, p.Concurrency)
		one := pr.Scale[0]
		b.WriteString("| processes | events/s | ÷ first row | p50 end-to-end | p99 end-to-end | p99 intake | CPU/run: Temporal server | CPU/run: dispatchers | CPU/run: PostgreSQL | CPU/run: load gen + sinks | RSS peak per process | PostgreSQL connections after the run |\n")
		b.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, ph := range pr.Scale {
			l := ph.Load
			peaks := make([]string, len(ph.Memories))
			for i, m := range ph.Memories {
				peaks[i] = fmt.Sprint(m.HWM >> 20)
			}
			fmt.Fprintf(b, "| %d | %.1f | %.2f | %s | %s | %s | %s | %s | %s | %s | %s MiB | %s |\n", ph.Procs, l.perSecond(), throughput(ph, one),
				ms(percentile(l.Total, 50)), ms(percentile(l.Total, 99)), ms(percentile(l.Intake, 99)),
				perRun(ph.CPU.Server, l.N), perRun(ph.CPU.Worker, l.N), perRun(ph.CPU.Postgres, l.N), driverCPU(ph), strings.Join(peaks, ", "), ph.Conns)
		}
	}

	if o := pr.Open; o.Load.N > 0 {
		l := o.Load
		fmt.Fprintf(b, "\n#### Open loop: `dispatcher serve` at a fixed rate, half the production row's throughput\n\n")
		b.WriteString("| rate sent | events | achieved | p50 intake | p99 intake | p50 end-to-end | p99 end-to-end | most in flight | sends late by at most | CPU/run: Temporal server | CPU/run: dispatcher | CPU/run: PostgreSQL |\n")
		b.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		fmt.Fprintf(b, "| %.1f/s | %d | %.1f/s | %s | %s | %s | %s | %d | %s | %s | %s | %s |\n", o.Load.Rate, l.N, l.perSecond(),
			ms(percentile(l.Intake, 50)), ms(percentile(l.Intake, 99)), ms(percentile(l.Total, 50)), ms(percentile(l.Total, 99)),
			o.Load.MaxInFlight, ms(o.Load.MaxLate), perRun(o.CPU.Server, l.N), perRun(o.CPU.Worker, l.N), perRun(o.CPU.Postgres, l.N))
	}
}

// tablesMarkdown breaks the Temporal database's rows written down by
// table: where a run's writes go (history_node: history batches;
// executions, current_executions: mutable state; *_tasks: the queues,
// each task inserted and later deleted).
func (r report) tablesMarkdown(b *strings.Builder) {
	pr := r.Production
	var cols []string
	var us []*dbUse
	for _, c := range []struct {
		label string
		u     *dbUse
	}{{"`serve`", pr.Serve.DB}, {"`api` + `worker`", pr.Split.DB}, {"bare workflow", pr.Bare.DB}} {
		if c.u != nil {
			cols, us = append(cols, c.label), append(us, c.u)
		}
	}
	var tables []string
	for _, u := range us {
		for t := range u.Tables {
			if !slices.Contains(tables, t) {
				tables = append(tables, t)
			}
		}
	}
	if len(tables) == 0 {
		return
	}
	first := us[0]
	slices.SortFunc(tables, func(a, b string) int {
		if d := cmp.Compare(first.rowsOf(b)+first.Tables[b].Scans, first.rowsOf(a)+first.Tables[a].Scans); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	b.WriteString("\nTemporal database per event, by table: rows inserted / updated / deleted · scans (sequential + index: reads, and the lookups of updates and deletes):\n\n")
	b.WriteString("| table | " + strings.Join(cols, " | ") + " |\n|---|" + strings.Repeat("---:|", len(cols)) + "\n")
	for _, t := range tables {
		fmt.Fprintf(b, "| %s |", t)
		for _, u := range us {
			x := u.Tables[t]
			if x.Written() == 0 && x.Scans == 0 {
				b.WriteString(" — |")
				continue
			}
			fmt.Fprintf(b, " %.2f / %.2f / %.2f · %.2f |", u.PerRun(x.Inserted), u.PerRun(x.Updated), u.PerRun(x.Deleted), u.PerRun(x.Scans))
		}
		b.WriteString("\n")
	}
}

// String says how many connections each database had: Temporal /
// visibility / store (all of the server's of its max_connections).
func (c *pgConns) String() string {
	if c == nil {
		return "—"
	}
	return fmt.Sprintf("%d / %d / %d (%d of %d)", c.ByRole[dbTemporal], c.ByRole[dbVisibility], c.ByRole[dbStore], c.Total, c.Max)
}

// phases are every row measured, in the order they ran.
func (r report) phases() []phase {
	pr := r.Production
	var out []phase
	for _, ph := range append([]phase{r.Dispatcher, r.Baseline, r.Reference, r.AMQP, r.NATS, r.Ordered, pr.Serve, pr.Bare, pr.Split}, pr.Scale...) {
		if ph.Load.N > 0 {
			out = append(out, ph)
		}
	}
	return out
}

// label names a row in notes.
func (ph phase) label() string {
	switch {
	case ph.Name == "dispatcher":
		return "dispatcher (dev server)"
	case ph.Name == "baseline" || ph.Name == "reference" || ph.Name == "ordered":
		return ph.Name + " (dev server)"
	case ph.Name == "amqp" || ph.Name == "nats":
		return strings.ToUpper(ph.Name) + " intake (dev server)"
	case ph.Name == "prod":
		return "production serve"
	case ph.Name == "split":
		return "api + worker"
	case ph.Name == "bare":
		return "bare workflow (PostgreSQL)"
	case strings.HasPrefix(ph.Name, "scale-"):
		return fmt.Sprintf("scale-out ×%d", ph.Procs)
	}
	return ph.Name
}

// summaryLine is the machine-readable last line of the output: the
// figures of the dev-server dispatcher row first, as always, then the
// comparisons and the production layout's.
func (r report) summaryLine() string {
	var f []string
	if l := r.Dispatcher.Load; l.N > 0 {
		f = append(f, fmt.Sprintf("events_per_s=%.1f p50_ms=%d p99_ms=%d intake_p99_ms=%d",
			l.perSecond(), percentile(l.Total, 50).Milliseconds(), percentile(l.Total, 99).Milliseconds(), percentile(l.Intake, 99).Milliseconds()))
	}
	if b := r.Baseline.Load; b.N > 0 {
		f = append(f, fmt.Sprintf("baseline_per_s=%.1f baseline_p99_ms=%d ratio=%.2f", b.perSecond(), percentile(b.Total, 99).Milliseconds(), r.ratio()))
	}
	if ref := r.Reference.Load; ref.N > 0 {
		f = append(f, fmt.Sprintf("reference_per_s=%.1f ref_ratio=%.2f", ref.perSecond(), r.refRatio()))
	}
	for _, c := range r.comparisons() {
		f = append(f, c.summary())
	}
	pr := r.Production
	if s := pr.Serve.Load; s.N > 0 {
		f = append(f, fmt.Sprintf("prod_per_s=%.1f prod_p99_ms=%d prod_intake_p99_ms=%d", s.perSecond(), percentile(s.Total, 99).Milliseconds(), percentile(s.Intake, 99).Milliseconds()))
		if pr.Bare.Load.N > 0 {
			f = append(f, fmt.Sprintf("bare_pg_per_s=%.1f prod_ratio=%.2f prod_cpu_ratio=%.2f", pr.Bare.Load.perSecond(), r.prodRatio(), r.prodCPURatio()))
		}
		if r.Dispatcher.Load.N > 0 {
			f = append(f, fmt.Sprintf("prod_p99_factor=%.2f", r.prodP99Factor()))
		}
	}
	if s := pr.Split.Load; s.N > 0 {
		f = append(f, fmt.Sprintf("split_per_s=%.1f", s.perSecond()))
	}
	for _, ph := range pr.Scale {
		f = append(f, fmt.Sprintf("scale%d_per_s=%.1f", ph.Procs, ph.Load.perSecond()))
	}
	if o := pr.Open.Load; o.N > 0 {
		f = append(f, fmt.Sprintf("open_rate=%.1f open_intake_p50_ms=%.1f open_intake_p99_ms=%.1f",
			o.Rate, msf(percentile(o.Intake, 50)), msf(percentile(o.Intake, 99))))
	}
	if u := pr.Serve.DB; u != nil {
		f = append(f, fmt.Sprintf("vis_writes=%.2f", u.PerRun(u.DB[dbVisibility].Written())))
	}
	if h := maxHistory(r.dispatcherPhases()); h > 0 {
		f = append(f, fmt.Sprintf("history_max=%d", h))
	}
	if m := maxPeak(r.dispatcherPhases()); m > 0 {
		f = append(f, fmt.Sprintf("worker_peak_mb=%.0f", float64(m)/1e6))
	}
	ts := r.targets()
	met := 0
	for _, t := range ts {
		if t.Met {
			met++
		}
	}
	f = append(f, fmt.Sprintf("targets_met=%d/%d", met, len(ts)))
	return strings.Join(f, " ")
}

func maxHistory(phs []phase) int {
	h := 0
	for _, ph := range phs {
		h = max(h, ph.History.Max)
	}
	return h
}

// maxPeak is the highest VmHWM of any dispatcher process of phs.
func maxPeak(phs []phase) int64 {
	var m int64
	for _, ph := range phs {
		m = max(m, ph.Memory.HWM)
		for _, x := range ph.Memories {
			m = max(m, x.HWM)
		}
	}
	return m
}

func driverCPU(ph phase) string {
	if !ph.SeparateDriver {
		return "(in worker)"
	}
	return perRun(ph.CPU.Driver, ph.Load.N)
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
		return fmt.Sprintf("%.1f ms", msf(d))
	}
	return fmt.Sprintf("%d ms", d.Milliseconds())
}

func msf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func mib(n int64) string { return fmt.Sprintf("%d MiB", n>>20) }

func kib(bytes float64) string {
	if bytes <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f KiB", bytes/1024)
}

func perRun(d time.Duration, n int) string {
	if n == 0 || d == 0 {
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
