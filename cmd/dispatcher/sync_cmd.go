package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dispatcherhq/dispatcher/wire"
)

// syncCmd applies a dispatchers file (the Extra Horizon CLI's format) to a
// running dispatcher through its API: it plans, prints the plan, and
// applies it unless --dry-run.
func syncCmd(getenv func(string) string) *cobra.Command {
	var (
		file          string
		clean, dryRun bool
		exitCode      bool
		asJSON        bool
		adopt         bool
		updateSecrets bool
		renames       []string
		allowEnv      []string
	)
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Apply a dispatchers file (the Extra Horizon CLI's format, JSON or YAML) through the API",
		Long: "sync makes the dispatchers, templates and functions of a running dispatcher match a file: the\n" +
			"Extra Horizon CLI's dispatchers file (a bare array of dispatchers or {\"dispatchers\": [...]}), which may\n" +
			"also hold \"templates\" and \"functions\" sections (docs/schemas/dispatchers-file.json).\n\n" +
			"Items are matched by name. Dispatchers sync creates carry the EXH_CLI_MANAGED tag, and only those are\n" +
			"updated or deleted; their actions are created, updated and deleted by name. --clean deletes managed\n" +
			"dispatchers the file lacks, never unmanaged ones. Templates and functions are created and updated, never\n" +
			"deleted. Function secrets and header values come from the environment variables that secretEnv and\n" +
			"headersEnv name, and are written only when the API lacks them (or with --update-secrets). Those variables\n" +
			"must be the function's own, as export names them (DISPATCHER_SECRET_<FUNCTION>,\n" +
			"DISPATCHER_HEADER_<FUNCTION>_<HEADER>), or be allowed with --allow-env: FUNCTION=NAME to that function,\n" +
			"a bare NAME only to a function the install has, at its URL. A file changed in a pull request must not\n" +
			"send another function's secrets, or the runner's other credentials, to a URL of its choosing.\n\n" +
			"The whole file is checked first, against the schema and the install (templates and functions it names\n" +
			"must exist or be in the file); then the plan is printed, then applied in dependency order, each\n" +
			"dispatcher's changes (its fields and its actions') in one request, together or not at all. If the API\n" +
			"refuses a change midway, sync stops and lists what was applied and what was not; running it again\n" +
			"plans only what is still missing. A second run of a file that was applied plans nothing.",
		Example: "  dispatcher sync -f dispatchers.json --dry-run\n" +
			"  dispatcher sync -f dispatchers.yaml --clean\n" +
			"  dispatcher sync -f dispatchers.json --rename user-welcome=welcome-mail\n" +
			"  DISPATCHER_SECRET_ERASE=... dispatcher sync -f dispatchers.json --json\n" +
			"  ERASE_SECRET=... dispatcher sync -f dispatchers.json --allow-env ERASE_SECRET",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				// Before: unknown command "dispatchers.yaml".
				return fmt.Errorf("sync takes its file from -f, not an argument: dispatcher sync -f %s", args[0])
			}
			return nil
		},
	}
	client := clientFlags(cmd, getenv)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if exitCode && !dryRun {
			return errors.New("--exit-code goes with --dry-run: it says whether the plan has changes")
		}
		c, err := client()
		if err != nil {
			return err
		}
		opts := planOptions{Clean: clean, Adopt: adopt, UpdateSecrets: updateSecrets, Getenv: getenv, DryRun: dryRun, AllowEnv: allowEnv}
		if opts.Renames, err = parseRenames(renames); err != nil {
			return err
		}
		out, progress := cmd.OutOrStdout(), cmd.OutOrStdout()
		if asJSON {
			progress = cmd.ErrOrStderr()
		}
		res := &syncResult{File: file, API: c.shown, DryRun: dryRun, Changes: []*change{}}
		err = runSync(cmd.Context(), c, cmd.InOrStdin(), file, opts, dryRun, res, out, progress, asJSON)
		if asJSON {
			if err != nil {
				res.Error = err.Error()
			}
			if perr := printResult(out, res); perr != nil {
				return perr
			}
		}
		if err == nil && exitCode && len(res.Changes) > 0 {
			return exitStatus(2) // a drift check's "changes pending"
		}
		return err
	}
	cmd.Flags().StringVarP(&file, "file", "f", "dispatchers.json", "the dispatchers file, JSON or YAML (.yaml, .yml); - reads standard input")
	cmd.Flags().BoolVar(&clean, "clean", false, "delete managed dispatchers (tag EXH_CLI_MANAGED) that the file lacks")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan and change nothing")
	cmd.Flags().BoolVar(&exitCode, "exit-code", false, "with --dry-run: exit 2 when the plan has changes, 0 when it has none (a check for drift)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the plan and its result as JSON (progress goes to standard error)")
	cmd.Flags().StringArrayVar(&renames, "rename", nil, "OLD=NEW: the file's dispatcher NEW was named OLD on the install; update it rather than create NEW (repeatable)")
	cmd.Flags().BoolVar(&adopt, "adopt", false, "manage dispatchers of the install that the file names but sync did not create (adds the EXH_CLI_MANAGED tag)")
	cmd.Flags().StringSliceVar(&allowEnv, "allow-env", nil, "FUNCTION=NAME or NAME, comma-separated: environment variables secretEnv and headersEnv may name besides a function's own (DISPATCHER_SECRET_<FUNCTION>, DISPATCHER_HEADER_<FUNCTION>_<HEADER>): FUNCTION=NAME for that function; NAME for a function the install has, whose URL the file keeps (repeatable)")
	cmd.Flags().BoolVar(&updateSecrets, "update-secrets", false, "write function secrets and header values from the environment even when the API has them (they cannot be compared)")
	return cmd
}

