package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"
)

// TestMain keeps the tests that call run from the environment of whoever
// runs them, as their getenv does: run warns of misnamed settings in it.
func TestMain(m *testing.M) {
	environ = func() []string { return nil }
	os.Exit(m.Run())
}

// TestUnknownSubcommand: a misspelt subcommand of a command group is an
// error (exit 1), as a misspelt command is; before, the group printed its
// help and exited 0, so a script or CI never noticed. The group alone
// still prints its help.
func TestUnknownSubcommand(t *testing.T) {
	for _, args := range [][]string{{"frobnicate"}, {"executions", "frobnicate"}, {"encryption", "frob"}, {"audit", "frob", "x"}} {
		var out bytes.Buffer
		err := run(context.Background(), args, func(string) string { return "" }, &out, &out)
		if bad := args[min(1, len(args)-1)]; err == nil || !strings.Contains(err.Error(), `unknown command "`+bad+`"`) {
			t.Errorf("dispatcher %s: %v, want an unknown command error", strings.Join(args, " "), err)
		}
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"executions"}, func(string) string { return "" }, &out, &out); err != nil || !strings.Contains(out.String(), "Available Commands") {
		t.Errorf("dispatcher executions: %v, %q; want its help", err, out.String())
	}
}

// A misspelt subcommand or flag says what it nearly spells, below the
// top level too. Before, only `dispatcher executoins` did.
func TestSuggestions(t *testing.T) {
	for args, want := range map[string]string{
		"executions lsit":                   `unknown command "lsit" for "dispatcher executions"; did you mean list?`,
		"apikeys craete":                    `did you mean create?`,
		"executions list --stauts failed":   `unknown flag: --stauts; did you mean --status?`,
		"replay --dry-runn":                 `did you mean --dry-run?`,
		"executions list --nothing-like-it": `unknown flag: --nothing-like-it; see dispatcher executions list --help`,
	} {
		err := run(context.Background(), strings.Fields(args), func(string) string { return "" }, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("dispatcher %s: %v, want %q", args, err, want)
		}
	}
}

// A file named as sync's argument, as the Extra Horizon CLI's users may
// type it, says to use -f; before, it was an unknown command.
func TestSyncFileAsArgument(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"sync", "dispatchers.yaml"}, func(string) string { return "" }, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "dispatcher sync -f dispatchers.yaml") {
		t.Errorf("dispatcher sync dispatchers.yaml: %v, want a hint to use -f", err)
	}
}
