package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/dispatcherhq/dispatcher/wire"
)

func TestTimeArg(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		in, want string
		json     string
		wantErr  bool
	}{
		{"", "", "", false},
		{"24h", "2026-04-30T12:00:00Z", `"2026-04-30T12:00:00Z"`, false},
		{"1767225600000", "1767225600000", `1767225600000`, false},
		{"2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", `"2026-01-01T00:00:00Z"`, false},
		{"yesterday", "", "", true},
		// Before, refused though --help says ISO-8601; and -5m was five
		// minutes ahead, matching nothing.
		{"2026-12-04", "2026-12-04T00:00:00Z", `"2026-12-04T00:00:00Z"`, false},
		{"-5m", "", "", true},
		// Days, as apikeys --expires takes them; epoch seconds and a
		// date-time without its zone refused, saying why. Before, 1d was
		// refused, seconds read as 1970, and the zone was not named.
		{"7d", "2026-04-24T12:00:00Z", `"2026-04-24T12:00:00Z"`, false},
		{"1767225600", "", "", true},
		{"2026-12-06T11:20:00", "", "", true},
	} {
		got, err := timeArg("from", tt.in, now)
		if err != nil && (strings.Contains(tt.in, "T") && !strings.Contains(err.Error(), "needs its time zone") || tt.in == "1767225600" && !strings.Contains(err.Error(), "seconds? write 1767225600000")) {
			t.Errorf("timeArg(%q): %v, want the reason", tt.in, err)
		}
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("timeArg(%q) = %q, %v; want %q (error %v)", tt.in, got, err, tt.want, tt.wantErr)
		}
		if j := string(jsonTime(got)); j != tt.json {
			t.Errorf("jsonTime(%q) = %s, want %s", got, j, tt.json)
		}
	}
}

func TestWorkflowIDArg(t *testing.T) {
	// The API's listing by event id: a CloudEvent's dispatch, two of the
	// same id, and none.
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/executions/v1/dispatch-zz": // event zz's dispatch
			_, _ = io.WriteString(w, `{"workflowId":"dispatch-zz"}`)
			return
		case "/executions/v1/dispatch-yy":
			http.NotFound(w, r)
			return
		case "/executions/v1/dispatch-xx": // Temporal away
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		switch r.URL.Query().Get("eventId") {
		case "dispatch-zz", "dispatch-yy", "dispatch-xx": // events named so
			_, _ = fmt.Fprintf(w, `{"data":[{"workflowId":"dispatch-%s"}]}`, r.URL.Query().Get("eventId"))
		case "ce-1":
			_, _ = io.WriteString(w, `{"data":[{"workflowId":"acme:dispatch.5f2b"},{"workflowId":"acme:dispatch.5f2b"}]}`)
		case "twice":
			_, _ = io.WriteString(w, `{"data":[{"workflowId":"dispatch.aa"},{"workflowId":"dispatch.bb"}]}`)
		default:
			_, _ = io.WriteString(w, `{"data":[]}`)
		}
	}))
	t.Cleanup(api.Close)
	c := &apiClient{base: api.URL, http: api.Client()}
	for in, want := range map[string]string{
		"dispatch-evt-1": "dispatch-evt-1",                                        // a workflow ID stays as it is
		"ce-1":           "acme:dispatch.5f2b",                                    // an event id becomes its dispatch's, as the API finds it
		"evt-1":          "dispatch-evt-1",                                        // or, found nowhere, the implicit tenant's
		"twice":          "name one by its workflow ID: dispatch.aa, dispatch.bb", // ambiguous: the caller names one
		// An event's id that is a workflow ID too: before, it was taken
		// as the workflow ID, and the other event's dispatch shown,
		// canceled or replayed; and the event's was never found.
		"dispatch-zz": `"dispatch-zz" is the workflow ID of a dispatch and the id of an event whose dispatch is dispatch-dispatch-zz`,
		"dispatch-yy": "dispatch-dispatch-yy", // no dispatch has it for its workflow ID: the event's
		// Not known to be no dispatch's: before, the event's was acted on.
		"dispatch-xx": `error: "dispatch-xx" is the id of an event whose dispatch is dispatch-dispatch-xx, and maybe a dispatch's workflow ID: the API answered 503`,
		// Before, the API's listing without a filter: the only dispatch
		// of a tenant was canceled by `executions cancel "$UNSET"`.
		"":   "error: the ID is empty",
		"  ": "error: the ID is empty",
	} {
		got, err := workflowIDArg(t.Context(), c, in)
		if err != nil {
			got = "error: " + err.Error()
		}
		if !strings.Contains(got, want) {
			t.Errorf("workflowIDArg(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFilterFlagsQuery(t *testing.T) {
	f := filterFlags{status: "failed", dispatcherID: "d1", errorClass: "HTTPPermanent", from: "1h"}
	q, err := f.query(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if got := q.Encode(); got != "dispatcherId=d1&errorClass=HTTPPermanent&from=2026-05-01T11%3A00%3A00Z&status=failed" {
		t.Errorf("query = %s", got)
	}
	if (&filterFlags{}).set() || !f.set() {
		t.Error("set() does not tell filters from none")
	}
}

// TestClientAtAnotherServer: pointed at another server that answers 200
// with a page (the Temporal Web UI, whose port the banner of make run
// prints beside the API's), a command asks whether --url is the API's.
// Before, it said "invalid character '<'" alone.
func TestClientAtAnotherServer(t *testing.T) {
	ui := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, "<!doctype html><title>Temporal</title>")
	}))
	defer ui.Close()
	c := &apiClient{base: ui.URL, http: ui.Client()}
	var out map[string]any
	_, err := c.do(t.Context(), "GET", "/executions/v1", nil, nil, &out)
	if want := "the API answered 200 with text/html; charset=utf-8, not the dispatcher's JSON: is --url (DISPATCHER_URL) the dispatcher's API?"; err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
}

