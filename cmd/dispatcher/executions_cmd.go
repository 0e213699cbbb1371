package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/wire"
	"github.com/spf13/cobra"
)

// filterFlags are the list filters, shared by `executions list`,
// `executions failures` and bulk `replay`.
type filterFlags struct {
	status, eventType, eventID, dispatcherID, actionID, errorClass, bulkReplayID, skipReason, from, to string
}

func (f *filterFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.Var(filterValue{&f.status}, "status", "running, scheduled, completed, failed or canceled")
	fl.Var(filterValue{&f.eventType}, "event-type", "only events of this type")
	fl.Var(filterValue{&f.eventID}, "event-id", "only the dispatch of this event")
	fl.Var(filterValue{&f.dispatcherID}, "dispatcher-id", "only dispatches that ran this dispatcher: its id, or its name")
	fl.Var(filterValue{&f.actionID}, "action-id", "only dispatches in which this action failed")
	fl.Var(filterValue{&f.errorClass}, "error-class", "only dispatches with this error class (HTTPPermanent, SMTPTemporary, ...)")
	fl.Var(filterValue{&f.bulkReplayID}, "bulk-replay-id", "only the replays this bulk replay started")
	fl.Var(filterValue{&f.skipReason}, "skip-reason", "only dispatches that skipped a dispatcher: paused, filter-error, removed or filter")
	fl.Var(filterValue{&f.from}, "from", "started at or after: a duration ago (24h, 7d), epoch ms or ISO-8601 with its time zone")
	fl.Var(filterValue{&f.to}, "to", "started before: a duration ago, epoch ms or ISO-8601 with its time zone")
}

// filterValue is a filter flag's value, refused empty (a script's unset
// variable) or given twice, as the API refuses such a filter. Before,
// empty meant no filter, and a bulk replay of every event type's failed
// dispatches; twice kept the last.
type filterValue struct{ v *string }

func (f filterValue) String() string {
	if f.v == nil {
		return ""
	}
	return *f.v
}

func (f filterValue) Set(s string) error {
	switch {
	case *f.v != "":
		return errors.New("given twice: a filter takes one value")
	case strings.TrimSpace(s) == "":
		return errors.New("empty: give a value, or leave the flag out")
	}
	*f.v = s
	return nil
}

func (filterValue) Type() string { return "string" }

// resolveDispatcher lets --dispatcher-id name a dispatcher by its name, as
// a support person knows it: one that is no id is looked up. Before, the
// CLI answered that it was no id, and listed no dispatchers to find one.
func (f *filterFlags) resolveDispatcher(ctx context.Context, c *apiClient) error {
	if f.dispatcherID == "" || dispatcher.ValidID(f.dispatcherID) {
		return nil
	}
	var page struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	rql := "?eq(name," + rqlValue(f.dispatcherID) + ")&select(id)&limit(2)"
	if _, err := c.do(ctx, "GET", "/dispatchers/v1/"+rql, nil, nil, &page); err != nil {
		return fmt.Errorf("--dispatcher-id %q: looking it up by name: %w", f.dispatcherID, err)
	}
	if len(page.Data) != 1 {
		return fmt.Errorf("--dispatcher-id %q: not an id (24 lowercase hexadecimal characters), nor the name of a dispatcher", f.dispatcherID)
	}
	f.dispatcherID = page.Data[0].ID
	return nil
}

// rqlValue encodes v for an RQL query as Extra Horizon clients do: twice,
// so that , ( ) & in it are not the query's; path escaping, as the API
// decodes it (a query escape's + for a space would stay a +).
func rqlValue(v string) string { return url.PathEscape(url.PathEscape(v)) }

// set reports whether any filter was given.
func (f *filterFlags) set() bool { return *f != filterFlags{} }

// times returns --from and --to as the API takes them.
func (f *filterFlags) times(now time.Time) (from, to string, err error) {
	if from, err = timeArg("from", f.from, now); err != nil {
		return "", "", err
	}
	to, err = timeArg("to", f.to, now)
	return from, to, err
}

// filter returns the filters as a request body carries them.
func (f *filterFlags) filter(now time.Time) (wire.Filter, error) {
	from, to, err := f.times(now)
	return wire.Filter{EventType: f.eventType, EventID: f.eventID, DispatcherID: f.dispatcherID,
		ActionID: f.actionID, Status: f.status, ErrorClass: f.errorClass, BulkReplayID: f.bulkReplayID, SkipReason: f.skipReason, From: jsonTime(from), To: jsonTime(to)}, err
}

