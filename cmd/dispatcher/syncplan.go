package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/wire"
)

// planOptions are the flags of sync that change what it plans.
type planOptions struct {
	Clean         bool              // delete managed dispatchers the file lacks
	Adopt         bool              // manage unmanaged dispatchers the file names
	UpdateSecrets bool              // write secrets and header values the API already has
	Renames       map[string]string // dispatcher renames: old name → new name
	Getenv        func(string) string
	// AllowEnv names variables besides a function's own (secretEnvName,
	// headerEnvName) that secretEnv and headersEnv may name (--allow-env).
	AllowEnv []string
	// DryRun plans only: a secret's variable that is not set is a warning
	// (a plan needs no secret, e.g. in a pull request's check), not a
	// problem.
	DryRun bool
}

// Operations of a change, and its statuses.
const (
	opCreate = "create"
	opUpdate = "update"
	opDelete = "delete"

	statusPlanned    = "planned"
	statusApplied    = "applied"
	statusFailed     = "failed"
	statusUnknown    = "unknown" // sent, but no answer came: it may have been applied
	statusNotApplied = "not applied"
)

// change is one call to the API that a plan makes, and what it changes.
type change struct {
	Op         string        `json:"op"`
	Kind       string        `json:"kind"` // template, function, dispatcher, action
	Name       string        `json:"name"`
	Dispatcher string        `json:"dispatcher,omitempty"` // an action's, by its name in the file
	Type       string        `json:"type,omitempty"`       // an action's: mail or task
	Fields     []fieldChange `json:"fields,omitempty"`     // what an update changes
	Actions    []string      `json:"actions,omitempty"`    // created with a dispatcher
	Note       string        `json:"note,omitempty"`
	Status     string        `json:"status"`
	Error      string        `json:"error,omitempty"`

	method, path string
	body         any // may hold secrets: never printed
	// target is the id of the dispatcher an update or deletion changes
	// (its own, or of its actions'), ifMatch its version the plan read
	// (or a template's or function's it updates): one changed meanwhile
	// is refused (412), not overwritten.
	target, ifMatch string
}

// fieldChange is one field of an update: what it is and what it becomes.
type fieldChange struct {
	Field string `json:"field"`
	Old   any    `json:"old"`
	New   any    `json:"new"`
}

// plan is every change that brings the API to what a file says, in the
// order they apply: templates and functions before the dispatchers that
// name them, deletions last (but see fitDispatchers).
type plan struct {
	File     string    `json:"file"`
	Changes  []*change `json:"changes"`
	Warnings []string  `json:"warnings,omitempty"`
}

// count returns how many changes of op the plan holds.
func (p *plan) count(op string) int {
	return countFunc(p.Changes, func(c *change) bool { return c.Op == op })
}

// planner builds a plan; every problem it finds is collected, so that a
// file with several mistakes shows them all before anything changes.
type planner struct {
	file         *syncFile
	remote       *remoteState
	opts         planOptions
	plan         *plan
	probs        problems
	newTemplates map[string]bool // created by this plan
	functions    map[string]bool // named in the file or on the install
	// installFields holds the fields the install's dispatchers ("d."+name)
	// and their actions ("a."+name) have: those its API knows.
	installFields map[string]bool
}

// makePlan compares a file with the API's configuration. It returns the
// plan, or problems when the file cannot be applied as it is.
func makePlan(f *syncFile, remote *remoteState, opts planOptions) (*plan, error) {
	if opts.Getenv == nil {
		opts.Getenv = func(string) string { return "" }
	}
	p := &planner{file: f, remote: remote, opts: opts, plan: &plan{File: f.Path, Changes: []*change{}},
		newTemplates: map[string]bool{}, functions: map[string]bool{}, installFields: map[string]bool{}}
	for _, d := range remote.Dispatchers {
		for k := range d {
			p.installFields["d."+k] = true
		}
		for _, a := range objects(asSlice(d["actions"])) {
			for k := range a {
				p.installFields["a."+k] = true
			}
		}
	}
	for _, fn := range remote.Functions {
		p.functions[fn.Name] = true
	}
	p.planTemplates()
	p.planFunctions()
	p.planDispatchers()
	p.fitDispatchers()
	if len(p.probs) > 0 {
		return nil, p.probs
	}
	for _, c := range p.plan.Changes {
		c.Status = statusPlanned
	}
	return p.plan, nil
}