// TestFollowBulkFailsWhenReplaysFail: following a bulk replay to its end
// fails (a non-zero exit) when some of its replays failed again or it
// did not complete, naming how to find them, so that a script can tell;
// one whose replays all succeeded does not.
func TestFollowBulkFailsWhenReplaysFail(t *testing.T) {
	for _, tt := range []struct{ status, progress, want string }{
		{"completed", `"matched":3,"processed":3,"replayed":3,"succeeded":3`, ""},
		{"completed", `"matched":3,"processed":3,"replayed":3,"succeeded":1,"failed":2`,
			"bulk replay bulk-replay-1; 2 of its replays failed again, were canceled or did not start: dispatcher executions list --bulk-replay-id bulk-replay-1 --status failed (or --status canceled)"},
		{"canceled", `"matched":3,"processed":1,"replayed":1,"succeeded":1`, "bulk replay bulk-replay-1 was canceled"},
		// Before, a canceled one said nothing of its replays that failed.
		{"canceled", `"matched":9,"processed":3,"replayed":3,"succeeded":1,"failed":2`,
			"bulk replay bulk-replay-1 was canceled; 2 of its replays failed again, were canceled or did not start: dispatcher executions list --bulk-replay-id bulk-replay-1 --status failed (or --status canceled)"},
		{"failed", `"matched":3`, "bulk replay bulk-replay-1 failed"},
	} {
		api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, `{"id":"bulk-replay-1","status":"`+tt.status+`","progress":{`+tt.progress+`}}`)
		}))
		c := &apiClient{base: api.URL, http: api.Client()}
		for _, asJSON := range []bool{false, true} {
			err := followBulk(t.Context(), c, io.Discard, io.Discard, "bulk-replay-1", time.Millisecond, asJSON)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("%s %s (json %v): %v, want no error", tt.status, tt.progress, asJSON, err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("%s %s (json %v): %v, want an error saying %q", tt.status, tt.progress, asJSON, err, tt.want)
			}
		}
		api.Close()
	}
}

