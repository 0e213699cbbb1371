package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/wire"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
)

// exportCmd writes the configuration of a running dispatcher as a
// dispatchers file that sync applies: export, then sync on an empty
// install, then export again gives the same file.
func exportCmd(getenv func(string) string) *cobra.Command {
	var (
		managedOnly bool
		output      string
		format      string
		schema      bool
	)
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write the dispatchers, templates and functions as a dispatchers file for sync (talks to the API)",
		Long: "export writes the configuration in the format sync reads: {\"dispatchers\": [...]} in the Extra Horizon\n" +
			"CLI's shape, with \"templates\" and \"functions\" sections when there are any. Mail actions name their\n" +
			"template with templateName, so the file applies to another install; the EXH_CLI_MANAGED tag is left out\n" +
			"(sync adds it), and so are fields at their defaults. Secrets and header values are never exported: a\n" +
			"function that has them gets secretEnv (DISPATCHER_SECRET_<NAME>) and headersEnv\n" +
			"(DISPATCHER_HEADER_<NAME>_<HEADER>), the environment variables sync reads them from.\n\n" +
			"--managed-only writes only the dispatchers sync manages, with the templates and functions they use.\n" +
			"--schema writes the JSON Schema of the format instead (docs/schemas/dispatchers-file.json).",
		Example: "  dispatcher export > dispatchers.json\n  dispatcher export --managed-only -o dispatchers.yaml",
		Args:    cobra.NoArgs,
	}
	client := clientFlags(cmd, getenv)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if format == "" {
			format = "json"
			if ext := strings.ToLower(filepath.Ext(output)); ext == ".yaml" || ext == ".yml" {
				format = "yaml"
			}
		}
		if format != "json" && format != "yaml" {
			return fmt.Errorf("--format %q: want json or yaml", format)
		}
		var b []byte
		if schema {
			b = fileSchema
		} else {
			c, err := client()
			if err != nil {
				return err
			}
			s, err := fetchState(cmd.Context(), c, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			doc, notes := exportDoc(s, managedOnly)
			for _, n := range notes {
				fmt.Fprintln(cmd.ErrOrStderr(), "export:", n)
			}
			if b, err = encodeExport(doc, format); err != nil {
				return err
			}
		}
		if output == "" || output == "-" {
			_, err := cmd.OutOrStdout().Write(b)
			return err
		}
		return os.WriteFile(output, b, 0o644)
	}
	cmd.Flags().BoolVar(&managedOnly, "managed-only", false, "only the dispatchers sync manages (tag EXH_CLI_MANAGED), and the templates and functions they use")
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to this file (default standard output)")
	cmd.Flags().StringVar(&format, "format", "", "json or yaml (default: yaml for a .yaml or .yml --output, json otherwise)")
	cmd.Flags().BoolVar(&schema, "schema", false, "write the JSON Schema of the dispatchers file instead")
	return cmd
}

// ordered is a JSON object that keeps its keys in the order they were
// added, so that an export reads like the Extra Horizon CLI's example and
// is the same every time.
type ordered []field

type field struct {
	key   string
	value any
}

func (o *ordered) add(k string, v any) { *o = append(*o, field{k, v}) }

// MarshalJSON implements json.Marshaler.
func (o ordered) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(f.key)
		b.Write(k)
		b.WriteByte(':')
		v, err := marshalNoEscape(f.value)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// marshalNoEscape is json.Marshal without HTML escaping: templates hold
