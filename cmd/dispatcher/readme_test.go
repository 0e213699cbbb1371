package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestREADMEConfigTable keeps the README's configuration table equal to the
// settings the binary reads. Regenerate it with `dispatcher config --markdown`.
func TestREADMEConfigTable(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	start := strings.Index(readme, "<!-- config:start")
	end := strings.Index(readme, "<!-- config:end -->")
	if start < 0 || end < start {
		t.Fatal("README.md lacks the config:start/config:end markers")
	}
	section := readme[start:end]
	section = section[strings.Index(section, "\n")+1:]
	if got, want := strings.TrimSpace(section), strings.TrimSpace(configTable()); got != want {
		t.Fatalf("README.md's configuration table is out of date; replace it with the output of `dispatcher config --markdown`:\n%s", want)
	}
}