// query returns the filters as the list's query string.
func (f *filterFlags) query(now time.Time) (url.Values, error) {
	from, to, err := f.times(now)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	for k, v := range map[string]string{"status": f.status, "eventType": f.eventType, "eventId": f.eventID,
		"dispatcherId": f.dispatcherID, "actionId": f.actionID, "errorClass": f.errorClass, "bulkReplayId": f.bulkReplayID, "skipReason": f.skipReason,
		"from": from, "to": to} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q, nil
}

// workflowIDArg accepts a dispatch's workflow ID, or its event's id, which
// the API looks up: it knows the caller's tenant, and keys a CloudEvent's
// dispatch by its source too. An id it finds no dispatch for (not yet
// visible, or a token that may not list) is taken as the implicit
// tenant's event, for the API to answer. An event id that is also a
// dispatch's workflow ID ("dispatch-42", the id of an event besides
// that of event 42's dispatch) is refused: which one was meant cannot be
// told, and cancel and replay act on it.
func workflowIDArg(ctx context.Context, c *apiClient, arg string) (string, error) {
	if strings.TrimSpace(arg) == "" {
		// The API takes an empty eventId for no filter: an unset shell
		// variable canceled or replayed whichever dispatch it found.
		return "", errors.New("the ID is empty: name a dispatch by its workflow ID (dispatch-<event id>) or its event's id")
	}
	var page wire.ExecutionPage
	var ids []string
	if _, err := c.do(ctx, "GET", "/executions/v1", url.Values{"eventId": {arg}, "limit": {"20"}}, nil, &page); err == nil {
		for _, x := range page.Data {
			if !slices.Contains(ids, x.WorkflowID) {
				ids = append(ids, x.WorkflowID)
			}
		}
	}
	if dispatcher.ValidWorkflowID(arg) {
		if len(ids) == 0 {
			return arg, nil
		}
		var notFound *apiError
		switch _, err := c.do(ctx, "GET", "/executions/v1/"+url.PathEscape(arg), nil, nil, nil); {
		case err == nil:
			return "", fmt.Errorf("%q is the workflow ID of a dispatch and the id of an event whose dispatch is %s: name the first by its event's id, the second by its workflow ID",
				arg, strings.Join(ids, ", "))
		case !errors.As(err, &notFound) || notFound.Status != http.StatusNotFound:
			// Which one it names cannot be told: cancel and replay act on it.
			return "", fmt.Errorf("%q is the id of an event whose dispatch is %s, and maybe a dispatch's workflow ID: %w", arg, strings.Join(ids, ", "), err)
		}
	}
	switch len(ids) {
	case 0:
		return dispatcher.WorkflowID(arg), nil
	case 1:
		return ids[0], nil
	default:
		return "", fmt.Errorf("event id %q has %d dispatches (CloudEvents of different sources): name one by its workflow ID: %s",
			arg, len(ids), strings.Join(ids, ", "))
	}
}

// executionsCmd groups the read-only support commands.
func executionsCmd(getenv func(string) string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "executions",
		Short: "List dispatches, show one in detail, cancel or release one, summarise failures, show flow control (talks to the API)",
	}
	client := clientFlags(cmd, getenv)
	cmd.AddCommand(executionsListCmd(client), executionsShowCmd(client), executionsCancelCmd(client), executionsReleaseCmd(client), executionsFailuresCmd(client), executionsFlowCmd(client))
	return cmd
}

func executionsCancelCmd(client func() (*apiClient, error)) *cobra.Command {
	return executionOpCmd(client, "cancel", &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a dispatch, e.g. one waiting for its startTimestamp (CANCEL_EXECUTIONS)",
		Long: "ID is the dispatch's workflow ID (dispatch-<event id>) or the event's id. Actions that have not finished\n" +
			"end canceled; a call in flight is waited for, and counts if it completes.",
		Example: "  dispatcher executions cancel trial-1",
	}, "asked %[1]s to cancel; follow it with: dispatcher executions show %[1]s\n")
}

