package main

import (
	"fmt"
	"io"
	"os"
	"unicode/utf8"

	"golang.org/x/term"
)

// terminal is a terminal the CLI writes to. What it prints comes in part
// from producers and admins (event types, names, failures), and a control
// sequence in one would act on the operator's terminal: clear the screen,
// rewrite the lines of failed dispatches, set a link or the clipboard.
// Written to a terminal, control characters (but newline and tab) and
// bidirectional overrides show as \u escapes; a file or a pipe gets them
// as they are, so that output kept or parsed is the data.
type terminal struct{ w io.Writer }

// forTerminal returns f, escaping its control characters when it is a
// terminal.
func forTerminal(f *os.File) io.Writer {
	if term.IsTerminal(int(f.Fd())) {
		return terminal{f}
	}
	return f
}

// rawTerminal returns the terminal w writes to, for what writes control
// sequences of its own (a progress bar), or nil when w is not one.
func rawTerminal(w io.Writer) io.Writer {
	switch w := w.(type) {
	case terminal:
		return w.w
	case *os.File:
		if term.IsTerminal(int(w.Fd())) {
			return w
		}
	}
	return nil
}

func (t terminal) Write(p []byte) (int, error) {
	out := make([]byte, 0, len(p))
	for s := p; len(s) > 0; {
		r, n := utf8.DecodeRune(s)
		if actsOnTerminal(r) {
			out = fmt.Appendf(out, `\u%04x`, r)
		} else {
			out = append(out, s[:n]...)
		}
		s = s[n:]
	}
	if _, err := t.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// actsOnTerminal reports whether a terminal would act on r rather than
// show it: C0 and C1 controls but newline and tab, DEL, and the
// bidirectional overrides and isolates, which reorder what follows.
func actsOnTerminal(r rune) bool {
	switch {
	case r == '\n' || r == '\t':
		return false
	case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}
