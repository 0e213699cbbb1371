package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// TestSyncSchemaPublished keeps docs/schemas/dispatchers-file.json, the schema
// editors and other tools use, equal to the one the binary validates
// with. Regenerate it with `dispatcher export --schema`.
func TestSyncSchemaPublished(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "schemas", "dispatchers-file.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, fileSchema) {
		t.Fatal("docs/schemas/dispatchers-file.json differs from the schema the binary embeds; write it with `dispatcher export --schema > docs/schemas/dispatchers-file.json`")
	}
	if _, err := compileFileSchema(); err != nil {
		t.Fatalf("the schema does not compile: %v", err)
	}
}

// TestReadSyncFileExtraHorizonFormats: the Extra Horizon CLI's example
// file (its documentation's, verbatim) and a bare array both read.
func TestReadSyncFileExtraHorizonFormats(t *testing.T) {
	for file, want := range map[string]struct{ dispatcher, actions string }{
		"exh-docs-dispatchers.json": {"my-unique-dispatcher-name", "my-task-action,my-mail-action"},
		"exh-cli-array.json":        {"welcome", "welcome-mail,crm"},
	} {
		path := filepath.Join("testdata", "sync", file)
		fh, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		f, err := readSyncFile(path, fh)
		fh.Close()
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if len(f.Dispatchers) != 1 || text(f.Dispatchers[0]["name"]) != want.dispatcher {
			t.Fatalf("%s: dispatchers %v", file, f.Dispatchers)
		}
		var names []string
		for _, a := range objects(asSlice(f.Dispatchers[0]["actions"])) {
			names = append(names, text(a["name"]))
		}
		if got := strings.Join(names, ","); got != want.actions {
			t.Errorf("%s: actions %s, want %s", file, got, want.actions)
		}
	}
}

// A JSON file saved with a byte order mark (as Windows editors do) is read,
// as the API reads such a body. Before: "invalid character 'ï'".
func TestReadSyncFileWithBOM(t *testing.T) {
	f, err := readSyncFile("d.json", strings.NewReader("\ufeff"+`[{"name": "a", "eventType": "e", "actions": []}]`))
	if err != nil || len(f.Dispatchers) != 1 {
		t.Fatalf("%+v, %v", f, err)
	}
}

// Fields set to null are absent, as the API takes them; nulls within an
// action's data are its values. Before, "description": null was refused:
// "must be string, not null".
func TestReadSyncFileNullsAreAbsent(t *testing.T) {
	f, err := readSyncFile("d.json", strings.NewReader(`{"dispatchers": [{"name": "a", "eventType": "a", "description": null, "tags": null,
		"actions": [{"type": "task", "name": "x", "functionName": "erase", "data": {"keep": null}, "startTimestamp": null, "retryPolicy": null},
		{"type": "mail", "name": "m", "templateName": "t", "recipients": {"to": ["a@example.com"], "cc": null}}]}], "templates": null}`))
	if err != nil {
		t.Fatal(err)
	}
	d := f.Dispatchers[0]
	actions := objects(asSlice(d["actions"]))
	_, description := d["description"]
	_, start := actions[0]["startTimestamp"]
	_, cc := actions[1]["recipients"].(map[string]any)["cc"]
	data := actions[0]["data"].(map[string]any)
	if _, kept := data["keep"]; description || start || cc || !kept {
		t.Errorf("dispatcher %v: want the null fields gone, and the null within data kept", d)
	}
}

