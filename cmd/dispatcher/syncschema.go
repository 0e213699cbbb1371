package main

import (
	"bytes"
	"cmp"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

// fileSchema is docs/schemas/dispatchers-file.json; TestSyncSchemaPublished
// keeps the two equal.
//
//go:embed dispatchers-file.schema.json
var fileSchema []byte

// secretsInFile refuses function secrets and header values written in the
// file: they belong in the environment, named by secretEnv and headersEnv.
func secretsInFile(path string, doc any) problems {
	m, ok := doc.(map[string]any)
	if !ok {
		return nil
	}
	var ps problems
	for i, fn := range objects(asSlice(m["functions"])) {
		if _, ok := fn["secret"]; ok {
			ps = append(ps, itemProblem(path, "function", fn, i, "secret",
				"a secret is never written in the file: put it in an environment variable and name that in secretEnv"))
		}
		if _, ok := fn["headers"]; ok {
			ps = append(ps, itemProblem(path, "function", fn, i, "headers",
				"header values (API keys) are never written in the file: name environment variables in headersEnv, e.g. {\"X-Api-Key\": \""+headerEnvName(text(fn["name"]), "X-Api-Key")+"\"}"))
		}
	}
	return ps
}

// withoutSecrets returns doc without the fields secretsInFile refuses,
// leaving doc as it is.
func withoutSecrets(doc any) any {
	m, ok := doc.(map[string]any)
	if !ok {
		return doc
	}
	fns, ok := m["functions"].([]any)
	if !ok {
		return doc
	}
	out, kept := maps.Clone(m), slices.Clone(fns)
	for i, fn := range kept {
		if f, ok := fn.(map[string]any); ok {
			f = maps.Clone(f)
			delete(f, "secret")
			delete(f, "headers")
			kept[i] = f
		}
	}
	out["functions"] = kept
	return out
}

// checkSchema validates doc against the embedded schema and turns each
// failure into a problem that names the item and the field.
func checkSchema(path string, doc any) problems {
	sch, err := compileFileSchema()
	if err != nil {
		return problems{{File: path, Message: "the built-in schema does not compile: " + err.Error()}}
	}
	err = sch.Validate(doc)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return problems{{File: path, Message: err.Error()}}
	}
	var ps problems
	seen := map[string]bool{}
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		for _, p := range schemaProblems(path, doc, e) {
			if k := p.String(); !seen[k] {
				seen[k] = true
				ps = append(ps, p)
			}
		}
	}
	walk(ve)
	// The validator finds them in no set order: one run and the next
	// list them alike, by item and field.
	slices.SortStableFunc(ps, func(a, b fileProblem) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(index(a), index(b)), cmp.Compare(a.Field, b.Field))
	})
	return ps
}

// index is p's position in its section, -1 for the file as a whole.
func index(p fileProblem) int {
	if p.Index == nil {
		return -1
	}
	return *p.Index
}

func compileFileSchema() (*jsonschema.Schema, error) {
	s, err := jsonschema.UnmarshalJSON(bytes.NewReader(fileSchema))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("dispatchers-file.json", s); err != nil {
		return nil, err
	}
	return c.Compile("dispatchers-file.json")
}

// schemaProblems describes one failed keyword of the schema.
func schemaProblems(path string, doc any, e *jsonschema.ValidationError) problems {
	p := locate(path, doc, e.InstanceLocation)
	at := func(field, msg string) fileProblem {
		q := p
		q.Field = joinField(p.Field, field)
		q.Message = msg
		return q
	}
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		var ps problems
		for _, f := range k.Missing {
			ps = append(ps, at(f, "is required"))
		}
		return ps
	case *kind.AdditionalProperties:
		var ps problems
		for _, f := range k.Properties {
			ps = append(ps, at(f, "is not a field here"))
		}
		return ps
	case *kind.Enum:
		return problems{at("", fmt.Sprintf("must be one of %s", enumList(k.Want)))}
	case *kind.Const:
		return problems{at("", fmt.Sprintf("must be %v", k.Want))}
	case *kind.Type:
		if len(e.InstanceLocation) == 0 {
			return problems{at("", "the file must be an array of dispatchers, or an object with dispatchers (and templates, functions), not a "+k.Got)}
		}
		return problems{at("", fmt.Sprintf("must be %s, not %s", strings.Join(k.Want, " or "), k.Got))}
	case *kind.MinItems:
		return problems{at("", fmt.Sprintf("must hold at least %d item(s)", k.Want))}
	case *kind.MinLength:
		return problems{at("", "must not be empty")}
	case *kind.Pattern:
		return problems{at("", fmt.Sprintf("%q is not an environment variable name (letters, digits, _)", k.Got))}
	}
	msg := e.Error()
	if out := e.BasicOutput(); out.Error != nil {
		msg = out.Error.String()
	}
	return problems{at("", msg)}
}

func enumList(vs []any) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		b, _ := json.Marshal(v)
		s[i] = string(b)
	}
	return strings.Join(s, ", ")
}