func executionsReleaseCmd(client func() (*apiClient, error)) *cobra.Command {
	return executionOpCmd(client, "release", &cobra.Command{
		Use:   "release ID",
		Short: "Let the events an ordered dispatch that failed holds go on without it (REPLAY_EXECUTIONS)",
		Long: "ID is the dispatch's workflow ID (dispatch-<event id>) or the event's id: a failed dispatch that blocks its\n" +
			"ordering key (executions show says so). The events behind it run; it stays failed, to be replayed or not.",
		Example: "  dispatcher executions release evt-1",
	}, "released the ordering key %[1]s held: the events behind it go on\n")
}

// executionOpCmd completes cmd as POST /executions/v1/{ID}/op, saying
// done (a format of the workflow ID) when it was taken.
func executionOpCmd(client func() (*apiClient, error), op string, cmd *cobra.Command, done string) *cobra.Command {
	var asJSON bool
	cmd.Args = cobra.ExactArgs(1)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := client()
		if err != nil {
			return err
		}
		id, err := workflowIDArg(cmd.Context(), c, args[0])
		if err != nil {
			return err
		}
		raw, err := c.do(cmd.Context(), "POST", "/executions/v1/"+url.PathEscape(id)+"/"+op, nil, nil, nil)
		if err != nil || asJSON {
			return jsonOr(cmd.OutOrStdout(), raw, err)
		}
		fmt.Fprintf(cmd.OutOrStdout(), done, id)
		return nil
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON answer")
	return cmd
}

func executionsListCmd(client func() (*apiClient, error)) *cobra.Command {
	var (
		f            filterFlags
		limit        int
		pageToken    string
		hideReplayed bool
		asJSON       bool
	)
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List dispatches, running first, then the most recently closed first",
		Example: "  dispatcher executions list --status failed --event-type user_deleted\n  dispatcher executions list --status failed --hide-replayed   # what is still to fix\n  dispatcher executions list --dispatcher-id 5f2b3c4d5e6f708192a3b4c5 --error-class HTTPPermanent --from 24h",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			if err := f.resolveDispatcher(cmd.Context(), c); err != nil {
				return err
			}
			q, err := f.query(time.Now())
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("limit") {
				q.Set("limit", strconv.Itoa(limit)) // the API says what it takes
			}
			if pageToken != "" {
				q.Set("pageToken", pageToken)
			}
			if hideReplayed {
				q.Set("hideReplayed", "true")
			}
			var page wire.ExecutionPage
			raw, err := c.do(cmd.Context(), "GET", "/executions/v1", q, nil, &page)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return printJSON(out, raw)
			}
			if limit > page.Page.Limit && page.Page.Limit > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "--limit %d: the API gives at most %d dispatches a page\n", limit, page.Page.Limit)
			}
			if len(page.Data) == 0 && page.Page.NextPageToken != "" {
				// The API reads a bounded number of runs a page: before,
				// "no dispatches match", then a next page, read as a
				// contradiction.
				fmt.Fprintf(out, "none on this page: the runs it read were all superseded by a replay (--hide-replayed)\n\nmore: add --page-token %s\n",
					page.Page.NextPageToken)
				return nil
			}
			printExecutions(out, page.Data, false)
			if page.Page.NextPageToken != "" {
				fmt.Fprintf(out, "\nmore: add --page-token %s\n", page.Page.NextPageToken)
			}
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().IntVar(&limit, "limit", 0, "dispatches per page (default 20, at most 100)")
	cmd.Flags().StringVar(&pageToken, "page-token", "", "the next page, as the previous one printed it")
	cmd.Flags().BoolVar(&hideReplayed, "hide-replayed", false, "leave out the runs that a replay superseded, as executions failures counts them")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON answer")
	return cmd
}

