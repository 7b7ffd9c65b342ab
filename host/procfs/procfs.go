// Package procfs reads the few fields of /proc/PID/stat that pmdaemon needs: state, parent,
// process group and start time. It is the one parser of that file in the project.
package procfs

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// Stat is a process's entry in /proc/PID/stat.
type Stat struct {
	Pid       int
	State     byte // 'R', 'S', 'Z', ...
	Ppid      int
	Pgid      int
	StartTime uint64 // clock ticks since boot; with the pid, it names one process
}

// Zombie reports whether the process has exited and awaits reaping.
func (s Stat) Zombie() bool { return s.State == 'Z' || s.State == 'X' }

// Read reads /proc/PID/stat.
func Read(pid int) (Stat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Stat{}, err
	}
	return parse(pid, b)
}

func parse(pid int, b []byte) (Stat, error) {
	// comm may hold spaces and parentheses; the fields start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return Stat{}, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state), f[1] ppid, f[2] pgrp, f[19] starttime (field 22).
	if len(f) < 20 || len(f[0]) == 0 {
		return Stat{}, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	s := Stat{Pid: pid, State: f[0][0]}
	var err error
	if s.Ppid, err = strconv.Atoi(string(f[1])); err != nil {
		return Stat{}, fmt.Errorf("malformed /proc/%d/stat: ppid: %w", pid, err)
	}
	if s.Pgid, err = strconv.Atoi(string(f[2])); err != nil {
		return Stat{}, fmt.Errorf("malformed /proc/%d/stat: pgrp: %w", pid, err)
	}
	if s.StartTime, err = strconv.ParseUint(string(f[19]), 10, 64); err != nil {
		return Stat{}, fmt.Errorf("malformed /proc/%d/stat: starttime: %w", pid, err)
	}
	return s, nil
}

// All reads the stat of every process; processes that vanish meanwhile are skipped.
func All() ([]Stat, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	out := make([]Stat, 0, len(ents))
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if s, err := Read(pid); err == nil {
			out = append(out, s)
		}
	}
	return out, nil
}

// Children lists the processes pid forked that are still its children, from the children
// files of each of its threads: it costs a few reads per process rather than a pass over the
// whole process table.
func Children(pid int) []int {
	dir := "/proc/" + strconv.Itoa(pid) + "/task/"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []int
	for _, t := range tasks {
		b, err := os.ReadFile(dir + t.Name() + "/children")
		if err != nil {
			continue
		}
		for _, f := range bytes.Fields(b) {
			if c, err := strconv.Atoi(string(f)); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// Alive reports whether pid is a live (non-zombie) process.
func Alive(pid int) bool {
	s, err := Read(pid)
	return err == nil && !s.Zombie()
}
