// Package cgroup gives each instance its own cgroup v2 directory, so that the daemon owns every
// process an instance makes: a child that calls setsid or double-forks stays in the instance's
// cgroup, is counted in its CPU and memory, and dies with it (cgroup.kill). Where no cgroup can
// be made (no cgroup2 mount, no permission, an old kernel), Setup says why and the daemon falls
// back to process groups.
//
// Layout: <root>/pmdaemon-<hash of PMDAEMON_HOME>/<unit>, one unit per instance slot. The root
// is, in order: $PMDAEMON_CGROUP_ROOT when set; the daemon's own cgroup when systemd runs it as
// a service (a unit with Delegate=yes, as `pmdaemon startup` writes); the top of the unified
// hierarchy when the daemon runs as root outside systemd.
package cgroup

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// RootEnv names the variable that overrides the cgroup root (tests point it at a directory
// the daemon cannot use to run the process-group fallback).
const RootEnv = "PMDAEMON_CGROUP_ROOT"

// Manager makes and removes the cgroups of one PMDAEMON_HOME.
type Manager struct {
	dir string // <root>/pmdaemon-<hash>
}

// Setup finds the cgroup root for home and makes the home's directory under it. It returns nil
// and the reason when the daemon must fall back to process groups.
func Setup(home string) (*Manager, string) {
	root, err := findRoot()
	if err != nil {
		return nil, err.Error()
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(root, &fs); err != nil {
		return nil, fmt.Sprintf("cgroup root %s cannot be used: %v", root, err)
	}
	if fs.Type != unix.CGROUP2_SUPER_MAGIC {
		return nil, fmt.Sprintf("cgroup root %s is not on a cgroup2 file system", root)
	}
	sum := sha256.Sum256([]byte(home))
	dir := filepath.Join(root, "pmdaemon-"+hex.EncodeToString(sum[:4]))
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Sprintf("cannot make cgroup %s: %v", dir, unwrap(err))
	}
	if _, err := os.Stat(filepath.Join(dir, "cgroup.kill")); err != nil {
		return nil, fmt.Sprintf("cgroup %s has no cgroup.kill (Linux 5.14 or later is needed)", dir)
	}
	// Memory and CPU accounting per instance where the parent lets us enable them; without
	// them memory is summed over the cgroup's processes and CPU comes from cpu.stat, which
	// every cgroup has.
	enable(dir)
	return &Manager{dir: dir}, ""
}

// enable turns on the memory and cpu controllers for dir's children, as far as allowed.
func enable(dir string) {
	avail, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return
	}
	for _, c := range strings.Fields(string(avail)) {
		if c == "memory" || c == "cpu" || c == "pids" {
			os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+"+c), 0)
		}
	}
}

func findRoot() (string, error) {
	if r, ok := os.LookupEnv(RootEnv); ok {
		if !filepath.IsAbs(r) {
			return "", fmt.Errorf("%s=%q is not an absolute path", RootEnv, r)
		}
		return r, nil
	}
	mount, err := mountPoint()
	if err != nil {
		return "", err
	}
	own, err := ownCgroup()
	if err != nil {
		return "", err
	}
	if os.Getenv("INVOCATION_ID") != "" && own != "/" {
		// A systemd service: its cgroup is ours to divide only with Delegate=yes, which the
		// unit `pmdaemon startup` prints sets; without it the mkdir below is refused.
		return filepath.Join(mount, own), nil
	}
	if os.Geteuid() == 0 {
		return mount, nil
	}
	return "", fmt.Errorf("not root and not a systemd service with Delegate=yes (run the daemon with the unit `pmdaemon startup --user` prints to get cgroups)")
}

// mountPoint finds where the cgroup2 hierarchy is mounted (/sys/fs/cgroup, or
// /sys/fs/cgroup/unified on hybrid hosts).
func mountPoint() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("cannot read mounts: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source super
		fields := strings.Fields(sc.Text())
		for i, fl := range fields {
			if fl == "-" && i+1 < len(fields) && fields[i+1] == "cgroup2" && len(fields) > 4 {
				return fields[4], nil
			}
		}
	}
	return "", errors.New("no cgroup2 file system is mounted")
}

// ownCgroup is the daemon's cgroup v2 path relative to the mount point.
func ownCgroup() (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", fmt.Errorf("cannot read /proc/self/cgroup: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return p, nil
		}
	}
	return "", errors.New("the daemon is in no cgroup v2")
}

// Dir is the home's cgroup directory.
func (m *Manager) Dir() string { return m.dir }

// Path is unit's cgroup directory.
func (m *Manager) Path(unit string) string { return filepath.Join(m.dir, unit) }

// Open creates the cgroup at p (it may exist from an earlier daemon) and opens it for
// CLONE_INTO_CGROUP: a process spawned with the fd starts inside the cgroup, so no child it
// forks can be outside it even for an instant. The caller closes the fd.
func Open(p string) (int, error) {
	const flags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC
	fd, err := unix.Open(p, flags, 0)
	if errors.Is(err, unix.ENOENT) { // first spawn, or the cgroup was discarded after a kill
		if err := os.Mkdir(p, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return -1, fmt.Errorf("cannot make cgroup %s: %v", p, unwrap(err))
		}
		fd, err = unix.Open(p, flags, 0)
	}
	if err != nil {
		return -1, fmt.Errorf("cannot open cgroup %s: %v", p, err)
	}
	return fd, nil
}

