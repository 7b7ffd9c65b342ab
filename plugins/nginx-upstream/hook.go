package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/pmdaemon/pmdaemon/plugins/sdk"
)

// header is the first line of every file the plugin writes. Configure refuses to take over an
// existing non-empty file without it: that file is someone else's.
const header = "# written by pmdaemon nginx-upstream plugin; do not edit"

// downPort is the port of the placeholder server of an app with no live instance: nginx refuses
// an upstream without servers, and a server marked down makes it answer 502 instead.
const downPort = 9

// maxOutput bounds how much of a failed reload command's output an error carries.
const maxOutput = 500

// Hook is the plugin.
type Hook struct {
	mu  sync.Mutex
	cfg *config
	// live is app -> the ports of its running instances, ascending, as last written to cfg.output.
	live map[string][]int
	// reloadFailed says the last reload failed, so the next event retries it even when no port
	// changed.
	reloadFailed bool
}

var _ sdk.Hook = (*Hook)(nil)

// Configure validates the configuration, recovers the live ports from the file written last
// time (a restarted plugin must not forget the apps it heard nothing about since), and writes
// the file if it is missing or differs from what the configuration renders. It does not run
// the reload command. A refused configuration leaves the previous one in force.
func (h *Hook) Configure(_ context.Context, doc json.RawMessage) error {
	cfg, err := parseConfig(doc)
	if err != nil {
		return fmt.Errorf("nginx-upstream: %w", err)
	}
	existing, err := os.ReadFile(cfg.output)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("nginx-upstream: reading %s: %w", cfg.output, err)
	}
	written, err := parseOutput(existing)
	if err != nil {
		return fmt.Errorf("nginx-upstream: %s %v; remove it or choose another \"output\"", cfg.output, err)
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	live := map[string][]int{}
	for app, up := range cfg.upstreams {
		if ports, ok := written[up]; ok {
			live[app] = ports
		} else if ports, ok := h.live[app]; ok {
			live[app] = ports
		}
	}
	content := render(cfg, live)
	if !bytes.Equal(content, existing) {
		if err := writeAtomic(cfg.output, content); err != nil {
			return fmt.Errorf("nginx-upstream: %w", err)
		}
	}
	h.cfg, h.live = cfg, live
	return nil
}