// TestFollowBulkSaysTheEndOnce: off a terminal, following a bulk replay
// prints a line per change while it runs, then the end once. Before, the
// last progress line came twice: as progress, then in the closing line.
func TestFollowBulkSaysTheEndOnce(t *testing.T) {
	answers := []string{
		`{"id":"b1","status":"running","progress":{}}`,
		`{"id":"b1","status":"running","progress":{"matched":2,"processed":1,"replayed":1,"pending":1}}`,
		`{"id":"b1","status":"completed","progress":{"matched":2,"processed":2,"replayed":2,"succeeded":2}}`,
	}
	var asked atomic.Int32
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, answers[min(int(asked.Add(1))-1, len(answers)-1)])
	}))
	defer api.Close()
	var out strings.Builder
	if err := followBulk(t.Context(), &apiClient{base: api.URL, http: api.Client()}, &out, io.Discard, "b1", time.Millisecond, false); err != nil {
		t.Fatal(err)
	}
	want := "finding the dispatches to replay\n" +
		"1/2 processed: 1 replayed, 0 skipped; 0 succeeded, 0 failed, 1 pending\n" +
		"bulk replay b1 completed: 2/2 processed: 2 replayed, 0 skipped; 2 succeeded, 0 failed, 0 pending\n"
	if out.String() != want {
		t.Errorf("followBulk printed\n%s\nwant\n%s", out.String(), want)
	}
}

// Following a bulk replay rides out the API or Temporal away for a while,
// and says when it is paused. Before, a 503 ended it with exit 1 and no
// word that the bulk replay ran on, and a paused one looked running; with
// --json it said nothing at all while it waited (now on stderr, keeping
// stdout to the closing object).
func TestFollowBulkRidesOutAnOutage(t *testing.T) {
	answers := []string{
		`503`,
		`{"id":"b1","status":"running","progress":{"matched":2,"processed":1,"replayed":1,"pending":1,"paused":true}}`,
		`{"id":"b1","status":"completed","progress":{"matched":2,"processed":2,"replayed":2,"succeeded":2}}`,
	}
	for _, asJSON := range []bool{false, true} {
		var asked atomic.Int32
		api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			a := answers[min(int(asked.Add(1))-1, len(answers)-1)]
			if a == "503" {
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = io.WriteString(w, `{"code":20,"name":"SERVICE_UNAVAILABLE_EXCEPTION","message":"temporal is unavailable"}`)
				return
			}
			_, _ = io.WriteString(w, a)
		}))
		var out, errOut strings.Builder
		if err := followBulk(t.Context(), &apiClient{base: api.URL, http: api.Client()}, &out, &errOut, "b1", time.Millisecond, asJSON); err != nil {
			t.Fatalf("json %v: %v; printed\n%s", asJSON, err, out.String())
		}
		api.Close()
		status, end := out.String(), "bulk replay b1 completed"
		if asJSON {
			status, end = errOut.String(), `"status": "completed"`
			var b wire.BulkReplay
			if err := json.Unmarshal([]byte(out.String()), &b); err != nil || b.Status != "completed" {
				t.Errorf("json: stdout %q is not the closing object alone: %v", out.String(), err)
			}
		}
		for _, want := range []string{"cannot read its progress (SERVICE_UNAVAILABLE_EXCEPTION (HTTP 503): temporal is unavailable); asking again in 1s",
			"paused (resume it: dispatcher replay --resume b1): 1/2 processed"} {
			if !strings.Contains(status, want) {
				t.Errorf("json %v: said\n%s\nwant it to say %q", asJSON, status, want)
			}
		}
		if !strings.Contains(out.String(), end) {
			t.Errorf("json %v: printed\n%s\nwant it to end with %q", asJSON, out.String(), end)
		}
	}
}

