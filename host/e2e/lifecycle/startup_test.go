package lifecycle

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pmdaemon/pmdaemon/host/e2e/harness"
)

// `pmdaemon startup` prints a unit that systemd accepts and that runs this binary's daemon for
// this home, resurrecting on boot.
func TestStartupPrintsASystemdUnit(t *testing.T) {
	h := harness.NewHome(t)
	unit := h.OK("startup")
	for _, want := range []string{
		"ExecStart=" + harness.Bin + " daemon", "ExecStartPost=-" + harness.Bin + " resurrect",
		"Environment=PMDAEMON_HOME=" + h.Dir, "KillMode=mixed", "WantedBy=multi-user.target", "Restart=on-failure",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q:\n%s", want, unit)
		}
	}
	if !strings.Contains(h.OK("startup", "--user"), "WantedBy=default.target") {
		t.Error("--user unit is not wanted by default.target")
	}
	harness.ErrLike(t, h.Fail("startup", "--stop-timeout", "soon"), "--stop-timeout")
	if _, err := exec.LookPath("systemd-analyze"); err == nil {
		path := filepath.Join(t.TempDir(), "pmdaemon.service")
		os.WriteFile(path, []byte(unit), 0o644)
		if out, err := exec.Command("systemd-analyze", "verify", path).CombinedOutput(); err != nil {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
	}
}

// `pmdaemon daemon` in the foreground, as systemd runs it: the CLI uses it, and its SIGTERM
// stops the apps and exits 0, leaving them wanted so the next daemon brings them back.
func TestForegroundDaemonAsUnderSystemd(t *testing.T) {
	h := harness.NewHome(t)
	run := func() *exec.Cmd {
		cmd := exec.Command(harness.Bin, "daemon")
		cmd.Env = append(os.Environ(), "PMDAEMON_HOME="+h.Dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		harness.Eventually(t, 10*time.Second, "the foreground daemon to listen", func() bool {
			_, err := os.Stat(filepath.Join(h.Dir, "daemon.sock"))
			return err == nil
		})
		return cmd
	}
	d := run()
	port := harness.FreePorts(t, 1)
	h.OK("start", harness.Echo, "--name", "web", "--port", strconv.Itoa(port))
	pid := harness.PidsOf(h.WaitList(20*time.Second, "web online", harness.AllOnline("web", 1)), "web")[0]
	if got := h.DaemonPid(); got != d.Process.Pid {
		t.Fatalf("the CLI talks to daemon %d, not the foreground one %d", got, d.Process.Pid)
	}
	d.Process.Signal(syscall.SIGTERM)
	if err := d.Wait(); err != nil {
		t.Fatalf("the daemon did not exit cleanly on SIGTERM: %v", err)
	}
	if harness.Alive(pid) {
		t.Fatal("the app survived the daemon's SIGTERM")
	}
	d = run()
	defer func() { d.Process.Signal(syscall.SIGTERM); d.Wait() }()
	rows := h.WaitList(20*time.Second, "web back", harness.AllOnline("web", 1))
	if got := harness.PortsOf(rows, "web"); len(got) != 1 || got[0] != port {
		t.Fatalf("web came back on %v, want %d", got, port)
	}
	harness.WaitWho(t, port, "web", 0)
}

// `startup` writes only a unit that can start at boot: a pmdaemon without its pmdaemond is
// refused with what is missing, and one that finds its daemon through PMDAEMON_DAEMON writes
// that into the unit, where boot has none of the shell's environment.
func TestStartupUnitFindsTheDaemon(t *testing.T) {
	t.Parallel()
	lonely := lonelyCLI(t)
	h := harness.NewHome(t)
	r := runBin(t, lonely, h.Dir, []string{"PATH=/usr/bin:/bin", "PMDAEMON_DAEMON="}, "startup")
	if r.Code == 0 || !strings.Contains(r.Stderr, "the unit would not start") || !strings.Contains(r.Stderr, "pmdaemond is not beside "+lonely) {
		t.Errorf("startup without pmdaemond: exit %d, stdout %q, stderr %q; want a refusal naming pmdaemond", r.Code, r.Stdout, r.Stderr)
	}
	r = runBin(t, lonely, h.Dir, []string{"PATH=/usr/bin:/bin", "PMDAEMON_DAEMON=" + harness.Daemon}, "startup")
	if r.Code != 0 || !strings.Contains(r.Stdout, "\nEnvironment=PMDAEMON_DAEMON="+harness.Daemon+"\n") || !strings.Contains(r.Stdout, "ExecStart="+lonely+" daemon") {
		t.Errorf("startup with PMDAEMON_DAEMON: exit %d, stderr %q, unit:\n%s\nwant Environment=PMDAEMON_DAEMON=%s", r.Code, r.Stderr, r.Stdout, harness.Daemon)
	}
	if strings.Contains(h.OK("startup"), "PMDAEMON_DAEMON") {
		t.Error("a unit for a pmdaemon with its pmdaemond beside names PMDAEMON_DAEMON")
	}
}
