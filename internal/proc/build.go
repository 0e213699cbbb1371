package proc

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// BuildDispatcher builds cmd/dispatcher of the module at root into dir
// and returns the binary's path.
func BuildDispatcher(ctx context.Context, root, dir string) (string, error) {
	out := filepath.Join(dir, "dispatcher")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/dispatcher")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/dispatcher: %v\n%s", err, b)
	}
	return out, nil
}

// ModuleRoot returns the nearest folder at or above the working directory
// that holds go.mod: harnesses find bin/ and build from there.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod at or above %s: run it from the repository", dir)
		}
	}
}

// Output runs name with args and returns its trimmed standard output, or
// "" when it fails: for describing the machine, where a missing tool
// only leaves a blank.
func Output(name string, args ...string) string {
	b, err := exec.Command(name, args...).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
