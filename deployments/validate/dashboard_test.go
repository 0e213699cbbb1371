package validate

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// dashboard is the part of Grafana's dashboard JSON model checked here.
type dashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []variable `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	GridPos    struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		RefID      string      `json:"refId"`
		Expr       string      `json:"expr"`
		Datasource *datasource `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

type variable struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Query string `json:"query"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// grafanaVars replaces Grafana's variables so an expression parses as PromQL.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(readFile(t, "deployments", "grafana", "dispatcher.json")))
	var d dashboard
	if err := dec.Decode(&d); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestDashboard: every panel queries Prometheus through the dashboard's
// data-source variable with valid PromQL, panels do not overlap, and the
// issue's signals all have a panel.
func TestDashboard(t *testing.T) {
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Error("dashboard needs a uid and a title (provisioning and links use the uid)")
	}
	if !slices.Contains(d.Templating.List, variable{Name: "datasource", Type: "datasource", Query: "prometheus"}) {
		t.Fatal("no `datasource` variable of type datasource/prometheus: the dashboard would be tied to one Grafana's data-source uid")
	}

	var panels []panel
	for _, p := range d.Panels {
		panels = append(panels, p)
		panels = append(panels, p.Panels...)
	}
	ids := map[int]bool{}
	var used []string
	var cells [][2]int
	for _, p := range panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, g)
		}
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				if slices.Contains(cells, [2]int{x, y}) {
					t.Errorf("panel %q overlaps another at %d,%d", p.Title, x, y)
				}
				cells = append(cells, [2]int{x, y})
			}
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" || p.Datasource.Type != "prometheus" {
			t.Errorf("panel %q: datasource %+v, want prometheus ${datasource}", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q query %s: datasource %+v, want ${datasource}", p.Title, tg.RefID, tg.Datasource)
			}
			expr := grafanaVars.Replace(tg.Expr)
			used = append(used, metricNames(t, expr)...)
			serviceMetricsMatch(t, p.Title, expr)
		}
	}
	for _, m := range []string{
		"dispatcher_dispatches_total",                                     // failed dispatch rate
		"dispatcher_oldest_pending_dispatch_age_seconds",                  // oldest pending dispatch
		"dispatcher_action_duration_seconds_bucket",                       // action latency p99 by type
		"dispatcher_action_outcomes_total",                                // action outcomes
		"dispatcher_http_requests_total",                                  // intake errors
		"dispatcher_events_received_total",                                // intake volume
		"temporal_worker_task_slots_used",                                 // task-slot saturation
		"temporal_worker_task_slots_available",                            //
		"temporal_activity_schedule_to_start_latency_seconds_bucket",      // schedule-to-start
		"temporal_workflow_task_schedule_to_start_latency_seconds_bucket", //
	} {
		if !slices.Contains(used, m) {
			t.Errorf("no dashboard panel uses %s", m)
		}
	}
}