// syncResult is what sync --json prints: the plan, each change's status,
// and the problems that stopped it, if any.
type syncResult struct {
	File     string         `json:"file"`
	API      string         `json:"api"`
	DryRun   bool           `json:"dryRun"`
	Summary  map[string]int `json:"summary"`
	Changes  []*change      `json:"changes"`
	Warnings []string       `json:"warnings,omitempty"`
	Problems problems       `json:"problems,omitempty"`
	Error    string         `json:"error,omitempty"`
}

// runSync reads, plans, prints and applies, filling res as it goes.
func runSync(ctx context.Context, c *apiClient, stdin io.Reader, file string, opts planOptions, dryRun bool,
	res *syncResult, out, progress io.Writer, asJSON bool) error {
	f, err := openSyncFile(file, stdin)
	if err != nil {
		return res.failed(err)
	}
	remote, err := fetchState(ctx, c, progress)
	if err != nil {
		if ctx.Err() != nil {
			return errors.New("interrupted while reading the API's dispatchers, templates and functions: nothing was changed")
		}
		return err
	}
	p, err := makePlan(f, remote, opts)
	if err != nil {
		return res.failed(err)
	}
	res.Changes, res.Warnings = p.Changes, p.Warnings
	res.Summary = summary(p)
	if !asJSON {
		for _, w := range p.Warnings {
			fmt.Fprintln(out, "warning:", w)
		}
		printPlan(out, p, c.shown)
	}
	if lacking := lackingPermissions(ctx, c, p); len(lacking) > 0 {
		// Found before the first change, not after it: a template
		// created, then its dispatcher refused.
		msg := fmt.Sprintf("the token lacks %s, which the plan needs", strings.Join(lacking, ", "))
		if !dryRun {
			return fmt.Errorf("%s; nothing was changed", msg)
		}
		res.Warnings = append(res.Warnings, msg)
		if !asJSON {
			fmt.Fprintln(out, "warning:", msg)
		}
	}
	if dryRun || len(p.Changes) == 0 {
		if dryRun && !asJSON && len(p.Changes) > 0 {
			fmt.Fprintln(out, "\n--dry-run: nothing was changed.")
		}
		return nil
	}
	if !asJSON {
		fmt.Fprintln(out)
	}
	err = applyPlan(ctx, c, p, progress)
	res.Summary = summary(p)
	if err != nil {
		if !asJSON {
			printFailure(out, p, ctx.Err() != nil)
		}
		return err
	}
	if !asJSON {
		fmt.Fprintf(out, "\nApplied %s.\n", plural(len(p.Changes), "change", "changes"))
	}
	// A second run must plan nothing. When it would, another writer (a
	// sync run at the same time) changed what this one applied, each
	// change by itself allowed (If-Match): the install matches neither
	// file, and a job must not report success. Before, a warning, and
	// exit 0.
	opts.UpdateSecrets, opts.Renames = false, nil
	if again, err := fetchState(ctx, c, nil); err == nil {
		if p2, err := makePlan(f, again, opts); err == nil && len(p2.Changes) > 0 {
			var left []string
			for _, ch := range p2.Changes {
				left = append(left, describe(ch))
			}
			return fmt.Errorf("after applying, the API differs from the file: %s; another writer changed it meanwhile (a sync run at the same time?): run sync again", strings.Join(left, "; "))
		}
	}
	return nil
}

