package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/dispatcherhq/dispatcher/workflows"
)

func TestReadBuild(t *testing.T) {
	vcs := func(version string, settings ...string) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) {
			info := &debug.BuildInfo{GoVersion: "go1.99", Main: debug.Module{Path: "github.com/dispatcherhq/dispatcher", Version: version}}
			for i := 0; i+1 < len(settings); i += 2 {
				info.Settings = append(info.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
			}
			return info, true
		}
	}
	for _, tc := range []struct {
		name               string
		read               func() (*debug.BuildInfo, bool)
		ldVersion, ldRev   string
		ldDate             string
		want               buildInfo
		wantHealthRevision string
	}{
		{"a checkout: the commit from Git", vcs("(devel)", "vcs.revision", "abc123", "vcs.time", "2026-01-02T03:04:05Z", "vcs.modified", "false"),
			"", "", "", buildInfo{Version: "dev", Revision: "abc123", BuildDate: "2026-01-02T03:04:05Z", GoVersion: "go1.99"}, "abc123"},
		{"a checkout with changes", vcs("(devel)", "vcs.revision", "abc123", "vcs.modified", "true"),
			"", "", "", buildInfo{Version: "dev", Revision: "abc123", Modified: true, GoVersion: "go1.99"}, "abc123-modified"},
		{"go install of a release", vcs("v1.4.0"),
			"", "", "", buildInfo{Version: "v1.4.0", GoVersion: "go1.99"}, ""},
		{"link-time values win", vcs("(devel)", "vcs.revision", "abc123", "vcs.time", "2026-01-02T03:04:05Z", "vcs.modified", "true"),
			"v2.0.0", "def456", "2026-02-03T00:00:00Z", buildInfo{Version: "v2.0.0", Revision: "def456", BuildDate: "2026-02-03T00:00:00Z", GoVersion: "go1.99"}, "def456"},
		{"no build information", func() (*debug.BuildInfo, bool) { return nil, false },
			"", "", "", buildInfo{Version: "dev", GoVersion: runtime.Version()}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := readBuild(tc.read, tc.ldVersion, tc.ldRev, tc.ldDate)
			tc.want.Platform = runtime.GOOS + "/" + runtime.GOARCH
			if got != tc.want {
				t.Errorf("readBuild = %+v, want %+v", got, tc.want)
			}
			if h := got.api(); h.Version != tc.want.Version || h.Revision != tc.wantHealthRevision {
				t.Errorf("/health build %+v, want version %q revision %q", h, tc.want.Version, tc.wantHealthRevision)
			}
		})
	}
}

// TestVersionLinkTime builds the binary the way the Makefile and the
// Dockerfile do, with -X, and checks `dispatcher version` prints what was
// set: a misspelt -X name is silently ignored by the linker.
func TestVersionLinkTime(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "dispatcher")
	build := exec.Command("go", "build", "-ldflags",
		"-X main.version=v9.8.7-test -X main.revision=0123abcd -X main.buildDate=2026-03-04T05:06:07Z", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("dispatcher version: %v\n%s", err, out)
	}
	for _, want := range []string{"dispatcher v9.8.7-test\n", "commit  0123abcd\n", "built   2026-03-04T05:06:07Z\n", "go      " + runtime.Version()} {
		if !strings.Contains(string(out), want) {
			t.Errorf("dispatcher version printed\n%s\nwant %q in it", out, want)
		}
	}
}