// TestFollowBulkRefused: a bulk replay the API does not know, or an id
// it refuses, ends following with the API's error alone. Before, the CLI
// added that the bulk replay ran on, and how to follow it again.
func TestFollowBulkRefused(t *testing.T) {
	for status, body := range map[int]string{
		http.StatusNotFound:   `{"code":16,"name":"RESOURCE_UNKNOWN_EXCEPTION","message":"no bulk replay with id bulk-replay-0"}`,
		http.StatusBadRequest: `{"code":12,"name":"INVALID_PARAMETER_EXCEPTION","message":"id: not a bulk replay id"}`,
	} {
		api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
			_, _ = io.WriteString(w, body)
		}))
		err := followBulk(t.Context(), &apiClient{base: api.URL, http: api.Client()}, io.Discard, io.Discard, "bulk-replay-0", time.Millisecond, false)
		api.Close()
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("HTTP %d", status)) || strings.Contains(err.Error(), "runs on") {
			t.Errorf("%d: %v; want the API's error, without that it runs on", status, err)
		}
	}
	// A token that expired while following says nothing of the bulk
	// replay, which runs on.
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"code":118,"name":"ACCESS_TOKEN_EXPIRED_EXCEPTION","message":"access token has expired"}`)
	}))
	defer api.Close()
	err := followBulk(t.Context(), &apiClient{base: api.URL, http: api.Client()}, io.Discard, io.Discard, "bulk-replay-0", time.Millisecond, false)
	if err == nil || !strings.Contains(err.Error(), "runs on; follow it again") {
		t.Errorf("401: %v; want that it runs on, and how to follow it again", err)
	}
}

// TestPrintDetailSaysWhyNoActions: a dispatch of an event no dispatcher
// watched says so, where before it printed an empty table.
func TestPrintDetailSaysWhyNoActions(t *testing.T) {
	d := wire.ExecutionDetail{Event: wire.DispatchedEvent{ID: "e1", Type: "user_deleted"}, Config: &wire.Config{Version: 7}}
	var out strings.Builder
	printDetail(&out, d)
	if want := "Actions:\n  none: no dispatcher watched \"user_deleted\" events in configuration version 7\n"; !strings.Contains(out.String(), want) {
		t.Errorf("printDetail printed\n%s\nwant it to say\n%s", out.String(), want)
	}
	if strings.Contains(out.String(), "DISPATCHER") {
		t.Errorf("printDetail printed the head of an empty table:\n%s", out.String())
	}
}

// The dispatchers a run skipped are named with why: a run whose only
// dispatcher was paused printed "dispatchers: -", as if none watched.
func TestPrintDetailNamesSkippedDispatchers(t *testing.T) {
	d := wire.ExecutionDetail{Event: wire.DispatchedEvent{ID: "e1", Type: "t"}, Config: &wire.Config{Version: 3,
		Skipped: []wire.SkippedDispatcher{{DispatcherID: "d1", DispatcherName: "billing", Reason: "paused"}}}}
	var out strings.Builder
	printDetail(&out, d)
	if want := "Skipped:                 billing d1 (paused)\n"; !strings.Contains(out.String(), want) {
		t.Errorf("printDetail printed\n%s\nwant it to say\n%s", out.String(), want)
	}
}

// The event's content is shown, and what the token may not see is named.
// Before, neither: only --json had the content, and a part withheld was
// silently empty.
func TestPrintDetailContentAndWithheld(t *testing.T) {
	var out strings.Builder
	printDetail(&out, wire.ExecutionDetail{Event: wire.DispatchedEvent{ID: "e1", Type: "t", Content: []byte(`{ "userId": 42 }`)}})
	if !strings.Contains(out.String(), "Content:                 {\"userId\":42}\n") {
		t.Errorf("printDetail printed\n%s\nwant the content", out.String())
	}
	out.Reset()
	printDetail(&out, wire.ExecutionDetail{Event: wire.DispatchedEvent{ID: "e1", Type: "t", Content: []byte(`null`)},
		Withheld: map[string]string{"event.content": "VIEW_EVENT_CONTENT", "config": "VIEW_DISPATCHERS"}})
	if s := out.String(); strings.Contains(s, "Content:") || !strings.Contains(s, "config (needs VIEW_DISPATCHERS), event.content (needs VIEW_EVENT_CONTENT)") {
		t.Errorf("printDetail printed\n%s\nwant what is withheld named, and no content", s)
	}
}

// A dispatch that blocks its ordering key says so, with the events
// waiting behind it, which have no dispatch of their own to show yet.
func TestPrintDetailBlockingKey(t *testing.T) {
	d := wire.ExecutionDetail{Execution: wire.Execution{WorkflowID: "dispatch-e1"}, Blocking: true,
		Waiting: &wire.Waiting{Count: 3, WorkflowIDs: []string{"dispatch-e2", "dispatch-e3"}}}
	var out strings.Builder
	printDetail(&out, d)
	for _, want := range []string{"blocked by this dispatch", "dispatcher executions release dispatch-e1", "3 (no dispatch until their turn): dispatch-e2, dispatch-e3 and 1 more"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("printDetail printed\n%s\nwant it to say %q", out.String(), want)
		}
	}
}

// A replay names the run it replays, the latest when the command looked,
// so that two people replaying a dispatch at once start one replay (the
// API replays a run once); without VIEW_EXECUTIONS it names none.
func TestReplayNamesTheRun(t *testing.T) {
	for _, canView := range []bool{true, false} {
		var sent atomic.Value
		api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case r.Method == "GET" && r.URL.Path == "/executions/v1/dispatch-evt-1" && canView:
				_, _ = io.WriteString(w, `{"workflowId":"dispatch-evt-1","runId":"run-2","status":"failed"}`)
			case r.Method == "GET":
				w.WriteHeader(http.StatusForbidden)
				_, _ = io.WriteString(w, `{"code":10,"name":"NO_PERMISSION_EXCEPTION","message":"permission VIEW_EXECUTIONS is required"}`)
			case r.Method == "POST" && r.URL.Path == "/executions/v1/dispatch-evt-1/replay":
				body, _ := io.ReadAll(r.Body)
				sent.Store(string(body))
				_, _ = io.WriteString(w, `{"workflowId":"dispatch-evt-1","runId":"run-3","replayOf":"run-2","replayId":"r","config":"original"}`)
			default:
				http.NotFound(w, r)
			}
		}))
		c := &apiClient{base: api.URL, http: api.Client()}
		var out strings.Builder
		if err := replayOne(t.Context(), c, &out, "dispatch-evt-1", "", nil, "", false); err != nil {
			t.Fatalf("can view %v: %v", canView, err)
		}
		want := `"runId":"run-2"`
		if !canView {
			want = `"runId":""`
		}
		if body, _ := sent.Load().(string); !strings.Contains(body, want) {
			t.Errorf("can view %v: the replay request was %s, want %s in it", canView, body, want)
		}
		api.Close()
	}
}

// A replay of a dispatch whose latest run is a replay names no run, so
// that the same command run twice gets the first's answer from the API
// rather than replay that replay, its calls again under new keys
// (re-check probe): the API tells a moment by its own clock.
func TestReplayOfAReplayBegunMomentsAgo(t *testing.T) {
	for _, tc := range []struct {
		began time.Duration
		want  string
	}{{5 * time.Second, `"runId":""`}, {time.Minute, `"runId":""`}} {
		var sent atomic.Value
		api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case r.Method == "GET":
				_, _ = fmt.Fprintf(w, `{"workflowId":"dispatch-evt-1","runId":"run-3","status":"failed","startTimestamp":%d,"replay":{"of":"run-2"}}`,
					time.Now().Add(-tc.began).UnixMilli())
			case r.Method == "POST":
				body, _ := io.ReadAll(r.Body)
				sent.Store(string(body))
				_, _ = io.WriteString(w, `{"workflowId":"dispatch-evt-1","runId":"run-3","replayOf":"run-2","replayId":"r","config":"original","alreadyStarted":true}`)
			}
		}))
		var out strings.Builder
		if err := replayOne(t.Context(), &apiClient{base: api.URL, http: api.Client()}, &out, "dispatch-evt-1", "", nil, "", false); err != nil {
			t.Fatal(err)
		}
		if body, _ := sent.Load().(string); !strings.Contains(body, tc.want) {
			t.Errorf("a replay begun %v ago: the request was %s, want %s in it", tc.began, body, tc.want)
		}
		api.Close()
	}
}

// A request the API refused for its rate limit is sent again, body and
// all, after the Retry-After it names. Before, a sync of hundreds of
// changes stopped at the first 429, half applied.
func TestDoRetriesRateLimited(t *testing.T) {
	var asked atomic.Int32
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b, _ := io.ReadAll(r.Body); string(b) != `{"name":"a"}` {
			t.Errorf("attempt %d sent %q", asked.Load()+1, b)
		}
		if asked.Add(1) < 3 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		_, _ = io.WriteString(w, `{"id":"x"}`)
	}))
	defer api.Close()
	c := &apiClient{base: api.URL, http: api.Client()}
	var out struct{ ID string }
	if _, err := c.do(t.Context(), "POST", "/templates/v1", nil, map[string]string{"name": "a"}, &out); err != nil || out.ID != "x" || asked.Load() != 3 {
		t.Fatalf("do = %+v, %v after %d requests; want x after 3", out, err, asked.Load())
	}
}

// The CLI prints the API's URL (plans, errors) without its password.
func TestClientURLShownWithoutPassword(t *testing.T) {
	cmd := &cobra.Command{Use: "x"}
	client := clientFlags(cmd, func(string) string { return "" })
	if err := cmd.PersistentFlags().Set("url", "http://u:secret-pw@127.0.0.1:1/"); err != nil {
		t.Fatal(err)
	}
	c, err := client()
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.do(t.Context(), "GET", "/health", nil, nil, nil)
	if c.shown != "http://u:xxxxx@127.0.0.1:1" || err == nil || strings.Contains(err.Error(), "secret-pw") {
		t.Errorf("shown %q, error %v: want neither to hold the password", c.shown, err)
	}
	// It says how to name another API: before, only that this one was down.
	if err == nil || !strings.Contains(err.Error(), "(--url or DISPATCHER_URL names another)") {
		t.Errorf("error %v: want it to say how to name another API", err)
	}
}

// Flags the chosen form of replay does not read are refused before any
// request. Before, they were ignored: replay ID --rate 5 replayed at once.
func TestReplayRefusesFlagsItWouldIgnore(t *testing.T) {
	for args, want := range map[string]string{
		"replay evt-1 --rate 5":                  "--rate paces a bulk replay",
		"replay --list --status failed":          "--cancel, --pause, --resume, --follow and --list each stand alone",
		"replay --list --follow bulk-replay-1":   "--cancel, --pause, --resume, --follow and --list each stand alone",
		"replay evt-1 --follow bulk-replay-1":    "--cancel, --pause, --resume, --follow and --list each stand alone",
		"replay --resume bulk-replay-1 --rate 2": "--rate is for starting a replay",
		"replay --pause bulk-replay-1 --dry-run": "--dry-run is for starting a replay",
		"replay --status failed --run-id r1":     "--run-id names a run of the dispatch given as ID",
		"replay --list --run-id r1":              "--run-id is for starting a replay",
	} {
		var out strings.Builder
		err := run(t.Context(), strings.Fields(args), func(k string) string {
			return map[string]string{"DISPATCHER_URL": "http://127.0.0.1:1"}[k]
		}, &out, &out)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", args, err, want)
		}
	}
}

// A bad URL names where it came from: before, one from DISPATCHER_URL
// was blamed on --url, which the user never gave.
func TestClientURLErrorNamesItsSetting(t *testing.T) {
	for _, tt := range []struct{ flag, env, want string }{
		{"", "notaurl", `DISPATCHER_URL "notaurl": want an absolute http(s) URL, such as http://127.0.0.1:8080`},
		{"ftp://x", "http://127.0.0.1:1", `--url "ftp://x": want an absolute http(s) URL, such as http://127.0.0.1:8080`},
		// Its password hidden. Before, printed.
		{"", "http://user:s3cret@127.0.0.1:8080/%zz", `DISPATCHER_URL "(hidden: not a valid URL)": want an absolute http(s) URL`},
		{"user:s3cret@127.0.0.1:8080", "", `--url "xxxxx@127.0.0.1:8080": want an absolute http(s) URL`},
	} {
		cmd := &cobra.Command{Use: "x"}
		client := clientFlags(cmd, func(k string) string { return map[string]string{"DISPATCHER_URL": tt.env}[k] })
		if tt.flag != "" {
			if err := cmd.PersistentFlags().Set("url", tt.flag); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := client(); err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("flag %q, env %q: %v, want %s", tt.flag, tt.env, err, tt.want)
		}
	}
}

