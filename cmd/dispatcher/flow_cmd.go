package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/dispatcherhq/dispatcher"
	"github.com/dispatcherhq/dispatcher/wire"
)

// executionsFlowCmd shows the gated functions: their flow control, the
// calls waiting for a permit, open circuits and paused functions.
func executionsFlowCmd(client func() (*apiClient, error)) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "flow",
		Short: "Functions with flow control: open circuits, pauses, calls waiting for a permit and in flight",
		Long: "Lists every function with a rate limit, a concurrency limit, a circuit breaker or a pause, and\n" +
			"where each stands: closed, open (its circuit: calls wait for a probe) or paused, how many\n" +
			"calls wait for a permit, since when, and how many are in flight.",
		Example: "  dispatcher executions flow\n  dispatcher executions flow --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			fns, err := gatedFunctions(cmd.Context(), c)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				raw, err := json.Marshal(fns)
				if err != nil {
					return err
				}
				return printJSON(out, raw)
			}
			printFlows(out, fns)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the functions as the API answers GET /functions/v1/{id}")
	return cmd
}

// gatedFunctions reads every function and, for those with flow control,
// where it stands.
func gatedFunctions(ctx context.Context, c *apiClient) ([]wire.FunctionDetail, error) {
	out := []wire.FunctionDetail{}
	for offset := 0; ; {
		var page struct {
			Page struct {
				Total int `json:"total"`
			} `json:"page"`
			Data []wire.Function `json:"data"`
		}
		q := "?sort(name)&limit(" + strconv.Itoa(dispatcher.MaxLimit) + "," + strconv.Itoa(offset) + ")"
		if _, err := c.do(ctx, "GET", "/functions/v1"+q, nil, nil, &page); err != nil {
			return nil, err
		}
		for _, f := range page.Data {
			if f.RateLimit == nil && f.MaxConcurrency == 0 && f.CircuitBreaker == nil && f.PausedUntil == "" {
				continue
			}
			var d wire.FunctionDetail
			if _, err := c.do(ctx, "GET", "/functions/v1/"+url.PathEscape(f.ID), nil, nil, &d); err != nil {
				return nil, err
			}
			out = append(out, d)
		}
		offset += len(page.Data)
		if len(page.Data) == 0 || offset >= page.Page.Total {
			return out, nil
		}
	}
}

func printFlows(w io.Writer, fns []wire.FunctionDetail) {
	if len(fns) == 0 {
		fmt.Fprintln(w, "no function has flow control")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FUNCTION\tSTATE\tWAITING\tIN FLIGHT\tWAITING SINCE (UTC)\tOPENED (UTC)\tNEXT PROBE (UTC)\tPAUSED UNTIL (UTC)\tLIMITS")
	for _, f := range fns {
		fl := f.Flow
		if fl == nil {
			fl = &wire.FunctionFlow{State: "-"}
		}
		state, waiting, inFlight := fl.State, strconv.Itoa(fl.Waiting), strconv.Itoa(fl.InFlight)
		if fl.Unknown { // its gate could not be read
			state, waiting, inFlight = "unknown ("+fl.State+"?)", "?", "?"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", f.Name, state, waiting, inFlight,
			millisTime(fl.OldestWaiting), millisTime(fl.OpenedAt), millisTime(fl.NextProbe), millisTime(fl.PausedUntil), limits(f.Function, time.Now()))
	}
	tw.Flush()
	for _, f := range fns {
		if f.Flow != nil && f.Flow.Unknown {
			fmt.Fprintln(w, "unknown: its gate could not be read (is Temporal reachable? are the workers running? does the gate's workflow task fail? see its workflow in the Temporal Web UI)")
			break
		}
	}
}

// limits says a function's flow control in a few words, at now: a pause
// that has ended is left out.
func limits(f wire.Function, now time.Time) string {
	var parts []string
	if r := f.RateLimit; r != nil {
		parts = append(parts, fmt.Sprintf("%g/s (burst %d)", r.PerSecond, max(r.Burst, 1)))
	}
	if f.MaxConcurrency > 0 {
		parts = append(parts, fmt.Sprintf("%d at once", f.MaxConcurrency))
	}
	if b := f.CircuitBreaker; b != nil {
		parts = append(parts, fmt.Sprintf("opens after %d failures in %ds, probes every %ds", b.Failures, b.WindowSeconds, b.ProbeIntervalSeconds))
	}
	if until, err := time.Parse(time.RFC3339, f.PausedUntil); err == nil && until.After(now) {
		parts = append(parts, "paused until "+f.PausedUntil)
	}
	return orDash(strings.Join(parts, "; "))
}