// lackingPermissions returns the permissions the plan's changes need
// (as api/routes.go requires them) that the token lacks, by GET
// /auth/v1/me; none when the API does not say.
func lackingPermissions(ctx context.Context, c *apiClient, p *plan) []string {
	var me wire.Me
	if len(p.Changes) == 0 {
		return nil
	}
	if _, err := c.do(ctx, "GET", "/auth/v1/me", nil, nil, &me); err != nil {
		return nil // the changes' own answers will say
	}
	var lacking []string
	for _, ch := range p.Changes {
		if perm := permissionFor(ch); !slices.Contains(me.Permissions, perm) && !slices.Contains(lacking, perm) {
			lacking = append(lacking, perm)
		}
	}
	return lacking
}

// permissionFor is the permission the API requires for ch: an action's
// changes are its dispatcher's update.
func permissionFor(ch *change) string {
	kind := map[string]string{"template": "TEMPLATES", "function": "FUNCTIONS"}[ch.Kind]
	if kind == "" {
		kind = "DISPATCHERS"
	}
	switch {
	case ch.Kind == "action", ch.Op == opUpdate:
		return "UPDATE_" + kind
	case ch.Op == opCreate:
		return "CREATE_" + kind
	}
	return "DELETE_" + kind
}

// failed records a file's problems in the result and returns the error
// that says nothing was changed.
func (res *syncResult) failed(err error) error {
	var ps problems
	if !errors.As(err, &ps) {
		return err
	}
	res.Problems = ps
	word := "problems"
	if len(ps) == 1 {
		word = "problem"
	}
	return fmt.Errorf("%s: %d %s; nothing was changed:\n%s", res.File, len(ps), word, ps.Error())
}

// openSyncFile reads the file at path, or standard input for "-".
func openSyncFile(path string, stdin io.Reader) (*syncFile, error) {
	if path == "-" {
		return readSyncFile(path, stdin)
	}
	fh, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w (the dispatchers file: -f FILE names it, - reads standard input)", err)
	} else if err != nil {
		return nil, err
	}
	defer fh.Close()
	return readSyncFile(path, fh)
}

// parseRenames reads --rename OLD=NEW flags into old → new.
func parseRenames(flags []string) (map[string]string, error) {
	out := map[string]string{}
	news := map[string]bool{}
	for _, f := range flags {
		old, nu, ok := strings.Cut(f, "=")
		if !ok || old == "" || nu == "" || old == nu {
			return nil, fmt.Errorf("--rename %q: want OLD=NEW, two different dispatcher names", f)
		}
		if _, dup := out[old]; dup {
			return nil, fmt.Errorf("--rename %q: %q is renamed twice", f, old)
		}
		if news[nu] {
			return nil, fmt.Errorf("--rename %q: two dispatchers are renamed %q", f, nu)
		}
		out[old], news[nu] = nu, true
	}
	return out, nil
}