// HTML, which should read as written.
func marshalNoEscape(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// exportDoc builds the file: dispatchers by name, then the templates and
// functions (all of them, or with managedOnly those the dispatchers use).
// notes say what could not be exported and which variables to set.
func exportDoc(s *remoteState, managedOnly bool) (ordered, []string) {
	var notes []string
	usedTemplates, usedFunctions := map[string]bool{}, map[string]bool{}
	ds := slices.Clone(s.Dispatchers)
	slices.SortFunc(ds, func(a, b map[string]any) int { return strings.Compare(text(a["name"]), text(b["name"])) })
	dispatchers := []any{}
	for _, d := range ds {
		if managedOnly && !managed(d) {
			continue
		}
		if text(d["name"]) == "" {
			notes = append(notes, fmt.Sprintf("dispatcher %s has no name and is left out: sync matches dispatchers by name", text(d["id"])))
			continue
		}
		od := ordered{}
		od.add("eventType", text(d["eventType"]))
		od.add("name", text(d["name"]))
		if v := text(d["description"]); v != "" {
			od.add("description", v)
		}
		actions := []any{}
		for _, a := range objects(asSlice(d["actions"])) {
			if text(a["name"]) == "" {
				notes = append(notes, fmt.Sprintf("dispatcher %q: action %s has no name and is left out: sync matches actions by name, and a sync of this file would delete it; name it first (PUT /dispatchers/v1/%s/actions/%s {\"name\": …})", text(d["name"]), text(a["id"]), text(d["id"]), text(a["id"])))
				continue
			}
			actions = append(actions, exportAction(s, a, usedTemplates, usedFunctions))
		}
		od.add("actions", actions)
		if tags := slices.DeleteFunc(stringList(d["tags"]), func(t string) bool { return t == managedTag }); len(tags) > 0 {
			od.add("tags", tags)
		}
		for _, k := range slices.Sorted(maps.Keys(d)) {
			if coreDispatcherFields[k] || readOnly[k] {
				continue
			}
			if ext, ok := dispatcherExtensions[k]; ok && ext.isDefault(d[k]) || !ok && zeroish(d[k]) {
				continue
			}
			v := d[k]
			if o, ok := v.(map[string]any); ok && k == "ordering" && o["onFailure"] == dispatcher.OrderingBlock {
				// The default, which sync fills in (normOrdering).
				v = maps.Clone(o)
				delete(v.(map[string]any), "onFailure")
			}
			od.add(k, v)
		}
		dispatchers = append(dispatchers, od)
	}

	doc := ordered{{"dispatchers", dispatchers}}
	var templates []any
	for _, t := range sortedBy(s.Templates, func(t wire.Template) string { return t.Name }) {
		if managedOnly && !usedTemplates[t.ID] {
			continue
		}
		ot := ordered{{"name", t.Name}, {"subject", t.Subject}}
		if t.Text != "" {
			ot.add("text", t.Text)
		}
		if t.HTML != "" {
			ot.add("html", t.HTML)
		}
		templates = append(templates, ot)
	}
	if len(templates) > 0 {
		doc.add("templates", templates)
	}
	var functions []any
	var secrets []string
	for _, f := range sortedBy(s.Functions, func(f wire.Function) string { return f.Name }) {
		if managedOnly && !usedFunctions[f.Name] {
			continue
		}
		of := ordered{{"name", f.Name}}
		if f.Kind != "" && f.Kind != dispatcher.FunctionHTTP {
			of.add("kind", f.Kind)
		}
		if f.URL != "" {
			of.add("url", f.URL)
		}
		if f.Kind != dispatcher.FunctionTemporal && f.TimeoutSeconds != 0 && f.TimeoutSeconds != int(dispatcher.DefaultFunctionTimeout.Seconds()) {
			of.add("timeoutSeconds", f.TimeoutSeconds)
		}
		if f.TaskQueue != "" {
			of.add("taskQueue", f.TaskQueue)
		}
		// Flow control, but for a pause: that is operations', not code.
		// Defaults left out, as sync and the API fill them in; a circuit
		// breaker keeps its failures, which say that it is there.
		if r := f.RateLimit; r != nil {
			rl := ordered{{"perSecond", r.PerSecond}}
			if r.Burst != dispatcher.DefaultBurst {
				rl.add("burst", r.Burst)
			}
			of.add("rateLimit", rl)
		}
		if f.MaxConcurrency > 0 {
			of.add("maxConcurrency", f.MaxConcurrency)
		}
		if c := f.CircuitBreaker; c != nil {
			cb := ordered{{"failures", c.Failures}}
			if c.WindowSeconds != int(dispatcher.DefaultCircuitWindow.Seconds()) {
				cb.add("windowSeconds", c.WindowSeconds)
			}
			if c.ProbeIntervalSeconds != int(dispatcher.DefaultProbeInterval.Seconds()) {
				cb.add("probeIntervalSeconds", c.ProbeIntervalSeconds)
			}
			of.add("circuitBreaker", cb)
		}
		if f.HasSecret {
			env := secretEnvName(f.Name)
			of.add("secretEnv", env)
			secrets = append(secrets, env)
		}
		if len(f.HeaderNames) > 0 {
			headers := ordered{}
			for _, h := range slices.Sorted(slices.Values(f.HeaderNames)) {
				env := headerEnvName(f.Name, h)
				headers.add(h, env)
				secrets = append(secrets, env)
			}
			of.add("headersEnv", headers)
		}
		functions = append(functions, of)
	}
	if len(functions) > 0 {
		doc.add("functions", functions)
	}
	if len(secrets) > 0 {
		notes = append(notes, "secrets and header values are not exported; sync reads them from "+strings.Join(secrets, ", "))
	}
	return doc, notes
}

// exportAction writes an action as the Extra Horizon CLI's example does,
// naming its template by name.
func exportAction(s *remoteState, a map[string]any, usedTemplates, usedFunctions map[string]bool) ordered {
	oa := ordered{{"type", text(a["type"])}, {"name", text(a["name"])}}
	if v := text(a["description"]); v != "" {
		oa.add("description", v)
	}
	switch text(a["type"]) {
	case dispatcher.ActionMail:
		r := asMap(a["recipients"])
		or := ordered{{"to", stringList(r["to"])}}
		for _, k := range []string{"cc", "bcc"} {
			if l := stringList(r[k]); len(l) > 0 {
				or.add(k, l)
			}
		}
		oa.add("recipients", or)
		id := text(a["templateId"])
		usedTemplates[id] = true
		if t := s.templateByID(id); t != nil {
			oa.add("templateName", t.Name)
		} else {
			oa.add("templateId", id)
		}
	case dispatcher.ActionTask:
		oa.add("functionName", text(a["functionName"]))
		usedFunctions[text(a["functionName"])] = true
		if v, ok := a["data"]; ok && v != nil {
			oa.add("data", v)
		}
		if v := text(a["startTimestamp"]); v != "" {
			oa.add("startTimestamp", v)
		}
		if tags := stringList(a["tags"]); len(tags) > 0 {
			oa.add("tags", tags)
		}
	}
	if v := a["retryPolicy"]; !zeroish(v) { // {}: the defaults
		oa.add("retryPolicy", v)
	}
	for _, k := range slices.Sorted(maps.Keys(a)) {
		if !knownActionFields[k] && !readOnly[k] && !zeroish(a[k]) {
			oa.add(k, a[k])
		}
	}
	return oa
}

// zeroish reports whether an unknown field's value is as good as absent.
func zeroish(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case bool:
		return !x
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

// envName turns a name into the part of an environment variable name:
// upper case, anything but letters and digits an underscore.
func envName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		}
		return '_'
	}, s)
}

