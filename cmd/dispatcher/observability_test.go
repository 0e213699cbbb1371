package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/dispatcherhq/dispatcher/internal/testenv"
)

// queriedMetric finds the service's metric names in a PromQL expression.
// deployments/validate checks, with the real PromQL parser, that it finds
// exactly the dispatcher_ and temporal_ names of every rule and panel (the
// parser would drag Prometheus into this module's go.mod).
var queriedMetric = regexp.MustCompile(`\b(?:dispatcher|temporal)_[a-z0-9_]+`)

// queriedMetrics returns the service metric names the alert rules and the
// Grafana dashboard query, each with where it is used.
func queriedMetrics(t *testing.T) map[string][]string {
	t.Helper()
	used := map[string][]string{}
	add := func(where, expr string) {
		for _, name := range queriedMetric.FindAllString(expr, -1) {
			if !slices.Contains(used[name], where) {
				used[name] = append(used[name], where)
			}
		}
	}

	raw, err := os.ReadFile(filepath.Join(testenv.Root(), "deployments", "prometheus", "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(raw, &rules); err != nil {
		t.Fatalf("alerts.yaml: %v", err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			add("alert "+r.Alert, r.Expr)
		}
	}

	raw, err = os.ReadFile(filepath.Join(testenv.Root(), "deployments", "grafana", "dispatcher.json"))
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
		Panels []panel `json:"panels"`
	}
	var dash struct {
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dispatcher.json: %v", err)
	}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				add("panel "+p.Title, tg.Expr)
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)

	if len(used) < 5 {
		t.Fatalf("found only %d metric names in the alert rules and the dashboard: %v", len(used), used)
	}
	return used
}

// exported checks name against the scraped families: a _bucket series
// needs a histogram, _sum and _count a histogram or a summary, any other
// name a family of exactly that name (counters are exposed with _total).
// brokerMetrics starts the names of the broker sources' metrics.
const brokerMetrics = "dispatcher_broker_"

// missingMetrics names those of want, the metrics the alert rules and the
// dashboard query (queriedMetrics), that families lack.
func missingMetrics(families map[string]*dto.MetricFamily, want map[string][]string) []string {
	var missing []string
	for _, name := range slices.Sorted(maps.Keys(want)) {
		if err := exported(families, name); err != nil {
			missing = append(missing, fmt.Sprintf("%s (%v; used by %s)", name, err, strings.Join(want[name], ", ")))
		}
	}
	return missing
}

func exported(families map[string]*dto.MetricFamily, name string) error {
	if _, ok := families[name]; ok {
		return nil
	}
	for suffix, types := range map[string][]dto.MetricType{
		"_bucket": {dto.MetricType_HISTOGRAM},
		"_sum":    {dto.MetricType_HISTOGRAM, dto.MetricType_SUMMARY},
		"_count":  {dto.MetricType_HISTOGRAM, dto.MetricType_SUMMARY},
	} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		f, ok := families[base]
		if !ok {
			break
		}
		if !slices.Contains(types, f.GetType()) {
			return fmt.Errorf("%s is exported as a %s, so it has no %s series", base, f.GetType(), suffix)
		}
		return nil
	}
	return fmt.Errorf("not exported")
}

// getMetrics gets /metrics of the process at url with e2eMetricsToken.
func getMetrics(url string) (*http.Response, error) {
	req, err := http.NewRequest("GET", url+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+e2eMetricsToken)
	return http.DefaultClient.Do(req)
}

func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	res, err := getMetrics(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return families
}

