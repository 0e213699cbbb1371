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
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields count from
	// after its closing parenthesis.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, _ := strconv.ParseInt(f[12], 10, 64) // field 15
	return time.Duration(utime+stime) * clockTick, nil
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
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.Load = strings.Join(f[:3], " ")
		}
	}
	return m
}
