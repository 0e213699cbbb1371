package main

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/wire"
)

// planDispatchers matches the file's dispatchers with the install's by
// name (or by --rename), creates, updates and, with --clean, deletes.
func (p *planner) planDispatchers() {
	inFile := map[string]bool{}
	for _, d := range p.file.Dispatchers {
		inFile[text(d["name"])] = true
	}
	renamedFrom := map[string]string{} // new name → old name, for renames still to make
	for _, old := range slices.Sorted(maps.Keys(p.opts.Renames)) {
		nu := p.opts.Renames[old]
		flag := fmt.Sprintf("--rename %s=%s", old, nu)
		switch {
		case !inFile[nu]:
			p.probs = append(p.probs, fileProblem{File: p.file.Path, Message: flag + ": the file has no dispatcher named " + quote(nu)})
		case inFile[old]:
			p.probs = append(p.probs, fileProblem{File: p.file.Path, Message: flag + ": the file still has a dispatcher named " + quote(old) + "; a rename keeps only the new name"})
		case p.remote.dispatcherByName(nu) != nil && p.remote.dispatcherByName(old) != nil && managed(p.remote.dispatcherByName(old)):
			// NEW created by a run without --rename: renaming OLD onto it
			// is no longer possible, and "No changes" would leave both.
			// (An OLD sync does not manage took the name after the
			// rename: the flag has done its work.)
			p.probs = append(p.probs, fileProblem{File: p.file.Path, Message: fmt.Sprintf(
				"%s: the install has both %s (id %s) and %s (id %s), and both act on their events: one can no longer be renamed onto the other; run sync without --rename, with --clean to delete %s, which the file lacks (or delete the one to go yourself)",
				flag, quote(old), text(p.remote.dispatcherByName(old)["id"]), quote(nu), text(p.remote.dispatcherByName(nu)["id"]), quote(old))})
		case p.remote.dispatcherByName(nu) != nil:
			// Renamed already: a second run has nothing to do.
		case p.remote.dispatcherByName(old) != nil:
			renamedFrom[nu] = old
		default:
			// Kept quiet, a misspelt OLD would create NEW, and --clean
			// delete OLD with its id and history.
			p.plan.Warnings = append(p.plan.Warnings, fmt.Sprintf("%s: the install has no dispatcher named %s (nor %s): %s is created as new; is %s misspelt?",
				flag, quote(old), quote(nu), quote(nu), quote(old)))
		}
	}

	kept := map[string]bool{}       // ids of remote dispatchers the file matches
	inType := map[string][]string{} // names of the file's dispatchers, by event type
	var wants []map[string]any      // their bodies
	for i, d := range p.file.Dispatchers {
		name := text(d["name"])
		have, note := p.remote.dispatcherByName(name), ""
		if old, ok := renamedFrom[name]; ok && have == nil {
			have, note = p.remote.dispatcherByName(old), "renamed from "+quote(old)+" by --rename"
		}
		if have != nil && !managed(have) {
			if !p.opts.Adopt {
				p.problem("dispatcher", d, i, "name", fmt.Sprintf("the install has a dispatcher named %q (id %s) that sync does not manage (no %s tag); rename one of them, or pass --adopt to manage it from this file",
					text(have["name"]), text(have["id"]), managedTag))
				p.desiredDispatcher(i, d) // its other problems, in the same run
				continue
			}
			note = strings.TrimPrefix(note+"; adopted by --adopt", "; ")
		}
		want := p.desiredDispatcher(i, d)
		if want == nil {
			continue
		}
		inType[text(want["eventType"])] = append(inType[text(want["eventType"])], name)
		wants = append(wants, want)
		if have == nil {
			c := &change{Op: opCreate, Kind: "dispatcher", Name: name, method: "POST", path: "/dispatchers/v1", body: want}
			for _, a := range want["actions"].([]any) {
				c.Actions = append(c.Actions, text(a.(map[string]any)["name"]))
			}
			p.add(c)
			continue
		}
		kept[text(have["id"])] = true
		id := url.PathEscape(text(have["id"]))
		if fields, upd := p.dispatcherDiff(want, have); len(fields) > 0 {
			p.add(&change{Op: opUpdate, Kind: "dispatcher", Name: name, Fields: fields, Note: note,
				method: "PUT", path: "/dispatchers/v1/" + id, body: upd, target: id, ifMatch: versionOf(have)})
		}
		p.planActions(name, id, versionOf(have), want["actions"].([]any), objects(asSlice(have["actions"])))
	}
	p.warnUnknownFields()
	p.unorderFirst()
	deleteFirst := p.fitEventTypes(kept, wants)

	if !p.opts.Clean {
		p.warnLeftBehind(kept, inType)
		return
	}
	if !p.file.HasDispatchers {
		// Before, a file of templates alone deleted every managed
		// dispatcher.
		p.probs = append(p.probs, fileProblem{File: p.file.Path, Message: `--clean deletes the managed dispatchers that the file lacks, and it has no "dispatchers": give "dispatchers": [] to delete them all`})
		return
	}
	var early []*change
	for _, d := range p.remote.Dispatchers {
		if managed(d) && !kept[text(d["id"])] {
			// One without a name (made by hand, and tagged) by its id, as
			// a nameless action is: there may be several.
			name := cmp.Or(text(d["name"]), "(no name, id "+text(d["id"])+")")
			c := &change{Op: opDelete, Kind: "dispatcher", Name: name, Note: "--clean: managed by sync, not in the file",
				method: "DELETE", path: "/dispatchers/v1/" + url.PathEscape(text(d["id"])), ifMatch: versionOf(d)}
			if slices.ContainsFunc(asSlice(d["actions"]), func(a any) bool { m, _ := a.(map[string]any); return scheduled(m) }) {
				c.Note += "; " + stillScheduled(text(d["id"]))
			}
			if t := text(d["eventType"]); deleteFirst[t] {
				c.Note += fmt.Sprintf("; deleted before the changes of the file's dispatchers, which would take event type %s past its %d bytes while it stays", quote(t), dispatcher.MaxEventTypeConfig)
				early = append(early, c)
				continue
			}
			if normOrdering(d["ordering"]) != nil {
				// Its key would hold another of its type to it.
				c.Note += "; deleted before the changes of the file's dispatchers, as it is ordered"
				early = append(early, c)
				continue
			}
			p.add(c)
		}
	}
	i := slices.IndexFunc(p.plan.Changes, func(c *change) bool { return c.Kind == "dispatcher" || c.Kind == "action" })
	if i < 0 {
		i = len(p.plan.Changes)
	}
	p.plan.Changes = slices.Concat(p.plan.Changes[:i], early, p.plan.Changes[i:])
}