// TestObservabilityMetricsExported runs the real binary, drives one
// succeeding and one failing dispatch (and a scheduled one, one stuck
// retrying, and a rejected event) through it, then checks that every metric
// the alert rules and the Grafana dashboard query is on its /metrics. A
// rule or panel on a metric the service does not export would never fire
// or always show "No data".
func TestObservabilityMetricsExported(t *testing.T) {
	want := queriedMetrics(t)
	// Those of the broker sources, which this system has none of, are
	// checked where one runs (brokerRun.outage).
	maps.DeleteFunc(want, func(name string, _ []string) bool { return strings.HasPrefix(name, brokerMetrics) })
	s := startSystem(t)

	ok, flaky, broken := &functionSink{}, &functionSink{statuses: []int{503}}, &functionSink{statuses: []int{404}}
	stuck := &functionSink{statuses: []int{503, 503, 503, 503}}
	for name, h := range map[string]http.Handler{"ok": ok, "flaky": flaky, "broken": broken, "stuck": stuck} {
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		s.call("POST", "/functions/v1", map[string]any{"name": name, "url": srv.URL}, 200)
	}
	tmpl := s.call("POST", "/templates/v1", map[string]any{"name": "hello", "subject": "Hello", "text": "Hello"}, 200)["id"].(string)
	fast := map[string]any{"initialIntervalMs": 100, "backoffCoefficient": 1, "maximumAttempts": 3}
	s.call("POST", "/dispatchers/v1", map[string]any{
		"name": "obs-ok", "eventType": "obs_ok",
		"actions": []any{
			map[string]any{"type": "mail", "name": "mail", "templateId": tmpl, "recipients": map[string]any{"to": []string{"a@example.com"}}},
			map[string]any{"type": "task", "name": "ok", "functionName": "ok"},
			// Fails its first, local attempt: the retry is a regular
			// activity, which is what the schedule-to-start metrics time.
			map[string]any{"type": "task", "name": "flaky", "functionName": "flaky", "retryPolicy": fast},
		},
	}, 200)
	s.call("POST", "/dispatchers/v1", map[string]any{
		"name": "obs-fail", "eventType": "obs_fail",
		"actions": []any{map[string]any{"type": "task", "name": "broken", "functionName": "broken"}},
	}, 200)
	s.call("POST", "/dispatchers/v1", map[string]any{
		"name": "obs-later", "eventType": "obs_later",
		"actions": []any{map[string]any{"type": "task", "name": "later", "functionName": "ok",
			"startTimestamp": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}},
	}, 200)

	// Retrying, with a minute between attempts: a pending dispatch.
	s.call("POST", "/dispatchers/v1", map[string]any{
		"name": "obs-stuck", "eventType": "obs_stuck",
		"actions": []any{map[string]any{"type": "task", "name": "stuck", "functionName": "stuck",
			"retryPolicy": map[string]any{"initialIntervalMs": 60000, "maximumAttempts": 3}}},
	}, 200)
	s.call("POST", "/events/v1", map[string]any{"id": "obs-5", "type": "obs_stuck", "content": map[string]any{}}, 202)

	// A gated function whose first call fails and opens its circuit for
	// an hour: its retry waits for a permit (the flow control metrics).
	tripping := httptest.NewServer(&functionSink{statuses: []int{503}})
	t.Cleanup(tripping.Close)
	s.call("POST", "/functions/v1", map[string]any{"name": "tripping", "url": tripping.URL,
		"circuitBreaker": map[string]any{"failures": 1, "probeIntervalSeconds": 3600}}, 200)
	s.call("POST", "/dispatchers/v1", map[string]any{
		"name": "obs-tripping", "eventType": "obs_tripping",
		"actions": []any{map[string]any{"type": "task", "name": "tripping", "functionName": "tripping",
			"retryPolicy": map[string]any{"initialIntervalMs": 100, "maximumAttempts": 3}}},
	}, 200)
	s.call("POST", "/events/v1", map[string]any{"id": "obs-6", "type": "obs_tripping", "content": map[string]any{}}, 202)

	good := s.call("POST", "/events/v1", map[string]any{"id": "obs-1", "type": "obs_ok", "content": map[string]any{}}, 202)
	if res, failed := s.result(good["workflowId"].(string), good["runId"].(string)); failed {
		t.Fatalf("the succeeding dispatch failed: %+v", res.Outcomes)
	}
	bad := s.call("POST", "/events/v1", map[string]any{"id": "obs-2", "type": "obs_fail", "content": map[string]any{}}, 202)
	if res, failed := s.result(bad["workflowId"].(string), bad["runId"].(string)); !failed {
		t.Fatalf("the failing dispatch completed: %+v", res.Outcomes)
	}
	s.call("POST", "/events/v1", map[string]any{"id": "obs-3", "type": "obs_later", "content": map[string]any{}}, 202)
	s.call("POST", "/events/v1", map[string]any{"id": "obs-4", "content": map[string]any{}}, 400) // no type: an intake error

	// Some metrics are collected periodically: scrape until all are there,
	// or name the missing ones.
	testenv.Eventually(t, 30*time.Second, func() string {
		missing := missingMetrics(scrape(t, s.url), want)
		if len(missing) == 0 {
			return ""
		}
		return "the alert rules and the dashboard query metrics the service does not export:\n  " + strings.Join(missing, "\n  ")
	})
}