func (p *planner) problem(kindName string, item map[string]any, i int, field, msg string) {
	p.probs = append(p.probs, itemProblem(p.file.Path, kindName, item, i, field, msg))
}

func (p *planner) add(c *change) { p.plan.Changes = append(p.plan.Changes, c) }

// planTemplates creates the file's templates that the install lacks and
// updates those that differ.
func (p *planner) planTemplates() {
	for i, t := range p.file.Templates {
		name := text(t["name"])
		want := map[string]any{"name": name, "subject": text(t["subject"]), "text": text(t["text"]), "html": text(t["html"])}
		var check dispatcher.Template
		checked := name
		if p.remote.templateByName(name) != nil {
			checked = storedName(name)
		}
		u := dispatcher.TemplateUpdate{Name: &checked, Subject: ptr(text(t["subject"])), Text: ptr(text(t["text"])), HTML: ptr(text(t["html"]))}
		have := p.remote.templateByName(name)
		if have == nil {
			p.newTemplates[name] = true // a dispatcher naming it is told of its problems, not that it does not exist
		}
		if err := u.Apply(&check); err != nil {
			p.probs = append(p.probs, domainProblem(p.file.Path, "template", t, i, err))
			continue
		}
		if have == nil {
			p.add(&change{Op: opCreate, Kind: "template", Name: name, method: "POST", path: "/templates/v1", body: want})
			continue
		}
		var fields []fieldChange
		upd := map[string]any{}
		for _, f := range []struct{ name, old string }{{"subject", have.Subject}, {"text", have.Text}, {"html", have.HTML}} {
			if w := want[f.name].(string); w != f.old {
				fields = append(fields, fieldChange{f.name, f.old, w})
				upd[f.name] = w
			}
		}
		if len(fields) > 0 {
			p.add(&change{Op: opUpdate, Kind: "template", Name: name, Fields: fields,
				method: "PUT", path: "/templates/v1/" + url.PathEscape(have.ID), body: upd, ifMatch: etagOf(have.UpdateTimestamp)})
		}
	}
}

// fileFlow reads a file function's flow control: what it leaves out is
// none.
func fileFlow(fn map[string]any) (dispatcher.FunctionUpdate, error) {
	raw, err := json.Marshal(map[string]any{"rateLimit": fn["rateLimit"], "maxConcurrency": fn["maxConcurrency"], "circuitBreaker": fn["circuitBreaker"]})
	if err != nil {
		return dispatcher.FunctionUpdate{}, err
	}
	var r wire.FunctionRequest
	if err := json.Unmarshal(raw, &r); err != nil {
		return dispatcher.FunctionUpdate{}, dispatcher.Errorf(dispatcher.EINVALID, "flow control: %v", err)
	}
	return r.Update(), nil
}