// unorderFirst moves the updates that remove a dispatcher's ordering,
// with its actions' changes, before the other changes of dispatchers:
// another of its event type may take a new key only once none holds the
// old one (the ordered dispatchers of a type share one). Before, in the
// file's order, such a plan failed at the change of key, and every later
// run did too.
func (p *planner) unorderFirst() {
	first := slices.IndexFunc(p.plan.Changes, func(c *change) bool { return c.Kind == "dispatcher" || c.Kind == "action" })
	if first < 0 {
		return
	}
	rest := p.plan.Changes[first:]
	unordered := map[string]bool{} // targets
	for _, c := range rest {
		body, _ := c.body.(map[string]any)
		if o, ok := body["ordering"]; c.Op == opUpdate && c.Kind == "dispatcher" && ok && normOrdering(o) == nil {
			unordered[c.target] = true
		}
	}
	var moved, others []*change
	for _, c := range rest {
		if unordered[c.target] && c.target != "" {
			moved = append(moved, c)
		} else {
			others = append(others, c)
		}
	}
	p.plan.Changes = slices.Concat(p.plan.Changes[:first], moved, others)
}

// fitEventTypes refuses a plan that would leave an event type the file
// has dispatchers of with a configuration the API refuses as a whole: over
// dispatcher.MaxEventTypeConfig bytes, or ordered by two keys. The API
// checks each write alone, so such a plan failed halfway, the changes
// before applied, and every later run at the same change; a rename of an
// action there (a deletion, then a creation) left the dispatcher without
// it. The install's other dispatchers of the type count as they are,
// those --clean deletes do not; it returns the event types that fit only
// once those are deleted, whose deletions must come first (the changes
// are applied in order, deletions last).
func (p *planner) fitEventTypes(kept map[string]bool, wants []map[string]any) (deleteFirst map[string]bool) {
	deleteFirst = map[string]bool{}
	byType := map[string][]map[string]any{}
	for _, w := range wants {
		byType[text(w["eventType"])] = append(byType[text(w["eventType"])], w)
	}
	deleted := map[string][]map[string]any{}
	for _, d := range p.remote.Dispatchers {
		t := text(d["eventType"])
		if _, ok := byType[t]; !ok || kept[text(d["id"])] {
			continue
		}
		if p.opts.Clean && p.file.HasDispatchers && managed(d) {
			deleted[t] = append(deleted[t], d)
		} else {
			byType[t] = append(byType[t], d)
		}
	}
types:
	for _, t := range slices.Sorted(maps.Keys(byType)) {
		var ds []dispatcher.Dispatcher
		keys := map[string][]string{} // ordering key → names of the dispatchers ordered by it
		for _, body := range byType[t] {
			d, ok := asStored(body)
			if !ok {
				continue types // the file's problems are reported; the API checks the install's
			}
			ds = append(ds, d)
			if d.Ordering != nil {
				keys[d.Ordering.Key] = append(keys[d.Ordering.Key], quote(d.Name))
			}
		}
		size, err := dispatcher.ConfigSize(ds)
		if err == nil && size > dispatcher.MaxEventTypeConfig {
			p.probs = append(p.probs, fileProblem{File: p.file.Path, Message: fmt.Sprintf(
				"event type %s: its dispatchers would hold about %d bytes of JSON after this plan (the file's and the install's others); one event type may hold at most %d: make their actions' data smaller, or fewer",
				quote(t), size, dispatcher.MaxEventTypeConfig)})
		}
		for _, body := range deleted[t] {
			if d, ok := asStored(body); ok {
				ds = append(ds, d)
			}
		}
		if peak, err := dispatcher.ConfigSize(ds); err == nil && size <= dispatcher.MaxEventTypeConfig && peak > dispatcher.MaxEventTypeConfig {
			deleteFirst[t] = true
		}
		if len(keys) > 1 {
			var by []string
			for _, k := range slices.Sorted(maps.Keys(keys)) {
				by = append(by, fmt.Sprintf("%s (%s)", quote(k), strings.Join(keys[k], ", ")))
			}
			p.probs = append(p.probs, fileProblem{File: p.file.Path, Message: fmt.Sprintf(
				"event type %s: its dispatchers would be ordered by %s; the ordered dispatchers of an event type share one key",
				quote(t), strings.Join(by, " and by "))})
		}
	}
	return deleteFirst
}