// A replay that another request started already (alreadyStarted) says
// so: before, the CLI said it started it, and two support people racing
// each believed theirs ran.
func TestReplayOneSaysAReplayStartedAlready(t *testing.T) {
	for _, already := range []bool{false, true} {
		api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet {
				_, _ = io.WriteString(w, `{"workflowId":"dispatch-e1","runId":"r1"}`)
				return
			}
			_, _ = fmt.Fprintf(w, `{"replayId":"x","runId":"r2","replayOf":"r1","actions":["a1"],"config":"current","alreadyStarted":%v}`, already)
		}))
		var out strings.Builder
		err := replayOne(t.Context(), &apiClient{base: api.URL, http: api.Client()}, &out, "dispatch-e1", "", nil, "", false)
		api.Close()
		if err != nil {
			t.Fatal(err)
		}
		if said := strings.Contains(out.String(), "was started already, by an earlier request (maybe this command's), as run r2"); said != already {
			t.Errorf("alreadyStarted %v: printed %q", already, out.String())
		}
	}
}

// A refusal that asks for the actions to be named says how on the command
// line: before, the API's words alone, which name its field, not the flag.
func TestReplayOneNamesTheActionsFlag(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			_, _ = io.WriteString(w, `{"workflowId":"dispatch-e1","runId":"r1"}`)
			return
		}
		w.WriteHeader(http.StatusConflict)
		_, _ = io.WriteString(w, `{"code":21,"name":"ILLEGAL_STATE_EXCEPTION","message":"no action failed in run r1 of dispatch dispatch-e1; name the actions to run them again"}`)
	}))
	defer api.Close()
	err := replayOne(t.Context(), &apiClient{base: api.URL, http: api.Client()}, io.Discard, "dispatch-e1", "", nil, "", false)
	if err == nil || !strings.Contains(err.Error(), "name the actions to run them again") || !strings.Contains(err.Error(), "--actions <id>") ||
		!strings.Contains(err.Error(), "dispatcher executions show dispatch-e1") {
		t.Errorf("err = %v, want the API's reason and the flag", err)
	}
}

