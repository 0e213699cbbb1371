package validate

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// root is the repository root, relative to this package.
const root = "../.."

// path joins elements onto the repository root.
func path(elem ...string) string {
	return filepath.Join(append([]string{root}, elem...)...)
}

func readFile(t *testing.T, elem ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(path(elem...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// settings returns the names of the binary's environment variables: the
// first field of every element of `var settings` in cmd/dispatcher/config.go.
func settings(t *testing.T) map[string]bool {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path("cmd", "dispatcher", "config.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		spec, ok := n.(*ast.ValueSpec)
		if !ok || len(spec.Names) != 1 || spec.Names[0].Name != "settings" || len(spec.Values) != 1 {
			return true
		}
		list, ok := spec.Values[0].(*ast.CompositeLit)
		if !ok {
			t.Fatal("settings is not a composite literal")
		}
		for _, elt := range list.Elts {
			item, ok := elt.(*ast.CompositeLit)
			if !ok || len(item.Elts) == 0 {
				t.Fatalf("unexpected settings element %T", elt)
			}
			lit, ok := item.Elts[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				t.Fatalf("settings element does not start with a string literal")
			}
			name, err := strconv.Unquote(lit.Value)
			if err != nil {
				t.Fatal(err)
			}
			names[name] = true
		}
		return false
	})
	if len(names) < 10 || !names["DATABASE_URL"] || !names["DISPATCHER_JWT_SECRET"] {
		t.Fatalf("found only %d settings in cmd/dispatcher/config.go: %v", len(names), names)
	}
	return names
}

// commands returns the binary's subcommands, read from cmd/dispatcher:
// processCmd("serve", ...) and cobra `Use: "migrate"` fields.
func commands(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(path("cmd", "dispatcher", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`processCmd\("(\w+)"|Use:\s+"(\w+)"`)
	var cmds []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			name := m[1] + m[2]
			if name != "dispatcher" && !slices.Contains(cmds, name) {
				cmds = append(cmds, name)
			}
		}
	}
	for _, want := range []string{"api", "worker", "migrate"} {
		if !slices.Contains(cmds, want) {
			t.Fatalf("command %q not found in cmd/dispatcher (found %v)", want, cmds)
		}
	}
	return cmds
}

// goRuntimeEnv are variables the Go runtime reads, allowed next to the
// binary's own settings.
var goRuntimeEnv = map[string]bool{"GOMEMLIMIT": true, "GOMAXPROCS": true, "GOGC": true, "GODEBUG": true}

// checkEnvNames fails for every name that is neither a setting of the
// binary nor a Go runtime variable.
func checkEnvNames(t *testing.T, where string, names []string) {
	t.Helper()
	known := settings(t)
	for _, n := range names {
		if !known[n] && !goRuntimeEnv[n] {
			t.Errorf("%s sets %s, which is not a setting of the dispatcher (cmd/dispatcher/config.go)", where, n)
		}
	}
}

func TestSettingsParsed(t *testing.T) {
	s := settings(t)
	for _, n := range []string{"TEMPORAL_ADDRESS", "DISPATCHER_TASK_QUEUE", "DISPATCHER_AUTO_MIGRATE", "DISPATCHER_HTTP_ADDR"} {
		if !s[n] {
			t.Errorf("setting %s not found", n)
		}
	}
	if s["NOT_A_SETTING"] {
		t.Error("parser invents settings")
	}
}
