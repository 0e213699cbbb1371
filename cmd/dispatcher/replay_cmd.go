package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/dispatch"
	"github.com/dispatcherhq/dispatcher/wire"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
)

// progressLine sums up a bulk replay's progress; before the first page
// of matching runs is read, that it is looking for them ("0/0 processed"
// read as if nothing matched).
func progressLine(b wire.BulkReplay) string {
	p := b.Progress
	if b.ProgressUnknown && b.Status != "running" {
		return "its progress is unknown: no worker answered for it"
	}
	if b.Status == "running" && p.Matched == 0 && p.Processed == 0 {
		return "finding the dispatches to replay"
	}
	line := fmt.Sprintf("%d/%d processed: %d replayed, %d skipped; %d succeeded, %d failed, %d pending",
		p.Processed, p.Matched, p.Replayed, p.Skipped, p.Succeeded, p.Failed, p.Pending)
	if p.Scheduled > 0 {
		line += fmt.Sprintf(" (%d waiting for their startTimestamp)", p.Scheduled)
	}
	if b.Status == "running" && p.Paused {
		line = "paused (resume it: dispatcher replay --resume " + b.ID + "): " + line
	}
	return line
}

// replayCmd replays one dispatch, or every dispatch the filters match.
func replayCmd(getenv func(string) string) *cobra.Command {
	var (
		f       filterFlags
		runID   string
		actions []string
		config  string
		dryRun  bool
		rate    float64
		noWait  bool
		follow  string
		cancel  string
		pause   string
		resume  string
		list    bool
		asJSON  bool
		poll    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "replay [ID]",
		Short: "Replay a failed dispatch, or all that match filters (talks to the API)",
		Long: "With an ID (a dispatch's workflow ID or its event's id), replays that dispatch: by default only the\n" +
			"actions that failed, with the configuration it ran with; actions that succeeded are never sent again\n" +
			"unless named with --actions.\n\n" +
			"Without an ID, replays every dispatch the filters match (status defaults to failed, or any with\n" +
			"--skip-reason, which replays what a paused or filtered dispatcher skipped) as one durable bulk\n" +
			"replay, throttled to --rate per second, and follows its progress until the replays have closed;\n" +
			"it exits 1 when the bulk replay failed or was canceled, or a replay failed again.\n" +
			"--dry-run only counts them. Filters that match nothing start nothing and say so (exit 0).\n" +
			"Ctrl-C stops following (exit 1) and says how to follow or cancel the bulk replay, which runs on.",
		Example: "  dispatcher replay dispatch-evt-1\n" +
			"  dispatcher replay evt-1 --actions 5f2b3c4d5e6f708192a3b4c6 --config current\n" +
			"  dispatcher replay evt-1 --run-id 01a24e64-1a9a-7dd8-b0b0-95f2ab6953d3\n" +
			"  dispatcher replay --status failed --dispatcher-id 5f2b3c4d5e6f708192a3b4c5 --dry-run\n" +
			"  dispatcher replay --error-class SMTPTemporary --from 12h --rate 20\n" +
			"  dispatcher replay --skip-reason paused --dispatcher-id 5f2b3c4d5e6f708192a3b4c5\n" +
			"  dispatcher replay --follow bulk-replay-65f0c1d2e3f4a5b6c7d8e9f0\n" +
			"  dispatcher replay --pause bulk-replay-65f0c1d2e3f4a5b6c7d8e9f0\n" +
			"  dispatcher replay --list",
		Args: cobra.MaximumNArgs(1),
	}
	client := clientFlags(cmd, getenv)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := client()
		if err != nil {
			return err
		}
		ctx, out := cmd.Context(), cmd.OutOrStdout()
		// As an empty filter: a script's unset variable ("--actions
		// $ID") would replay the failed actions, not the one meant.
		if cmd.Flags().Changed("actions") && len(actions) == 0 {
			return errors.New(`invalid argument "" for "--actions" flag: empty: give action ids, or leave the flag out for those that failed`)
		}
		// A flag the chosen form does not read is refused, not ignored.
		forms := btoi(cancel != "") + btoi(pause != "") + btoi(resume != "") + btoi(follow != "") + btoi(list)
		if forms > 1 || forms == 1 && (len(args) > 0 || f.set()) {
			return errors.New("--cancel, --pause, --resume, --follow and --list each stand alone: give no ID or filters with them")
		}
		if forms == 1 {
			for _, name := range []string{"rate", "dry-run", "actions", "config", "no-wait", "run-id"} {
				if cmd.Flags().Changed(name) {
					return fmt.Errorf("--%s is for starting a replay: --cancel, --pause, --resume, --follow and --list do not take it", name)
				}
			}
		}
		if len(args) == 1 && cmd.Flags().Changed("rate") {
			return errors.New("--rate paces a bulk replay; a single dispatch is replayed at once")
		}
		if cmd.Flags().Changed("run-id") && len(args) == 0 && forms == 0 {
			return errors.New("--run-id names a run of the dispatch given as ID; a bulk replay replays each dispatch's latest run")
		}
		switch {
		case cancel != "":
			return controlBulk(ctx, c, out, cancel, "cancel", asJSON)
		case pause != "":
			return controlBulk(ctx, c, out, pause, "pause", asJSON)
		case resume != "":
			return controlBulk(ctx, c, out, resume, "resume", asJSON)
		case follow != "":
			return followBulk(ctx, c, out, cmd.ErrOrStderr(), follow, poll, asJSON)
		case list:
			var l struct{ Data []wire.BulkReplayItem }
			raw, err := c.do(ctx, "GET", "/executions/v1/replays", url.Values{"limit": {"100"}}, nil, &l)
			if err != nil || asJSON {
				return jsonOr(out, raw, err)
			}
			printBulkReplays(out, l.Data)
			return nil
		case len(args) == 1:
			switch {
			case f.set():
				return errors.New("give either an ID or filters, not both")
			case dryRun:
				return fmt.Errorf("--dry-run counts what filters match; a single dispatch has nothing to count: dispatcher executions show %s shows its failed actions", args[0])
			}
			id, err := workflowIDArg(ctx, c, args[0])
			if err != nil {
				return err
			}
			return replayOne(ctx, c, out, id, runID, actions, config, asJSON)
		case !f.set():
			return errors.New("name a dispatch to replay, or filters (e.g. --status failed --dispatcher-id X) for a bulk replay")
		}
		if err := f.resolveDispatcher(ctx, c); err != nil {
			return err
		}
		filter, err := f.filter(time.Now())
		if err != nil {
			return err
		}
		body := wire.BulkReplayRequest{Filter: filter, Actions: actions, Config: config, Rate: rate, DryRun: dryRun}
		// What a single replay says too: a bulk replay after a fix that
		// runs the configuration each dispatch ran with fails again.
		original := config != dispatcher.ReplayConfigCurrent && filter.SkipReason == ""
		if dryRun {
			var dry wire.DryRun
			raw, err := c.do(ctx, "POST", "/executions/v1/replays", nil, body, &dry)
			if err != nil || asJSON {
				return jsonOr(out, raw, err)
			}
			skipped := ""
			if dry.Replayed > 0 {
				skipped = fmt.Sprintf(" (%d more match but were replayed already: skipped)", dry.Replayed)
			}
			if dry.StillPaused > 0 {
				skipped += fmt.Sprintf(" (%d more match but have a dispatcher still paused, whose actions would be skipped again: skipped; resume it first)", dry.StillPaused)
			}
			if dry.Removed > 0 {
				skipped += fmt.Sprintf(" (%d more match but none of the actions to replay is an action of their event type's dispatchers now, deleted since or named for another type: skipped)", dry.Removed)
			}
			fmt.Fprintf(out, "dry run: %s would be replayed%s; nothing was started\n", plural(int(max(dry.Matched-dry.Replayed-dry.StillPaused-dry.Removed, 0)), "dispatch", "dispatches"), skipped)
			if original {
				fmt.Fprintln(out, originalHint)
			}
			if len(dry.Sample) > 0 {
				fmt.Fprintln(out, "\nnewest of them:")
				printExecutions(out, dry.Sample, false)
			}
			return nil
		}
		var b wire.BulkReplay
		raw, err := c.do(ctx, "POST", "/executions/v1/replays", nil, body, &b)
		if msg, ok := nothingToReplay(err); ok {
			if asJSON {
				return printJSON(out, raw)
			}
			fmt.Fprintln(out, msg)
			return nil
		}
		if err != nil {
			return err
		}
		if noWait {
			if asJSON {
				return printJSON(out, raw)
			}
			// The id alone on stdout, for a script: before, in a sentence.
			fmt.Fprintln(out, b.ID)
			fmt.Fprintf(cmd.ErrOrStderr(), "bulk replay %s started; follow it with: dispatcher replay --follow %s\n", b.ID, b.ID)
			return nil
		}
		if !asJSON {
			fmt.Fprintf(out, "bulk replay %s started\n", b.ID)
			if original {
				fmt.Fprintln(out, originalHint)
			}
		}
		return followBulk(ctx, c, out, cmd.ErrOrStderr(), b.ID, poll, asJSON)
	}
	f.add(cmd)
	fl := cmd.Flags()
	fl.StringVar(&runID, "run-id", "", "the run to replay, which must be the latest (default: the latest; a replay begun within 30 s is then answered for, not replayed)")
	fl.StringSliceVar(&actions, "actions", nil, "action ids to run again (default: those that failed)")
	fl.StringVar(&config, "config", "", "configuration to replay with: original or current (default original; current with --skip-reason)")
	fl.BoolVar(&dryRun, "dry-run", false, "bulk: count what would be replayed and start nothing")
	fl.Float64Var(&rate, "rate", 0, "bulk: replays started per second (default 10, at most 100)")
	fl.BoolVar(&noWait, "no-wait", false, "bulk: print the bulk replay's id alone (how to follow it on stderr) and return")
	fl.StringVar(&follow, "follow", "", "follow the progress of a running bulk replay")
	fl.StringVar(&cancel, "cancel", "", "cancel a running bulk replay")
	fl.StringVar(&pause, "pause", "", "pause a running bulk replay: it starts no replay until resumed")
	fl.StringVar(&resume, "resume", "", "resume a paused bulk replay")
	fl.BoolVar(&list, "list", false, "list the bulk replays, running first, then the last closed (100 at most)")
	fl.BoolVar(&asJSON, "json", false, "print the API's JSON answers")
	fl.DurationVar(&poll, "poll", 500*time.Millisecond, "how often to ask for a bulk replay's progress")
	_ = fl.MarkHidden("poll")
	return cmd
}