// The CLI waits for an answer as long as the server may take to give it
// (its write timeout ends the slowest, a failures summary or a bulk
// replay's count of 100 s): before, it gave up after a minute while the
// server still worked on them.
func TestClientOutwaitsTheServer(t *testing.T) {
	if clientTimeout <= writeTimeout {
		t.Errorf("the CLI waits %v for an answer, the server up to %v", clientTimeout, writeTimeout)
	}
}

// A sync interrupted while it reads what the API has says so, and that
// nothing was changed. Before, it printed the HTTP client's error, a
// "context canceled" on the URL it was reading.
func TestSyncInterruptedWhilePlanning(t *testing.T) {
	ctx, interrupt := context.WithCancel(t.Context())
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		interrupt() // Ctrl-C while the API answers
		<-r.Context().Done()
	}))
	t.Cleanup(api.Close)
	c := &apiClient{base: api.URL, http: api.Client()}
	file := writeFile(t, "sync.json", `[{"eventType": "e", "name": "keep", "actions": []}]`)
	err := runSync(ctx, c, nil, file, planOptions{}, false, &syncResult{}, io.Discard, io.Discard, false)
	if err == nil || err.Error() != "interrupted while reading the API's dispatchers, templates and functions: nothing was changed" {
		t.Fatalf("sync interrupted while planning: %v", err)
	}
}

// A route the server does not have is one it is too old for (sync's
// batch, on a server released before it): the error says to upgrade it,
// not merely that something was not found. A missing resource does not.
func TestAPIErrorOfAnOlderServer(t *testing.T) {
	old := &apiError{Status: 404, Body: wire.Error{Name: "RESOURCE_UNKNOWN_EXCEPTION", Message: wire.NoRoute + "POST /dispatchers/v1/d1/batch"}}
	if got := old.Error(); !strings.HasSuffix(got, "POST /dispatchers/v1/d1/batch: the server is older than this command; upgrade it first") {
		t.Errorf("no route: %q", got)
	}
	missing := &apiError{Status: 404, Body: wire.Error{Name: "RESOURCE_UNKNOWN_EXCEPTION", Message: "no dispatcher with id d1"}}
	if got := missing.Error(); strings.Contains(got, "upgrade") {
		t.Errorf("a missing dispatcher: %q", got)
	}
}
