package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// proc is one instance as a manager's list shows it.
type proc struct {
	Name   string
	ID     int
	Pid    int
	Status string
}

// appSpec is one app of a generated ecosystem file.
type appSpec struct {
	Name      string
	Script    string
	Args      []string
	Instances int
	PortBase  int // 0: no port
	// SharedPort: every instance on PortBase (pmdaemon `socket: "shared"`, PM2 cluster mode)
	// instead of one port per instance from PortBase on.
	SharedPort bool
	Socket     string // pmdaemon's "socket": "" (none), "true" or "shared"
	Bind       string // pmdaemon's "bind"
	// Interpreter is PM2's: "" runs Script directly ("none"); PM2 runs Node itself ("node").
	Interpreter string
	Cluster     bool // PM2 cluster mode instead of fork mode
}

// portSpec is pmdaemon's "port" of a: "P" for one port, "P-Q" for one per instance.
func (a appSpec) portSpec() string {
	if a.PortBase <= 0 {
		return ""
	}
	spec := strconv.Itoa(a.PortBase)
	if n := max(a.Instances, 1); n > 1 && !a.SharedPort {
		spec += "-" + strconv.Itoa(a.PortBase+n-1)
	}
	return spec
}

// manager drives one process manager through its CLI, with its own home.
type manager struct {
	Name    string // "pmdaemon" or "PM2"
	Bin     string
	Home    string
	Env     []string
	PidFile string
	Version string

	listArgs  []string
	parseList func([]byte) ([]proc, error)
	startArgs func(file string) []string
	ecosystem func([]appSpec) ([]byte, error)
	// resetFiles are removed from the home (with no daemon running) before each session, so a
	// session that failed half-way cannot leak apps into the next one.
	resetFiles []string
}

// baseEnv is this process's environment without any variable of either manager, so both get
// the same environment apart from their home.
func baseEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PM2_") || strings.HasPrefix(kv, "PMDAEMON_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

func newPMDaemon(bin, home string) *manager {
	return &manager{
		Name: "pmdaemon", Bin: bin, Home: home,
		Env:        append(baseEnv(), "PMDAEMON_HOME="+home),
		PidFile:    filepath.Join(home, "daemon.pid"),
		listArgs:   []string{"list", "--json"},
		parseList:  parsePMDaemonList,
		startArgs:  func(f string) []string { return []string{"run", f} },
		ecosystem:  pmdaemonEcosystem,
		resetFiles: []string{"state.json", "dump.json"},
	}
}

func newPM2(bin, home string) *manager {
	return &manager{
		Name: "PM2", Bin: bin, Home: home,
		Env:        append(baseEnv(), "PM2_HOME="+home, "PM2_DISABLE_VERSION_CHECK=1"),
		PidFile:    filepath.Join(home, "pm2.pid"),
		listArgs:   []string{"jlist"},
		parseList:  parsePM2List,
		startArgs:  func(f string) []string { return []string{"start", f} },
		ecosystem:  pm2Ecosystem,
		resetFiles: []string{"dump.pm2", "dump.pm2.bak"},
	}
}

// commandTimeout bounds every CLI call.
const commandTimeout = 5 * time.Minute

// run executes the manager's CLI and returns its stdout; the error carries stderr's tail.
func (m *manager) run(ctx context.Context, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, m.Bin, args...)
	cmd.Env = m.Env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%s %s: %v: %s", m.Name, strings.Join(args, " "), err, tail(stderr.String()+stdout.String(), 400))
	}
	return stdout.Bytes(), nil
}

