package main

import (
	"strings"
	"testing"
	"time"
)

func TestExpiresArg(t *testing.T) {
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	for in, want := range map[string]string{
		"90d":                       "2027-03-04T10:00:00Z",
		"36h":                       "2026-12-05T22:00:00Z",
		"2027-06-30":                "2027-06-30T00:00:00Z",
		"2027-06-30T12:00:00+02:00": "2027-06-30T10:00:00Z",
	} {
		if got, err := expiresArg(in, now); err != nil || got != want {
			t.Errorf("--expires %s = %q, %v; want %q", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"-5d":      "must be positive",
		"0h":       "must be positive",
		"tomorrow": "want a duration from now",
		"d":        "want a duration from now",
	} {
		if _, err := expiresArg(in, now); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("--expires %s: %v, want an error saying %q", in, err, want)
		}
	}
}

// The flags a key cannot do without are asked for before the API is.
func TestAPIKeysCreateNeedsNameAndPermissions(t *testing.T) {
	for args, want := range map[string]string{
		"apikeys create --permissions CREATE_EVENTS":                          "--name: a key needs a name",
		"apikeys create --name ci":                                            "--permissions: a key needs at least one",
		"apikeys revoke dsp_abcdef":                                           "that is a key, not its id",
		"apikeys create --name ci --permissions CREATE_EVENTS --expires soon": `--expires "soon"`,
	} {
		var out strings.Builder
		err := run(t.Context(), strings.Fields(args), func(string) string { return "" }, &out, &out)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("dispatcher %s: %v, want %q", args, err, want)
		}
	}
}