// planFunctions creates and updates the file's functions. Their secrets
// and header values come from the environment, and only when the API
// needs them: it never shows them, so they cannot be compared.
func (p *planner) planFunctions() {
	owners := p.envOwners()
	for i, fn := range p.file.Functions {
		name := text(fn["name"])
		p.functions[name] = true
		have := p.remote.functionByName(name)
		kindName := text(fn["kind"])
		if kindName == "" {
			kindName = dispatcher.FunctionHTTP
		}
		want := map[string]any{"kind": kindName, "url": text(fn["url"]), "taskQueue": text(fn["taskQueue"])}
		if kindName == dispatcher.FunctionHTTP {
			secs := int(dispatcher.DefaultFunctionTimeout.Seconds())
			if n, ok := intOf(fn["timeoutSeconds"]); ok {
				secs = n
			}
			want["timeoutSeconds"] = secs
		}

		secretEnv := text(fn["secretEnv"])
		headersEnv := map[string]string{}
		for h, env := range asMap(fn["headersEnv"]) {
			headersEnv[h] = text(env)
		}
		headerNames := slices.Sorted(maps.Keys(headersEnv))
		// A file changed in a pull request must not send another
		// function's secrets, or the runner's other credentials, to a URL
		// of its choosing: a function reads only its own variables, as
		// export names them, or those --allow-env allows it.
		kept := have != nil && dispatcher.SameTarget(text(want["url"]), have.URL)
		allowed := func(field, variable, want string) bool {
			other := slices.IndexFunc(owners[variable], func(o string) bool { return o != name })
			switch {
			case ownVariable(variable):
				p.problem("function", fn, i, field, variable+" configures dispatcher itself; a function's secret is read from a variable of its own")
				return false
			case slices.Contains(p.opts.AllowEnv, name+"="+variable):
			case slices.Contains(p.opts.AllowEnv, variable) && kept:
				// Where the install already sends this function's calls;
				// but any function it has may read it so.
				p.plan.Warnings = append(p.plan.Warnings, fmt.Sprintf("%s: function %q reads %s by a bare --allow-env, which lets any function the install has read it; --allow-env %s=%s allows it to this one alone",
					p.file.Path, name, variable, name, variable))
			case slices.Contains(p.opts.AllowEnv, variable):
				p.problem("function", fn, i, field, fmt.Sprintf("--allow-env %s allows it to a function the install has, at the URL it has; "+
					"this one is new or moves to another URL, which the file chooses: allow it to this function alone with --allow-env %s=%s",
					variable, name, variable))
				return false
			case variable != want:
				p.problem("function", fn, i, field, fmt.Sprintf("%s is not this function's variable: sync reads it from %s (as export names it), "+
					"or from a variable named with --allow-env: a file must not send other credentials to a URL of its choosing", variable, want))
				return false
			case other >= 0:
				p.problem("function", fn, i, field, fmt.Sprintf("%s is also the variable of function %q, which export names alike: "+
					"name another variable with --allow-env", variable, owners[variable][other]))
				return false
			}
			return true
		}
		// Every variable the file names is checked, whether or not this
		// sync reads it: one the file may not name would otherwise pass
		// every sync until the one that writes the secret (--update-secrets,
		// a new URL), long after the change that named it was merged.
		ok := map[string]bool{}
		if secretEnv != "" {
			ok["secretEnv"] = allowed("secretEnv", secretEnv, secretEnvName(name))
		}
		for _, h := range headerNames {
			ok["headersEnv."+h] = allowed("headersEnv."+h, headersEnv[h], headerEnvName(name, h))
		}
		env := func(field, variable string) string {
			if !ok[field] {
				return ""
			}
			v := p.opts.Getenv(variable)
			msg := fmt.Sprintf("the environment variable %s is not set (or empty); it holds the value, which is never written in the file", variable)
			switch {
			case v != "":
			case p.opts.DryRun:
				p.plan.Warnings = append(p.plan.Warnings, itemProblem(p.file.Path, "function", fn, i, field, msg+"; the sync itself needs it").String())
			default:
				p.problem("function", fn, i, field, msg)
			}
			return v
		}
		var fields []fieldChange
		upd := map[string]any{}
		if have != nil {
			old := map[string]any{"kind": have.Kind, "url": have.URL, "taskQueue": have.TaskQueue, "timeoutSeconds": have.TimeoutSeconds}
			for _, f := range []string{"kind", "url", "timeoutSeconds", "taskQueue"} {
				w, ok := want[f]
				if !ok {
					continue
				}
				if canon(w) != canon(old[f]) {
					fields = append(fields, fieldChange{f, old[f], w})
					upd[f] = w
				}
			}
		}
		// The secret: written when the API lacks one, or with --update-secrets,
		// or to another URL, which the API has it sent again for.
		moved := have != nil && upd["url"] != nil && !dispatcher.SameTarget(text(upd["url"]), have.URL)
		rewrite := p.opts.UpdateSecrets || moved
		if moved && !p.opts.UpdateSecrets && (have.HasSecret && secretEnv != "" || len(have.HeaderNames) > 0 && len(headerNames) > 0) {
			// The file chooses the URL: a pull request that changes it
			// alone must not have the runner send the function's
			// credentials there unasked, which the API, asking for them
			// again, means to prevent.
			msg := fmt.Sprintf("moves function %q to another URL, where its secret and header values would be sent; "+
				"the file chooses that URL, so sync sends them there only with --update-secrets", name)
			if p.opts.DryRun {
				p.plan.Warnings = append(p.plan.Warnings, itemProblem(p.file.Path, "function", fn, i, "url", msg).String())
			} else {
				p.problem("function", fn, i, "url", msg)
			}
		}
		switch {
		case secretEnv != "" && (have == nil || !have.HasSecret || rewrite):
			upd["secret"] = env("secretEnv", secretEnv)
			if have != nil {
				fields = append(fields, fieldChange{"secret", secretLabel(have.HasSecret), "from $" + secretEnv})
			}
		case secretEnv == "" && have != nil && have.HasSecret:
			upd["secret"] = ""
			fields = append(fields, fieldChange{"secret", "(set)", "(none)"})
		}
		// Header values likewise: written when the names differ.
		haveHeaders := []string{}
		if have != nil {
			haveHeaders = slices.Sorted(slices.Values(have.HeaderNames))
		}
		if (len(headerNames) > 0 && (have == nil || !slices.Equal(headerNames, haveHeaders) || rewrite)) ||
			(len(headerNames) == 0 && len(haveHeaders) > 0) {
			values := map[string]string{}
			for _, h := range headerNames {
				values[h] = env("headersEnv."+h, headersEnv[h])
			}
			upd["headers"] = values
			if have != nil {
				fields = append(fields, fieldChange{"headers", haveHeaders, headerLabel(headerNames, headersEnv)})
			}
		}

		// What the API would refuse, checked here, but for outbound
		// safety: only the server knows what it allows.
		checked := name
		if have != nil {
			checked = storedName(name)
		}
		check := dispatcher.FunctionUpdate{Name: &checked, Kind: &kindName, URL: ptr(text(fn["url"])), TaskQueue: ptr(text(fn["taskQueue"]))}
		if s, ok := upd["secret"].(string); ok {
			check.Secret = &s
		}
		if h, ok := upd["headers"].(map[string]string); ok {
			check.Headers = &h
		}
		if secs, ok := want["timeoutSeconds"].(int); ok {
			d := time.Duration(secs) * time.Second
			check.Timeout = &d
		}
		flow, err := fileFlow(fn)
		if err != nil {
			p.probs = append(p.probs, domainProblem(p.file.Path, "function", fn, i, err))
			continue
		}
		check.RateLimit, check.MaxConcurrency, check.CircuitBreaker = flow.RateLimit, flow.MaxConcurrency, flow.CircuitBreaker
		var f dispatcher.Function
		if err := check.Apply(&f); err != nil {
			p.probs = append(p.probs, domainProblem(p.file.Path, "function", fn, i, err))
			continue
		}
		// Flow control as the file says, its defaults filled in as the
		// API fills them, so that a file that leaves them out plans
		// nothing; pausedUntil is not the file's: a pause by hand
		// outlives a sync.
		wf, hf := wire.FromFunction(f), wire.Function{}
		if have != nil {
			hf = *have
		}
		for _, fc := range []struct {
			field      string
			want, have any
		}{
			{"rateLimit", wf.RateLimit, hf.RateLimit},
			{"maxConcurrency", wf.MaxConcurrency, hf.MaxConcurrency},
			{"circuitBreaker", wf.CircuitBreaker, hf.CircuitBreaker},
		} {
			if canon(fc.want) == canon(fc.have) {
				continue
			}
			upd[fc.field] = fc.want
			if have != nil {
				fields = append(fields, fieldChange{fc.field, fc.have, fc.want})
			}
		}

		if have == nil {
			body := map[string]any{"name": name}
			maps.Copy(body, want)
			maps.Copy(body, upd)
			p.add(&change{Op: opCreate, Kind: "function", Name: name, method: "POST", path: "/functions/v1", body: body})
			continue
		}
		if len(fields) > 0 {
			p.add(&change{Op: opUpdate, Kind: "function", Name: name, Fields: fields,
				method: "PUT", path: "/functions/v1/" + url.PathEscape(have.ID), body: upd, ifMatch: etagOf(have.UpdateTimestamp)})
		}
	}
}

