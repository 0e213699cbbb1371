package main

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/wire"
)

// fileProblem is one thing wrong with a file or its plan: the file, the
// item (a dispatcher, template or function, by name and index), the field
// within it and why.
type fileProblem struct {
	File    string `json:"file"`
	Kind    string `json:"kind,omitempty"` // dispatcher, template, function; "" for the file as a whole
	Name    string `json:"name,omitempty"`
	Index   *int   `json:"index,omitempty"` // position in its section
	Field   string `json:"field,omitempty"` // e.g. actions[1].templateId
	Message string `json:"message"`
}

func (p fileProblem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Kind != "" {
		fmt.Fprintf(&b, ": %s", p.Kind)
		if p.Name != "" {
			fmt.Fprintf(&b, " %q", p.Name)
		}
		if p.Index != nil {
			fmt.Fprintf(&b, " (%s[%d])", sectionOf(p.Kind), *p.Index)
		}
	}
	if p.Field != "" {
		fmt.Fprintf(&b, ": %s", p.Field)
	}
	fmt.Fprintf(&b, ": %s", p.Message)
	return b.String()
}

// problems is the error of a file that cannot be synced: every problem
// found, so that one run shows them all.
type problems []fileProblem

func (ps problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// sectionOf is the file's section of items of kind k.
func sectionOf(k string) string { return k + "s" }

// locate finds the item that an instance location points into: its kind,
// name and index, and the rest of the location as a field path.
func locate(path string, doc any, loc []string) fileProblem {
	p := fileProblem{File: path}
	var section []any
	kindName := "dispatcher"
	switch d := doc.(type) {
	case []any:
		section = d
	case map[string]any:
		if len(loc) == 0 {
			return p
		}
		kindName = strings.TrimSuffix(loc[0], "s")
		arr, ok := d[loc[0]].([]any)
		if !ok || len(loc) == 1 {
			p.Field = loc[0]
			return p
		}
		section, loc = arr, loc[1:]
	}
	if len(loc) == 0 {
		return p
	}
	i, err := strconv.Atoi(loc[0])
	if err != nil || i < 0 || i >= len(section) {
		p.Field = fieldPath(loc)
		return p
	}
	p.Kind, p.Index = kindName, &i
	if item, ok := section[i].(map[string]any); ok {
		p.Name = text(item["name"])
	}
	p.Field = fieldPath(loc[1:])
	return p
}

// fieldPath writes a location as a field path: actions[1].recipients.to.
func fieldPath(loc []string) string {
	var b strings.Builder
	for _, tok := range loc {
		if _, err := strconv.Atoi(tok); err == nil {
			fmt.Fprintf(&b, "[%s]", tok)
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
}

func joinField(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "." + b
}

// itemProblem is a problem with item number i of a section.
func itemProblem(path, kindName string, item map[string]any, i int, field, msg string) fileProblem {
	return fileProblem{File: path, Kind: kindName, Name: text(item["name"]), Index: &i, Field: field, Message: msg}
}

// duplicateNames reports the items of each section, and the actions of
// each dispatcher, named as an earlier one, or named blank: sync matches
// them by name. It reads doc as it comes, whatever the schema says of it.
func duplicateNames(path string, doc any) problems {
	sections := map[string][]any{"dispatcher": asSlice(doc)}
	if m, ok := doc.(map[string]any); ok {
		sections = map[string][]any{"template": asSlice(m["templates"]), "function": asSlice(m["functions"]), "dispatcher": asSlice(m["dispatchers"])}
	}
	var ps problems
	// An empty name is the schema's to refuse; one of spaces was refused
	// later, with the API's advice to leave it out, which sync cannot.
	const blank = "must not be blank: sync matches items by their names"
	for _, kind := range []string{"template", "function", "dispatcher"} {
		items := sections[kind]
		for i, it := range items {
			if name, ok := asMap(it)["name"].(string); ok && name != "" && strings.TrimSpace(name) == "" {
				ps = append(ps, itemProblem(path, kind, asMap(it), i, "name", blank))
			}
			if kind != "dispatcher" {
				continue
			}
			for j, a := range asSlice(asMap(it)["actions"]) {
				if name, ok := asMap(a)["name"].(string); ok && name != "" && strings.TrimSpace(name) == "" {
					ps = append(ps, itemProblem(path, kind, asMap(it), i, fmt.Sprintf("actions[%d].name", j), blank))
				}
			}
		}
		eachSameName(items, func(i, j int) {
			ps = append(ps, itemProblem(path, kind, asMap(items[i]), i, "name",
				fmt.Sprintf("%s[%d] has the same name: names are unique, sync matches by them", sectionOf(kind), j)))
		})
	}
	for i, d := range sections["dispatcher"] {
		actions := asSlice(asMap(d)["actions"])
		eachSameName(actions, func(j, k int) {
			ps = append(ps, itemProblem(path, "dispatcher", asMap(d), i, fmt.Sprintf("actions[%d].name", j),
				fmt.Sprintf("actions[%d] is also named %q: action names are unique within a dispatcher", k, text(asMap(actions[j])["name"]))))
		})
	}
	return ps
}

// misspeltFields refuses, in each dispatcher of doc, each key that nearly
// spells a field, at any depth, as the API refuses it. Listed with the
// schema's problems, all of them: before, only once the file had no other
// problem, then the first of each dispatcher.
func misspeltFields(path string, doc any) problems {
	items := asSlice(doc)
	if m, ok := doc.(map[string]any); ok {
		items = asSlice(m["dispatchers"])
	}
	var ps problems
	for i, d := range items {
		b, err := json.Marshal(d)
		if err != nil {
			continue
		}
		wire.EachMisspelt(b, &wire.DispatcherRequest{}, func(field, name string) bool {
			ps = append(ps, itemProblem(path, "dispatcher", asMap(d), i, field, fmt.Sprintf("unknown field; did you mean %q?", name)))
			return true
		})
	}
	return ps
}

// eachSameName calls fn(i, j) for each item i named as an earlier item j,
// in order. Items without a name are the schema's concern.
func eachSameName(items []any, fn func(i, j int)) {
	first := map[string]int{}
	for i, it := range items {
		name := text(asMap(it)["name"])
		if j, ok := first[name]; ok {
			fn(i, j)
		} else if name != "" {
			first[name] = i
		}
	}
}

// fieldPrefix splits "actions[1].templateId: no template..." into the
// field and the rest, as the domain's errors are written.
var fieldPrefix = regexp.MustCompile(`^([A-Za-z0-9_.\[\]]+): (.*)$`)

// domainProblem turns an error of the domain's validation into a problem
// of item i.
func domainProblem(path, kindName string, item map[string]any, i int, err error) fileProblem {
	msg := err.Error()
	var de *dispatcher.Error
	if errors.As(err, &de) {
		msg = de.Message
	}
	field := ""
	if m := fieldPrefix.FindStringSubmatch(msg); m != nil {
		field, msg = m[1], m[2]
	}
	return itemProblem(path, kindName, item, i, field, msg)
}