func TestVersionCommand(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, func(string) string { return "" }, &out, &out); err != nil {
		t.Fatal(err)
	}
	b := currentBuild()
	newest := fmt.Sprintf("starts  Dispatch workflow version %d (", workflows.NewestDispatchVersion)
	if !strings.HasPrefix(out.String(), "dispatcher "+b.Version+"\n") || !strings.Contains(out.String(), runtime.Version()) ||
		!strings.Contains(out.String(), newest) {
		t.Errorf("dispatcher version printed\n%s", out.String())
	}
	// Pinned for a rolling upgrade, it says the pinned version; a bad
	// one is refused as the processes refuse it. Before, it said the
	// newest either way.
	pinned := fmt.Sprint(workflows.OldestDispatchVersion)
	out.Reset()
	env := func(v string) func(string) string {
		return func(k string) string { return map[string]string{"DISPATCHER_DISPATCH_VERSION": v}[k] }
	}
	if err := run(context.Background(), []string{"version"}, env(pinned), &out, &out); err != nil ||
		!strings.Contains(out.String(), "starts  Dispatch workflow version "+pinned+", pinned by DISPATCHER_DISPATCH_VERSION") {
		t.Errorf("pinned to %s: %v, printed\n%s", pinned, err, out.String())
	}
	out.Reset() // the newest, written otherwise, pins nothing
	if err := run(context.Background(), []string{"version"}, env(fmt.Sprintf("0%d", workflows.NewestDispatchVersion)), &out, &out); err != nil ||
		!strings.Contains(out.String(), newest) {
		t.Errorf("pinned to 0%d: %v, printed\n%s", workflows.NewestDispatchVersion, err, out.String())
	}
	out.Reset()
	err := run(context.Background(), []string{"version"}, env("2"), &out, &out)
	if err != nil || !strings.Contains(out.String(), `starts  nothing: DISPATCHER_DISPATCH_VERSION="2" is refused (want a whole number from`) ||
		!strings.HasPrefix(out.String(), "dispatcher "+b.Version+"\n") {
		t.Errorf("pinned to 2: %v, printed\n%s\nwant the build, and the setting said to be refused", err, out.String())
	}
}

// TestBuildInfoServed: the API process and the worker process both tell
// their build on /health and /healthz and as dispatcher_build_info on
// /metrics, the same as `dispatcher version`; and the Dispatch version
// they start, pinned here as in an upgrade's first rollout, there and in
// their log. Before, only `dispatcher version` with a pod's environment
// told whether it was pinned.
func TestBuildInfoServed(t *testing.T) {
	pinned := fmt.Sprint(workflows.NewestDispatchVersion - 1)
	s := startSystem(t, splitProcesses, withEnv("DISPATCHER_DISPATCH_VERSION="+pinned))
	first, _, _ := strings.Cut(s.run("version"), "\n")
	version := strings.TrimPrefix(first, "dispatcher ")
	for what, url := range map[string]string{"api": s.url, "worker": s.worker.url} {
		for _, path := range []string{"/health", "/healthz"} {
			res, err := http.Get(url + path)
			if err != nil {
				t.Fatal(err)
			}
			var body struct{ Status, Version string }
			err = json.NewDecoder(res.Body).Decode(&body)
			res.Body.Close()
			if err != nil || body.Status != "ok" || body.Version != version {
				t.Errorf("%s %s: %+v (%v), want status ok and version %q", what, path, body, err, version)
			}
		}
		fam := scrape(t, url)["dispatcher_build_info"]
		if fam == nil || len(fam.Metric) != 1 || fam.Metric[0].GetGauge().GetValue() != 1 {
			t.Errorf("%s: dispatcher_build_info = %v, want one series of value 1", what, fam)
			continue
		}
		labels := map[string]string{}
		for _, l := range fam.Metric[0].Label {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["version"] != version || !strings.HasPrefix(labels["goversion"], "go1.") {
			t.Errorf("%s: dispatcher_build_info labels %v, want version %q and the Go version", what, labels, version)
		}
		if _, ok := labels["revision"]; !ok {
			t.Errorf("%s: dispatcher_build_info has no revision label: %v", what, labels)
		}
		if labels["dispatch_version"] != pinned {
			t.Errorf("%s: dispatcher_build_info labels %v, want dispatch_version %s", what, labels, pinned)
		}
	}
	if n := strings.Count(s.logs.String(), "pinned by DISPATCHER_DISPATCH_VERSION"); n != 2 {
		t.Errorf("%d processes logged that they start a pinned Dispatch version, want both:\n%s", n, s.logs)
	}
}
