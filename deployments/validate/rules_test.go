package validate

import (
	"bytes"
	"flag"
	"io"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

var update = flag.Bool("update", false, "rewrite deployments/kubernetes/monitoring/prometheusrule.yaml from deployments/prometheus/alerts.yaml")

var promql = parser.NewParser(parser.Options{})

// alertsFile and ruleFile are the alert rules and their Prometheus Operator
// copy.
var (
	alertsFile = []string{"deployments", "prometheus", "alerts.yaml"}
	ruleFile   = []string{"deployments", "kubernetes", "monitoring", "prometheusrule.yaml"}
)

// loadAlerts parses the alert rules the way Prometheus (and `promtool
// check rules`) does: unknown fields, bad PromQL and bad templates fail.
func loadAlerts(t *testing.T) *rulefmt.RuleGroups {
	t.Helper()
	groups, errs := rulefmt.Parse(readFile(t, alertsFile...), false, model.UTF8Validation, promql, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, err := range errs {
		t.Error(err)
	}
	if len(errs) > 0 {
		t.FailNow()
	}
	return groups
}

// metricNames returns the metric names an expression selects.
func metricNames(t *testing.T, expr string) []string {
	t.Helper()
	e, err := promql.ParseExpr(expr)
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	var out []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok && !slices.Contains(out, vs.Name) {
			out = append(out, vs.Name)
		}
		return nil
	})
	return out
}

// ownTemporalSeries checks that expr selects the Temporal SDK's series
// (temporal_*) of the dispatcher's processes only, by their job: the
// Temporal server exports the same names for its own workers (7,020
// activity slots of a dev server beside the dispatcher's 1,020), and the
// workers of a temporal function the same schedule-to-start histograms.
// Before, a panel read 13 % with every dispatcher slot busy.
func ownTemporalSeries(t *testing.T, where, expr string) {
	t.Helper()
	e, err := promql.ParseExpr(expr)
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok && strings.HasPrefix(vs.Name, "temporal_") &&
			!slices.ContainsFunc(vs.LabelMatchers, func(m *labels.Matcher) bool { return m.Name == "job" }) {
			t.Errorf("%s: %s is not held to the dispatcher's jobs: {job=~\"dispatcher|dispatcher-worker\"}", where, vs.Name)
		}
		return nil
	})
}

// serviceMetric is how cmd/dispatcher/observability_test.go finds metric
// names (a regular expression, to keep the PromQL parser out of the
// service's go.mod); serviceMetricsMatch checks it sees what the parser sees.
var serviceMetric = regexp.MustCompile(`\b(?:dispatcher|temporal)_[a-z0-9_]+`)

func serviceMetricsMatch(t *testing.T, where, expr string) {
	t.Helper()
	ownTemporalSeries(t, where, expr)
	var parsed []string
	for _, n := range metricNames(t, expr) {
		if serviceMetric.MatchString(n) {
			parsed = append(parsed, n)
		}
	}
	var found []string
	for _, n := range serviceMetric.FindAllString(expr, -1) {
		if !slices.Contains(found, n) {
			found = append(found, n)
		}
	}
	slices.Sort(parsed)
	slices.Sort(found)
	if !slices.Equal(parsed, found) {
		t.Errorf("%s: the observability test's regexp finds %v, the PromQL parser %v:\n%s", where, found, parsed, expr)
	}
}

// TestAlertRules: the rules parse, and each one is complete: a duration, a
// severity, a summary, a description and a runbook section of its own name
// in docs/operations.md.
func TestAlertRules(t *testing.T) {
	groups := loadAlerts(t)
	docs := string(readFile(t, "docs", "operations.md"))
	var alerts []string
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("group %s: recording rule %s: this file holds alerts only", g.Name, r.Record)
				continue
			}
			if slices.Contains(alerts, r.Alert) {
				t.Errorf("alert %s defined twice", r.Alert)
			}
			alerts = append(alerts, r.Alert)
			if r.For < model.Duration(time.Minute) {
				t.Errorf("%s: `for` is %v; give it at least 1m so one bad scrape does not page", r.Alert, r.For)
			}
			if s := r.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("%s: severity %q, want warning or critical", r.Alert, s)
			}
			for _, a := range []string{"summary", "description", "runbook_url"} {
				if r.Annotations[a] == "" {
					t.Errorf("%s: no %s annotation", r.Alert, a)
				}
			}
			anchor := "#" + strings.ToLower(r.Alert)
			if !strings.HasSuffix(r.Annotations["runbook_url"], "docs/operations.md"+anchor) {
				t.Errorf("%s: runbook_url %q, want one ending in docs/operations.md%s", r.Alert, r.Annotations["runbook_url"], anchor)
			}
			if !regexp.MustCompile(`(?m)^#{2,4} ` + regexp.QuoteMeta(r.Alert) + `\s*$`).MatchString(docs) {
				t.Errorf("%s: docs/operations.md has no section headed %q", r.Alert, r.Alert)
			}
			serviceMetricsMatch(t, r.Alert, r.Expr)
		}
	}
	// The signals, each covered by a rule.
	var used []string
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			used = append(used, metricNames(t, r.Expr)...)
		}
	}
	for _, m := range []string{
		"dispatcher_dispatches_total",                                     // failed dispatch rate
		"dispatcher_oldest_pending_dispatch_age_seconds",                  // oldest pending dispatch
		"dispatcher_action_duration_seconds_bucket",                       // action latency p99
		"dispatcher_http_requests_total",                                  // intake errors
		"temporal_worker_task_slots_used",                                 // task-slot saturation
		"temporal_worker_task_slots_available",                            //
		"temporal_activity_schedule_to_start_latency_seconds_bucket",      // schedule-to-start
		"temporal_workflow_task_schedule_to_start_latency_seconds_bucket", //
	} {
		if !slices.Contains(used, m) {
			t.Errorf("no alert rule uses %s", m)
		}
	}
}