// applyPlan makes the plan's calls in order, reporting each change to
// progress, and stops at the first the API refuses: the statuses then
// say exactly what was applied. The changes of one dispatcher (its
// fields, its actions' deletions, updates and creations) go in one
// request, POST /dispatchers/v1/{id}/batch, which applies them together
// or not at all: an event never meets the dispatcher halfway changed,
// and a refusal, an interrupt (Ctrl-C, ctx ends: it stops between
// requests, the one in flight answered) or a change by hand meanwhile
// (If-Match) leaves it whole. Before, each went by itself, and a refused
// creation left a renamed action deleted.
func applyPlan(ctx context.Context, c *apiClient, p *plan, progress io.Writer) error {
	n := len(p.Changes)
	for i := 0; i < n; {
		group := sameTarget(p.Changes[i:])
		first := group[0]
		if ctx.Err() != nil {
			for _, rest := range p.Changes[i:] {
				rest.Status = statusNotApplied
			}
			return fmt.Errorf("interrupted: the %d changes before change %d of %d (%s) were applied, none after them: %w", i, i+1, n, describe(first), context.Cause(ctx))
		}
		method, path, body, places := first.method, first.path, first.body, []string{""}
		if len(group) > 1 {
			method, path = "POST", "/dispatchers/v1/"+first.target+"/batch"
			body, places = batchOf(group)
		}
		var header http.Header
		if first.ifMatch != "" {
			header = http.Header{"If-Match": {first.ifMatch}}
		}
		_, _, err := c.doWith(context.WithoutCancel(ctx), method, path, nil, header, body, nil)
		which := fmt.Sprintf("change %d of %d (%s)", i+1, n, describe(first))
		if len(group) > 1 {
			which = fmt.Sprintf("changes %d–%d of %d (dispatcher %q's, which apply together or not at all)", i+1, i+len(group), n, cmp.Or(first.Dispatcher, first.Name))
		}
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == http.StatusPreconditionFailed {
			err = fmt.Errorf("%s was changed since the plan was made, and is left as it is: run sync again to plan on what it is now (%w)", changedWhat(first), err)
		}
		status := statusApplied
		switch {
		case err == nil:
		case errors.As(err, &ae):
			status = statusFailed
		default:
			status = statusUnknown // sent, with no answer: it may have been applied
		}
		named := max(refusedAt(ae, places), 0) // the change refused; the first, when the refusal is the whole dispatcher's
		for j, ch := range group {
			ch.Status = status
			if err != nil && status == statusFailed && j != named {
				ch.Status = statusNotApplied // refused with it
			} else if err != nil {
				ch.Error = err.Error()
			}
			said := "done"
			if ch.Status != statusApplied {
				said = strings.ToUpper(ch.Status)
			}
			fmt.Fprintf(progress, "[%d/%d] %s: %s\n", i+j+1, n, describe(ch), said)
		}
		if err == nil {
			i += len(group)
			continue
		}
		for _, rest := range p.Changes[i+len(group):] {
			rest.Status = statusNotApplied
		}
		if status == statusUnknown {
			return fmt.Errorf("no answer to %s, which may or may not have been applied; the %d before were: %w", which, i, err)
		}
		return fmt.Errorf("the API refused %s; the %d before were applied, none after: %w", which, i, err)
	}
	return nil
}

// sameTarget returns the changes of one dispatcher at the head of
// changes (the planner puts them together), or its first change alone.
func sameTarget(changes []*change) []*change {
	k := 1
	for k < len(changes) && changes[0].target != "" && changes[k].target == changes[0].target {
		k++
	}
	return changes[:k]
}

// batchOf is the body of POST /dispatchers/v1/{id}/batch that makes the
// changes of one dispatcher, and where each is in it, as the API's
// errors name it ("createActions[0]").
func batchOf(group []*change) (body map[string]any, places []string) {
	body = map[string]any{}
	add := func(key string, v any) string {
		list, _ := body[key].([]any)
		body[key] = append(list, v)
		return fmt.Sprintf("%s[%d]", key, len(list))
	}
	for _, ch := range group {
		actionID := path.Base(ch.path)
		switch {
		case ch.Kind == "dispatcher":
			body["dispatcher"] = ch.body
			places = append(places, "dispatcher")
		case ch.method == "DELETE":
			places = append(places, add("deleteActions", actionID))
		case ch.method == "PUT":
			upd := maps.Clone(ch.body.(map[string]any))
			upd["id"] = actionID
			places = append(places, add("updateActions", upd))
		default:
			places = append(places, add("createActions", ch.body))
		}
	}
	return body, places
}

// refusedAt returns the index of the place in a batch that the API's
// refusal names, or -1 when it names none (the whole dispatcher's: it
// changed, or is gone; or ae is nil, no refusal).
func refusedAt(ae *apiError, places []string) int {
	if ae == nil {
		return -1
	}
	return slices.IndexFunc(places, func(p string) bool {
		return p != "" && (strings.HasPrefix(ae.Body.Message, p+".") || strings.HasPrefix(ae.Body.Message, p+":"))
	})
}

// changedWhat names what a change refused with 412 was made against.
func changedWhat(ch *change) string {
	if ch.Kind == "template" || ch.Kind == "function" {
		return fmt.Sprintf("%s %q", ch.Kind, ch.Name)
	}
	return fmt.Sprintf("dispatcher %q", cmp.Or(ch.Dispatcher, ch.Name))
}