// timed runs the CLI and returns its wall-clock time.
func (m *manager) timed(ctx context.Context, args ...string) (time.Duration, error) {
	t := time.Now()
	_, err := m.run(ctx, args...)
	return time.Since(t), err
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// list runs `list --json` / `jlist` and parses it.
func (m *manager) list(ctx context.Context) ([]proc, error) {
	out, err := m.run(ctx, m.listArgs...)
	if err != nil {
		return nil, err
	}
	return m.parseList(out)
}

// daemonPid reads the daemon's pid file; 0 when there is none or the process is gone.
func (m *manager) daemonPid() int {
	b, err := os.ReadFile(m.PidFile)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || !alive(pid) {
		return 0
	}
	return pid
}

// stopDaemon runs `kill` if a daemon is running (PM2's kill would otherwise start one first),
// then waits for the process to be gone.
func (m *manager) stopDaemon(ctx context.Context) error {
	pid := m.daemonPid()
	if pid == 0 {
		return nil
	}
	_, err := m.run(ctx, "kill")
	deadline := time.Now().Add(30 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s daemon %d still alive 30s after kill (kill: %v)", m.Name, pid, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return err
}

// deleteAll runs `delete all` when the list is not empty (PM2 fails with "No process found" on
// an empty list).
func (m *manager) deleteAll(ctx context.Context) error {
	procs, err := m.list(ctx)
	if err != nil || len(procs) == 0 {
		return err
	}
	_, err = m.run(ctx, "delete", "all")
	return err
}

// writeEcosystem writes the manager's ecosystem file for apps and returns its path.
func (m *manager) writeEcosystem(dir, name string, apps []appSpec) (string, error) {
	b, err := m.ecosystem(apps)
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, strings.ToLower(m.Name)+"-"+name+".json")
	return p, os.WriteFile(p, b, 0o644)
}

// pmdaemonEcosystem is docs/ecosystem-json.md's format.
func pmdaemonEcosystem(apps []appSpec) ([]byte, error) {
	type app struct {
		Name         string   `json:"name"`
		Script       string   `json:"script"`
		Args         []string `json:"args,omitempty"`
		Instances    int      `json:"instances"`
		Port         string   `json:"port,omitempty"`
		RestartDelay int      `json:"restart_delay"`
		Socket       any      `json:"socket,omitempty"`
		Bind         string   `json:"bind,omitempty"`
	}
	var out struct {
		Apps []app `json:"apps"`
	}
	for _, a := range apps {
		x := app{Name: a.Name, Script: a.Script, Args: a.Args, Instances: max(a.Instances, 1), Port: a.portSpec(), Bind: a.Bind}
		switch a.Socket {
		case "":
		case "true":
			x.Socket = true
		default:
			x.Socket = a.Socket
		}
		out.Apps = append(out.Apps, x)
	}
	return json.MarshalIndent(out, "", "  ")
}

// pm2Ecosystem is PM2's JSON format: the binary run directly (interpreter none) unless an
// interpreter is named, fork mode unless cluster mode is asked for, no restart delay, PORT
// incremented per instance unless the port is shared.
func pm2Ecosystem(apps []appSpec) ([]byte, error) {
	type app struct {
		Name         string         `json:"name"`
		Script       string         `json:"script"`
		Args         []string       `json:"args,omitempty"`
		Interpreter  string         `json:"interpreter"`
		ExecMode     string         `json:"exec_mode"`
		Instances    int            `json:"instances"`
		RestartDelay int            `json:"restart_delay"`
		Autorestart  bool           `json:"autorestart"`
		Env          map[string]any `json:"env,omitempty"`
		IncrementVar string         `json:"increment_var,omitempty"`
	}
	var out struct {
		Apps []app `json:"apps"`
	}
	for _, a := range apps {
		x := app{Name: a.Name, Script: a.Script, Args: a.Args, Interpreter: "none", ExecMode: "fork",
			Instances: max(a.Instances, 1), Autorestart: true}
		if a.Interpreter != "" {
			x.Interpreter = a.Interpreter
		}
		if a.Cluster {
			x.ExecMode = "cluster"
		}
		if a.PortBase > 0 {
			x.Env = map[string]any{"PORT": a.PortBase}
			if x.Instances > 1 && !a.SharedPort {
				x.IncrementVar = "PORT"
			}
		}
		out.Apps = append(out.Apps, x)
	}
	return json.MarshalIndent(out, "", "  ")
}

// parsePMDaemonList parses `pmdaemon list --json` (an array of instances, or null).
func parsePMDaemonList(b []byte) ([]proc, error) {
	var rows []struct {
		ID     int    `json:"id"`
		Name   string `json:"name"`
		Status string `json:"status"`
		Pid    int    `json:"pid"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(b), &rows); err != nil {
		return nil, fmt.Errorf("pmdaemon list --json: %v in %q", err, trunc(string(b)))
	}
	out := make([]proc, 0, len(rows))
	for _, r := range rows {
		out = append(out, proc{Name: r.Name, ID: r.ID, Pid: r.Pid, Status: r.Status})
	}
	return out, nil
}

// parsePM2List parses `pm2 jlist`: one line holding a JSON array, possibly after lines of
// notices (which may themselves start with "[PM2]"), so each line that starts with '[' is tried.
func parsePM2List(b []byte) ([]proc, error) {
	type row struct {
		Name   string `json:"name"`
		PmID   int    `json:"pm_id"`
		Pid    int    `json:"pid"`
		Pm2Env struct {
			Status string `json:"status"`
		} `json:"pm2_env"`
	}
	var firstErr error
	for _, line := range bytes.Split(b, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] != '[' {
			continue
		}
		var rows []row
		if err := json.Unmarshal(line, &rows); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		out := make([]proc, 0, len(rows))
		for _, r := range rows {
			out = append(out, proc{Name: r.Name, ID: r.PmID, Pid: r.Pid, Status: r.Pm2Env.Status})
		}
		return out, nil
	}
	if firstErr == nil {
		firstErr = errors.New("no JSON array")
	}
	return nil, fmt.Errorf("pm2 jlist: %v in %q", firstErr, trunc(string(b)))
}

// onlineCheck says whether procs shows exactly n instances online with a live pid, none of
// them in old (the pids of before a restart).
func onlineCheck(procs []proc, n int, old map[int]bool, isAlive func(int) bool) bool {
	if len(procs) != n {
		return false
	}
	for _, p := range procs {
		if p.Status != "online" || p.Pid <= 0 || old[p.Pid] || !isAlive(p.Pid) {
			return false
		}
	}
	return true
}

// pidSet is the set of pids in procs.
func pidSet(procs []proc) map[int]bool {
	s := map[int]bool{}
	for _, p := range procs {
		if p.Pid > 0 {
			s[p.Pid] = true
		}
	}
	return s
}