// TestAlertRulesRejectMistakes proves the parser used above fails on what
// promtool would reject.
func TestAlertRulesRejectMistakes(t *testing.T) {
	for name, doc := range map[string]string{
		"bad PromQL":    "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: sum(rate(x[5m])\n",
		"unknown field": "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n    fore: 5m\n",
		"bad template":  "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n    annotations:\n      summary: '{{ $value'\n",
	} {
		if _, errs := rulefmt.Parse([]byte(doc), false, model.UTF8Validation, promql, slog.New(slog.NewTextHandler(io.Discard, nil))); len(errs) == 0 {
			t.Errorf("%s: parsed without error", name)
		}
	}
}

// renderPrometheusRule wraps the groups of alerts.yaml, comments and all,
// into the PrometheusRule object.
func renderPrometheusRule(alerts []byte) []byte {
	_, groups, ok := bytes.Cut(alerts, []byte("\ngroups:\n"))
	if !ok {
		panic("alerts.yaml has no top-level groups:")
	}
	var b bytes.Buffer
	b.WriteString(`# GENERATED from deployments/prometheus/alerts.yaml, the one source of the
# alert rules: edit that file, then run
#   cd deployments/validate && go test ./... -run PrometheusRule -update
# deployments/validate fails while the two differ.
#
# Your Prometheus must select this object: kube-prometheus-stack, for one,
# only picks PrometheusRules labelled ` + "`release: <its release name>`" + ` unless
# prometheus.prometheusSpec.ruleSelectorNilUsesHelmValues=false.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: dispatcher
  labels:
    app.kubernetes.io/name: dispatcher
    app.kubernetes.io/part-of: dispatcher
spec:
  groups:
`)
	for _, line := range strings.SplitAfter(string(groups), "\n") {
		if strings.TrimSpace(line) == "" {
			b.WriteString(line)
			continue
		}
		b.WriteString("  " + line)
	}
	return b.Bytes()
}

// TestPrometheusRuleMatchesAlerts: the Kubernetes copy of the rules is
// alerts.yaml wrapped, byte for byte and rule for rule.
func TestPrometheusRuleMatchesAlerts(t *testing.T) {
	want := renderPrometheusRule(readFile(t, alertsFile...))
	if *update {
		if err := os.WriteFile(path(ruleFile...), want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got := readFile(t, ruleFile...)
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from %s wrapped: run\n  cd deployments/validate && go test ./... -run PrometheusRule -update",
			strings.Join(ruleFile, "/"), strings.Join(alertsFile, "/"))
	}

	o, err := decode(strings.Join(ruleFile, "/"), got)
	if err != nil {
		t.Fatal(err)
	}
	pr := o.obj.(*monitoringv1.PrometheusRule)
	groups := loadAlerts(t)
	if len(pr.Spec.Groups) != len(groups.Groups) {
		t.Fatalf("PrometheusRule has %d groups, alerts.yaml %d", len(pr.Spec.Groups), len(groups.Groups))
	}
	for i, g := range groups.Groups {
		pg := pr.Spec.Groups[i]
		if pg.Name != g.Name || len(pg.Rules) != len(g.Rules) {
			t.Fatalf("group %d: %s with %d rules vs %s with %d", i, pg.Name, len(pg.Rules), g.Name, len(g.Rules))
		}
		for j, r := range g.Rules {
			pr := pg.Rules[j]
			if pr.Alert != r.Alert || pr.Expr.String() != r.Expr || pr.For == nil || string(*pr.For) != r.For.String() ||
				!mapsEqual(pr.Labels, r.Labels) || !mapsEqual(pr.Annotations, r.Annotations) {
				t.Errorf("rule %s differs between the PrometheusRule and alerts.yaml", r.Alert)
			}
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
