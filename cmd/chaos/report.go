package main

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/proc"
)

// evidenceSamples is how many failed dispatches the report reads in
// detail.
const evidenceSamples = 3

// report prints what the run did and found, ending with the verdict
// line, and appends it to -out.
func (r *runner) report(v verdict, snap snapshot, notOver string) {
	var b bytes.Buffer
	for _, k := range r.kills {
		fmt.Fprintf(&b, "killed %s\n", k)
	}
	fmt.Fprintf(&b, "producer: %d events accepted after %d attempts (%d retried, %d answered duplicate: an earlier attempt had been accepted)\n",
		r.prod.accepted.Load(), r.prod.attempts.Load(), r.prod.retried.Load(), r.prod.duplicates.Load())
	for _, c := range r.topo.unplannedExits() {
		fmt.Fprintf(&b, "UNPLANNED EXIT: %s\n", c)
	}
	if notOver != "" {
		fmt.Fprintf(&b, "NOT SETTLED within -timeout %s: %s\n", r.p.Timeout, notOver)
	}
	v.explain(&b)
	r.evidence(&b, v, snap)
	fmt.Fprintf(r.stdout, "%s%s\n", b.String(), v.line())
	if r.p.Ledger != "" {
		if err := writeLedger(r.p.Ledger, snap); err != nil {
			r.prog.note("!! could not write the ledger to %s: %v", r.p.Ledger, err)
		}
	}
	if r.p.Out != "" {
		if err := appendRun(r.p.Out, r.p.Dispatcher, r.args, b.String(), v.line()); err != nil {
			r.prog.note("!! could not append to %s: %v", r.p.Out, err)
		} else {
			r.prog.note("appended the figures to %s", r.p.Out)
		}
	}
}

// evidence shows a few failed dispatches as the API records them, next
// to what the sinks saw of the same event.
func (r *runner) evidence(w io.Writer, v verdict, snap snapshot) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seen := map[string]bool{}
	n := 0
	for _, x := range v.FailedRuns {
		group := fmt.Sprintf("%s %v", x.Status, x.ErrorClasses)
		if seen[group] || n == evidenceSamples {
			continue
		}
		seen[group] = true
		n++
		fmt.Fprintf(w, "example: %s ended %q\n", x.WorkflowID, x.Status)
		if d, err := r.api.execution(ctx, x.WorkflowID); err != nil {
			fmt.Fprintf(w, "  (its detail could not be read: %v)\n", err)
		} else {
			for _, a := range d.Actions {
				fmt.Fprintf(w, "  dispatcher says: %-5s %s after %d attempts", a.ActionName, a.Status, a.Attempts)
				if a.HTTPStatus != 0 {
					fmt.Fprintf(w, ", HTTP %d", a.HTTPStatus)
				}
				if a.LastError != nil {
					fmt.Fprintf(w, ", %s: %s", a.LastError.Class, a.LastError.Message)
				}
				fmt.Fprintln(w)
			}
		}
		for _, rec := range snap.Records {
			if rec.Event == x.EventID {
				fmt.Fprintf(w, "  sinks saw:       %-5s %s: %d deliveries, applied %d×, %d redelivered, %d answered 409\n",
					rec.Action, rec.Key, rec.Deliveries, rec.Applied, rec.Redelivered, rec.Conflicts)
			}
		}
	}
}

// appendRun appends a run's figures to the markdown file at path.
func appendRun(path, dispatcher string, args []string, body, line string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	cmd := strings.TrimSpace("go run ./cmd/chaos " + strings.Join(figureArgs(args), " "))
	_, err = fmt.Fprintf(f, "\n### %s — `%s`\n\n%s %s\n\n```\n%s%s\n```\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), cmd, machine(), revision(dispatcher), body, line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeLedger writes every record of the receivers to path, one JSON
// object a line.
func writeLedger(path string, snap snapshot) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(f)
	for _, r := range snap.Records {
		if err := enc.Encode(r); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

// figureArgs are the flags that shape a run, without those that only
// say where its files go (-out, -dir, -ledger).
func figureArgs(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		name, _, hasValue := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		if name == "out" || name == "dir" || name == "ledger" {
			if !hasValue {
				i++
			}
			continue
		}
		out = append(out, args[i])
	}
	return out
}

// revision says which code the dispatcher binary was built from: as
// `dispatcher version` reports it ("dispatcher c394df4-dirty", set by
// make build), else as Go stamped it into the binary.
func revision(bin string) string {
	if out := proc.Output(bin, "version"); strings.HasPrefix(out, "dispatcher ") {
		first, _, _ := strings.Cut(out, "\n")
		return "Dispatcher: `" + first + "`."
	}
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		return "Dispatcher: " + bin + "."
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value[:min(7, len(s.Value))]
		case "vcs.modified":
			modified = s.Value
		}
	}
	switch {
	case rev == "":
		return "Dispatcher: " + bin + " (no VCS stamp)."
	case modified == "true":
		return "Dispatcher built from " + rev + " with uncommitted changes."
	}
	return "Dispatcher built from " + rev + "."
}

// machine describes where the run ran.
func machine() string {
	cpus := proc.Output("nproc")
	if cpus == "" {
		cpus = fmt.Sprint(runtime.NumCPU())
	}
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("Machine: %s CPUs (`nproc`), %s, %s, %s.", cpus, model, proc.Output("uname", "-sr"), runtime.Version())
}
