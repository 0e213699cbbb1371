package dispatcher_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The import rules of docs/architecture.md. Each project package names the
// project packages it may import; a package absent from the table may not
// exist (add it here and in the document). Beyond those, the rules below
// keep the frameworks in their rooms.
const module = "github.com/dispatcherhq/dispatcher"

var mayImport = map[string][]string{
	"":                 {"sandbox"},
	"sandbox":          {},
	"encryption":       {},
	"wire":             {""},
	"workflows":        {""},
	"activities":       {""},
	"dispatch":         {"", "workflows", "activities", "encryption"},
	"models":           {"", "wire", "encryption"},
	"api":              {"", "wire", "intake"},
	"intake":           {"", "wire"},
	"rabbitmq":         {"intake", "internal/redact"},
	"jetstream":        {"intake", "internal/redact"},
	"cmd/dispatcher":   {"*"},
	"cmd/bench":        {"*"},
	"cmd/mailcatcher":  {"*"},
	"cmd/chaos":        {"*"},
	"internal/testenv": {"*"},
	"internal/proc":    {"*"},
	"producer":         {"internal/redact"},
	"internal/redact":  {},
}

// framework rules: an import path prefix and the only packages that may
// import it directly ("*": any package under cmd/ or internal/ too).
var frameworks = []struct {
	prefix string
	only   []string
}{
	{"github.com/gin-gonic/", []string{"api"}},
	{"gorm.io/", []string{"models"}},
	{"go.temporal.io/sdk/client", []string{"dispatch"}},
	{"go.temporal.io/api/workflowservice", []string{"dispatch"}},
	{"go.temporal.io/api/operatorservice", []string{"dispatch"}},
	{"github.com/prometheus/", []string{"api", "dispatch", "intake"}},
	{"github.com/rabbitmq/amqp091-go", []string{"rabbitmq", "producer"}},
	{"github.com/nats-io/", []string{"jetstream", "producer"}},
	{"github.com/cloudevents/", []string{"intake"}},
	{"go.temporal.io/sdk/worker", []string{}},
	{"go.temporal.io/sdk/activity", []string{"activities", "dispatch"}},
	{"go.temporal.io/sdk/workflow", []string{"workflows"}},
}

// deterministic lists what workflow code may import besides the root: the
// Temporal workflow API (the data converter measures what a ContinueAsNew
// carries) and pure standard packages.
var deterministic = []string{
	"go.temporal.io/sdk/workflow", "go.temporal.io/sdk/temporal", "go.temporal.io/api/enums/v1", "go.temporal.io/sdk/converter",
	"errors", "fmt", "math", "slices", "strings", "time",
}

// producerImports is what producer/, imported by other services, may
// import beyond the standard library: the broker clients, nothing heavier.
var producerImports = []string{"github.com/rabbitmq/amqp091-go", "github.com/nats-io/nats.go"}

// importsOf is a package and what it imports directly, relative to the
// module for project packages.
type importsOf struct {
	path    string
	imports []string
}

// violations applies the rules to pkgs and says what breaks them.
func violations(pkgs []importsOf) []string {
	var out []string
	for _, p := range pkgs {
		allowed, known := mayImport[p.path]
		if !known {
			out = append(out, "package "+name(p.path)+" is not in docs/architecture.md's table")
			continue
		}
		free := slices.Contains(allowed, "*")
		for _, imp := range p.imports {
			if rel, ok := project(imp); ok {
				if !free && !slices.Contains(allowed, rel) {
					out = append(out, name(p.path)+" imports "+name(rel))
				}
				continue
			}
			if free {
				continue
			}
			for _, f := range frameworks {
				if strings.HasPrefix(imp, f.prefix) && !slices.Contains(f.only, p.path) {
					out = append(out, name(p.path)+" imports "+imp)
				}
			}
			if p.path == "workflows" && !slices.Contains(deterministic, imp) {
				out = append(out, "workflows imports "+imp+", which is not deterministic workflow code")
			}
			if (p.path == "sandbox" || p.path == "encryption" || p.path == "internal/redact") && strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") {
				out = append(out, p.path+" imports "+imp+": it is a leaf of the standard library only")
			}
			if p.path == "producer" && strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") &&
				!slices.ContainsFunc(producerImports, func(allowed string) bool { return imp == allowed || strings.HasPrefix(imp, allowed+"/") }) {
				out = append(out, "producer imports "+imp+": other services import it, it may use only the broker clients")
			}
		}
	}
	return out
}

func project(imp string) (string, bool) {
	if imp == module {
		return "", true
	}
	rel, ok := strings.CutPrefix(imp, module+"/")
	return rel, ok
}

func name(rel string) string {
	if rel == "" {
		return "the root package (dispatcher)"
	}
	return rel + "/"
}

func TestImportRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []importsOf
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		rel, _ := project(f[0])
		pkgs = append(pkgs, importsOf{path: rel, imports: f[1:]})
	}
	if len(pkgs) < 8 {
		t.Fatalf("go list found %d packages; the rules would prove nothing", len(pkgs))
	}
	for _, v := range violations(pkgs) {
		t.Error(v)
	}
}

// TestImportRulesCatch shows the rules fail on the breaches they exist for.
func TestImportRulesCatch(t *testing.T) {
	for _, tt := range []struct {
		pkg  importsOf
		want string
	}{
		{importsOf{"workflows", []string{"go.temporal.io/sdk/client"}}, "workflows/ imports go.temporal.io/sdk/client"},
		{importsOf{"workflows", []string{"net/http"}}, "workflows imports net/http, which is not deterministic"},
		{importsOf{"workflows", []string{module + "/activities"}}, "workflows/ imports activities/"},
		{importsOf{"api", []string{module + "/workflows"}}, "api/ imports workflows/"},
		{importsOf{"api", []string{module + "/dispatch"}}, "api/ imports dispatch/"},
		{importsOf{"activities", []string{module + "/workflows"}}, "activities/ imports workflows/"},
		{importsOf{"", []string{"gorm.io/gorm"}}, "the root package (dispatcher) imports gorm.io/gorm"},
		{importsOf{"wire", []string{"github.com/gin-gonic/gin"}}, "wire/ imports github.com/gin-gonic/gin"},
		{importsOf{"sandbox", []string{module}}, "sandbox/ imports the root package"},
		{importsOf{"encryption", []string{"go.temporal.io/sdk/converter"}}, "encryption imports go.temporal.io/sdk/converter: it is a leaf"},
		{importsOf{"api", []string{module + "/encryption"}}, "api/ imports encryption/"},
		{importsOf{"newpkg", nil}, "package newpkg/ is not in"},
		{importsOf{"api", []string{"github.com/rabbitmq/amqp091-go"}}, "api/ imports github.com/rabbitmq/amqp091-go"},
		{importsOf{"rabbitmq", []string{module + "/dispatch"}}, "rabbitmq/ imports dispatch/"},
		{importsOf{"producer", []string{module}}, "producer/ imports the root package"},
		{importsOf{"producer", []string{"go.temporal.io/sdk/client"}}, "producer imports go.temporal.io/sdk/client: other services import it"},
		{importsOf{"producer", []string{"github.com/nats-io/nats.go/jetstream", "github.com/gin-gonic/gin"}}, "producer/ imports github.com/gin-gonic/gin"},
	} {
		got := strings.Join(violations([]importsOf{tt.pkg}), "; ")
		if !strings.Contains(got, tt.want) {
			t.Errorf("%s importing %v: violations %q, want one containing %q", name(tt.pkg.path), tt.pkg.imports, got, tt.want)
		}
	}
}
