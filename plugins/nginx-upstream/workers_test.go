package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/plugins/sdk"
)

// Every way "pid_file" can fail to name a running nginx is an error that says which.
func TestNginxMasterRefusals(t *testing.T) {
	dir := t.TempDir()
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, content, want string }{
		{"missing file", "", `reading "pid_file": open `},
		{"not a number", "nginx\n", `does not hold a process id ("nginx")`},
		{"empty", " \n", `does not hold a process id ("")`},
		{"zero", "0\n", `does not hold a process id ("0")`},
		{"negative", "-5", `does not hold a process id ("-5")`},
		{"gone", strconv.Itoa(gone.Process.Pid), fmt.Sprintf("names pid %d, which is not running: is nginx running?", gone.Process.Pid)},
		{"not nginx", strconv.Itoa(os.Getpid()), fmt.Sprintf("names pid %d, which is not nginx's master (its command line is \"%s", os.Getpid(), os.Args[0])},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".pid")
			if tt.content != "" {
				if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			pid, err := nginxMaster(path)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("nginxMaster = %d, %v; want an error containing %q", pid, err, tt.want)
			}
		})
	}
}

// A snapshot of the master's children is waited for until they have exited, and given up at
// its limit saying how many are left; a master with no children is an error. The test process
// stands in for nginx's master, sleeps for its workers.
func TestWorkerSetAwait(t *testing.T) {
	start := func(arg string) *exec.Cmd {
		t.Helper()
		cmd := exec.Command("sleep", arg)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd
	}
	me := os.Getpid()

	short := start("0.3")
	ws, err := snapshotWorkers(me)
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.await(10 * time.Second); err != nil {
		t.Errorf("await of a child that exits: %v", err)
	}
	if !zombie(short.Process.Pid) {
		t.Errorf("await returned while the child %d still ran", short.Process.Pid)
	}
	short.Wait()

	start("1000")
	if ws, err = snapshotWorkers(me); err != nil {
		t.Fatal(err)
	}
	err = ws.await(200 * time.Millisecond)
	if !errors.Is(err, errWorkersLinger) || !strings.Contains(err.Error(), "(1 of them)") {
		t.Errorf("await of a child that stays: %v; want errWorkersLinger for 1 of them", err)
	}

	lone := start("1000")
	_, err = snapshotWorkers(lone.Process.Pid)
	if want := fmt.Sprintf("nginx's master %d has no workers to wait for", lone.Process.Pid); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("snapshotWorkers of a process without children: %v; want %q", err, want)
	}
}

// zombie reports whether pid has exited (reaped or not).
func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] == 'Z' || b[i+2] == 'X'
}

// children lists the processes whose parent is pid.
func children(pid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if c, err := strconv.Atoi(e.Name()); err == nil && parentOf(c) == pid {
			out = append(out, c)
		}
	}
	return out
}

// realNginx starts nginx (a master and one worker) in the foreground on a free loopback port,
// proxying to the upstreams in output, and returns its pid file and master.
func realNginx(t *testing.T, dir, output string) (pidFile string, master *exec.Cmd) {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		bin, err = exec.LookPath("/usr/sbin/nginx")
	}
	if err != nil {
		t.Fatal("this test needs nginx (.ci/run installs it: apt-get install -y nginx):", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	pidFile = filepath.Join(dir, "nginx.pid")
	conf := filepath.Join(dir, "nginx.conf")
	body := fmt.Sprintf(`daemon off;
worker_processes 1;
pid %s;
error_log %s;
events {}
http {
%s    access_log off;
    include %s;
    server {
        listen 127.0.0.1:%d;
        location / { proxy_pass http://web_backend; }
    }
}
`, pidFile, filepath.Join(dir, "error.log"), tempPaths(dir), output, port)
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	master = exec.Command(bin, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", conf)
	// A group of its own, killed whole at cleanup: workers outlive a master killed alone.
	master.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := master.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-master.Process.Pid, syscall.SIGKILL)
		master.Wait()
	})
	deadline := time.Now().Add(15 * time.Second)
	for len(children(master.Process.Pid)) == 0 {
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx started no worker:\n%s", b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return pidFile, master
}

// With "pid_file", an event's answer comes once nginx's workers from before the reload are gone
// (nginx -s reload only signals the master, whose old workers go on proxying to the old ports
// for a while); a reload command that does not make nginx reload is an error naming the wait.
func TestReloadWaitsForNginxWorkers(t *testing.T) {
	nginxReload := func(bin, dir string) []string {
		return []string{bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-s", "reload"}
	}
	for _, tt := range []struct {
		name   string
		reload func(bin, dir string) []string
		worker bool   // "pid_file" names a worker, not the master
		want   string // "" for no error
	}{
		{"nginx -s reload", nginxReload, false, ""},
		{"a command that does not reload", func(string, string) []string { return []string{"true"} }, false,
			`nginx-upstream: ran "true", but nginx's workers from before the reload still run after `},
		{"a pid file naming a worker", nginxReload, true, "which is not nginx's master (its command line is \"nginx: worker process\")"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			output := filepath.Join(dir, "upstreams.conf")
			h := &Hook{}
			if err := h.Configure(context.Background(), json.RawMessage(fmt.Sprintf(`{"output": %q, "upstreams": {"web": "web_backend"}}`, output))); err != nil {
				t.Fatal(err)
			}
			pidFile, master := realNginx(t, dir, output)
			before := children(master.Process.Pid)
			if tt.worker {
				pidFile = filepath.Join(dir, "worker.pid")
				if err := os.WriteFile(pidFile, []byte(strconv.Itoa(before[0])), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			doc, _ := json.Marshal(map[string]any{
				"output": output, "upstreams": map[string]string{"web": "web_backend"},
				"reload": tt.reload(master.Path, dir), "pid_file": pidFile,
			})
			if err := h.Configure(context.Background(), doc); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
			defer cancel()
			_, err := h.Handle(ctx, sdk.Event{Kind: sdk.Started, App: "web", AppPorts: []int{8000}})
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("Handle = %v; want an error containing %q", err, tt.want)
				}
				// The same ports again: the reload is retried, since the last did not take.
				if _, err := h.Handle(ctx, sdk.Event{Kind: sdk.Started, App: "web", AppPorts: []int{8000}}); err == nil {
					t.Error("an event after the failed wait did not run the reload (and wait) again")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range before {
				// Exited, it may be a zombie the master has not reaped yet: that serves nothing.
				if parentOf(w) == master.Process.Pid && !zombie(w) {
					t.Errorf("worker %d from before the reload still runs after Handle returned", w)
				}
			}
			if now := children(master.Process.Pid); len(now) == 0 {
				t.Error("nginx has no worker after the reload")
			}
		})
	}
}

// A pid file that names no nginx makes the event an error after the reload command has run.
func TestReloadWithAPidFileOfNoNginx(t *testing.T) {
	e := newEnv(t)
	pidFile := filepath.Join(e.dir, "nginx.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		t.Fatal(err)
	}
	h := configured(t, e, fmt.Sprintf(`"pid_file": %q`, pidFile))
	_, err := h.Handle(context.Background(), sdk.Event{Kind: sdk.Started, App: "web", AppPorts: []int{8000}})
	want := fmt.Sprintf(`but cannot wait for nginx to apply it: "pid_file" %s names pid %d, which is `, pidFile, os.Getpid())
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Handle = %v; want an error containing %q", err, want)
	}
	if got := e.reloads(t); len(got) != 1 {
		t.Errorf("the reload command ran %d times; want once", len(got))
	}
}
