package main

import (
	"bytes"
	"fmt"
	"os"
	"testing"
)

// A producer's event type or an admin's name, printed to an operator's
// terminal, shows its control sequences instead of running them. Before,
// `executions list` cleared the screen and retitled the window for an
// event of type "t\x1b]0;PWNED\a\x1b[2J".
func TestTerminalShowsControlSequences(t *testing.T) {
	var buf bytes.Buffer
	w := terminal{&buf}
	in := "esc1\tt\x1b]0;PWNED\a\x1b[2J\x1b[31mred\u009b1m \u202egnp.exe\r\nnext line é ✓\n"
	n, err := fmt.Fprint(w, in)
	if err != nil || n != len(in) {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(in))
	}
	want := `esc1` + "\t" + `t\u001b]0;PWNED\u0007\u001b[2J\u001b[31mred\u009b1m \u202egnp.exe\u000d` + "\nnext line é ✓\n"
	if got := buf.String(); got != want {
		t.Errorf("the terminal got %q, want %q", got, want)
	}
	if rawTerminal(w) != &buf {
		t.Error("a progress bar does not get the terminal itself")
	}
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if forTerminal(f) != f || rawTerminal(f) != nil {
		t.Error("a file is treated as a terminal: what is kept must be the data as it is")
	}
}