// encodeExport writes the document as indented JSON, or as YAML with the
// same key order.
func encodeExport(doc ordered, format string) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	if format == "json" {
		return b.Bytes(), nil
	}
	// JSON is YAML: parsed as a node it keeps its key order; block style
	// then makes it read as YAML.
	var n yaml.Node
	if err := yaml.Unmarshal(b.Bytes(), &n); err != nil {
		return nil, err
	}
	blockStyle(&n)
	var y bytes.Buffer
	ye := yaml.NewEncoder(&y)
	ye.SetIndent(2)
	if err := ye.Encode(&n); err != nil {
		return nil, err
	}
	return y.Bytes(), ye.Close()
}

func blockStyle(n *yaml.Node) {
	n.Style = 0
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" && yaml11Ambiguous(n.Value) {
		n.Style = yaml.DoubleQuotedStyle
	}
	for _, c := range n.Content {
		blockStyle(c)
	}
}

// yaml11Ambiguous reports whether s, a string, might be read as something
// else unquoted by a YAML 1.1 reader (PyYAML, Ansible, many CI tools): a
// boolean (no, on, y), a null, a number (1e400, 0123) or a date. The
// encoder, of YAML 1.2, writes those plain, and such a tool read a
// dispatcher named "no" as false.
func yaml11Ambiguous(s string) bool {
	switch strings.ToLower(s) {
	case "", "~", "null", "y", "yes", "n", "no", "true", "false", "on", "off", "<<", "=":
		return true
	}
	return strings.ContainsRune("0123456789+-.", rune(s[0]))
}

// sortedBy returns a copy of items sorted by key.
func sortedBy[T any](items []T, key func(T) string) []T {
	out := slices.Clone(items)
	slices.SortStableFunc(out, func(a, b T) int { return strings.Compare(key(a), key(b)) })
	return out
}