// asStored is a dispatcher's body (the file's, or the install's answer)
// as the store keeps and a dispatch records it, ids and times included,
// to measure it (dispatcher.ConfigSize).
func asStored(body map[string]any) (dispatcher.Dispatcher, bool) {
	raw, err := json.Marshal(body)
	var req wire.DispatcherRequest
	if err != nil || json.Unmarshal(raw, &req) != nil {
		return dispatcher.Dispatcher{}, false
	}
	d, err := req.ToDomain()
	if err != nil {
		return dispatcher.Dispatcher{}, false
	}
	const id = "000000000000000000000000"
	now := time.Now().UTC().Truncate(time.Millisecond)
	d.ID, d.Created, d.Updated = id, now, now
	for i := range d.Actions {
		a := &d.Actions[i]
		a.ID, a.Created, a.Updated = id, now, now
		if a.Type == dispatcher.ActionMail && a.TemplateID == "" {
			a.TemplateID = id // named by templateName, resolved when applied
		}
	}
	return d, true
}

// warnLeftBehind warns of each managed dispatcher the file lacks, kept
// without --clean, whose event type a dispatcher of the file has too: a
// dispatcher renamed in the file without --rename would otherwise act on
// its events twice, as the old one and as the new, without a word; on
// every run, not only the one that creates the new one.
func (p *planner) warnLeftBehind(kept map[string]bool, inType map[string][]string) {
	for _, d := range p.remote.Dispatchers {
		news := inType[text(d["eventType"])]
		if !managed(d) || kept[text(d["id"])] || len(news) == 0 {
			continue
		}
		old, nu := text(d["name"]), news[0]
		how := fmt.Sprintf("--rename %s=%s renames it instead, --clean deletes it", old, nu)
		if p.remote.dispatcherByName(nu) != nil {
			how = "--clean deletes it"
		}
		p.plan.Warnings = append(p.plan.Warnings, fmt.Sprintf("dispatcher %s, managed by sync, is not in the file and stays (without --clean): it acts on event type %s as %s does; %s",
			quote(old), quote(text(d["eventType"])), quote(nu), how))
	}
}