// secretEnvName and headerEnvName name the variables that hold a
// function's secret and a header's value: export writes them, and sync
// reads no other without --allow-env.
func secretEnvName(function string) string { return "DISPATCHER_SECRET_" + envName(function) }

func headerEnvName(function, header string) string {
	return "DISPATCHER_HEADER_" + envName(function) + "_" + envName(header)
}

// envOwners returns, for each variable export would name for the
// functions of the install and the file, the functions it would name it
// for. Its names are not one to one ("erase" and "Erase" share
// DISPATCHER_SECRET_ERASE; X-Api-Key of "erase" and Api-Key of "erase-x"
// share DISPATCHER_HEADER_ERASE_X_API_KEY): a file must not add a
// function named to read another's variable.
func (p *planner) envOwners() map[string][]string {
	owners := map[string][]string{}
	own := func(function string, headers []string) {
		owners[secretEnvName(function)] = append(owners[secretEnvName(function)], function)
		for _, h := range headers {
			owners[headerEnvName(function, h)] = append(owners[headerEnvName(function, h)], function)
		}
	}
	for _, f := range p.remote.Functions {
		own(f.Name, f.HeaderNames)
	}
	for _, fn := range p.file.Functions {
		own(text(fn["name"]), slices.Collect(maps.Keys(asMap(fn["headersEnv"]))))
	}
	return owners
}