// controlBulk cancels, pauses or resumes (op) the bulk replay id.
func controlBulk(ctx context.Context, c *apiClient, out io.Writer, id, op string, asJSON bool) error {
	var b wire.BulkReplay
	raw, err := c.do(ctx, "POST", "/executions/v1/replays/"+url.PathEscape(id)+"/"+op, nil, nil, &b)
	if err != nil || asJSON {
		return jsonOr(out, raw, err)
	}
	switch op {
	case "cancel":
		fmt.Fprintf(out, "bulk replay %s: canceling; replays already started run on\n", b.ID)
	case "pause":
		fmt.Fprintf(out, "bulk replay %s: paused; it starts no replay until resumed (dispatcher replay --resume %s); replays already started run on\n", b.ID, b.ID)
	default:
		fmt.Fprintf(out, "bulk replay %s: resumed (%s)\n", b.ID, b.Status)
	}
	return nil
}

// printBulkReplays writes bulk replays as a table.
func printBulkReplays(w io.Writer, bs []wire.BulkReplayItem) {
	if len(bs) == 0 {
		fmt.Fprintln(w, "no bulk replays")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BULK REPLAY\tSTATUS\tREQUESTED BY\tSTARTED (UTC)\tCLOSED (UTC)")
	for _, b := range bs {
		status := b.Status
		if b.Paused {
			status = "paused"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", b.ID, status, orDash(b.RequestedBy), millisTime(&b.StartTimestamp), millisTime(b.CloseTimestamp))
	}
	_ = tw.Flush()
}

func jsonOr(w io.Writer, raw []byte, err error) error {
	if err != nil {
		return err
	}
	return printJSON(w, raw)
}

func replayOne(ctx context.Context, c *apiClient, out io.Writer, workflowID, runID string, actions []string, config string, asJSON bool) error {
	path := "/executions/v1/" + url.PathEscape(workflowID)
	// The run to replay is the one latest now, named, so that two people
	// replaying the dispatch at once start one replay: without a run, a
	// request that comes after the other's replay has failed again
	// replays that replay. Without VIEW_EXECUTIONS, the latest when the
	// request arrives.
	latest := wire.Execution{RunID: runID}
	if runID == "" {
		if _, err := c.do(ctx, "GET", path, nil, nil, &latest); err != nil && !refused(err) {
			return err
		}
	}
	if latest.Replay != nil {
		// A replay, maybe begun moments ago by this very command run
		// twice: named, it would be replayed in turn, its calls made
		// again under new keys. Unnamed, the API, by its own clock,
		// answers as it answered the request that began it within 30 s,
		// refuses another, and later replays it.
		latest.RunID = ""
	}
	var r wire.Replay
	raw, err := c.do(ctx, "POST", path+"/replay", nil,
		wire.ReplayRequest{RunID: latest.RunID, Actions: actions, Config: config}, &r)
	if err != nil && strings.Contains(err.Error(), "was replayed moments ago") {
		// The API's advice is a field the command does not take.
		return fmt.Errorf("%w\n(to replay that replay, name it: --run-id <its run id>, or run the command again once it is %s old)", err, dispatch.ReplayAgainAfter)
	}
	if err != nil && strings.Contains(err.Error(), "name the actions") {
		// The API's words are the API's field; here it is a flag.
		return fmt.Errorf("%w\n(name them with --actions <id>,…; `dispatcher executions show %s` lists the dispatch's actions and their ids)", err, workflowID)
	}
	if err != nil || asJSON {
		return jsonOr(out, raw, err)
	}
	which := "all actions"
	if len(r.Actions) > 0 {
		which = "actions " + strings.Join(r.Actions, ", ")
	}
	started := "started"
	if r.AlreadyStarted {
		started = "was started already, by an earlier request (maybe this command's)," // as this one would have: not a second one
	}
	fmt.Fprintf(out, "replay %s of %s %s as run %s (replays run %s): %s, %s configuration\n",
		r.ReplayID, workflowID, started, r.RunID, r.ReplayOf, which, r.Config)
	if r.Config == dispatcher.ReplayConfigOriginal {
		fmt.Fprintln(out, originalHint)
	}
	fmt.Fprintf(out, "follow it with: dispatcher executions show %s\n", workflowID)
	return nil
}

// originalHint follows a replay of the configuration a dispatch ran with.
const originalHint = "(the dispatchers and actions each dispatch ran with, its templates and functions as they are now; after fixing a dispatcher or an action, replay with --config current)"

// followBulk polls a bulk replay until it closes, showing a progress bar
// on a terminal and a line per change otherwise. With --json, out gets
// the closing object alone and the lines go to errOut: before, a paused
// bulk replay followed with --json said nothing while it waited.
func followBulk(ctx context.Context, c *apiClient, out, errOut io.Writer, id string, poll time.Duration, asJSON bool) error {
	status := out
	if asJSON {
		status = errOut
	}
	var bar *progressbar.ProgressBar
	if raw := rawTerminal(out); raw != nil && !asJSON {
		bar = progressbar.NewOptions(-1, progressbar.OptionSetWriter(raw), progressbar.OptionShowCount(),
			progressbar.OptionSetDescription("replaying"), progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetWidth(30), progressbar.OptionThrottle(100*time.Millisecond))
	}
	last, wait := "", poll
	interrupted := func() error {
		if bar != nil {
			fmt.Fprintln(out) // ends the bar's line
		}
		return stopped(id)
	}
	for {
		var b wire.BulkReplay
		raw, err := c.do(ctx, "GET", "/executions/v1/replays/"+url.PathEscape(id), nil, nil, &b)
		switch {
		case err != nil && ctx.Err() != nil:
			return interrupted()
		case err != nil && transient(err) && wait < time.Minute:
			// Temporal or the API away for a while: the bulk replay
			// runs on, and is followed again once they answer.
			wait = min(2*wait+time.Second, time.Minute)
			fmt.Fprintf(status, "cannot read its progress (%v); asking again in %s\n", err, wait.Round(time.Second))
			select {
			case <-ctx.Done():
				return interrupted()
			case <-time.After(wait):
			}
			continue
		case err != nil && unknownBulkReplay(err):
			return err // a wrong id: nothing runs on that it knows of
		case err != nil:
			return fmt.Errorf("%w\nbulk replay %s runs on; follow it again: dispatcher replay --follow %s", err, id, id)
		}
		wait = poll
		done := b.Status != "running"
		if asJSON && done {
			if err := printJSON(out, raw); err != nil {
				return err
			}
			return bulkOutcome(b)
		}
		switch {
		case b.ProgressUnknown && !done:
			// No worker answers for it: the bulk replay waits, and is
			// followed on; its progress is drawn once one does.
			if line := "progress unknown: no worker answers for it now (the workers are down or busy); it goes on once one does"; line != last {
				fmt.Fprintln(status, line)
				last = line
			}
		case bar != nil:
			if b.Progress.Matched > 0 {
				bar.ChangeMax(b.Progress.Matched)
			}
			_ = bar.Set(b.Progress.Processed)
			state := "replayed"
			if b.Progress.Paused {
				state = "paused; replayed"
			}
			bar.Describe(fmt.Sprintf("%s %d, skipped %d, succeeded %d, failed %d",
				state, b.Progress.Replayed, b.Progress.Skipped, b.Progress.Succeeded, b.Progress.Failed))
		case !done: // the closing line below says the end
			if line := progressLine(b); line != last {
				fmt.Fprintln(status, line)
				last = line
			}
		}
		if done {
			if bar != nil {
				_ = bar.Finish()
				fmt.Fprintln(out)
			}
			fmt.Fprintf(out, "bulk replay %s %s: %s\n", b.ID, b.Status, progressLine(b))
			for _, e := range b.Progress.Errors {
				fmt.Fprintln(out, "  "+e)
			}
			return bulkOutcome(b)
		}
		select {
		case <-ctx.Done():
			return interrupted()
		case <-time.After(poll):
		}
	}
}

// bulkOutcome is the error a followed bulk replay that has ended is,
// for the exit status: failed or canceled, or with replays that failed
// again, then naming how to list them (also for one failed or canceled:
// before, it said nothing of them); nil when every replay succeeded.
func bulkOutcome(b wire.BulkReplay) error {
	failedAgain := ""
	if b.Progress.Failed > 0 {
		failedAgain = fmt.Sprintf("; %d of its replays failed again, were canceled or did not start: dispatcher executions list --bulk-replay-id %s --status failed (or --status canceled)",
			b.Progress.Failed, b.ID)
	}
	switch {
	case b.Status == "failed":
		return fmt.Errorf("bulk replay %s failed%s", b.ID, failedAgain)
	case b.Status == "canceled":
		return fmt.Errorf("bulk replay %s was canceled%s", b.ID, failedAgain)
	case b.Progress.Failed > 0:
		return fmt.Errorf("bulk replay %s%s", b.ID, failedAgain)
	}
	return nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// transient reports whether err is the API, or Temporal behind it, away
// for a while: no answer, or a 502, 503 or 504.
func transient(err error) bool {
	var e *apiError
	if errors.As(err, &e) {
		return e.Status == http.StatusBadGateway || e.Status == http.StatusServiceUnavailable || e.Status == http.StatusGatewayTimeout
	}
	return true
}

// unknownBulkReplay reports whether err is the API's word that there is
// no such bulk replay: a malformed id (400) or an unknown one (404). A
// token that expired while following (401) says nothing of the replay,
// which runs on.
func unknownBulkReplay(err error) bool {
	var e *apiError
	return errors.As(err, &e) && (e.Status == http.StatusBadRequest || e.Status == http.StatusNotFound)
}

// nothingToReplay reports whether err is the API's answer to a bulk
// replay whose filters match no dispatch, and returns its message, which
// names them. It started nothing, and there was nothing to do, which is
// not a failure (exit 0), as a bulk replay whose every match is skipped
// is not.
func nothingToReplay(err error) (string, bool) {
	var e *apiError
	if errors.As(err, &e) && e.Status == http.StatusConflict && strings.HasPrefix(e.Body.Message, dispatcher.NothingToReplay) {
		return e.Body.Message, true
	}
	return "", false
}

// stopped is the error that following bulk replay id ends with when
// interrupted (Ctrl-C): main says it on stderr and exits 1, so that a
// script does not take the bulk replay, which runs on, for done.
func stopped(id string) error {
	return fmt.Errorf("stopped following; bulk replay %s runs on\n  follow it: dispatcher replay --follow %s\n  cancel it: dispatcher replay --cancel %s", id, id, id)
}
