package validate

import (
	"bytes"
	"debug/elf"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// TestDockerfile checks what the image promises: a static, trimmed build
// of ./cmd/dispatcher on the Go version of go.mod, a distroless non-root
// final stage, the binary as entrypoint and `serve` as default command.
func TestDockerfile(t *testing.T) {
	df := string(readFile(t, "deployments", "docker", "Dockerfile"))
	gomod := string(readFile(t, "go.mod"))
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(gomod)
	if goVersion == nil {
		t.Fatal("no go directive in go.mod")
	}
	for _, want := range []string{
		"ARG GO_VERSION=" + goVersion[1] + "\n",
		"FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build",
		"ENV CGO_ENABLED=0",
		`go build -trimpath -ldflags "-s -w -X main.version=${VERSION} -X main.revision=${REVISION} -X main.buildDate=${BUILD_DATE}" -o /out/dispatcher ./cmd/dispatcher`,
		"FROM gcr.io/distroless/static-debian12:nonroot",
		"USER 65532:65532",
		`ENTRYPOINT ["/usr/local/bin/dispatcher"]`,
		`CMD ["serve"]`,
		"COPY --from=build /out/probe /usr/local/bin/probe",
	} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	if froms := regexp.MustCompile(`(?m)^FROM `).FindAllString(df, -1); len(froms) != 2 {
		t.Errorf("want a two-stage build, got %d FROM lines", len(froms))
	}
	if !slices.Contains(commands(t), "serve") {
		t.Error("the default command serve is not a command of the binary")
	}
	// The image's environment is settings of the binary too.
	env := regexp.MustCompile(`(?m)^\s*(?:ENV\s+)?(DISPATCHER_[A-Z_]+|TEMPORAL_[A-Z_]+|DATABASE_URL)=`).FindAllStringSubmatch(df, -1)
	var names []string
	for _, m := range env {
		names = append(names, m[1])
	}
	if len(names) == 0 {
		t.Error("the Dockerfile sets no DISPATCHER_HTTP_ADDR: the binary would listen on 127.0.0.1 only")
	}
	checkEnvNames(t, "Dockerfile", names)
}

// contextFiles returns the files of the Docker build context (the
// repository root) that Dockerfile.dockerignore lets through, relative to
// the root.
func contextFiles(t *testing.T) []string {
	t.Helper()
	f, err := os.Open(path("deployments", "docker", "Dockerfile.dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		ignored, err := pm.MatchesOrParentMatches(filepath.ToSlash(rel))
		if err != nil {
			return err
		}
		if d.IsDir() {
			// Docker walks into excluded directories only when an
			// exception pattern may re-include something below them.
			if ignored && !pm.Exclusions() {
				return filepath.SkipDir
			}
			return nil
		}
		if !ignored {
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestDockerBuildContext: the context holds every file the build needs and
// not the large or local ones.
func TestDockerBuildContext(t *testing.T) {
	files := contextFiles(t)
	for _, f := range files {
		for _, bad := range []string{"bin/", ".git/", ".run/", "deployments/kubernetes/", "deployments/validate/"} {
			if strings.HasPrefix(f, bad) {
				t.Errorf("%s is sent to the Docker build (ignore %s)", f, bad)
			}
		}
	}
	need := []string{"go.mod", "go.sum", "deployments/docker/probe/go.mod", "deployments/docker/probe/main.go"}
	// Every source and embedded file of the binary's packages.
	cmd := exec.Command("go", "list", "-deps", "-f", `{{if .Module}}{{if .Module.Main}}{{.Dir}}{{range .GoFiles}} {{.}}{{end}}{{range .EmbedFiles}} {{.}}{{end}}{{end}}{{end}}`, "./cmd/dispatcher")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	abs := mustAbs(t, root)
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		dir, err := filepath.Rel(abs, fields[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fields[1:] {
			need = append(need, filepath.ToSlash(filepath.Join(dir, f)))
		}
	}
	if len(need) < 20 {
		t.Fatalf("go list found only %d files: %v", len(need), need)
	}
	for _, f := range need {
		if !slices.Contains(files, f) {
			t.Errorf("%s is needed by the build but Dockerfile.dockerignore leaves it out", f)
		}
	}
}

// dispatcherLDFlags returns the -ldflags of the Dockerfile's build of the
// dispatcher, with its build arguments replaced by args.
func dispatcherLDFlags(t *testing.T, args map[string]string) string {
	t.Helper()
	m := regexp.MustCompile(`go build -trimpath -ldflags "([^"]*)" -o /out/dispatcher`).FindStringSubmatch(string(readFile(t, "deployments", "docker", "Dockerfile")))
	if m == nil {
		t.Fatal("the Dockerfile has no go build of /out/dispatcher with -ldflags")
	}
	return os.Expand(m[1], func(k string) string { return args[k] })
}

// TestDockerBuildStage runs the Dockerfile's build stage without Docker:
// the same go build commands (the dispatcher's -ldflags read from the
// Dockerfile, with sample build arguments) on a copy of the build context,
// then checks that both binaries are static (no ELF interpreter, no shared
// libraries), so they run on distroless/static, and that `dispatcher
// version` reports the build arguments. Skipped with -short (it compiles
// the service).
func TestDockerBuildStage(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the service")
	}
	ctx := t.TempDir()
	for _, f := range contextFiles(t) {
		b := readFile(t, f)
		dst := filepath.Join(ctx, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := t.TempDir()
	buildArgs := map[string]string{"VERSION": "v1.2.3-docker", "REVISION": "0badc0de", "BUILD_DATE": "2026-05-06T07:08:09Z"}
	for _, b := range []struct{ dir, pkg, bin, ldflags string }{
		{ctx, "./cmd/dispatcher", "dispatcher", dispatcherLDFlags(t, buildArgs)},
		{filepath.Join(ctx, "deployments", "docker", "probe"), ".", "probe", "-s -w"},
	} {
		bin := filepath.Join(out, b.bin)
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", b.ldflags, "-o", bin, b.pkg)
		cmd.Dir = b.dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=readonly")
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build stage: go build %s: %v\n%s", b.pkg, err, msg)
		}
		assertStatic(t, bin)
	}
	cmd := exec.Command(filepath.Join(out, "dispatcher"), "--help")
	msg, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(msg, []byte("serve")) {
		t.Fatalf("built dispatcher --help: %v\n%s", err, msg)
	}
	msg, err = exec.Command(filepath.Join(out, "dispatcher"), "version").CombinedOutput()
	for _, v := range buildArgs {
		if err != nil || !bytes.Contains(msg, []byte(v)) {
			t.Errorf("built dispatcher version does not report the build argument %q: %v\n%s", v, err, msg)
		}
	}
}

func assertStatic(t *testing.T, bin string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has an ELF interpreter: it is dynamically linked", filepath.Base(bin))
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("%s needs shared libraries %v", filepath.Base(bin), libs)
	}
	if f.Section(".symtab") != nil {
		t.Errorf("%s has a symbol table: -ldflags \"-s -w\" not applied", filepath.Base(bin))
	}
}