// versionOf is the ETag of the remote dispatcher d as the plan read it, so
// that its update or deletion applies to that version only: a dispatcher
// changed meanwhile (unmanaged by hand, say) is refused with 412, not
// overwritten or deleted. "" when d does not say.
func versionOf(d map[string]any) string {
	ts, ok := d["updateTimestamp"].(json.Number)
	if !ok {
		return ""
	}
	return `"` + ts.String() + `"`
}

// etagOf is the version of a template or function as the API lists it.
func etagOf(updateTimestamp int64) string { return `"` + strconv.FormatInt(updateTimestamp, 10) + `"` }

// readOnly are the fields the API writes; a file may carry them (an SDK
// dump does) and sync ignores them.
var readOnly = map[string]bool{"id": true, "creationTimestamp": true, "updateTimestamp": true}

// desiredDispatcher is the body that creates dispatcher i of the file: its
// fields as they are, the managed tag added, each mail action's template
// resolved. It checks the dispatcher as the API will, and returns nil
// when it has problems.
func (p *planner) desiredDispatcher(i int, d map[string]any) map[string]any {
	before := len(p.probs)
	body := map[string]any{}
	for k, v := range d {
		if !readOnly[k] {
			body[k] = v
		}
	}
	tags := stringList(d["tags"])
	if !slices.Contains(tags, managedTag) {
		tags = append(tags, managedTag)
	}
	body["tags"] = tags
	actions := []any{}
	for j, a := range objects(asSlice(d["actions"])) {
		actions = append(actions, p.desiredAction(i, d, j, a))
	}
	body["actions"] = actions
	for _, err := range validateDispatcher(p.asChecked(body)) {
		p.probs = append(p.probs, domainProblem(p.file.Path, "dispatcher", d, i, err))
	}
	if len(p.probs) > before {
		return nil
	}
	return body
}

// asChecked is body as validateDispatcher checks it: the names the
// install has already (the dispatcher's, its actions') with their control
// characters read as spaces. They were stored before names refused them,
// and sync checks its file as creates: before, a file exported from such
// an install was refused whole.
func (p *planner) asChecked(body map[string]any) map[string]any {
	have := p.remote.dispatcherByName(text(body["name"]))
	if have == nil {
		return body
	}
	out := maps.Clone(body)
	out["name"] = storedName(text(body["name"]))
	stored := map[string]bool{}
	for _, a := range objects(asSlice(have["actions"])) {
		stored[text(a["name"])] = true
	}
	var actions []any
	for _, a := range body["actions"].([]any) {
		if a, ok := a.(map[string]any); ok && stored[text(a["name"])] {
			c := maps.Clone(a)
			c["name"] = storedName(text(a["name"]))
			actions = append(actions, c)
			continue
		}
		actions = append(actions, a)
	}
	out["actions"] = actions
	return out
}

// storedName is a name the install has, for the checks of a create: its
// control characters, which it may hold from before they were refused,
// read as spaces.
func storedName(name string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, name)
}

