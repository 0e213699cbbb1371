package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/wire"
)

// TestProgressLine: the line replay --follow prints for a bulk replay. One
// that ended with its progress unknown says so; before, its closing line
// read "0/0 processed", as if it had replayed nothing.
func TestProgressLine(t *testing.T) {
	item := func(status string) wire.BulkReplayItem {
		return wire.BulkReplayItem{ID: "bulk-replay-1", Status: status}
	}
	some := wire.Progress{Matched: 3, Processed: 2, Replayed: 2, Succeeded: 1, Pending: 1}
	for _, tc := range []struct {
		name string
		b    wire.BulkReplay
		want string
	}{
		{"finding", wire.BulkReplay{BulkReplayItem: item("running")}, "finding the dispatches to replay"},
		{"running", wire.BulkReplay{BulkReplayItem: item("running"), Progress: some},
			"2/3 processed: 2 replayed, 0 skipped; 1 succeeded, 0 failed, 1 pending"},
		{"paused", wire.BulkReplay{BulkReplayItem: item("running"), Progress: wire.Progress{Matched: 3, Paused: true}},
			"paused (resume it: dispatcher replay --resume bulk-replay-1): 0/3 processed: 0 replayed, 0 skipped; 0 succeeded, 0 failed, 0 pending"},
		{"ended, unknown", wire.BulkReplay{BulkReplayItem: item("failed"), ProgressUnknown: true},
			"its progress is unknown: no worker answered for it"},
		{"ended", wire.BulkReplay{BulkReplayItem: item("failed"), Progress: some},
			"2/3 processed: 2 replayed, 0 skipped; 1 succeeded, 0 failed, 1 pending"},
	} {
		if got := progressLine(tc.b); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// replayAPI runs the replay command with args against the API h serves
// and returns what it printed and its error, which main prints on stderr
// with exit status 1.
func replayAPI(t *testing.T, ctx context.Context, h http.HandlerFunc, args ...string) (string, error) {
	t.Helper()
	api := httptest.NewServer(h)
	defer api.Close()
	var stdout, stderr strings.Builder
	err := run(ctx, append([]string{"replay"}, args...), func(k string) string {
		return map[string]string{"DISPATCHER_URL": api.URL}[k]
	}, &stdout, &stderr)
	if stderr.Len() > 0 {
		t.Errorf("replay %s wrote to stderr: %s", strings.Join(args, " "), stderr.String())
	}
	return stdout.String(), err
}

// TestReplayFollowInterrupted: Ctrl-C while following a bulk replay stops
// following with an error, which main says on stderr, exiting 1: that the
// bulk replay runs on, and how to follow it again or cancel it. Before,
// it said so on stdout and exited 0, and a script took it for done.
func TestReplayFollowInterrupted(t *testing.T) {
	for _, args := range [][]string{
		{"--follow", "bulk-replay-1"},
		{"--status", "failed", "--json"}, // started, then followed
	} {
		ctx, interrupt := context.WithCancel(t.Context())
		out, err := replayAPI(t, ctx, func(w http.ResponseWriter, r *http.Request) {
			if r.Method == "POST" {
				w.WriteHeader(http.StatusAccepted)
				_, _ = io.WriteString(w, `{"id":"bulk-replay-1","status":"running","progress":{}}`)
				return
			}
			// Ctrl-C as it follows, before the answer: answered at once,
			// the progress could be read and said on stderr before the
			// interrupt was seen (it failed CI so).
			interrupt()
			<-r.Context().Done()
		}, append(args, "--poll", "1h")...)
		interrupt()
		want := "stopped following; bulk replay bulk-replay-1 runs on\n" +
			"  follow it: dispatcher replay --follow bulk-replay-1\n" +
			"  cancel it: dispatcher replay --cancel bulk-replay-1"
		if err == nil || err.Error() != want {
			t.Errorf("replay %s interrupted: %v; want the error\n%s", strings.Join(args, " "), err, want)
		}
		if strings.Contains(out, "runs on") {
			t.Errorf("replay %s interrupted printed on stdout:\n%s", strings.Join(args, " "), out)
		}
	}
}

// TestReplayListSaysPaused: replay --list shows a paused bulk replay as
// paused. Before, it showed it running, as the API's status says.
func TestReplayListSaysPaused(t *testing.T) {
	out, err := replayAPI(t, t.Context(), func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"data":[{"id":"bulk-replay-1","status":"running","paused":true,"startTimestamp":1767225600000},`+
			`{"id":"bulk-replay-2","status":"running","startTimestamp":1767225600000}]}`)
	}, "--list")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`bulk-replay-1\s+paused\s`, `bulk-replay-2\s+running\s`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("replay --list printed\n%s\nwant a line matching %s", out, want)
		}
	}
}

// TestReplayNothingMatches: a bulk replay whose filters match nothing
// says so, naming them, and exits 0: nothing to do is not a failure.
// Another refusal (409) is still an error.
func TestReplayNothingMatches(t *testing.T) {
	nothing := dispatcher.NothingToReplay + ` (status "failed", dispatcherId "5f2b3c4d5e6f708192a3b4c5"); no bulk replay was started`
	for _, tt := range []struct {
		message string
		json    bool
	}{
		{nothing, false},
		{nothing, true},
		{"dispatcherId: dispatcher 5f2b3c4d5e6f708192a3b4c5 is still paused", false},
	} {
		out, err := replayAPI(t, t.Context(), func(w http.ResponseWriter, r *http.Request) {
			if r.Method != "POST" || r.URL.Path != "/executions/v1/replays" {
				t.Errorf("asked %s %s: a bulk replay that started nothing is not followed", r.Method, r.URL)
				http.NotFound(w, r)
				return
			}
			w.WriteHeader(http.StatusConflict)
			b, _ := json.Marshal(wire.Error{Code: 409, Name: "ILLEGAL_STATE_EXCEPTION", Message: tt.message})
			_, _ = w.Write(b)
		}, "--status", "failed", "--dispatcher-id", "5f2b3c4d5e6f708192a3b4c5", fmt.Sprintf("--json=%v", tt.json))
		switch {
		case tt.message != nothing:
			if err == nil || !strings.Contains(err.Error(), tt.message) {
				t.Errorf("409 %q: %v, want it as the error", tt.message, err)
			}
		case err != nil:
			t.Errorf("nothing matches (json %v): %v; want no error", tt.json, err)
		case tt.json && !strings.Contains(out, `"name": "ILLEGAL_STATE_EXCEPTION"`):
			t.Errorf("nothing matches (json): printed %s; want the API's answer", out)
		case !tt.json && out != nothing+"\n":
			t.Errorf("nothing matches: printed %q; want %q", out, nothing+"\n")
		}
	}
}

// TestExecutionsListSaysItsLimitWasCut: executions list --limit above
// what the API gives a page says so on stderr, with the page it got.
// Before, a --limit 1000 printed 100 dispatches as if they were all.
func TestExecutionsListSaysItsLimitWasCut(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got := r.URL.Query().Get("limit"); got != "1000" {
			t.Errorf("asked for limit %q, want the 1000 given", got)
		}
		_, _ = io.WriteString(w, `{"data":[{"workflowId":"wf-1","eventId":"evt-1","status":"completed","eventType":"user_deleted"}],`+
			`"page":{"limit":100,"nextPageToken":"next"}}`)
	}))
	defer api.Close()
	var stdout, stderr strings.Builder
	err := run(t.Context(), []string{"executions", "list", "--limit", "1000"}, func(k string) string {
		return map[string]string{"DISPATCHER_URL": api.URL}[k]
	}, &stdout, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if want := "--limit 1000: the API gives at most 100 dispatches a page\n"; stderr.String() != want {
		t.Errorf("stderr %q, want %q", stderr.String(), want)
	}
	if !strings.Contains(stdout.String(), "wf-1") || !strings.Contains(stdout.String(), "--page-token next") {
		t.Errorf("stdout lacks the page or the next page's token:\n%s", stdout.String())
	}
}

// TestExecutionsListEmptyPageWithMore: a page that --hide-replayed left
// empty, with more to read, says so rather than "no dispatches match"
// above a next page (probe).
func TestExecutionsListEmptyPageWithMore(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"data":[],"page":{"limit":20,"nextPageToken":"next"}}`)
	}))
	defer api.Close()
	var stdout, stderr strings.Builder
	if err := run(t.Context(), []string{"executions", "list", "--status", "failed", "--hide-replayed"}, func(k string) string {
		return map[string]string{"DISPATCHER_URL": api.URL}[k]
	}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if got := stdout.String(); strings.Contains(got, "no dispatches match") || !strings.Contains(got, "none on this page") || !strings.Contains(got, "--page-token next") {
		t.Errorf("stdout:\n%s\nwant none on this page, and the next page's token", got)
	}
}

