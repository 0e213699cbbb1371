package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/testenv"
)

// TestChaos is the fault suite's short version, run by `make test`: 200
// events on the production topology, the worker, the API and Temporal
// each SIGKILLed once, a slow function that outlasts the engine's 5 s
// first-attempt budget. It fails, with the verdict line and its
// evidence, when an effect was lost or duplicated or a dispatch did not
// complete. `make chaos` is the long version.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("the fault suite takes about a minute")
	}
	cli := testenv.TemporalCLI(t)
	pg := testenv.Postgres(t)
	bin := testenv.Binary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	var stdout bytes.Buffer
	v, err := run(ctx, []string{
		"-events", "200", "-slow", "6s", "-kills", "worker,api,temporal", "-seed", "1", "-timeout", "3m",
		"-temporal", cli, "-dispatcher", bin, "-postgres-url", pg,
	}, os.Getenv, &stdout, testLog{t})
	switch {
	case errors.Is(err, errVerdict):
		t.Fatalf("effects were lost, duplicated or failed:\n%s", stdout.String())
	case err != nil:
		t.Fatalf("the run could not be carried out: %v\n%s", err, stdout.String())
	}
	t.Logf("\n%s", stdout.String())
	// A run whose faults did not strike, or that moved no effect, proves
	// nothing.
	if v.Events != 200 || v.Effects != 3*v.Events {
		t.Errorf("%d effects of %d events, want 3 each of 200", v.Effects, v.Events)
	}
	if v.Kills != 3 || v.MailDropped == 0 || v.MailSlowed == 0 {
		t.Errorf("faults: %d kills, %d dropped and %d slowed mails; want 3 kills and some of each", v.Kills, v.MailDropped, v.MailSlowed)
	}
}

// testLog writes the run's progress lines to the test log.
type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