// desiredAction is the body of action j of dispatcher i. A templateName
// wins over a templateId, as in the Extra Horizon CLI; a template this
// plan creates is left to the API to resolve by name.
func (p *planner) desiredAction(i int, d map[string]any, j int, a map[string]any) map[string]any {
	body := map[string]any{}
	for k, v := range a {
		if !readOnly[k] {
			body[k] = v
		}
	}
	at := func(f string) string { return fmt.Sprintf("actions[%d].%s", j, f) }
	switch text(a["type"]) {
	case dispatcher.ActionMail:
		tid, tname := text(a["templateId"]), text(a["templateName"])
		switch {
		case tname != "":
			if t := p.remote.templateByName(tname); t != nil {
				body["templateId"] = t.ID
				delete(body, "templateName")
			} else if p.newTemplates[tname] {
				delete(body, "templateId")
			} else {
				p.problem("dispatcher", d, i, at("templateName"), fmt.Sprintf("no template named %q on the install or in the file's templates", tname))
			}
		case tid != "":
			if p.remote.templateByID(tid) == nil {
				p.problem("dispatcher", d, i, at("templateId"), fmt.Sprintf("no template with id %q on the install: template ids of another install (Extra Horizon's among them) do not carry over; name the template with templateName instead, and define it under templates", tid))
			}
		default:
			p.problem("dispatcher", d, i, at("templateId"), "a mail action needs templateId or templateName")
		}
	case dispatcher.ActionTask:
		if fn := text(a["functionName"]); !p.functions[fn] {
			p.problem("dispatcher", d, i, at("functionName"), fmt.Sprintf("no function named %q on the install or in the file's functions", fn))
		}
		if v, ok := a["startTimestamp"]; ok && v != nil {
			raw, _ := json.Marshal(v)
			if _, err := wire.ParseTimestamp(raw); err != nil {
				p.problem("dispatcher", d, i, at("startTimestamp"), err.Error())
			}
		}
	}
	return body
}

// validTimestamp reports whether raw is a startTimestamp the API takes.
func validTimestamp(raw []byte) bool {
	_, err := wire.ParseTimestamp(raw)
	return err == nil
}

// validateDispatcher checks a create body with the API's own validation,
// and returns every problem it finds, not the first as the API does: the
// dispatcher's own fields', each action's apart, then, when those pass,
// what concerns them together (a name twice, their count). A file with a
// problem in each of five actions took five runs to fix.
func validateDispatcher(body map[string]any) []error {
	var actions []any
	for _, a := range body["actions"].([]any) {
		a := maps.Clone(a.(map[string]any))
		if a["type"] == dispatcher.ActionMail && text(a["templateId"]) == "" {
			a["templateId"] = "000000000000000000000000" // resolved by name when applied
		}
		if v := a["startTimestamp"]; v != nil {
			// desiredAction reports one that does not parse; decoding it
			// here would report it again, and hide what follows.
			if raw, _ := json.Marshal(v); !validTimestamp(raw) {
				delete(a, "startTimestamp")
			}
		}
		actions = append(actions, a)
	}
	own := maps.Clone(body)
	own["actions"] = []any{}
	var errs []error
	if err := validateBody(own); err != nil {
		errs = append(errs, err)
	}
	for i, a := range actions {
		if err := validateBody(map[string]any{"name": "n", "eventType": "t", "actions": []any{a}}); err != nil {
			errs = append(errs, reindexed(err, i))
		}
	}
	if len(errs) > 0 {
		return errs
	}
	whole := maps.Clone(body)
	whole["actions"] = actions
	if err := validateBody(whole); err != nil {
		return []error{err}
	}
	return nil
}

// validateBody checks a dispatcher's create body as the API does.
func validateBody(body map[string]any) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	var req wire.DispatcherRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		return err
	}
	d, err := req.ToDomain()
	if err != nil {
		return err
	}
	return d.Validate()
}

// reindexed is the problem of a dispatcher's only action, checked apart,
// as that of its action i.
func reindexed(err error, i int) error {
	var de *dispatcher.Error
	if errors.As(err, &de) {
		return dispatcher.Errorf(de.Code, "actions[%d].%s", i, strings.TrimPrefix(de.Message, "actions[0]."))
	}
	return fmt.Errorf("actions[%d]: %w", i, err)
}