// Handle rewrites the output file and reloads nginx when an event changes the live ports of a
// configured app. Starting events and apps not in "upstreams" are ignored; it never vetoes.
func (h *Hook) Handle(ctx context.Context, ev sdk.Event) (string, error) {
	switch ev.Kind {
	case sdk.Started, sdk.Stopped, sdk.Exited, sdk.Crashed, sdk.Errored, sdk.Stopping, sdk.PortsChanged:
	default:
		return "", nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cfg == nil {
		return "", errors.New("nginx-upstream: not configured")
	}
	if _, ok := h.cfg.upstreams[ev.App]; !ok {
		return "", nil
	}
	var drop []int
	if ev.Kind == sdk.Stopping {
		// Take the instance out of rotation before it is killed.
		drop = ev.Ports
	}
	ports := normalize(ev.AppPorts, drop)
	if slices.Equal(ports, h.live[ev.App]) {
		if h.reloadFailed {
			return "", h.reload(ctx)
		}
		return "", nil
	}
	live := maps.Clone(h.live)
	live[ev.App] = ports
	if err := writeAtomic(h.cfg.output, render(h.cfg, live)); err != nil {
		return "", fmt.Errorf("nginx-upstream: %w", err)
	}
	h.live = live
	return "", h.reload(ctx)
}

// maxReloadTime bounds the reload command when the call has no deadline of its own.
const maxReloadTime = 30 * time.Second

// reloadTime splits the time the call has left into the reload command's time limit and what
// is kept back to kill the command and answer before the daemon gives up on the call (after
// which the daemon would kill this plugin, and the command's processes would live on).
func reloadTime(ctx context.Context) (limit, reserve time.Duration) {
	dl, ok := ctx.Deadline()
	if !ok {
		return maxReloadTime, time.Second
	}
	left := time.Until(dl)
	reserve = min(left/4, 500*time.Millisecond)
	return left - reserve, reserve
}

// reload runs the reload command, if any; h.mu is held. The command runs in a process group
// of its own; when it runs out of time the whole group is killed, so that nothing it started
// (a shell's background job, say) outlives it. With "pid_file", it then waits, within the same
// time, until nginx's workers from before the reload have exited (see workers.go).
func (h *Hook) reload(ctx context.Context) error {
	if h.cfg.reload == nil {
		h.reloadFailed = false
		return nil
	}
	limit, reserve := reloadTime(ctx)
	deadline := time.Now().Add(limit)
	// Nginx's workers are taken before the command: after it, new ones are among them.
	var workers *workerSet
	var workersErr error
	if h.cfg.pidFile != "" {
		var master int
		if master, workersErr = nginxMaster(h.cfg.pidFile); workersErr == nil {
			workers, workersErr = snapshotWorkers(master)
		}
	}
	if workers != nil {
		defer workers.close() // when the command fails; await closes it too
	}
	rctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	cmd := exec.CommandContext(rctx, h.cfg.reload[0], h.cfg.reload[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A process that left the group (setsid) may still hold the output pipe open; stop
	// waiting for it shortly after.
	cmd.WaitDelay = max(reserve/2, 10*time.Millisecond)
	out, err := cmd.CombinedOutput()
	h.reloadFailed = err != nil
	if err == nil {
		err = h.awaitWorkers(workers, workersErr, deadline)
		// nginx -s reload exits 0 even when nginx refuses the new file; its old workers then
		// stay, and the next event must reload again.
		h.reloadFailed = err != nil
		return err
	}
	var msg string
	if rctx.Err() != nil {
		msg = fmt.Sprintf("nginx-upstream: wrote %s but the reload command %q did not finish within %s; it was killed with every process of its group",
			h.cfg.output, h.cfg.reloadDesc, limit.Round(time.Millisecond))
	} else {
		msg = fmt.Sprintf("nginx-upstream: wrote %s but the reload command %q failed: %v", h.cfg.output, h.cfg.reloadDesc, err)
	}
	if text := truncate(strings.TrimSpace(string(out)), maxOutput); text != "" {
		msg += "; output: " + text
	}
	return errors.New(msg)
}

// awaitWorkers waits, when "pid_file" is set, until the workers nginx had before the reload
// command have exited, so that none still sends requests to the ports just taken out.
func (h *Hook) awaitWorkers(workers *workerSet, workersErr error, deadline time.Time) error {
	if h.cfg.pidFile == "" {
		return nil
	}
	if workersErr != nil {
		return fmt.Errorf("nginx-upstream: ran %q but cannot wait for nginx to apply it: %v", h.cfg.reloadDesc, workersErr)
	}
	if err := workers.await(time.Until(deadline)); err != nil {
		return fmt.Errorf("nginx-upstream: ran %q, but %v: they may still send requests to the old ports (if nginx refused %s, its error log says why; "+
			"with long-lived connections, set nginx's worker_shutdown_timeout below this plugin's timeout)",
			h.cfg.reloadDesc, err, h.cfg.output)
	}
	return nil
}

// truncate cuts s to at most n bytes, on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("...")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// normalize returns ports without those in drop and without ports that cannot be, ascending and
// without repeats; never nil.
func normalize(ports, drop []int) []int {
	out := []int{}
	for _, p := range ports {
		if p >= 1 && p <= 65535 && !slices.Contains(drop, p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// render is the whole output file: one upstream block per configured app, sorted by app name.
func render(cfg *config, live map[string][]int) []byte {
	var b bytes.Buffer
	b.WriteString(header + "\n")
	for i, app := range sortedKeys(cfg.upstreams) {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "upstream %s {\n", cfg.upstreams[app])
		ports := live[app]
		if len(ports) == 0 {
			fmt.Fprintf(&b, "    # no instance of %s is running\n", app)
			fmt.Fprintf(&b, "    server %s down;\n", net.JoinHostPort(cfg.host, strconv.Itoa(downPort)))
		}
		for _, p := range ports {
			params := ""
			if cfg.serverParams != "" {
				params = " " + cfg.serverParams
			}
			fmt.Fprintf(&b, "    server %s%s;\n", net.JoinHostPort(cfg.host, strconv.Itoa(p)), params)
		}
		b.WriteString("}\n")
	}
	return b.Bytes()
}

// parseOutput reads back a file render wrote: upstream name -> live ports. An empty file holds
// nothing; a non-empty one without the header is refused.
func parseOutput(content []byte) (map[string][]int, error) {
	out := map[string][]int{}
	if len(bytes.TrimSpace(content)) == 0 {
		return out, nil
	}
	sc := bufio.NewScanner(bytes.NewReader(content))
	if !sc.Scan() || sc.Text() != header {
		return nil, fmt.Errorf("exists and was not written by this plugin (its first line is not %q)", header)
	}
	upstream := ""
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		fields := strings.Fields(strings.TrimSuffix(line, ";"))
		switch {
		case len(fields) == 3 && fields[0] == "upstream" && fields[2] == "{":
			upstream = fields[1]
			out[upstream] = []int{}
		case line == "}":
			upstream = ""
		case upstream != "" && len(fields) >= 2 && fields[0] == "server" && !slices.Contains(fields[2:], "down"):
			_, port, err := net.SplitHostPort(fields[1])
			if n, perr := strconv.Atoi(port); err == nil && perr == nil {
				out[upstream] = append(out[upstream], n)
			}
		}
	}
	for up, ports := range out {
		out[up] = normalize(ports, nil)
	}
	return out, sc.Err()
}

// writeAtomic replaces path with content: a temporary file in the same directory, synced, then
// renamed over path, so that nginx never reads a half-written file. The file keeps the mode of
// the one it replaces (0644 for a new one).
func writeAtomic(path string, content []byte) (err error) {
	dir := filepath.Dir(path)
	mode := fs.FileMode(0o644)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
			err = fmt.Errorf("writing %s: %w", path, err)
		}
	}()
	if _, err = f.Write(content); err != nil {
		return err
	}
	if err = f.Chmod(mode); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	// Make the rename itself durable; not all file systems can sync a directory.
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