func summary(p *plan) map[string]int {
	s := map[string]int{opCreate: p.count(opCreate), opUpdate: p.count(opUpdate), opDelete: p.count(opDelete)}
	for _, c := range p.Changes {
		if c.Status == statusApplied {
			s["applied"]++
		}
	}
	return s
}

var signs = map[string]string{opCreate: "+", opUpdate: "~", opDelete: "-"}

// describe names a change on one line: ~ action "mail" of dispatcher "gdpr".
func describe(c *change) string {
	s := fmt.Sprintf("%s %s %q", signs[c.Op], c.Kind, c.Name)
	if c.Dispatcher != "" {
		s += fmt.Sprintf(" of dispatcher %q", c.Dispatcher)
	}
	return s
}

// printPlan writes the plan as terraform plan does: one line per change,
// the fields an update changes under it, actions under their dispatcher.
func printPlan(w io.Writer, p *plan, api string) {
	if len(p.Changes) == 0 {
		fmt.Fprintf(w, "No changes: %s matches %s.\n", api, p.File)
		return
	}
	fmt.Fprintf(w, "Plan for %s against %s:\n\n", p.File, api)
	group := ""
	for _, c := range p.Changes {
		note := ""
		if c.Note != "" {
			note = " (" + c.Note + ")"
		}
		if c.Kind == "action" {
			if c.Dispatcher != group {
				fmt.Fprintf(w, "  ~ dispatcher %q\n", c.Dispatcher)
				group = c.Dispatcher
			}
			fmt.Fprintf(w, "      %s action %q (%s)%s\n", signs[c.Op], c.Name, c.Type, note)
			printFields(w, "          ", c.Fields)
			continue
		}
		group = ""
		if c.Kind == "dispatcher" && c.Op == opUpdate {
			group = c.Name
		}
		fmt.Fprintf(w, "  %s %s %q%s\n", signs[c.Op], c.Kind, c.Name, note)
		printFields(w, "      ", c.Fields)
		for _, a := range c.Actions {
			fmt.Fprintf(w, "      + action %q\n", a)
		}
	}
	// A new dispatcher's actions are created with it, in one request (and
	// one step of the progress), but listed each with its + line.
	with, actions := "", 0
	for _, c := range p.Changes {
		actions += len(c.Actions)
	}
	if actions > 0 {
		with = " (" + plural(actions, "action with its dispatcher", "actions with their dispatchers") + ")"
	}
	fmt.Fprintf(w, "\nPlan: %d to create%s, %d to update, %d to delete.\n", p.count(opCreate), with, p.count(opUpdate), p.count(opDelete))
}

func printFields(w io.Writer, indent string, fields []fieldChange) {
	for _, f := range fields {
		fmt.Fprintf(w, "%s%s: %s → %s\n", indent, f.Field, shown(f.Old), shown(f.New))
	}
}

// shown writes a value for a plan line: compact JSON, cut short.
func shown(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	s := strings.TrimSpace(b.String())
	if r := []rune(s); len(r) > 100 {
		s = string(r[:99]) + "…"
	}
	return s
}

// printFailure lists, after a change failed or the sync was interrupted,
// what was applied and what was not. Before, an interrupted sync said the
// API had refused the next change.
func printFailure(w io.Writer, p *plan, interrupted bool) {
	applied, why := 0, "the API refused the next request"
	if interrupted {
		why = "it was interrupted before the next request"
	}
	for _, c := range p.Changes {
		switch c.Status {
		case statusApplied:
			applied++
		case statusUnknown:
			why = "the next request got no answer (it may or may not have been applied)"
		}
	}
	fmt.Fprintf(w, "\nApplied %d of %d changes; %s, and none after it was sent:\n", applied, len(p.Changes), why)
	for _, c := range p.Changes {
		line := fmt.Sprintf("  %-12s %s", c.Status+":", describe(c))
		if c.Error != "" {
			line += ": " + c.Error
		}
		fmt.Fprintln(w, line)
	}
	next := "Fix the cause and run sync again"
	if interrupted {
		next = "Run sync again"
	}
	fmt.Fprintln(w, next+": it plans only what is still missing.")
}

// printResult writes sync --json's answer.
func printResult(w io.Writer, res *syncResult) error {
	if res.Summary == nil {
		res.Summary = map[string]int{opCreate: 0, opUpdate: 0, opDelete: 0, "applied": 0}
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}