// planActions syncs the actions of a dispatcher the install has, by name:
// deletions first (so that a name freed is free), then updates, then
// creations. An action whose type changes is deleted and created again.
func (p *planner) planActions(dispatcherName, id, version string, want []any, have []map[string]any) {
	// At the version of the dispatcher the plan read: applyPlan sends a
	// dispatcher's changes together.
	add := func(c *change) {
		c.target, c.ifMatch = id, version
		p.add(c)
	}
	wantByName := map[string]map[string]any{}
	for _, a := range want {
		wantByName[text(a.(map[string]any)["name"])] = a.(map[string]any)
	}
	haveByName := map[string]map[string]any{}
	for _, h := range have {
		name := text(h["name"])
		haveByName[name] = h
		w, ok := wantByName[name]
		c := &change{Op: opDelete, Kind: "action", Name: name, Dispatcher: dispatcherName, Type: text(h["type"]),
			method: "DELETE", path: "/dispatchers/v1/" + id + "/actions/" + url.PathEscape(text(h["id"]))}
		switch {
		case name == "":
			// export leaves it out too: said, not deleted without a word.
			c.Name = "(no name, id " + text(h["id"]) + ")"
			c.Note = "sync matches actions by name, and this one has none: to keep it, name it in the install and in the file"
			add(c)
		case !ok:
			if scheduled(h) {
				c.Note = stillScheduled(id)
			}
			add(c)
		case text(w["type"]) != text(h["type"]):
			c.Note = fmt.Sprintf("its type changes from %s to %s: deleted, then created again", text(h["type"]), text(w["type"]))
			if scheduled(h) {
				c.Note += "; " + stillScheduled(id)
			}
			add(c)
		}
	}
	for _, a := range want {
		w := a.(map[string]any)
		name := text(w["name"])
		if h := haveByName[name]; h != nil && text(h["type"]) == text(w["type"]) {
			if fields, upd := p.actionDiff(w, h); len(fields) > 0 {
				add(&change{Op: opUpdate, Kind: "action", Name: name, Dispatcher: dispatcherName, Type: text(w["type"]), Fields: fields,
					method: "PUT", path: "/dispatchers/v1/" + id + "/actions/" + url.PathEscape(text(h["id"])), body: upd})
			}
		}
	}
	for _, a := range want {
		w := a.(map[string]any)
		name := text(w["name"])
		if h := haveByName[name]; h == nil || text(h["type"]) != text(w["type"]) {
			add(&change{Op: opCreate, Kind: "action", Name: name, Dispatcher: dispatcherName, Type: text(w["type"]),
				method: "POST", path: "/dispatchers/v1/" + id + "/actions", body: w})
		}
	}
}

// warnUnknownFields warns about fields of the file that neither this
// client nor any dispatcher of the install knows: a typo, or a field of a
// newer API. They are sent when their dispatcher or action is created, and
// not compared: an API that ignores them would show them changed on every
// run, and refuse an update of nothing else.
func (p *planner) warnUnknownFields() {
	for _, d := range p.file.Dispatchers {
		for _, k := range slices.Sorted(maps.Keys(d)) {
			_, ext := dispatcherExtensions[k]
			if !coreDispatcherFields[k] && !readOnly[k] && !ext && !p.installFields["d."+k] {
				p.plan.Warnings = append(p.plan.Warnings, fmt.Sprintf("%s: dispatcher %q: %s: a field neither sync nor the install knows; it is sent on creation, and not compared", p.file.Path, text(d["name"]), k))
			}
		}
		for j, a := range objects(asSlice(d["actions"])) {
			for _, k := range slices.Sorted(maps.Keys(a)) {
				if !knownActionFields[k] && !readOnly[k] && !p.installFields["a."+k] {
					p.plan.Warnings = append(p.plan.Warnings, fmt.Sprintf("%s: dispatcher %q: actions[%d].%s: a field neither sync nor the install knows; it is sent on creation, and not compared", p.file.Path, text(d["name"]), j, k))
				}
			}
		}
	}
}

// scheduled reports whether action a runs at a startTimestamp: its
// dispatches may be waiting for it.
func scheduled(a map[string]any) bool {
	return a["startTimestamp"] != nil
}

// stillScheduled says, of a deletion, that what the dispatches of
// dispatcher id scheduled still runs, and how to call it off. Before, a
// plan deleting it said nothing of it, and the calls came all the same.
func stillScheduled(id string) string {
	return "the actions its dispatches scheduled (startTimestamp) still run: `dispatcher executions list --status scheduled --dispatcher-id " + id +
		"` finds those dispatches, and `dispatcher executions cancel` calls off what each has still to run, of every dispatcher"
}
