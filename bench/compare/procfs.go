package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// procStat is the part of /proc/PID/stat the benchmark needs.
type procStat struct {
	Pid          int
	Comm         string
	State        byte
	Ppid         int
	Utime, Stime uint64 // clock ticks
	StartTime    uint64 // clock ticks after boot
}

// parseStat parses the content of /proc/PID/stat. The command name may hold spaces and
// parentheses, so the fields are counted from the last ')'.
func parseStat(s string) (procStat, error) {
	var p procStat
	open := strings.IndexByte(s, '(')
	closing := strings.LastIndexByte(s, ')')
	if open < 0 || closing < open {
		return p, fmt.Errorf("stat: no command name in %q", trunc(s))
	}
	pid, err := strconv.Atoi(strings.TrimSpace(s[:open]))
	if err != nil {
		return p, fmt.Errorf("stat: pid: %v", err)
	}
	p.Pid, p.Comm = pid, s[open+1:closing]
	f := strings.Fields(s[closing+1:])
	// f[0] state (field 3), f[1] ppid (4), f[11] utime (14), f[12] stime (15), f[19] starttime (22)
	if len(f) < 20 || len(f[0]) != 1 {
		return p, fmt.Errorf("stat: %d fields after the name in %q", len(f), trunc(s))
	}
	p.State = f[0][0]
	nums := []struct {
		i   int
		dst *uint64
	}{{11, &p.Utime}, {12, &p.Stime}, {19, &p.StartTime}}
	for _, n := range nums {
		if *n.dst, err = strconv.ParseUint(f[n.i], 10, 64); err != nil {
			return p, fmt.Errorf("stat: field %d: %v", n.i+3, err)
		}
	}
	if p.Ppid, err = strconv.Atoi(f[1]); err != nil {
		return p, fmt.Errorf("stat: ppid: %v", err)
	}
	return p, nil
}

func trunc(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// readStat reads /proc/PID/stat.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	return parseStat(string(b))
}

// alive says whether pid is a live process (not gone, not a zombie).
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	st, err := readStat(pid)
	return err == nil && st.State != 'Z' && st.State != 'X'
}

// parseVmRSS returns VmRSS in kB from the content of /proc/PID/status.
func parseVmRSS(s string) (int64, error) {
	for _, line := range strings.Split(s, "\n") {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("status: odd VmRSS line %q", line)
		}
		return strconv.ParseInt(f[0], 10, 64)
	}
	return 0, errors.New("status: no VmRSS line (a zombie or a kernel thread?)")
}

// statusField returns a numeric field ("Threads", "VmRSS") of /proc/PID/status content.
func statusField(s, name string) (int64, bool) {
	for _, line := range strings.Split(s, "\n") {
		if rest, ok := strings.CutPrefix(line, name+":"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				return 0, false
			}
			n, err := strconv.ParseInt(f[0], 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// threads is the number of threads of pid (0 if unknown).
func threads(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	n, _ := statusField(string(b), "Threads")
	return n
}

// rssMB is the resident memory of pid in MiB.
func rssMB(pid int) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	kb, err := parseVmRSS(string(b))
	return float64(kb) / 1024, err
}

// cpuTicks is utime+stime of pid.
func cpuTicks(pid int) (uint64, error) {
	st, err := readStat(pid)
	if err != nil {
		return 0, err
	}
	return st.Utime + st.Stime, nil
}

// clockTicks is the kernel's USER_HZ (getconf CLK_TCK), 100 when it cannot be asked.
func clockTicks() float64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(out))); err == nil && n > 0 {
			return float64(n)
		}
	}
	return 100
}

// cpuPercent turns a tick delta over a wall-clock window into percent of one core.
func cpuPercent(ticks uint64, hz float64, seconds float64) float64 {
	if seconds <= 0 || hz <= 0 {
		return 0
	}
	return float64(ticks) / hz / seconds * 100
}

// pids lists the numeric entries of /proc.
func pids() []int {
	f, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	defer f.Close()
	names, _ := f.Readdirnames(-1)
	out := make([]int, 0, len(names))
	for _, name := range names {
		if n, err := strconv.Atoi(name); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// pidSnapshot is the set of every pid in /proc now.
func pidSnapshot() map[int]bool {
	s := map[int]bool{}
	for _, p := range pids() {
		s[p] = true
	}
	return s
}

// newChild looks for a live process that is not in known, is a child of ppid and runs comm
// (so has exec'd), reading the stat of new pids only, so a poll costs little more than a
// readdir of /proc. Unrelated new pids are added to known; a child of ppid that has not
// exec'd yet is read again on the next poll.
func newChild(ppid int, comm string, known map[int]bool) int {
	for _, pid := range pids() {
		if known[pid] {
			continue
		}
		st, err := readStat(pid)
		if err != nil {
			continue
		}
		if st.Ppid != ppid {
			known[pid] = true
			continue
		}
		if st.Comm == comm && st.State != 'Z' && st.State != 'X' {
			return pid
		}
	}
	return 0
}

// liveChildren returns the live children of ppid whose command name is comm, as a set of pids.
// The kernel here has no /proc/PID/task/TID/children, so this scans every /proc/PID/stat.
func liveChildren(ppid int, comm string) map[int]bool {
	out := map[int]bool{}
	for _, pid := range pids() {
		st, err := readStat(pid)
		if err != nil || st.Ppid != ppid || st.Comm != comm || st.State == 'Z' || st.State == 'X' {
			continue
		}
		out[pid] = true
	}
	return out
}

// environContains says whether a NUL-separated environment block holds needle in any entry.
func environContains(environ []byte, needle string) bool {
	return needle != "" && bytes.Contains(environ, []byte(needle))
}

// processesWithEnv returns the pids (other than this process) whose environment mentions
// needle: the daemons and apps of a temp home, wherever they were reparented.
func processesWithEnv(needle string) []int {
	self := os.Getpid()
	var out []int
	for _, pid := range pids() {
		if pid == self {
			continue
		}
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
		if err != nil || !environContains(b, needle) {
			continue
		}
		if st, err := readStat(pid); err == nil && (st.State == 'Z' || st.State == 'X') {
			continue // a zombie is already dead; its parent reaps it
		}
		out = append(out, pid)
	}
	return out
}

// killAll sends SIGKILL to each pid and returns how many signals were delivered.
func killAll(ps []int) int {
	n := 0
	for _, p := range ps {
		if syscall.Kill(p, syscall.SIGKILL) == nil {
			n++
		}
	}
	return n
}
