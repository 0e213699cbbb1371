package main

import (
	"fmt"
	"strings"
)

// comparison is a dev-server row measured against the HTTP dispatcher
// row of the same run: the same dispatcher, its events reaching it
// another way (a broker) or ordered per key.
type comparison struct {
	key  string // prefix of its fields in the summary line
	row  string // its label in the table
	vs   string // what it is compared as, "AMQP / HTTP"
	ph   phase
	base phase // the HTTP row
}

// comparisons are the rows measured against the HTTP row, in report
// order: those that ran.
func (r report) comparisons() []comparison {
	keys := r.Params.OrderedKeys
	all := []comparison{
		{key: "amqp", row: "AMQP intake: RabbitMQ (publisher confirms) → serve → eager start → local activities → sinks", vs: "AMQP / HTTP", ph: r.AMQP},
		{key: "nats", row: "NATS intake: JetStream (publish acknowledged) → serve → eager start → local activities → sinks", vs: "NATS / HTTP", ph: r.NATS},
		{key: "ordered", row: fmt.Sprintf("ordered: HTTP intake, ordering by `%s` over %d keys → Sequence → child dispatch → sinks", orderingKey, keys),
			vs: fmt.Sprintf("ordered (%d keys) / unordered", keys), ph: r.Ordered},
	}
	var out []comparison
	for _, c := range all {
		if c.ph.Load.N > 0 {
			c.base = r.Dispatcher
			out = append(out, c)
		}
	}
	return out
}

// ratio is the row's throughput over the HTTP row's; 0 without both.
func (c comparison) ratio() float64 { return throughput(c.ph, c.base) }

// cpuRatio is the ratio of the row's throughput over the HTTP row's that
// their CPU per event, every process counted, allows; 0 without both.
func (c comparison) cpuRatio() float64 { return cpuRatio(c.ph, c.base) }

// summary is the row's fields of the summary line: events/s, p50 and p99
// end to end, and, beside an HTTP row, the ratios.
func (c comparison) summary() string {
	l := c.ph.Load
	s := fmt.Sprintf("%[1]s_per_s=%.1[2]f %[1]s_p50_ms=%[3]d %[1]s_p99_ms=%[4]d", c.key,
		l.perSecond(), percentile(l.Total, 50).Milliseconds(), percentile(l.Total, 99).Milliseconds())
	if c.ratio() > 0 {
		s += fmt.Sprintf(" %[1]s_ratio=%.2[2]f", c.key, c.ratio())
	}
	if c.cpuRatio() > 0 {
		s += fmt.Sprintf(" %[1]s_cpu_ratio=%.2[2]f", c.key, c.cpuRatio())
	}
	return s
}

// comparisonsMarkdown says what each compared row costs against the
// HTTP row.
func (r report) comparisonsMarkdown(b *strings.Builder) {
	cs := r.comparisons()
	if len(cs) == 0 || r.Dispatcher.Load.N == 0 {
		return
	}
	b.WriteString("\nAgainst the HTTP dispatcher row of this run (throughput; the throughput the CPU per event of every process allows, " +
		"the broker's included; p99 end to end):\n\n")
	for _, c := range cs {
		fmt.Fprintf(b, "- **%s: %.2f×**; by CPU %.2f× (%s against %s per event); p99 %s against %s\n", c.vs, c.ratio(), c.cpuRatio(),
			ms(c.ph.cpuPerRun()), ms(c.base.cpuPerRun()), ms(percentile(c.ph.Load.Total, 99)), ms(percentile(c.base.Load.Total, 99)))
	}
}