// Units lists the unit directories under the home's cgroup.
func (m *Manager) Units() ([]string, error) {
	ents, err := os.ReadDir(m.dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// Remove kills what is left in unit's cgroup and removes it.
func (m *Manager) Remove(unit string) error {
	if err := KillAll(m.Path(unit), 2*time.Second); err != nil {
		return err
	}
	return rmdir(m.Path(unit))
}

// Close removes the home's cgroup when no unit is left in it (the daemon's clean exit).
func (m *Manager) Close() {
	units, _ := m.Units()
	for _, u := range units {
		if procs, _ := Procs(m.Path(u)); len(procs) == 0 {
			rmdir(m.Path(u))
		}
	}
	os.Remove(m.dir)
}

// rmdir removes an empty cgroup, waiting briefly for the kernel to finish tearing down
// processes that have just died (EBUSY while they are still accounted).
func rmdir(p string) error {
	deadline := time.Now().Add(2 * time.Second)
	for {
		err := unix.Rmdir(p)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			if errors.Is(err, unix.ENOTDIR) {
				return nil
			}
			return fmt.Errorf("cannot remove cgroup %s: %v", p, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Procs lists the processes in the cgroup at p (not its children cgroups).
func Procs(p string) ([]int, error) {
	b, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
	if err != nil {
		return nil, err
	}
	var out []int
	for _, f := range bytes.Fields(b) {
		if pid, err := strconv.Atoi(string(f)); err == nil {
			out = append(out, pid)
		}
	}
	return out, nil
}

// Populated reports whether any live process is left in the cgroup at p.
func Populated(p string) bool {
	b, err := os.ReadFile(filepath.Join(p, "cgroup.events"))
	if err != nil {
		return false
	}
	return bytes.Contains(b, []byte("populated 1"))
}

// Signal sends sig to every process of the cgroup at p.
func Signal(p string, sig syscall.Signal) {
	procs, _ := Procs(p)
	for _, pid := range procs {
		syscall.Kill(pid, sig)
	}
}

// Kill SIGKILLs every process of the cgroup at p, including those forked meanwhile.
func Kill(p string) error {
	if err := os.WriteFile(filepath.Join(p, "cgroup.kill"), []byte("1"), 0); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("cannot kill cgroup %s: %v", p, unwrap(err))
	}
	return nil
}

// WaitEmpty polls until the cgroup at p has no live process or the deadline passes.
func WaitEmpty(p string, deadline time.Time) bool {
	for {
		if !Populated(p) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// KillAll kills what is left in the cgroup at p and waits up to wait for it to empty. A cgroup
// it had to kill is also removed (Open makes it anew for the next process). The removal is not
// tidiness: on some kernels (seen on Linux 6.18) a process cloned into a cgroup that was once
// killed through cgroup.kill is killed at birth, so a killed cgroup is never reused. An empty
// cgroup is left as it is, which keeps an instance's restart after a plain crash cheap.
func KillAll(p string, wait time.Duration) error {
	if !Populated(p) {
		return nil
	}
	if err := Kill(p); err != nil {
		return err
	}
	if !WaitEmpty(p, time.Now().Add(wait)) {
		return fmt.Errorf("cgroup %s still has processes %s after cgroup.kill", p, wait)
	}
	return rmdir(p)
}

// Discard removes the emptied cgroup at p after a kill through cgroup.kill, so that it is not
// reused (see KillAll).
func Discard(p string) error { return rmdir(p) }

// Contains reports whether pid is a member of the cgroup at p.
func Contains(p string, pid int) bool {
	procs, _ := Procs(p)
	for _, x := range procs {
		if x == pid {
			return true
		}
	}
	return false
}

// Move puts pid into the cgroup at p (an instance taken back from a daemon that ran without
// cgroups). Its existing children stay where they are.
func Move(p string, pid int) error {
	return os.WriteFile(filepath.Join(p, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0)
}

// Usage is a cgroup's CPU time so far and its memory now.
type Usage struct {
	CPU    time.Duration
	Memory uint64
	OK     bool
}

// Read measures the cgroup at p: CPU from cpu.stat; memory from memory.current where the memory
// controller is on, else the resident memory of its processes summed.
//
// A list measures every running instance, so this is the daemon's most repeated read: its
// files are read with open, read and close on one buffer (readSmall), not os.ReadFile, whose
// os.File costs a poller registration attempt, an fstat and an allocation per file, and which
// made a list's measurement about twice as dear at 4000 instances.
func Read(p string) Usage {
	var u Usage
	var buf [1024]byte
	b, err := readSmall(p+"/cpu.stat", buf[:0])
	if err != nil {
		return u
	}
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("usage_usec ")); ok {
			us, _ := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
			u.CPU = time.Duration(us) * time.Microsecond
			break
		}
	}
	u.OK = true
	if b, err := readSmall(p+"/memory.current", buf[:0]); err == nil {
		u.Memory, _ = strconv.ParseUint(string(bytes.TrimSpace(b)), 10, 64)
		return u
	}
	procs, err := readSmall(p+"/cgroup.procs", buf[:0])
	if err != nil {
		return u
	}
	page := uint64(os.Getpagesize())
	var statm [128]byte
	for f := range bytes.FieldsSeq(procs) {
		b, err := readSmall("/proc/"+string(f)+"/statm", statm[:0])
		if err != nil {
			continue
		}
		if f := bytes.Fields(b); len(f) > 1 {
			rss, _ := strconv.ParseUint(string(f[1]), 10, 64)
			u.Memory += rss * page
		}
	}
	return u
}

// readSmall appends the content of the file at path to buf (growing it past its capacity only
// for a file longer than that) with open, read and close.
func readSmall(path string, buf []byte) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	for err == unix.EINTR { // a signal to the daemon (SIGCHLD) may interrupt the open too
		fd, err = unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}

func unwrap(err error) error {
	if u := errors.Unwrap(err); u != nil {
		return u
	}
	return err
}
