package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/wire"
)

// The fields of a dispatcher that the Extra Horizon API has, and those of
// an action that sync knows; other fields are extensions.
var (
	coreDispatcherFields = map[string]bool{"name": true, "eventType": true, "description": true, "tags": true, "actions": true}
	knownActionFields    = map[string]bool{"type": true, "name": true, "description": true, "recipients": true, "templateId": true,
		"templateName": true, "functionName": true, "data": true, "tags": true, "startTimestamp": true, "retryPolicy": true}
)

// extension is a dispatcher field of this API that Extra Horizon lacks.
// A file that leaves it out means its default: sync sets clear to return
// to it. Extensions not listed here are compared only when a file sets
// them, and left as they are otherwise.
type extension struct {
	def, clear any
	norm       func(any) any // nil: the value as it is
}

var dispatcherExtensions = map[string]extension{
	"enabled":  {def: true, clear: true},
	"filter":   {def: "", clear: ""},
	"ordering": {def: nil, clear: map[string]any{}, norm: normOrdering},
}

func (e extension) normalize(v any) any {
	if e.norm != nil {
		return e.norm(v)
	}
	return v
}

// isDefault reports whether v (present) is what leaving the field out means.
func (e extension) isDefault(v any) bool { return canon(e.normalize(v)) == canon(e.normalize(e.def)) }

// normOrdering fills in onFailure's default, which the API answers with.
func normOrdering(v any) any {
	m := asMap(v)
	if len(m) == 0 {
		return nil
	}
	out := map[string]any{"key": text(m["key"]), "onFailure": text(m["onFailure"])}
	if out["onFailure"] == "" {
		out["onFailure"] = dispatcher.OrderingBlock
	}
	return out
}

// dispatcherDiff compares a create body with a remote dispatcher; it
// returns the fields that differ and the PUT body that changes them.
// A field that sync and the install do not know is not compared
// (warnUnknownFields).
func (p *planner) dispatcherDiff(want, have map[string]any) ([]fieldChange, map[string]any) {
	var fields []fieldChange
	upd := map[string]any{}
	cmp := func(f string, w, h, send any) {
		if canon(w) != canon(h) {
			fields = append(fields, fieldChange{f, h, w})
			upd[f] = send
		}
	}
	cmp("name", text(want["name"]), text(have["name"]), text(want["name"]))
	cmp("eventType", text(want["eventType"]), text(have["eventType"]), text(want["eventType"]))
	cmp("description", text(want["description"]), text(have["description"]), text(want["description"]))
	cmp("tags", tagList(want["tags"]), tagList(have["tags"]), tagList(want["tags"]))
	keys := map[string]bool{}
	for k := range dispatcherExtensions {
		keys[k] = true
	}
	for k := range want {
		if !coreDispatcherFields[k] && !readOnly[k] {
			keys[k] = true
		}
	}
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		w, inFile := want[k]
		ext, known := dispatcherExtensions[k]
		switch {
		case known:
			send := w
			if !inFile {
				w, send = ext.def, ext.clear
			}
			h, ok := have[k]
			if !ok {
				h = ext.def
			}
			cmp(k, ext.normalize(w), ext.normalize(h), send)
		case inFile && p.installFields["d."+k]:
			cmp(k, w, have[k], w)
		}
	}
	return fields, upd
}

// actionDiff compares an action's body with the remote action of the same
// name and type; it returns the fields that differ and the PUT body.
func (p *planner) actionDiff(want, have map[string]any) ([]fieldChange, map[string]any) {
	var fields []fieldChange
	upd := map[string]any{}
	cmp := func(f string, w, h, send any) {
		if canon(w) != canon(h) {
			fields = append(fields, fieldChange{f, h, w})
			upd[f] = send
		}
	}
	cmp("description", text(want["description"]), text(have["description"]), text(want["description"]))
	switch text(want["type"]) {
	case dispatcher.ActionMail:
		r := normRecipients(want["recipients"])
		cmp("recipients", r, normRecipients(have["recipients"]), r)
		if id := text(want["templateId"]); id != "" {
			if id != text(have["templateId"]) {
				fields = append(fields, fieldChange{"template", p.templateLabel(text(have["templateId"])), p.templateLabel(id)})
				upd["templateId"] = id
			}
		} else { // a template this plan creates
			name := text(want["templateName"])
			fields = append(fields, fieldChange{"template", p.templateLabel(text(have["templateId"])), quote(name) + " (created by this sync)"})
			upd["templateName"] = name
		}
	case dispatcher.ActionTask:
		cmp("functionName", text(want["functionName"]), text(have["functionName"]), text(want["functionName"]))
		cmp("data", normData(want["data"]), normData(have["data"]), want["data"])
		cmp("tags", tagList(want["tags"]), tagList(have["tags"]), tagList(want["tags"]))
		cmp("startTimestamp", normStart(want["startTimestamp"]), normStart(have["startTimestamp"]), want["startTimestamp"])
	}
	cmp("retryPolicy", normRetry(want["retryPolicy"]), normRetry(have["retryPolicy"]), want["retryPolicy"])
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if !knownActionFields[k] && !readOnly[k] && p.installFields["a."+k] {
			cmp(k, want[k], have[k], want[k])
		}
	}
	return fields, upd
}

// templateLabel names a template by its id for a plan: its name when the
// install has it.
func (p *planner) templateLabel(id string) string {
	if t := p.remote.templateByID(id); t != nil {
		return fmt.Sprintf("%q (%s)", t.Name, id)
	}
	return id
}

// Normal forms, so that what the API writes differently compares equal:
// absent lists are empty, absent data is {}, times are instants.

func normRecipients(v any) map[string]any {
	m := asMap(v)
	return map[string]any{"to": stringList(m["to"]), "cc": stringList(m["cc"]), "bcc": stringList(m["bcc"])}
}

func normData(v any) any {
	if v == nil {
		return map[string]any{}
	}
	return v
}

func normStart(v any) any {
	if v == nil {
		return nil
	}
	raw, _ := json.Marshal(v)
	t, err := wire.ParseTimestamp(raw)
	if err != nil {
		return v
	}
	return t.UTC().Truncate(time.Millisecond).Format(time.RFC3339Nano) // the API's precision
}

func normRetry(v any) any {
	if v == nil {
		return wire.RetryPolicy{} // as {}: the defaults
	}
	raw, _ := json.Marshal(v)
	var r wire.RetryPolicy
	if err := json.Unmarshal(raw, &r); err != nil {
		return v
	}
	return r
}

// canon is a value's JSON, for comparisons: maps sort their keys.
func canon(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func intOf(v any) (int, bool) {
	switch n := v.(type) {
	case json.Number:
		i, err := n.Int64()
		return int(i), err == nil
	case int:
		return n, true
	case float64:
		return int(n), n == float64(int(n))
	}
	return 0, false
}

// tagList is the tags of v as the API keeps them (wire.Distinct): a file
// that names one twice is no change from what the API kept.
func tagList(v any) []string { return wire.Distinct(stringList(v)) }