// TestFilterFlagsRefusedEmptyOrTwice: a filter flag given empty (a
// script's unset variable) or twice is a usage error, and nothing is
// asked of the API. Before, empty meant no filter — `replay --status
// failed --event-type "$TYPE"` replayed every type's failed dispatches —
// and twice kept the last.
func TestFilterFlagsRefusedEmptyOrTwice(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("asked %s %s", r.Method, r.URL)
	}))
	defer api.Close()
	for _, args := range [][]string{
		{"replay", "--status", "failed", "--event-type", "", "--dry-run"},
		{"replay", "--status", "failed", "--dispatcher-id", " ", "--dry-run"},
		{"replay", "--status", "failed", "--event-type", "a", "--event-type", "b", "--dry-run"},
		{"executions", "list", "--status", "failed", "--status", "completed"},
		// Nor is an empty --actions the failed ones.
		{"replay", "evt-1", "--actions", ""},
		{"replay", "--status", "failed", "--actions", "", "--dry-run"},
	} {
		var out strings.Builder
		err := run(t.Context(), args, func(k string) string { return map[string]string{"DISPATCHER_URL": api.URL}[k] }, &out, &out)
		if err == nil || !strings.Contains(err.Error(), "empty: give a") && !strings.Contains(err.Error(), "given twice: a filter takes one value") {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
}

// TestReplayNoWaitPrintsTheID: --no-wait prints the bulk replay's id
// alone on stdout, for a script (B=$(dispatcher replay … --no-wait)), and
// how to follow it on stderr. Before, a sentence on stdout.
func TestReplayNoWaitPrintsTheID(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"id":"bulk-replay-1","status":"running","progress":{}}`)
	}))
	defer api.Close()
	var stdout, stderr strings.Builder
	err := run(t.Context(), []string{"replay", "--status", "failed", "--no-wait"}, func(k string) string {
		return map[string]string{"DISPATCHER_URL": api.URL}[k]
	}, &stdout, &stderr)
	if err != nil || stdout.String() != "bulk-replay-1\n" || !strings.Contains(stderr.String(), "follow it with: dispatcher replay --follow bulk-replay-1") {
		t.Errorf("replay --no-wait: %v; stdout %q, stderr %q", err, stdout.String(), stderr.String())
	}
}