func secretLabel(set bool) string {
	if set {
		return "(set)"
	}
	return "(none)"
}

func headerLabel(names []string, env map[string]string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = n + " from $" + env[n]
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func quote(s string) string { return fmt.Sprintf("%q", s) }

// fitDispatchers keeps the plan within the dispatchers a tenant may hold
// (dispatcher.MaxDispatchers). A plan that would leave more is refused
// before anything changes. One that would only pass the limit in between,
// creating before --clean deletes, deletes first: applied in order it
// would fail at the first creation past the limit, halfway, and every
// later run again at the same place, never reaching the deletions.
func (p *planner) fitDispatchers() {
	isCreate := func(c *change) bool { return c.Kind == "dispatcher" && c.Op == opCreate }
	isDelete := func(c *change) bool { return c.Kind == "dispatcher" && c.Op == opDelete }
	have := len(p.remote.Dispatchers)
	creates, deletes := countFunc(p.plan.Changes, isCreate), countFunc(p.plan.Changes, isDelete)
	if after := have + creates - deletes; after > dispatcher.MaxDispatchers {
		p.probs = append(p.probs, fileProblem{File: p.file.Path, Message: fmt.Sprintf(
			"the tenant has %d dispatchers and would have %d after this plan (%d created, %d deleted): a tenant may hold %d",
			have, after, creates, deletes, dispatcher.MaxDispatchers)})
		return
	}
	if have+creates <= dispatcher.MaxDispatchers || creates == 0 || deletes == 0 {
		return
	}
	var dels, rest []*change
	for _, c := range p.plan.Changes {
		if isDelete(c) {
			c.Note = fmt.Sprintf("%s; deleted before the creations, which would pass the %d dispatchers a tenant may hold", c.Note, dispatcher.MaxDispatchers)
			dels = append(dels, c)
		} else {
			rest = append(rest, c)
		}
	}
	i := slices.IndexFunc(rest, isCreate)
	p.plan.Changes = slices.Concat(rest[:i], dels, rest[i:])
}

// countFunc counts the elements of s for which f is true.
func countFunc[T any](s []T, f func(T) bool) int {
	n := 0
	for _, v := range s {
		if f(v) {
			n++
		}
	}
	return n
}
