package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/dispatcherhq/dispatcher/api"
	"github.com/dispatcherhq/dispatcher/workflows"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
)

// Set at link time by the Makefile and the Dockerfile:
//
//	go build -ldflags "-X main.version=1.2.0 -X main.revision=3f2c… -X main.buildDate=2026-…"
//
// They are package variables only because -X can set nothing else; read
// them through currentBuild. Empty ones fall back to what the Go toolchain
// recorded (debug.ReadBuildInfo): a build inside a Git checkout knows its
// commit, a Docker build (no .git in its context) does not.
var (
	version   string
	revision  string
	buildDate string
)

// buildInfo identifies the running binary.
type buildInfo struct {
	Version   string // a release (v1.2.0), a module version, or "dev"
	Revision  string // the commit; "" when unknown
	Modified  bool   // built from a checkout with uncommitted changes
	BuildDate string // when it was built (RFC 3339, or the commit's time); "" when unknown
	GoVersion string
	Platform  string // GOOS/GOARCH
}

// currentBuild returns the running binary's build information.
func currentBuild() buildInfo {
	return readBuild(debug.ReadBuildInfo, version, revision, buildDate)
}

// readBuild prefers the link-time values and fills the rest from the
// toolchain's record.
func readBuild(read func() (*debug.BuildInfo, bool), ldVersion, ldRevision, ldDate string) buildInfo {
	b := buildInfo{Version: ldVersion, Revision: ldRevision, BuildDate: ldDate,
		GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if info, ok := read(); ok {
		b.GoVersion = info.GoVersion
		if b.Version == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			b.Version = info.Main.Version // go install …@v1.2.0
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if ldRevision == "" {
					b.Revision = s.Value
				}
			case "vcs.time":
				if b.BuildDate == "" {
					b.BuildDate = s.Value
				}
			case "vcs.modified":
				b.Modified = ldRevision == "" && s.Value == "true"
			}
		}
	}
	if b.Version == "" {
		b.Version = "dev"
	}
	return b
}

// api is what /health shows of the build.
func (b buildInfo) api() api.BuildInfo {
	rev := b.Revision
	if b.Modified && rev != "" {
		rev += "-modified"
	}
	return api.BuildInfo{Version: b.Version, Revision: rev}
}

// collector is the dispatcher_build_info gauge: always 1, the build in its
// labels, so a dashboard can show which versions run and a rollout can
// be followed (count by (version) (dispatcher_build_info)); and the
// Dispatch version the process starts, so that the pods still pinned
// during an upgrade's first rollout are found (before, only a `dispatcher
// version` with the pod's environment told).
func (b buildInfo) collector(dispatchVersion int) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "dispatcher_build_info",
		Help: "The running dispatcher's build: always 1, with its version, commit, Go version and the Dispatch workflow version it starts (DISPATCHER_DISPATCH_VERSION) as labels.",
		ConstLabels: prometheus.Labels{
			"version": b.Version, "revision": b.api().Revision, "goversion": b.GoVersion, "dispatch_version": strconv.Itoa(dispatchVersion),
		},
	})
	g.Set(1)
	return g
}

// versionCmd prints the build information, and the Dispatch version the
// process starts: DISPATCHER_DISPATCH_VERSION's when it pins one. Before,
// it said this release's newest whatever the setting, and an operator
// checking a pinned process mid-upgrade was told the wrong one.
func versionCmd(getenv func(string) string) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Show the version, commit, Go version and build date of this binary",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b := currentBuild()
			out := cmd.OutOrStdout()
			unknown := func(s string) string {
				if s == "" {
					return "unknown"
				}
				return s
			}
			fmt.Fprintf(out, "dispatcher %s\n", b.Version)
			fmt.Fprintf(out, "  commit  %s\n", unknown(b.api().Revision))
			fmt.Fprintf(out, "  built   %s\n", unknown(b.BuildDate))
			fmt.Fprintf(out, "  go      %s %s\n", b.GoVersion, b.Platform)
			pinned := strings.TrimSpace(getenv("DISPATCHER_DISPATCH_VERSION"))
			n, _ := strconv.Atoi(pinned)
			switch {
			case pinned == "" || n == workflows.NewestDispatchVersion:
				fmt.Fprintf(out, "  starts  Dispatch workflow version %d (its workers run every version up to it; DISPATCHER_DISPATCH_VERSION starts %d to %d)\n",
					workflows.NewestDispatchVersion, workflows.OldestDispatchVersion, workflows.NewestDispatchVersion)
			default:
				// Printed, not refused: an operator in the middle of an
				// upgrade asks which version a pod would start.
				var c config
				if err := dispatchVersion(func(c *config) *string { return &c.DispatchVersion })(&c, pinned); err != nil {
					fmt.Fprintf(out, "  starts  nothing: DISPATCHER_DISPATCH_VERSION=%q is refused (%v), and the processes would not start\n", pinned, err)
					break
				}
				fmt.Fprintf(out, "  starts  Dispatch workflow version %d, pinned by DISPATCHER_DISPATCH_VERSION (its workers run every version up to %d)\n",
					n, workflows.NewestDispatchVersion)
			}
			return nil
		},
	}
}