// printExecutions prints dispatches a line each: by workflow ID and event
// id (a CloudEvent's workflow ID is a hash), or, runs of one dispatch, by
// run ID.
func printExecutions(w io.Writer, xs []wire.Execution, runs bool) {
	if len(xs) == 0 {
		fmt.Fprintln(w, "no dispatches match")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := "WORKFLOW ID\tEVENT ID"
	if runs {
		head = "RUN ID"
	}
	fmt.Fprintln(tw, head+"\tSTATUS\tEVENT TYPE\tSTARTED (UTC)\tFAILED\tERROR CLASSES\tREPLAY OF")
	for _, x := range xs {
		of := "-"
		if x.Replay != nil {
			of = x.Replay.Of
		}
		id := x.WorkflowID + "\t" + orDash(x.EventID)
		if runs {
			id = x.RunID
		}
		status := x.Status
		if x.ReplayedAs != "" {
			status += " (replayed since)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", id, status, x.EventType, millisTime(&x.StartTimestamp),
			x.FailedActionCount, orDash(strings.Join(x.ErrorClasses, ",")), of)
	}
	tw.Flush()
}

func executionsShowCmd(client func() (*apiClient, error)) *cobra.Command {
	var (
		runID  string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:     "show ID",
		Short:   "Show a dispatch: event, configuration, each action's outcome, its runs and audit trail",
		Long:    "ID is the dispatch's workflow ID (dispatch-<event id>) or the event's id.",
		Example: "  dispatcher executions show dispatch-evt-1\n  dispatcher executions show evt-1 --json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			q := url.Values{}
			if runID != "" {
				q.Set("runId", runID)
			}
			var d wire.ExecutionDetail
			id, err := workflowIDArg(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			raw, err := c.do(cmd.Context(), "GET", "/executions/v1/"+url.PathEscape(id), q, nil, &d)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			printDetail(cmd.OutOrStdout(), d)
			return nil
		},
	}
	cmd.Flags().StringVar(&runID, "run-id", "", "a run of the dispatch (default the latest)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON answer")
	return cmd
}

func printDetail(w io.Writer, d wire.ExecutionDetail) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Workflow ID:\t%s\n", d.WorkflowID)
	fmt.Fprintf(tw, "Run ID:\t%s\n", d.RunID)
	fmt.Fprintf(tw, "Status:\t%s\n", d.Status)
	fmt.Fprintf(tw, "Event:\t%s (%s)\n", d.Event.ID, d.Event.Type)
	var content bytes.Buffer
	if json.Compact(&content, d.Event.Content) == nil && content.String() != "null" {
		c := content.String()
		if len(c) > 300 {
			c = strings.ToValidUTF8(c[:300], "") + "… (--json shows all of it)"
		}
		fmt.Fprintf(tw, "Content:\t%s\n", c)
	}
	if len(d.Withheld) > 0 {
		var parts []string
		for _, part := range slices.Sorted(maps.Keys(d.Withheld)) {
			parts = append(parts, fmt.Sprintf("%s (needs %s)", part, d.Withheld[part]))
		}
		fmt.Fprintf(tw, "Withheld:\t%s\n", strings.Join(parts, ", "))
	}
	fmt.Fprintf(tw, "Started / closed (UTC):\t%s / %s\n", millisTime(&d.StartTimestamp), millisTime(d.CloseTimestamp))
	if d.Replay != nil {
		fmt.Fprintf(tw, "Replay of:\t%s (requested by %s)\n", d.Replay.Of, orDash(d.Replay.RequestedBy))
	}
	if d.Config != nil {
		var names []string
		for _, ds := range d.Config.Dispatchers {
			names = append(names, orDash(ds.Name)+" "+ds.ID)
		}
		how := "loaded"
		if d.Config.Pinned {
			how = "pinned by the replay"
		}
		fmt.Fprintf(tw, "Configuration:\tversion %d, %s; dispatchers: %s\n", d.Config.Version, how, orDash(strings.Join(names, ", ")))
		if len(d.Config.Skipped) > 0 {
			var skipped []string
			for _, sk := range d.Config.Skipped {
				skipped = append(skipped, fmt.Sprintf("%s %s (%s)", orDash(sk.DispatcherName), sk.DispatcherID, sk.Reason))
			}
			fmt.Fprintf(tw, "Skipped:\t%s\n", strings.Join(skipped, ", "))
		}
	}
	if d.Failure != "" {
		fmt.Fprintf(tw, "Failure:\t%s\n", d.Failure)
	}
	if d.Blocking {
		fmt.Fprintf(tw, "Ordering key:\tblocked by this dispatch: replay it, or let the events behind it go on without it (dispatcher executions release %s, or the console)\n", d.WorkflowID)
	}
	if w := d.Waiting; w != nil {
		more := ""
		if n := w.Count - len(w.WorkflowIDs); n > 0 {
			more = fmt.Sprintf(" and %d more", n)
		}
		fmt.Fprintf(tw, "Waiting behind it:\t%d (no dispatch until their turn): %s%s\n", w.Count, strings.Join(w.WorkflowIDs, ", "), more)
	}
	if d.WebURL != "" {
		fmt.Fprintf(tw, "Temporal Web UI:\t%s\n", d.WebURL)
	}
	tw.Flush()

	fmt.Fprintln(w, "\nActions:")
	if d.ActionsUnknown {
		fmt.Fprintln(w, "  no worker answered (are they running?): the actions as planned, their progress unknown")
	}
	if len(d.Actions) == 0 {
		why := "none"
		if d.Config != nil && len(d.Config.Dispatchers) == 0 && len(d.Config.Skipped) == 0 {
			why = fmt.Sprintf("none: no dispatcher watched %q events in configuration version %d", d.Event.Type, d.Config.Version)
		}
		fmt.Fprintln(w, "  "+why)
	}
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if len(d.Actions) > 0 {
		fmt.Fprintln(tw, "DISPATCHER\tACTION\tTYPE\tSTATUS\tATTEMPTS\tRESULT")
	}
	for _, a := range d.Actions {
		result := "-"
		switch {
		case a.SkipReason != "":
			result = "skipped (" + a.SkipReason + ")"
			if a.SkipDetail != "" {
				result += ": " + a.SkipDetail
			}
		case a.LastError != nil:
			result = a.LastError.Class + ": " + a.LastError.Message
		case a.HTTPStatus != 0:
			result = "HTTP " + strconv.Itoa(a.HTTPStatus)
		case a.MessageID != "":
			result = "Message-ID " + a.MessageID
		case a.DueTimestamp != nil && a.Status == dispatcher.OutcomeScheduled:
			result = "due " + millisTime(a.DueTimestamp)
		}
		if a.DueTimestamp != nil && a.StartTimestamp != nil {
			if late := time.Duration(*a.StartTimestamp-*a.DueTimestamp) * time.Millisecond; late >= time.Minute {
				result += "; due " + millisTime(a.DueTimestamp) + ", started " + late.Round(time.Second).String() + " late"
			}
		}
		if a.NextAttemptTimestamp != nil {
			result += "; next attempt " + millisTime(a.NextAttemptTimestamp)
		}
		if a.CarriedFrom != "" {
			result += "; not run by this replay: as run " + a.CarriedFrom + " left it"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", orDash(a.DispatcherName)+" "+a.DispatcherID,
			orDash(a.ActionName)+" "+a.ActionID, a.Type, a.Status, a.Attempts, result)
	}
	tw.Flush()

	fmt.Fprintln(w, "\nRuns (newest first):")
	printExecutions(w, d.Runs, true)

	if len(d.Audit) > 0 {
		fmt.Fprintln(w, "\nAudit trail:")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, a := range d.Audit {
			what := a.Operation + " of run " + a.RunID
			if a.NewRunID != "" {
				what += " as run " + a.NewRunID
			}
			if len(a.Actions) > 0 {
				what += ", actions " + strings.Join(a.Actions, ",")
			}
			if a.Config != "" {
				what += ", " + a.Config + " configuration"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", millisTime(&a.Timestamp), a.Actor, what)
		}
		tw.Flush()
	}
}

func executionsFailuresCmd(client func() (*apiClient, error)) *cobra.Command {
	var (
		f               filterFlags
		includeReplayed bool
		asJSON          bool
	)
	cmd := &cobra.Command{
		Use:     "failures",
		Short:   "Failed dispatches grouped by error class and dispatcher",
		Example: "  dispatcher executions failures --from 24h",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			if err := f.resolveDispatcher(cmd.Context(), c); err != nil {
				return err
			}
			q, err := f.query(time.Now())
			if err != nil {
				return err
			}
			if includeReplayed {
				q.Set("includeReplayed", "true")
			}
			var sum wire.Failures
			raw, err := c.do(cmd.Context(), "GET", "/executions/v1/failures", q, nil, &sum)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return printJSON(out, raw)
			}
			// Superseded counts runs: a dispatch replayed three times and
			// failing each time has three.
			fmt.Fprintf(out, "%s (and %s, replayed since)\n", plural(sum.Failed, "failed dispatch", "failed dispatches"), plural(sum.Superseded, "failed run", "failed runs"))
			for _, g := range sum.Groups {
				fmt.Fprintln(out, "  "+g.Summary)
			}
			return nil
		},
	}
	f.add(cmd)
	// The summary covers failed dispatches only: every other status was
	// refused.
	_ = cmd.Flags().MarkHidden("status")
	cmd.Flags().BoolVar(&includeReplayed, "include-replayed", false, "also count failed runs that a replay superseded")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON answer")
	return cmd
}

// plural says n of a thing, in the singular or the plural.
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
