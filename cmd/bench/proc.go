package main

import (
	"bufio"
	"debug/buildinfo"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/dispatcherhq/dispatcher/internal/proc"
)

// memory is a process's resident set, from /proc/<pid>/status.
type memory struct {
	RSS, HWM int64 // bytes: VmRSS now, VmHWM its peak
}

func readMemory(pid int) (memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memory{}, err
	}
	defer f.Close()
	var m memory
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(fields[0], 10, 64)
		switch k {
		case "VmRSS":
			m.RSS = n << 10
		case "VmHWM":
			m.HWM = n << 10
		}
	}
	return m, sc.Err()
}

// clockTick is USER_HZ, the unit of /proc/<pid>/stat times; 100 on every
// Linux that the bench runs on.
const clockTick = 10 * time.Millisecond

// cpuTime returns the user+system CPU time a process has used so far.
func cpuTime(pid int) (time.Duration, error) {
	f, err := statFields(pid)
	if err != nil {
		return 0, err
	}
	return ticks(f[11]) + ticks(f[12]), nil // fields 14 and 15: utime, stime
}

// statFields returns the fields of /proc/<pid>/stat after the command
// name, so that f[0] is field 3 (the state).
func statFields(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	// The command name (field 2) may hold spaces; fields count from
	// after its closing parenthesis.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 15 {
		return nil, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return f, nil
}

func ticks(field string) time.Duration {
	n, _ := strconv.ParseInt(field, 10, 64)
	return time.Duration(n) * clockTick
}

// machine describes where a run ran.
type machine struct {
	CPUs     int
	Model    string
	Kernel   string
	Go       string
	Temporal string
	Load     string // load averages when the run began
}

func describeMachine(temporalCLI string) machine {
	m := machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), Model: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.Model = strings.TrimSpace(v)
				break
			}
		}
	}
	if n := proc.Output("nproc"); n != "" {
		if v, err := strconv.Atoi(n); err == nil {
			m.CPUs = v
		}
	}
	m.Kernel = proc.Output("uname", "-sr")
	// "temporal version 0.0.0-DEV (Server 1.29.1, UI 2.42.1)": a CLI built
	// from the module proxy names its own version only in its build info.
	m.Temporal = strings.TrimPrefix(proc.Output(temporalCLI, "--version"), "temporal version ")
	if bi, err := buildinfo.ReadFile(temporalCLI); err == nil && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		m.Temporal = bi.Main.Version + strings.TrimPrefix(m.Temporal, "0.0.0-DEV")
	}
	m.Load = loadAverages()
	return m
}

// loadAverages returns the 1, 5 and 15 minute load averages, or "".
func loadAverages() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// loadAverage1 returns the 1-minute load average, or "".
func loadAverage1() string {
	l, _, _ := strings.Cut(loadAverages(), " ")
	return l
}