// TestReadSyncFileYAML: a YAML file is the same file as its JSON.
func TestReadSyncFileYAML(t *testing.T) {
	y := `
dispatchers:
  - eventType: user_deleted
    name: gdpr
    actions:
      - type: task
        name: erase
        functionName: erase
        data: {count: 42, ratio: 0.5, on: true, when: 2024-01-01T00:00:00Z, none: null}
        startTimestamp: 2024-01-01T00:00:00.000Z
functions:
  - name: erase
    url: https://erase.example.com/
    secretEnv: DISPATCHER_SECRET_ERASE
`
	j := `{"dispatchers": [{"eventType": "user_deleted", "name": "gdpr", "actions": [{"type": "task", "name": "erase", "functionName": "erase",
	  "data": {"count": 42, "ratio": 0.5, "on": true, "when": "2024-01-01T00:00:00Z", "none": null}, "startTimestamp": "2024-01-01T00:00:00.000Z"}]}],
	  "functions": [{"name": "erase", "url": "https://erase.example.com/", "secretEnv": "DISPATCHER_SECRET_ERASE"}]}`
	fy, err := readSyncFile("d.yaml", strings.NewReader(y))
	if err != nil {
		t.Fatal(err)
	}
	fj, err := readSyncFile("d.json", strings.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	if canon(fy.Dispatchers) != canon(fj.Dispatchers) || canon(fy.Functions) != canon(fj.Functions) {
		t.Fatalf("YAML and JSON differ:\n%s\n%s", canon(fy.Dispatchers), canon(fj.Dispatchers))
	}
	// Standard input is YAML unless it starts like JSON.
	if _, err := readSyncFile("-", strings.NewReader(y)); err != nil {
		t.Fatal(err)
	}
	if _, err := readSyncFile("-", strings.NewReader(j)); err != nil {
		t.Fatal(err)
	}
}

// TestReadSyncFileDeepYAML: a YAML file of brackets nested deeper than
// yaml.v3 reads is refused without the cost of locating its error. Before,
// the second parser that looks for the error's line allocated gigabytes
// (600 MB for these 40 KB) before saying the same.
// So is one whose brackets hide among quoted ones (a review).
func TestReadSyncFileDeepYAML(t *testing.T) {
	const n = 20000
	for _, nest := range []string{strings.Repeat("[", n), strings.Repeat(`["]",`, n)} {
		y := "dispatchers:\n  - {eventType: deep, name: deep, actions: [{type: task, name: t, functionName: f, data: {x: " +
			nest + "1" + strings.Repeat("]", n) + "}}]}\n"
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := readSyncFile("d.yaml", strings.NewReader(y))
		runtime.ReadMemStats(&after)
		if err == nil || !strings.Contains(err.Error(), "exceeded max depth") {
			t.Errorf("err %v, want yaml.v3's depth limit", err)
		}
		if got := after.TotalAlloc - before.TotalAlloc; got > 64<<20 {
			t.Errorf("refusing a %d KB file nested as %.10s… allocated %d MB", len(y)>>10, nest, got>>20)
		}
	}
}

// TestReadSyncFileProblemsInOrder: one file's problems come in the same
// order on every reading, by item and field. Before, the schema
// validator's order, which varied from one run to the next.
func TestReadSyncFileProblemsInOrder(t *testing.T) {
	const in = `[{"name": "a", "eventType": 1, "tags": "x", "filter": 2, "actions": [{"type": "task", "name": "t", "functionName": 3, "data": 4, "startTimestamp": true, "tags": 5}]},
	  {"name": "b", "actions": [{"type": "mail", "name": "m", "templateName": 6, "recipients": 7}]}]`
	var first []string
	for i := range 30 {
		_, err := readSyncFile("d.json", strings.NewReader(in))
		var ps problems
		if !errors.As(err, &ps) {
			t.Fatalf("err %v, want problems", err)
		}
		var got []string
		for _, p := range ps {
			got = append(got, p.String())
		}
		if i == 0 {
			first = got
		} else if !slices.Equal(got, first) {
			t.Fatalf("reading %d: %q, then %q", i, first, got)
		}
	}
	if len(first) < 8 {
		t.Errorf("problems %q, want one per wrong field", first)
	}
}

// TestReadSyncFileProblems: every error names the file, the item and the
// field, and one reading reports all of them.
func TestReadSyncFileProblems(t *testing.T) {
	for _, tt := range []struct {
		name, path, in string
		want           []string
	}{
		{"not JSON", "d.json", "{\n  \"dispatchers\": [\n}", []string{"d.json: not valid JSON: line 3, column 1"}},
		{"YAML not named so", "d.txt", "- eventType: e\n", []string{"d.txt: not valid JSON: line 1, column 2", "a file not named .yaml or .yml is read as JSON: name a YAML file so"}},
		{"not YAML", "d.yaml", "dispatchers: [", []string{"d.yaml: not valid YAML"}},
		// Where the error is. Before, where the block holding it began:
		// "line 1: did not find expected key".
		{"a key out of line", "d.yaml", "dispatchers:\n  - eventType: a\n    name: x\n    actions:\n      - type: task\n        name: t\n        functionName: f\n      - type: task\n     name: t\n",
			[]string{"d.yaml: not valid YAML: line 9, column 6: "}},
		// Where yaml.v3 says, when goccy/go-yaml points before it, at
		// what yaml.v3 reads.
		{"an error after what only one parser takes", "d.yaml", "? [a, b]\n: v\nz: : bad\n", []string{"d.yaml: not valid YAML: yaml: line 3: "}},
		{"an unclosed list", "d.yaml", "dispatchers:\n  - eventType: a\n    name: [x\n    actions: []\n", []string{"d.yaml: not valid YAML: line 4, column 5: "}},
		// Before, a missing comma between items looped for good, and a
		// value that is not JSON was said to be a key given twice.
		{"no comma between items", "d.json", `[{"name":"a"} {"name":"b"}]`, []string{"d.json: not valid JSON: line 1, column 15: invalid character '{' after array element"}},
		{"no item between commas", "d.json", `[,]`, []string{"d.json: not valid JSON: line 1, column 2"}},
		{"no comma between numbers", "d.json", `[1 2]`, []string{"d.json: not valid JSON: line 1, column 4"}},
		{"a bare word", "d.json", `[{"name": x}]`, []string{"d.json: not valid JSON: line 1, column 11: invalid character 'x'"}},
		// Before, what followed a stray ] or } was not read: --clean
		// deleted the dispatchers after it.
		{"a stray bracket", "d.json", "[\n  {\"name\": \"a\"}]\n  ]\n  {\"name\": \"b\"}\n]", []string{"d.json: not valid JSON: line 3, column 3: more after the file's value"}},
		{"garbage after the value", "d.json", `{"dispatchers":[]}} trailing`, []string{"d.json: not valid JSON: line 1, column 19: more after"}},
		{"a second value", "d.json", `[] []`, []string{"d.json: not valid JSON: line 1, column 4: more after"}},
		{"an end too soon", "d.json", "[{\"name\":\"a\"", []string{"d.json: not valid JSON: line 1, column 13: unexpected EOF"}},
		// Before, planned as a dispatcher named U+FFFD.
		{"half a surrogate pair", "d.json", `[{"name":"\udc00","eventType":"e","actions":[]}]`, []string{"d.json: not valid JSON: line 1, column 11: not valid UTF-8 text (or \\u of half a surrogate pair)"}},
		// Before, each bad byte became U+FFFD in the name it was sent with.
		{"not UTF-8", "d.json", "[{\"name\": \"a\",\n  \"eventType\": \"bad\xff\", \"actions\": []}]", []string{"d.json: not valid JSON: line 2, column 20: not valid UTF-8 text"}},
		{"empty", "d.json", "  ", []string{"d.json: the file is empty"}},
		// Before, the second document was not read (and --clean deleted
		// what it held), and the last of two keys was kept.
		{"two YAML documents", "d.yaml", "templates: []\n---\ndispatchers: []\n", []string{"d.yaml: line 2: a second YAML document (after ---); a dispatchers file is one"}},
		{"a key twice", "d.json", `{"dispatchers": [{"name": "a", "eventType": "e", "actions": [], "name": "b"}]}`, []string{"d.json: dispatchers[0].name: is given twice in its object"}},
		{"a key twice, deep", "d.json", `[{"name": "a", "eventType": "e", "actions": [{"type": "task", "name": "x", "functionName": "f", "data": {"k": 1, "k": 2}}]}]`, []string{"d.json: [0].actions[0].data.k: is given twice"}},
		{"a string", "d.json", `"x"`, []string{"d.json: "}},
		{"unknown section", "d.json", `{"dispatcher": []}`, []string{"d.json: dispatcher: is not a field here"}},
		{"missing fields", "d.json", `[{"name": "gdpr", "actions": [{"type": "task", "name": "erase"}, {"type": "mail", "name": "m", "recipients": {"to": []}, "templateId": "x"}]}]`, []string{
			`d.json: dispatcher "gdpr" (dispatchers[0]): actions[0].functionName: is required`,
			`d.json: dispatcher "gdpr" (dispatchers[0]): actions[1].recipients.to: `,
			`d.json: dispatcher "gdpr" (dispatchers[0]): eventType: is required`,
		}},
		{"action without a name", "d.json", `{"dispatchers": [{"name": "gdpr", "eventType": "e", "actions": [{"type": "task", "functionName": "f"}]}]}`, []string{
			`d.json: dispatcher "gdpr" (dispatchers[0]): actions[0].name: is required`,
		}},
		{"wrong type", "d.json", `[{"name": "gdpr", "eventType": "e", "actions": [{"type": "sms", "name": "a"}], "tags": "x"}]`, []string{
			`d.json: dispatcher "gdpr" (dispatchers[0]): actions[0].type: must be one of "mail", "task"`,
			`d.json: dispatcher "gdpr" (dispatchers[0]): tags: `,
		}},
		{"duplicate names", "d.json", `{"dispatchers": [
			{"name": "a", "eventType": "e", "actions": [{"type": "task", "name": "x", "functionName": "f"}, {"type": "task", "name": "x", "functionName": "f"}]},
			{"name": "a", "eventType": "e", "actions": []}],
			"templates": [{"name": "t", "subject": "s"}, {"name": "t", "subject": "s"}]}`, []string{
			`d.json: dispatcher "a" (dispatchers[0]): actions[1].name: actions[0] is also named "x"`,
			`d.json: dispatcher "a" (dispatchers[1]): name: dispatchers[0] has the same name`,
			`d.json: template "t" (templates[1]): name: templates[0] has the same name`,
		}},
		{"a duplicate name beside a schema problem", "d.json", `{"dispatchers": [
			{"name": "a", "eventType": "e", "actions": []},
			{"name": "a", "eventType": "", "actions": []}]}`, []string{
			`d.json: dispatcher "a" (dispatchers[1]): eventType: `,
			`d.json: dispatcher "a" (dispatchers[1]): name: dispatchers[0] has the same name`,
		}},
		{"a duplicate name behind an item that is no object", "d.json", `{"dispatchers": [1,
			{"name": "a", "eventType": "e", "actions": []},
			{"name": "a", "eventType": "e", "actions": []}]}`, []string{
			`d.json: dispatcher "a" (dispatchers[2]): name: dispatchers[1] has the same name`,
		}},
		{"secrets in the file", "d.json", `{"functions": [{"name": "erase", "url": "https://x.example.com", "secret": "s3cr3t", "headers": {"X-Key": "k"}}]}`, []string{
			`d.json: function "erase" (functions[0]): secret: a secret is never written in the file`,
			`d.json: function "erase" (functions[0]): headers: header values (API keys) are never written in the file`,
		}},
		// Listed with the others, once each: before, a run listed the
		// secrets alone, and the next the rest.
		{"secrets beside a duplicate and a schema problem", "d.json", `{"functions": [{"name": "erase", "url": "https://x.example.com", "secret": "s3cr3t", "timeoutSeconds": "x"}],
			"templates": [{"name": "t", "subject": "s"}, {"name": "t", "subject": "s"}]}`, []string{
			`d.json: function "erase" (functions[0]): secret: a secret is never written in the file`,
			`d.json: function "erase" (functions[0]): timeoutSeconds: `,
			`d.json: template "t" (templates[1]): name: templates[0] has the same name`,
		}},
		// Aliases are refused, not expanded: 1 KB of nested ones would
		// be hundreds of millions of values (a "billion laughs").
		{"an alias", "d.yaml", "templates:\n  - &t {name: a, subject: s}\n  - *t\n", []string{"d.yaml: line 3: *t: a dispatchers file has no aliases"}},
		// Before, no line: "yaml: unknown anchor 't' referenced".
		// A second document yaml.v3 cannot read: before, "line 0".
		{"a second document with an alias of no anchor", "d.yaml", "dispatchers: []\n---\nfoo: *t\n", []string{"d.yaml: line 2: a second YAML document (after ---)"}},
		// Its own line: not a *t in a comment or a string before it.
		{"an alias of no anchor", "d.yaml", "# reuse *t\ntemplates:\n  - {name: a, subject: \"x *t\"}\n  - *t\n", []string{"d.yaml: line 4: *t: an alias of no anchor; a dispatchers file has no aliases"}},
		{"a merge key", "d.yaml", "templates:\n  - &t {name: a, subject: s}\n  - <<: *t\n    name: b\n", []string{"d.yaml: line 3: <<: a dispatchers file has no aliases, nor merge keys"}},
		// YAML 1.1 reads 01234 as octal: the zip code sent was 668.
		{"a number with a leading zero", "d.yaml", "dispatchers:\n  - name: a\n    eventType: e\n    actions:\n      - {type: task, name: t, functionName: f, data: {zip: 01234}}\n",
			[]string{`d.yaml: line 5: 01234 would be read as the octal number 668: quote it ("01234") for text, or write 0o1234 for octal`}},
		// With an 8 or a 9, YAML reads it as a float: the zip code sent was 8901.
		{"a number with a leading zero and a 9", "d.yaml", "dispatchers:\n  - name: a\n    eventType: e\n    actions:\n      - {type: task, name: t, functionName: f, data: {zip: 08901}}\n",
			[]string{`d.yaml: line 5: 08901 would be read as the number 8901: quote it ("08901") for text`}},
		{"a negative number with a leading zero", "d.yaml", "dispatchers:\n  - name: a\n    eventType: e\n    actions:\n      - {type: task, name: t, functionName: f, data: {n: -017}}\n",
			[]string{`d.yaml: line 5: -017 would be read as the octal number -15: quote it ("-017") for text, or write -0o17 for octal`}},
		{"an alias bomb", "d.yaml", aliasBomb(9), []string{"d.yaml: line 2: *l0: a dispatchers file has no aliases"}},
		// Before, the API's advice: "leave it out for no name", which sync
		// cannot do.
		{"blank names", "d.json", `[{"name": "  ", "eventType": "e", "actions": [{"type": "task", "name": " ", "functionName": "f"}]}]`, []string{
			`(dispatchers[0]): name: must not be blank: sync matches items by their names`,
			`(dispatchers[0]): actions[0].name: must not be blank`,
		}},
		// A field that nearly spells one is refused, as the API refuses
		// it: before, `enabeld: false` passed a pull request's dry run
		// and failed the deploy; then it was listed only once the file
		// had no other problem.
		{"misspelt fields beside a schema problem", "d.json", `[{"eventType": 5, "name": "a", "enabeld": false, "descriptoin": "x", "actions": [{"type": "task", "name": "t", "functionNme": "erase"}]},
		  {"eventType": "e", "name": "b", "actions": [{"type": "task", "name": "t", "functionName": "erase", "dat": {"a": 1}}]},
		  {"eventType": "e", "name": "c", "ordering": {"kye": "content.id"}, "actions": [{"type": "task", "name": "t", "functionName": "erase"}]}]`, []string{
			`d.json: dispatcher "a" (dispatchers[0]): eventType: `,
			`d.json: dispatcher "a" (dispatchers[0]): enabeld: unknown field; did you mean "enabled"?`,
			`d.json: dispatcher "a" (dispatchers[0]): descriptoin: unknown field; did you mean "description"?`,
			`d.json: dispatcher "a" (dispatchers[0]): actions[0].functionNme: unknown field; did you mean "functionName"?`,
			`d.json: dispatcher "b" (dispatchers[1]): actions[0].dat: unknown field; did you mean "data"?`,
			`d.json: dispatcher "c" (dispatchers[2]): ordering.kye: unknown field; did you mean "key"?`,
		}},
		{"function without url", "d.json", `{"functions": [{"name": "erase"}, {"name": "wf", "kind": "temporal"}, {"name": "x", "url": "https://x", "secretEnv": "not-a-name"}]}`, []string{
			`d.json: function "erase" (functions[0]): url: is required`,
			`d.json: function "wf" (functions[1]): taskQueue: is required`,
			`d.json: function "x" (functions[2]): secretEnv: `,
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readSyncFile(tt.path, strings.NewReader(tt.in))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

// aliasBomb is YAML of n levels, each an array of 9 aliases of the one
// before: 9^n strings once expanded.
func aliasBomb(n int) string {
	b := "l0: &l0 [x, x, x, x, x, x, x, x, x]\n"
	for i := 1; i < n; i++ {
		b += fmt.Sprintf("l%d: &l%d [%s]\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*l%d, ", i-1), 9), ", "))
	}
	return b
}

// zeros is an endless reader, as /dev/zero is.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// A file past maxSyncFile is refused once that much is read: before, sync
// read /dev/zero, named by mistake, until the machine ran out of memory.
func TestReadSyncFileBounded(t *testing.T) {
	_, err := readSyncFile("/dev/zero", zeros{})
	if err == nil || !strings.Contains(err.Error(), "/dev/zero: larger than 64 MiB") {
		t.Fatalf("an endless file: %v", err)
	}
}
