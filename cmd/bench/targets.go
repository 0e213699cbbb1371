package main

import "fmt"

// target is one of the figures issue 10 sets, as this run measured it.
type target struct {
	Name, Want, Got string
	Measured        bool    // false: the run left it out
	Met             bool    //
	Miss            float64 // how far off, as a fraction of the wanted value, when missed
}

// verdict says whether the target was met, and by how much it was missed.
func (t target) verdict() string {
	switch {
	case !t.Measured:
		return "not measured"
	case t.Met:
		return "met"
	}
	return fmt.Sprintf("**missed** by %.0f %%", 100*t.Miss)
}

// bound is a target on a figure that the run measured when measured is
// true: at least want (atLeast) or at most want.
func bound(name string, atLeast, measured bool, got, want float64, format string) target {
	op := "≤ "
	if atLeast {
		op = "≥ "
	}
	t := target{Name: name, Want: op + fmt.Sprintf(format, want), Got: "—", Measured: measured}
	if !measured {
		return t
	}
	t.Got = fmt.Sprintf(format, got)
	switch {
	case atLeast && got < want:
		t.Miss = (want - got) / want
	case !atLeast && got > want:
		t.Miss = (got - want) / want
	default:
		t.Met = true
	}
	return t
}

// also adds detail to a measured target's figure.
func (t target) also(format string, args ...any) target {
	if t.Measured {
		t.Got += fmt.Sprintf(format, args...)
	}
	return t
}

// targets evaluates the run against the targets of issue 10, in the
// order the issue lists them.
func (r report) targets() []target {
	pr, n := r.Production, r.Params.Actions
	serveDB, bareDB := pr.Serve.DB, pr.Bare.DB
	hist, peak := maxHistory(r.dispatcherPhases()), maxPeak(r.dispatcherPhases())
	ts := []target{
		bound("ratio: dispatcher ÷ baseline (dev server)", true, r.Baseline.Load.N > 0, r.ratio(), 3.0, "%.2f"),
		bound("ref_ratio: dispatcher ÷ reference (dev server)", true, r.Reference.Load.N > 0, r.refRatio(), 0.85, "%.2f"),
		bound("prod_ratio: production `serve` ÷ bare workflow (same server on PostgreSQL)", true, pr.Bare.Load.N > 0 && pr.Serve.Load.N > 0,
			r.prodRatio(), 2.5, "%.2f"),
		bound("p99 end-to-end: production `serve` ÷ dev-server dispatcher", false, r.prodP99Factor() > 0, r.prodP99Factor(), 1.5, "%.2f").
			also(" (%s ÷ %s)", ms(percentile(pr.Serve.Load.Total, 99)), ms(percentile(r.Dispatcher.Load.Total, 99))),
		bound(fmt.Sprintf("history events per dispatch, happy path, N = %d actions (longest sampled, every dispatcher row)", n), false, hist > 0,
			float64(hist), float64(7+n), "%.0f").also(" (7+N = %d)", 7+n),
		bound("visibility writes per dispatch, happy path (rows written in the visibility DB, production `serve`)", false, serveDB != nil,
			serveDB.PerRun(serveDB.rows(dbVisibility)), 1, "%.2f").also(" (bare workflow: %.2f)", bareDB.PerRun(bareDB.rows(dbVisibility))),
		bound("intake p99 at half the sustainable rate (open loop, production `serve`)", false, pr.Open.Load.N > 0,
			msf(percentile(pr.Open.Load.Intake, 99)), 25, "%.1f ms").also(" at %.1f events/s", pr.Open.Load.Rate),
		bound("worker RSS under load (highest peak VmHWM of any dispatcher process)", false, peak > 0, float64(peak)/1e6, 150, "%.0f MB"),
	}
	return ts
}
